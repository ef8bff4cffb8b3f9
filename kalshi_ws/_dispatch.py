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
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from .models import Lagged, StreamItem, StreamUpdate, SystemMessage

__all__ = ["CallbackHandle", "Dispatcher", "DropOldestBuffer", "UpdatesQueue"]

logger = logging.getLogger(__name__)

DROP_OLDEST = "drop_oldest"
ERROR = "error"
_BATCH = 512  # most items the dispatcher takes from the inbox at once


class _LagMarker:
    """Stands in a queue for a Lagged message whose count is still growing."""

    __slots__ = ("channel",)

    def __init__(self, channel: Any) -> None:
        self.channel = channel


def note_drop(dropped: collections.Counter[Any], lagged: dict[Any, int], channel: Any) -> bool:
    """Count one dropped update of ``channel``: the drop-oldest policy's bookkeeping.

    ``dropped`` counts every drop for ever; ``lagged`` counts the drops the next
    ``Lagged`` message will report. Returns True for the first drop since the last
    ``Lagged`` of the channel: its marker must then be put in the buffer, where the
    ``Lagged`` will be delivered.
    """
    dropped[channel] += 1
    if channel in lagged:
        lagged[channel] += 1
        return False
    lagged[channel] = 1
    return True


class DropOldestBuffer:
    """A FIFO of stream items that can drop its oldest update of a dropping channel.

    Every operation takes constant time, amortised, whatever the backlog: the
    policy of both the dispatcher's inbox and the updates queue, written once.

    While nothing has been dropped the buffer is a plain deque. The first drop builds
    an index of the waiting updates of dropping ("lossy") channels, in order, and a
    dropped update is only marked dead where it stands; the consumer skips it, and the
    deque is compacted once dead items make up half of it. The index is given up when
    the backlog falls below half the limit, so building it again costs one scan per
    half a limit of items at most.

    Not thread-safe: the owner serialises every call under its own lock.
    """

    __slots__ = ("_dead", "_index", "_is_lossy", "items", "limit")

    def __init__(self, limit: int, is_lossy: Callable[[Any], bool]) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self.limit = limit  # live items before the policy applies; 0: no limit
        self._is_lossy = is_lossy
        self._index: collections.deque[Any] | None = None  # live lossy updates, in order
        self._dead: set[int] = set()  # ids of dropped items still in ``items``

    def __len__(self) -> int:
        """Live items (dropped ones excluded)."""
        return len(self.items) - len(self._dead)

    def has_room(self, count: int = 1) -> bool:
        return self.limit <= 0 or len(self) + count <= self.limit

    def append(self, item: Any) -> None:
        self.items.append(item)
        if self._index is not None and type(item) is StreamUpdate and \
                self._is_lossy(item.channel):
            self._index.append(item)

    def extend(self, items: Iterable[Any]) -> None:
        if self._index is None:
            self.items.extend(items)
        else:
            for item in items:
                self.append(item)

    def drop_oldest_lossy(self) -> StreamUpdate | None:
        """Drop the oldest waiting update of a dropping channel; None if there is none."""
        index = self._index
        if index is None:  # the first drop since the backlog was low: one scan
            is_lossy = self._is_lossy
            index = self._index = collections.deque(
                item for item in self.items
                if type(item) is StreamUpdate and is_lossy(item.channel))
        if not index:
            return None
        victim = index.popleft()
        dead = self._dead
        dead.add(id(victim))  # victim stays referenced in ``items``: its id is unique
        if len(dead) > 64 and 2 * len(dead) > len(self.items):
            kept = [item for item in self.items if id(item) not in dead]
            self.items.clear()
            self.items.extend(kept)
            dead.clear()
        return victim  # type: ignore[no-any-return]

    def popleft(self) -> Any:
        """Remove and return the oldest live item.

        Raises:
            IndexError: no live item is waiting.
        """
        items = self.items
        dead = self._dead
        while True:
            item = items.popleft()
            if dead and id(item) in dead:
                dead.discard(id(item))
                continue
            index = self._index
            if index is not None:
                if index and index[0] is item:
                    index.popleft()
                if not dead and 2 * len(items) < self.limit:
                    self._index = None  # the backlog is low again
            return item

    def take(self, count: int) -> collections.deque[Any] | list[Any]:
        """Remove and return up to ``count`` live items, oldest first."""
        items = self.items
        if self._index is None:  # nothing was dropped (a drop makes the index first)
            if len(items) <= count:  # hand it all over
                self.items = collections.deque()
                return items
            popleft = items.popleft
            return [popleft() for _ in range(count)]
        return self._take_live(count)

    def _take_live(self, count: int) -> list[Any]:
        """take() since a drop: skip the dead items, keep the index in step."""
        items = self.items
        dead = self._dead
        index = self._index
        taken: list[Any] = []
        while items and len(taken) < count:
            item = items.popleft()
            if dead and id(item) in dead:
                dead.discard(id(item))
                continue
            if index and index[0] is item:
                index.popleft()
            taken.append(item)
        if not dead and 2 * len(items) < self.limit:
            self._index = None  # the backlog is low again
        return taken

    def clear(self) -> None:
        self.items.clear()
        self._dead.clear()
        self._index = None


