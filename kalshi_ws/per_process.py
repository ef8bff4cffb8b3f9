"""One client per process, for web apps under pre-forking servers (gunicorn, uWSGI).

Threads do not survive ``fork()``: a client created in a master process is dead in its
workers (and raises :class:`ConcurrencyError` there instead of hanging). The rule is
therefore "never at import time; lazily, once per process", which this class packages::

    kalshi = PerProcessClient(lambda: KalshiStreamClient.connect(config, reconnect=True))

    def view(request):
        client = kalshi.get()   # created on the first request of each worker
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from .client import KalshiStreamClient
from .config import is_seconds
from .exceptions import ConcurrencyError, ConfigurationError

__all__ = ["PerProcessClient"]

logger = logging.getLogger(__name__)


class PerProcessClient:
    """Creates a client on first use in each process and closes it at interpreter exit.

    Args:
        factory: Connects and sets up a client (subscriptions, callbacks). Called at
            most once per process at a time, on the first :meth:`get`, and again if the
            client ended (closed, or lost for good).

        wait: Seconds a :meth:`get` waits for another thread's factory call.

    Thread-safe: any number of request threads may call :meth:`get` at once. The
    factory runs holding no lock of this class.
    """

    def __init__(self, factory: Callable[[], KalshiStreamClient], *,
                 wait: float = 60.0) -> None:
        if not is_seconds(wait):
            raise ConfigurationError(f"wait must be a positive number of seconds, not {wait!r}")
        self._factory = factory
        self._wait = wait
        self._lock = threading.Lock()
        self._client: KalshiStreamClient | None = None
        self._pid: int | None = None
        self._exit_hook_pid: int | None = None
        # While a factory call is under way: the thread making it, and an event set
        # when it ends (either way).
        self._creator: threading.Thread | None = None
        self._created = threading.Event()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_inherited)

    def _forget_inherited(self) -> None:
        """In a forked child: drop the parent's client (its threads are gone) and lock."""
        self._lock = threading.Lock()
        self._client = None
        self._pid = os.getpid()
        self._creator = None
        self._created = threading.Event()

    def get(self) -> KalshiStreamClient:
        """The client of this process, connecting it first if needed.

        Any thread. Blocks while the factory connects (in this thread, or in another
        one that asked first).

        Raises:
            ConcurrencyError: another thread's factory call took longer than ``wait``
                seconds, or the factory itself called :meth:`get`.
            Exception: whatever the factory raises (the next call tries again).
        """
        pid = os.getpid()
        client = self._client
        if client is not None and self._pid == pid and not client.closed:
            return client
        deadline = time.monotonic() + self._wait
        while True:
            with self._lock:
                if self._pid != pid:
                    self._client = None  # inherited (fork without hooks): leave it alone
                    self._pid = pid
                client = self._client
                if client is not None and not client.closed:
                    return client
                creator, created = self._creator, self._created
                if creator is None:
                    self._creator = threading.current_thread()
                    self._created = created = threading.Event()
            if creator is None:
                return self._create(pid, created)
            if creator is threading.current_thread():
                raise ConcurrencyError("the PerProcessClient factory called get() itself")
            if not created.wait(max(0.0, deadline - time.monotonic())):
                raise ConcurrencyError(f"another thread has been creating the client for "
                                       f"more than {self._wait:g} s")

    def _create(self, pid: int, created: threading.Event) -> KalshiStreamClient:
        """Run the factory (no lock held), publish its client, wake the waiters."""
        try:
            client = self._factory()
            with self._lock:
                self._client = client
                register_exit_hook = self._exit_hook_pid != pid
                self._exit_hook_pid = pid
            if register_exit_hook:
                atexit.register(self.close)
            logger.info("process %d connected its Kalshi client", pid)
            return client
        finally:
            with self._lock:
                self._creator = None
            created.set()

    @property
    def created(self) -> bool:
        """Whether this process has a client (no connection is made to find out)."""
        return self._client is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Close this process's client, if it has one. Safe to call more than once."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            self._client = None
            client.close()
