"""The dispatcher thread: the only thread that runs user callbacks and fills the queue.

The reader posts batches of stream items with :meth:`Dispatcher.post`, which never
blocks. Both places items wait are bounded: the dispatcher's inbox (between reader
and callbacks) and the user's :class:`UpdatesQueue`. When one is full, the item's
channel policy decides: ``"drop_oldest"`` drops the oldest item of a dropping channel
and reports it with a :class:`Lagged` message; ``"error"`` makes the client end with
:class:`SlowConsumerError`. Nothing is dropped without a message saying so.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .models import (
    Closed,
    ConnectionLost,
    Lagged,
    Reconnected,
    StreamUpdate,
    SystemMessage,
)

__all__ = ["CallbackHandle", "Dispatcher", "UpdatesQueue"]

logger = logging.getLogger(__name__)

DROP_OLDEST = "drop_oldest"
ERROR = "error"
_CONNECTION_MESSAGES = (Closed, ConnectionLost, Reconnected)


class _LagMarker:
    """Stands in a queue for a Lagged message whose count is still growing."""

    __slots__ = ("channel",)

    def __init__(self, channel: Any) -> None:
        self.channel = channel


class UpdatesQueue(queue.Queue):  # type: ignore[type-arg]
    """The client's ``updates`` queue: a bounded :class:`queue.Queue` of stream items.

    Read it like any queue (``get``, ``get_nowait``, ``qsize``); only the dispatcher
    writes to it. When it is full, items of ``drop_oldest`` channels make room by
    dropping the oldest such item, and a :class:`Lagged` message appears in their
    place in the queue, counting every item dropped until it is read.
    """

    def __init__(self, maxsize: int, is_lossy: Callable[[Any], bool]) -> None:
        super().__init__(maxsize)
        self._is_lossy = is_lossy
        self._lagged: dict[Any, int] = {}
        self.dropped: collections.Counter[Any] = collections.Counter()
        self.was_read = False

    def _get(self) -> Any:
        item = self.queue.popleft()
        self.was_read = True
        if type(item) is _LagMarker:
            return Lagged(dropped=self._lagged.pop(item.channel), channel=item.channel)
        return item

    def offer(self, item: Any, lossy: bool, force: bool = False) -> bool:
        """Put ``item`` without blocking. Called by the dispatcher only.

        Returns:
            False when the queue is full and ``item`` may not be dropped (the caller
            then ends the client); True otherwise.
        """
        with self.mutex:
            items = self.queue
            if force or self.maxsize <= 0 or len(items) < self.maxsize:
                items.append(item)
            elif not self._drop_oldest_lossy(item, lossy):
                return False
            self.unfinished_tasks += 1
            self.not_empty.notify()
            return True

    def _drop_oldest_lossy(self, item: Any, lossy: bool) -> bool:
        items = self.queue
        for index, old in enumerate(items):
            if type(old) is StreamUpdate and self._is_lossy(old.channel):
                del items[index]
                self._count_drop(old.channel)
                items.append(item)
                return True
        if lossy:  # the incoming item is the oldest one of a dropping channel
            self._count_drop(item.channel)
            return True
        return False

    def _count_drop(self, channel: Any) -> None:
        self.dropped[channel] += 1
        if channel in self._lagged:
            self._lagged[channel] += 1
        else:
            self._lagged[channel] = 1
            self.queue.append(_LagMarker(channel))
            self.unfinished_tasks += 1

    def clear(self) -> None:
        """Discard every queued item."""
        with self.mutex:
            self.queue.clear()
            self._lagged.clear()
            self.unfinished_tasks = 0
            self.all_tasks_done.notify_all()


class _Callback:
    __slots__ = ("channels", "fn", "handle")

    def __init__(self, fn: Callable[[Any], Any], channels: frozenset[str] | None,
                 handle: CallbackHandle) -> None:
        self.fn = fn
        self.channels = channels
        self.handle = handle


class CallbackHandle:
    """Returned by ``add_callback``; pass it to ``remove_callback`` or call :meth:`remove`."""

    __slots__ = ("__weakref__", "_dispatcher", "_id")
    _ids = itertools.count(1)

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._id = next(self._ids)

    def remove(self) -> bool:
        """Unregister the callback. Returns False if it was not registered."""
        return self._dispatcher.remove_callback(self)

    def __repr__(self) -> str:
        return f"<CallbackHandle {self._id}>"


class Dispatcher:
    """Delivers stream items to callbacks and the updates queue on its own thread.

    Args:
        name: The thread name.
        inbox_limit: Items that may wait for the callbacks before the overflow policy
            applies.
        policy: Returns ``"drop_oldest"`` or ``"error"`` for a channel.
        on_overflow: Called (on the posting or dispatching thread, holding no lock)
            with a description when an ``"error"`` channel overflows.
    """

    def __init__(
        self,
        *,
        name: str,
        inbox_limit: int,
        policy: Callable[[Any], str],
        on_overflow: Callable[[str], None],
        queue_maxsize: int = 0,
    ) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._inbox_limit = inbox_limit
        self._policy = policy
        self._on_overflow = on_overflow
        self._callbacks: tuple[_Callback, ...] = ()
        self._registry_lock = threading.Lock()
        self._lag_lock = threading.Lock()
        self._lagged: dict[Any, int] = {}
        self._lossy_cache: dict[Any, bool] = {}
        self.queue = UpdatesQueue(queue_maxsize, self._lossy)
        self.queue_enabled = True
        self.delivered: collections.Counter[Any] = collections.Counter()
        self.dropped: collections.Counter[Any] = collections.Counter()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ registry

    def add_callback(self, fn: Callable[[Any], Any],
                     channels: Iterable[str] | None) -> CallbackHandle:
        """Register ``fn``; thread-safe. Takes effect from the next item delivered."""
        handle = CallbackHandle(self)
        wanted = None if channels is None else frozenset(str(c) for c in channels)
        with self._registry_lock:
            self._callbacks = self._callbacks + (_Callback(fn, wanted, handle),)
        return handle

    def remove_callback(self, handle: CallbackHandle) -> bool:
        """Unregister a callback; thread-safe. Returns False if it was not registered."""
        with self._registry_lock:
            kept = tuple(c for c in self._callbacks if c.handle is not handle)
            removed = len(kept) != len(self._callbacks)
            self._callbacks = kept
        return removed

    # ------------------------------------------------------------------ posting

    def _lossy(self, channel: Any) -> bool:
        lossy = self._lossy_cache.get(channel)
        if lossy is None:
            lossy = self._lossy_cache[channel] = self._policy(channel) == DROP_OLDEST
        return lossy

    def post(self, items: list[Any]) -> bool:
        """Queue items for delivery without blocking. Called by the reader thread.

        Returns:
            False when an item of an ``"error"`` channel did not fit (the caller must
            end the connection with SlowConsumerError); True otherwise.
        """
        inbox = self._items
        if len(inbox) + len(items) <= self._inbox_limit:
            inbox.extend(items)
        else:
            for item in items:
                if len(inbox) < self._inbox_limit or isinstance(item, SystemMessage):
                    inbox.append(item)
                elif not self._make_room(item):
                    self._wake.set()
                    return False
        if not self._wake.is_set():
            self._wake.set()
        return True

    def _make_room(self, item: Any) -> bool:
        inbox = self._items
        for index, old in enumerate(inbox):
            if type(old) is StreamUpdate and self._lossy(old.channel):
                try:
                    del inbox[index]
                except IndexError:  # the dispatcher took it meanwhile: room was made anyway
                    pass
                self._note_drop(old.channel)
                inbox.append(item)
                return True
        if self._lossy(item.channel):
            self._note_drop(item.channel)
            return True
        return False

    def _note_drop(self, channel: Any) -> None:
        self.dropped[channel] += 1
        with self._lag_lock:
            if channel in self._lagged:
                self._lagged[channel] += 1
                return
            self._lagged[channel] = 1
        self._items.append(_LagMarker(channel))

    def post_final(self, item: SystemMessage, deadline: float | None) -> None:
        """Queue the last item of the stream; items after it are never delivered.

        Args:
            item: The final system message (Closed or a final ConnectionLost).
            deadline: ``time.monotonic()`` value after which undelivered items are
                discarded (with a warning) so that the final item goes out in time.
        """
        self._deadline = deadline
        self._items.append(item)
        self._wake.set()

    # ------------------------------------------------------------------ thread

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def join(self, timeout: float | None) -> bool:
        """Wait for the dispatcher to finish; False if it is still running (or is us)."""
        if threading.current_thread() is self._thread:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Items waiting for the callbacks."""
        return len(self._items)

    def _run(self) -> None:
        items = self._items
        wake = self._wake
        deliver = self._deliver
        while True:
            try:
                item = items.popleft()
            except IndexError:
                wake.clear()
                if items:
                    continue
                wake.wait(1.0)
                continue
            if self._deadline is not None and time.monotonic() > self._deadline and \
                    not (isinstance(item, SystemMessage) and item.final):
                self._discard_until_final(item)
                continue
            if type(item) is _LagMarker:
                with self._lag_lock:
                    dropped = self._lagged.pop(item.channel)
                item = Lagged(dropped=dropped, channel=item.channel, consumer="callbacks")
            deliver(item)
            if type(item) is not StreamUpdate and item.final:
                return

    def _discard_until_final(self, first: Any) -> None:
        discarded = 1
        while self._items:
            item = self._items[0]
            if isinstance(item, SystemMessage) and item.final:
                break
            self._items.popleft()
            discarded += 1
        logger.warning("close deadline reached: discarded %d undelivered update(s)", discarded)

    def _deliver(self, item: Any) -> None:
        is_update = type(item) is StreamUpdate
        channel = item.channel if is_update else getattr(item, "channel", None)
        for callback in self._callbacks:
            wanted = callback.channels
            if wanted is not None and channel not in wanted and (
                    is_update or channel is not None):
                continue
            try:
                callback.fn(item)
            except Exception:
                logger.exception("callback %r raised while handling %s", callback.fn,
                                 item.type if is_update else type(item).__name__)
        if self.queue_enabled:
            final = not is_update and item.final
            if not self.queue.offer(item, is_update and self._lossy(channel), force=not is_update
                                    or final):
                self._on_overflow(self._queue_overflow_text())
                return
        if is_update:
            self.delivered[channel] += 1

    def _queue_overflow_text(self) -> str:
        text = f"the updates queue is full ({self.queue.maxsize} items)"
        if not self.queue.was_read:
            text += ("; nothing has read client.updates - if you consume with callbacks "
                     "only, pass queue=False to connect()")
        return text