class UpdatesQueue(queue.Queue[StreamItem]):
    """The client's ``updates`` queue: a bounded :class:`queue.Queue` of stream items.

    Read it like any queue (``get``, ``get_nowait``, ``qsize``); only the dispatcher
    writes to it. When it is full, items of ``drop_oldest`` channels make room by
    dropping the oldest such item, and a :class:`Lagged` message appears in their
    place in the queue, counting every item dropped until it is read.
    """

    def __init__(self, maxsize: int, is_lossy: Callable[[Any], bool]) -> None:
        self._is_lossy = is_lossy
        super().__init__(maxsize)
        self._lagged: dict[Any, int] = {}
        self.dropped: collections.Counter[Any] = collections.Counter()
        self.was_read = False
        # The threads waiting in get(): CPython's Condition keeps them in a deque that
        # it changes only under the mutex. When nobody waits, notify() (two Python calls
        # per item) has nothing to do. Without it (another Python), always notify.
        self._getters: collections.deque[Any] | None = getattr(
            self.not_empty, "_waiters", None)
        self._putters: collections.deque[Any] | None = getattr(  # in put(), the same way
            self.not_full, "_waiters", None)

    # queue.Queue's storage hooks, over a DropOldestBuffer (called holding self.mutex)

    # The common case, nothing ever dropped (the buffer keeps no index), is inlined:
    # these run for every item, on the dispatcher and on the reading thread.

    def _init(self, maxsize: int) -> None:
        self._buffer = DropOldestBuffer(maxsize, self._is_lossy)
        self.queue = self._items = self._buffer.items  # compacted in place: same objects
        self._dead = self._buffer._dead

    def _qsize(self) -> int:
        return len(self._items) - len(self._dead)

    def _put(self, item: Any) -> None:
        self._buffer.append(item)

    def _get(self) -> Any:
        item = self._items.popleft() if self._buffer._index is None else \
            self._buffer.popleft()
        self.was_read = True
        if type(item) is _LagMarker:
            return Lagged(dropped=self._lagged.pop(item.channel), channel=item.channel)
        return item

    def get(self, block: bool = True, timeout: float | None = None) -> StreamItem:
        """Remove and return the oldest item, as :meth:`queue.Queue.get` does. Any thread.

        When an item is there, it is taken holding only the mutex: queue.Queue's own
        ``get`` also enters a Condition and wakes ``put`` callers, of which this queue
        has none (the dispatcher only ever offers without blocking).

        Raises:
            queue.Empty: no item came (``block=False``, or ``timeout`` passed).
            ValueError: ``timeout`` is negative (with ``block``), item or not.
        """
        if timeout is not None and block and timeout < 0:
            return super().get(block, timeout)  # ValueError, as queue.Queue says
        mutex = self.mutex
        mutex.acquire()
        if len(self._items) - len(self._dead):
            try:
                item: StreamItem = self._get()
                if self._putters is None or self._putters:
                    self.not_full.notify()  # a put() blocked on a full queue
            finally:
                mutex.release()
            return item
        mutex.release()
        return super().get(block, timeout)  # empty: wait as queue.Queue does

    def offer(self, item: Any, lossy: bool, force: bool = False) -> bool:
        """Put ``item`` without blocking. Called by the dispatcher only.

        Returns:
            False when the queue is full and ``item`` may not be dropped (the caller
            then ends the client); True otherwise.
        """
        mutex = self.mutex
        mutex.acquire()  # not ``with``: that costs twice as much, for every item
        try:
            buffer = self._buffer
            if force or self.maxsize <= 0 or len(self._items) - len(self._dead) < self.maxsize:
                if buffer._index is None:
                    self._items.append(item)
                else:
                    buffer.append(item)
            else:
                old = buffer.drop_oldest_lossy()
                if old is not None:
                    self.unfinished_tasks -= 1  # nobody will call task_done() for it
                    self._count_drop(old.channel)
                    buffer.append(item)
                elif lossy:  # the incoming item is the oldest one of a dropping channel
                    self._count_drop(item.channel)
                    return True
                else:
                    return False
            self.unfinished_tasks += 1
            getters = self._getters
            if getters is None or getters:
                self.not_empty.notify()
            return True
        finally:
            mutex.release()

    def _count_drop(self, channel: Any) -> None:
        if note_drop(self.dropped, self._lagged, channel):
            self._buffer.append(_LagMarker(channel))
            self.unfinished_tasks += 1

    def clear(self) -> None:
        """Discard every queued item."""
        with self.mutex:
            self._buffer.clear()
            self._lagged.clear()
            self.unfinished_tasks = 0
            self.all_tasks_done.notify_all()

    def __repr__(self) -> str:
        return (f"<UpdatesQueue {self.qsize()} of {self.maxsize} items, "
                f"{sum(self.dropped.values())} dropped>")


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
        queue_maxsize: Bound of the updates queue.
        on_drop: Called on the posting thread, holding no lock, with the updates just
            dropped from the inbox (so that the client can resynchronise what they hit).
        on_error: Called on the dispatcher thread as ``on_error(exception, item)`` when
            a callback raises. Without it the error is shown: logged with its traceback
            if logging is configured, else printed to stderr as Python prints an
            uncaught exception in a thread.
    """

    def __init__(
        self,
        *,
        name: str,
        inbox_limit: int,
        policy: Callable[[Any], str],
        on_overflow: Callable[[str], None],
        queue_maxsize: int = 0,
        on_drop: Callable[[list[StreamUpdate]], None] | None = None,
        on_error: Callable[[BaseException, Any], Any] | None = None,
    ) -> None:
        self._wake = threading.Event()
        self._inbox_limit = inbox_limit
        self._policy = policy
        self._on_overflow = on_overflow
        self._on_drop = on_drop
        self._on_error = on_error
        self.callback_errors = 0
        self._callbacks: tuple[_Callback, ...] = ()
        self._stopped = False  # stop_callbacks() was called: no callback may start
        self._registry_lock = threading.Lock()
        # Guards the inbox against the reader and the dispatcher at once (the drop path
        # searches it); the dispatcher takes items in batches, so it is cheap.
        self._inbox_lock = threading.Lock()
        self._discarded = 0
        self._batch_left = 0  # items of the batch in hand not yet delivered
        self._lagged: dict[Any, int] = {}
        self._lossy_cache: dict[Any, bool] = {}
        self._inbox = DropOldestBuffer(inbox_limit, self._lossy)
        self.queue = UpdatesQueue(queue_maxsize, self._lossy)
        self.queue_enabled = True
        # Updates delivered per channel. A plain dict: a Counter's += costs three times
        # as much (Counter defines __delitem__ in Python, so every item assignment goes
        # through a method lookup and call).
        self.delivered: dict[Any, int] = {}
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
            if not self._stopped:  # after close(), nothing is called any more
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
        dropped: list[StreamUpdate] = []
        accepted = True
        with self._inbox_lock:
            inbox = self._inbox
            if inbox.has_room(len(items)):
                inbox.extend(items)
            else:
                for item in items:
                    if inbox.has_room() or isinstance(item, SystemMessage):
                        inbox.append(item)
                    elif not self._make_room(item, dropped):
                        accepted = False
                        break
        if dropped and self._on_drop is not None:
            self._on_drop(dropped)
        if not self._wake.is_set():
            self._wake.set()
        return accepted

    def _make_room(self, item: Any, dropped: list[StreamUpdate]) -> bool:
        """Drop the oldest waiting update of a dropping channel (hold _inbox_lock)."""
        old = self._inbox.drop_oldest_lossy()
        if old is not None:
            self._note_drop(old.channel)
            dropped.append(old)
            self._inbox.append(item)
            return True
        if self._lossy(item.channel):  # the incoming item is the oldest such one
            self._note_drop(item.channel)
            dropped.append(item)
            return True
        return False

    def _note_drop(self, channel: Any) -> None:
        """Count a dropped update; one Lagged marker per channel waits in the inbox."""
        if note_drop(self.dropped, self._lagged, channel):
            self._inbox.append(_LagMarker(channel))

    def hurry(self, deadline: float) -> None:
        """Discard (count, warn) updates still undelivered at ``deadline`` (monotonic).

        Any thread. Only ever brings an earlier deadline forward.
        """
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline
        self._wake.set()

    def stop_callbacks(self) -> None:
        """From now on no callback starts (one running now finishes). Any thread.

        The updates queue is still filled, so that a reader of it sees the final item.
        """
        with self._registry_lock:
            self._stopped = True
            self._callbacks = ()

    def post_final(self, item: Any, deadline: float | None) -> None:
        """Queue the last item of the stream; items after it are never delivered.

        Args:
            item: The final system message (Closed or a final ConnectionLost).
            deadline: ``time.monotonic()`` value after which undelivered items are
                discarded (with a warning) so that the final item goes out in time.
        """
        if deadline is not None:
            self.hurry(deadline)
        with self._inbox_lock:
            self._inbox.append(item)
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
        """Items waiting for the callbacks (in the inbox and in the batch being run)."""
        return len(self._inbox) + self._batch_left

    def _take(self) -> list[Any] | collections.deque[Any]:
        """Take a batch of waiting items (possibly none), holding the inbox lock briefly."""
        with self._inbox_lock:
            return self._inbox.take(_BATCH)

    def _run(self) -> None:
        wake = self._wake
        while True:
            batch = self._take()
            if not batch:
                wake.clear()
                if len(self._inbox):
                    continue
                wake.wait(1.0)
                continue
            if self._run_batch(batch):
                return

    def _run_batch(self, batch: list[Any] | collections.deque[Any]) -> bool:
        """Deliver a batch taken from the inbox; True once the final item is delivered.

        An update goes straight to :meth:`_deliver_update`; anything else, and every
        item once a close deadline is set, takes :meth:`_deliver_other`.
        """
        left = len(batch)
        deliver_update = self._deliver_update
        for item in batch:
            self._batch_left = left
            left -= 1
            if type(item) is StreamUpdate and self._deadline is None:
                deliver_update(item)
            elif self._deliver_other(item):
                self._batch_left = 0
                return True
        self._batch_left = 0
        return False

    def _deliver_other(self, item: Any) -> bool:
        """Deliver a system message or Lagged marker, or any item once a close deadline
        is set (past it, updates are discarded). True once the final item is delivered."""
        if self._deadline is not None and time.monotonic() > self._deadline and \
                not (isinstance(item, SystemMessage) and item.final):
            self._discard(item)
            return False
        if type(item) is _LagMarker:
            with self._inbox_lock:
                dropped = self._lagged.pop(item.channel)
            item = Lagged(dropped=dropped, channel=item.channel, consumer="callbacks")
        self._deliver(item)
        if type(item) is not StreamUpdate and item.final:
            if self._discarded:
                logger.warning("close deadline reached: %d update(s) were not "
                               "delivered", self._discarded)
            return True
        return False

    def _discard(self, item: Any) -> None:
        """Past the close deadline: an undelivered update is dropped (counted, logged)."""
        self._discarded += 1

    def _deliver(self, item: Any) -> None:
        """Deliver one item: an update, a system message or a Lagged message."""
        if type(item) is StreamUpdate:
            self._deliver_update(item)
            return
        # A system message goes to the callbacks of its channel, or to all if it has none.
        channel = getattr(item, "channel", None)
        self._call_callbacks(item, channel, channel is None)
        if self.queue_enabled:
            self.queue.offer(item, False, force=True)  # system messages always fit

    def _deliver_update(self, item: StreamUpdate) -> None:
        """Deliver one update: its channel's callbacks, then the queue, then the count."""
        channel = item.channel
        self._call_callbacks(item, channel, False)
        if self.queue_enabled:
            lossy = self._lossy_cache.get(channel)
            if not self.queue.offer(item, self._lossy(channel) if lossy is None else lossy):
                self._on_overflow(self._queue_overflow_text())
                return
        delivered = self.delivered
        try:
            delivered[channel] += 1
        except KeyError:  # the channel's first update
            delivered[channel] = 1

    def _call_callbacks(self, item: Any, channel: Any, everyone: bool) -> None:
        """Run the callbacks registered for ``channel`` (``everyone``: all of them)."""
        for callback in self._callbacks:
            wanted = callback.channels
            if wanted is not None and not everyone and channel not in wanted:
                continue
            if self._stopped:  # close() returned while this item was being delivered
                break
            try:
                callback.fn(item)
            except BaseException as exc:  # noqa: BLE001 - even sys.exit() must not stop delivery
                self.callback_failed(callback.fn, item, exc)

    def callback_failed(self, fn: Any, item: Any, exc: BaseException) -> None:
        """Count a callback's exception and show it (or hand it to ``on_error``).

        Dispatcher thread only (callbacks run there).
        """
        self.callback_errors += 1
        kind = "callback"
        if self._on_error is not None:
            try:
                self._on_error(exc, item)
                return
            except BaseException as handler_exc:  # noqa: BLE001 - shown below instead
                exc = handler_exc
                fn = self._on_error
                kind = "on_error handler"
        what = item.type if type(item) is StreamUpdate else type(item).__name__
        if _logging_configured():
            logger.error("%s %r raised while handling %s", kind, fn, what, exc_info=exc)
            return
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:  # as threading.excepthook shows an uncaught exception in a thread
            sys.stderr.write(f"Exception in kalshi_ws {kind} {fn!r} while handling "
                             f"{what}:\n{text}")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):  # stderr closed or gone
            pass

    def _queue_overflow_text(self) -> str:
        text = f"the updates queue is full ({self.queue.maxsize} items)"
        if not self.queue.was_read:
            text += ("; nothing has read client.updates - if you consume with callbacks "
                     "only, pass queue=False to connect()")
        return text


def _logging_configured() -> bool:
    """Whether a record of this module's logger reaches a handler the user set up.

    The package's own NullHandler does not count: with nothing else, Python would show
    the record nowhere, so callback errors are printed to stderr instead.
    """
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False
