"""The session lock, whose holder's log records reach their handlers after its release.

A logging handler is user code: it may read the client (``client.stats()`` in a
dashboard's handler, say), which takes the session lock. The reader, the commands and
the reconnect supervisor log while holding that lock (a sequence gap, a malformed frame,
a refused command), so a record handled at once would run the handler under the lock,
and a handler that calls the client would deadlock the reader.

So the library's loggers (every ``kalshi_ws...`` logger, see :func:`defer_library_logs`)
carry a filter: a record made while its thread holds a :class:`SessionLock` is made as
usual (its time, thread and source line are the caller's) but held back, and handed to
the handlers right after that thread releases its last session lock. Any other record
passes at once. The modules that log keep their plain ``logging.getLogger(__name__)``.

Any thread; each thread's held-back records are its own.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

__all__ = ["SessionLock", "defer_library_logs"]

#: The package whose loggers are filtered.
PACKAGE = "kalshi_ws"


class _Held(threading.local):
    """Per thread: how many session locks it holds, and the records waiting for it."""

    def __init__(self) -> None:
        self.depth = 0
        self.records: list[tuple[logging.Logger, logging.LogRecord]] = []


_held = _Held()


class SessionLock:
    """A non-reentrant lock (a ``threading.Lock``) whose holder's log records wait.

    Used as ``with lock:``; ``acquire``, ``release`` and ``locked`` are those of
    ``threading.Lock``. Any thread.
    """

    __slots__ = ("_acquire", "_lock", "_release")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock (as ``threading.Lock.acquire``)."""
        if self._acquire(blocking, timeout):
            _held.depth += 1
            return True
        return False

    def release(self) -> None:
        """Release the lock; then, if this thread holds no other session lock, hand its
        held-back log records to their handlers (outside every lock)."""
        self._release()
        held = _held
        held.depth -= 1
        if not held.depth and held.records:
            _flush(held)

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        self._acquire()
        _held.depth += 1
        return True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._release()
        held = _held
        held.depth -= 1
        if not held.depth and held.records:
            _flush(held)


def _flush(held: _Held) -> None:
    """Hand the records over; one whose handling raises (a user's handler filter, say)
    loses no other: the first such error is raised once all have been handed over."""
    records, held.records = held.records, []
    error: Exception | None = None
    for logger, record in records:
        try:
            logger.handle(record)  # the filter lets it through: no session lock is held
        except Exception as exc:  # noqa: BLE001 - raised below, after the others
            error = error or exc
    if error is not None:
        raise error


class _HoldUnderSessionLock(logging.Filter):
    """Holds back a record made while its thread holds a session lock."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        held = _held
        if not held.depth:
            return True
        held.records.append((self.logger, record))
        return False


def defer_library_logs() -> None:
    """Put the filter on every ``kalshi_ws`` logger that exists (once each). Called when
    a session is made: every module that logs under its lock is imported by then."""
    for name in list(logging.Logger.manager.loggerDict):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _HoldUnderSessionLock) for f in logger.filters):
                logger.addFilter(_HoldUnderSessionLock(logger))
