"""The delivery half of the client's facade: callbacks, the updates queue, iteration.

:class:`DeliveryMethods` is a base of :class:`~kalshi_ws.client.KalshiStreamClient`;
it only registers callbacks with the dispatcher and hands out its queue. The
dispatcher thread (:mod:`kalshi_ws._dispatch`) does the delivering.
"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, overload

from ._dispatch import CallbackHandle, UpdatesQueue
from ._session import Session
from .config import check_timeout
from .exceptions import ConcurrencyError, InvalidCommand
from .models import Channel, StreamItem, SystemMessage, channel_of

__all__ = ["DeliveryMethods"]

# The client's parts log under its public name, as websockets names its loggers by
# role: users configure "kalshi_ws.client" whichever module does the work.
logger = logging.getLogger("kalshi_ws.client")

F = TypeVar("F", bound=Callable[..., Any])


class DeliveryMethods:
    """Callbacks and the updates queue of one client (see KalshiStreamClient)."""

    _session: Session
    _queue_claimed: bool

    @property
    def updates(self) -> UpdatesQueue:
        """The queue of stream items (updates and system messages), bounded.

        Reading this property turns the queue on if callbacks had turned it off.
        """
        self._session.check_process()
        self._claim_queue()
        return self._session.dispatcher.queue

    def _claim_queue(self) -> None:
        if self._session.options.queue is False:
            raise InvalidCommand("the updates queue is off (connect(..., queue=False))")
        self._queue_claimed = True
        self._session.dispatcher.queue_enabled = True


    # ------------------------------------------------------------------ delivery

    def add_callback(self, fn: Callable[[StreamItem], Any],
                     channels: Iterable[Channel | str] | Channel | str | None = None,
                     ) -> CallbackHandle:
        """Call ``fn(item)`` on the dispatcher thread for every stream item.

        Args:
            fn: Called with each :class:`StreamUpdate` of the chosen channels and with
                system messages (connection-wide ones always; channel-scoped ones such
                as SequenceGap only for the chosen channels).
            channels: Limit delivery to these channels (None: all).

        Returns:
            A handle for :meth:`remove_callback`.

        Raises:
            InvalidCommand: ``fn`` is not callable.
        """
        return self._register(fn, channels, internal=False)

    def _register(self, fn: Callable[[StreamItem], Any],
                  channels: Iterable[Channel | str] | Channel | str | None, *,
                  internal: bool) -> CallbackHandle:
        """Register a callback; ``internal`` ones (the library's own) leave the queue alone."""
        self._session.check_process()
        if not callable(fn):
            what = "listener" if internal else "callback"
            raise InvalidCommand(f"{what} must be callable, not {type(fn).__name__}")
        if isinstance(channels, (str, Channel)):
            channels = [channels]
        names = None if channels is None else [str(channel_of(str(c))) for c in channels]
        dispatcher = self._session.dispatcher
        if not internal and self._session.options.queue is None and \
                not self._queue_claimed and not dispatcher.queue.was_read:
            # Callbacks only: do not let an unread queue fill up and end the client.
            dispatcher.queue_enabled = False
            dispatcher.queue.clear()
            logger.info("callbacks registered: the updates queue is off until it is read "
                        "(pass queue=True to connect() to keep both)")
        return dispatcher.add_callback(fn, names)

    def add_listener(self, fn: Callable[[StreamItem], Any],
                     channels: Iterable[Channel | str] | Channel | str | None = None,
                     ) -> CallbackHandle:
        """Register a callback for a feature built on the client (as OrderBookSet is).

        Exactly :meth:`add_callback`, except that it never turns the ``updates`` queue
        off: a library's own listener must not change where the user's updates go.
        Any thread.

        Raises:
            InvalidCommand: ``fn`` is not callable.
        """
        return self._register(fn, channels, internal=True)

    def on_dispatcher_thread(self) -> bool:
        """Whether the calling thread is the one that runs callbacks (and fills the
        queue): code there must not wait for updates. Any thread."""
        return threading.current_thread() is self._session.dispatcher.thread

    def remove_callback(self, handle: CallbackHandle) -> bool:
        """Unregister a callback. Returns False if it was not registered."""
        self._session.check_process()
        return self._session.dispatcher.remove_callback(handle)

    @overload
    def on(self, fn: F, /) -> F: ...

    @overload
    def on(self, *channels: Channel | str) -> Callable[[F], F]: ...

    def on(self, *channels: Any) -> Any:
        """Decorator: register the function as a callback, optionally for some channels.

        Example::

            @client.on(Channel.TICKER)
            def show(update):
                print(update.msg.market_ticker, update.msg.price_dollars)
        """
        if len(channels) == 1 and callable(channels[0]) and \
                not isinstance(channels[0], (str, Channel)):
            fn = channels[0]
            self.add_callback(fn)
            return fn

        def register(fn: F) -> F:
            self.add_callback(fn, channels or None)
            return fn

        return register

    def iter_updates(self, timeout: float | None = None) -> Iterator[StreamItem]:
        """Iterate over the updates queue; the iteration ends after the final message.

        Any thread but a callback's. Arguments are checked at the call, not at the
        first ``next()``.

        Args:
            timeout: Stop quietly when nothing arrives for this many seconds
                (None: wait as long as the client lives).

        Returns:
            An iterator of updates and system messages, in stream order. The last one
            is :class:`Closed` or a final :class:`ConnectionLost`.

        Raises:
            ConcurrencyError: called from a callback (the dispatcher thread fills the
                queue, so it would wait for itself).
            InvalidCommand: ``timeout`` is not a positive number, or the queue is off.
        """
        check_timeout(timeout)
        if self.on_dispatcher_thread():
            raise ConcurrencyError("iter_updates() cannot be used from a callback: the "
                                   "thread running callbacks is the one that fills the queue")
        return self._iterate(self.updates, timeout)

    def _iterate(self, updates: UpdatesQueue, timeout: float | None) -> Iterator[StreamItem]:
        while True:
            try:
                item = updates.get(timeout=0.5 if timeout is None else timeout)
            except queue_module.Empty:
                if timeout is not None:
                    return
                if not self._session.dispatcher.thread.is_alive() and updates.empty():
                    return
                continue
            yield item
            if isinstance(item, SystemMessage) and item.final:
                return
