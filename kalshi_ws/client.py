"""KalshiStreamClient: the threaded client's facade.

The client is three kinds of thread around one shared
:class:`~kalshi_ws._session.Session` (its locks, protocol, response slots, state):

* **caller threads** (scripts, web request threads, the REPL, callbacks) run the
  commands (:mod:`kalshi_ws._client_commands`), register callbacks and read the queue
  (:mod:`kalshi_ws._client_delivery`), and ``close()``;
* the **reader** (``kalshi-ws-reader-N``) is run by the supervisor
  (:mod:`kalshi_ws.reconnect`), which reads each connection with
  :mod:`kalshi_ws._reader` and reconnects; it never runs user code;
* the **dispatcher** (``kalshi-ws-dispatch-N``, :mod:`kalshi_ws._dispatch`) runs
  callbacks and fills the ``updates`` queue.

This module keeps what belongs to the client as a whole: opening, closing, recording,
counters, and the seam other features (such as :class:`~kalshi_ws.bookset.OrderBookSet`)
build on.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._client_commands import CommandMethods
from ._client_delivery import DeliveryMethods
from ._session import CLOSED, CLOSING, Session
from ._transport import DEFAULT_MAX_MESSAGE_SIZE
from .bookset import OrderBookSet
from .config import (
    ConnectStrategy,
    HealthConfig,
    KalshiConfig,
    ReconnectPolicy,
    check_timeout,
)
from .exceptions import ConfigurationError, ConnectionClosedOK
from .models import (
    BookState,
    Channel,
    ChannelStats,
    ClientStats,
    Closed,
    StreamItem,
    Subscription,
    channel_of,
)
from .options import ClientOptions
from .reconnect import Supervisor
from .recording import Recorder

__all__ = ["KalshiStreamClient"]

logger = logging.getLogger(__name__)


class KalshiStreamClient(CommandMethods, DeliveryMethods):
    """A connection to Kalshi's WebSocket API, with a background reader thread.

    Create one with :meth:`connect`. Every public method may be called from any
    thread, including from inside a callback, unless it says otherwise.

    Updates arrive as :class:`StreamUpdate` (and system messages such as
    :class:`Closed`) on callbacks registered with :meth:`add_callback` / :meth:`on`,
    and in the :attr:`updates` queue. Callbacks run on the dispatcher thread, one at
    a time, in stream order; a callback that raises is logged and delivery goes on.
    """

    # ------------------------------------------------------------------ construction

    def __init__(self, config: KalshiConfig, options: ClientOptions | None = None) -> None:
        if not isinstance(options, ClientOptions):
            raise TypeError("create a client with KalshiStreamClient.connect(config, "
                            "**options), which opens the connection; the constructor is "
                            "internal")
        if not isinstance(config, KalshiConfig):
            raise ConfigurationError(
                f"config must be a KalshiConfig, not {type(config).__name__}")
        self._session = Session(config, options)
        self._supervisor = Supervisor(self._session)
        self._user_close: ConnectionClosedOK | None = None  # set by the first close()
        self._queue_claimed = options.queue is True

    @classmethod
    def connect(
        cls,
        config: KalshiConfig,
        *,
        timeout: float = 10.0,
        strategy: ConnectStrategy = ConnectStrategy.SIMPLE,
        health: HealthConfig | None = None,
        reconnect: bool | ReconnectPolicy = False,
        command_timeout: float = 10.0,
        close_timeout: float = 5.0,
        queue: bool | None = None,
        queue_maxsize: int = 65536,
        max_pending: int = 65536,
        overflow: str | Mapping[Channel | str, str] | None = None,
        resync: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        on_error: Callable[[BaseException, StreamItem], Any] | None = None,
        stale_after: float | Mapping[Channel | str, float] | None = None,
    ) -> KalshiStreamClient:
        """Open a connection and start the reader and dispatcher threads.

        Blocks the calling thread until the connection is open (or has failed).

        Args:
            config: Credentials and URL.
            timeout: Seconds allowed for each connection attempt.
            strategy: ``ConnectStrategy.SIMPLE`` (one attempt) or a retrying strategy.
            health: Ping and silence checks (defaults suit Kalshi's 10 s heartbeat).
            reconnect: ``True`` or a :class:`ReconnectPolicy` to reconnect and restore
                every subscription after an unexpected loss.
            command_timeout: Default seconds a command waits for its answer.
            close_timeout: Default seconds ``close()`` may take.
            queue: Fill the ``updates`` queue: True, False, or None (default) meaning
                "yes, unless callbacks are registered before the queue is used".
            queue_maxsize: Bound of the ``updates`` queue.
            max_pending: Bound of the updates waiting for the callbacks.
            overflow: ``"error"`` or ``"drop_oldest"`` for every channel, or a mapping
                channel -> policy; unlisted channels use their default (``drop_oldest``
                for ticker and reference prices, ``error`` for the rest).
            resync: Repair order books after sequence gaps and re-create subscriptions
                Kalshi ends with errors 10/25.
            ssl_context: TLS settings for wss:// (a corporate CA, a client certificate).
                The default verifies the certificate and host name.
            max_message_size: Largest message accepted from the server, in bytes
                (default 64 MiB; None: no limit). A larger one ends the connection with
                :class:`ProtocolError` as soon as its header says so, before its bytes
                are read.
            on_error: Called as ``on_error(exception, item)`` on the dispatcher thread
                when a callback raises. By default the error is shown: logged with its
                traceback when logging is configured, else printed to stderr (as Python
                does for an uncaught exception in a thread). Delivery goes on either
                way, and ``stats().callback_errors`` counts them.
            stale_after: Opt-in staleness alarm: seconds of silence after which a
                subscribed channel gets a :class:`ChannelStale` message on the stream
                (and a :class:`ChannelResumed` when it delivers again); one number for
                every channel or a mapping channel -> seconds. Checked every 0.5 s.

        Returns:
            The connected client.

        Raises:
            AuthenticationError: the key was refused (never retried).
            HandshakeError: the connection could not be opened (after retries, if any).
            ConfigurationError: an option is invalid.
        """
        options = ClientOptions.build(
            timeout=timeout, strategy=strategy, health=health, reconnect=reconnect,
            command_timeout=command_timeout, close_timeout=close_timeout, queue=queue,
            queue_maxsize=queue_maxsize, max_pending=max_pending, overflow=overflow,
            resync=resync, ssl_context=ssl_context, max_message_size=max_message_size,
            on_error=on_error, stale_after=stale_after)
        client = cls(config, options)
        try:
            client._supervisor.first_connect()
        except BaseException:
            client._session.dispatcher.post_final(Closed(reason="connect failed"), None)
            client._session.dispatcher.join(1.0)
            raise
        return client

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> KalshiStreamClient:  # noqa: PYI034 - final class in practice
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        session = self._session
        return (f"<KalshiStreamClient {session.number} {session.state} "
                f"url={session.config.url!r} "
                f"subscriptions={len(session.protocol.subscriptions())} "
                f"reconnects={session.reconnects}>")

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> str:
        """``"OPEN"``, ``"RECONNECTING"``, ``"CLOSING"`` or ``"CLOSED"``."""
        return self._session.state

    @property
    def closed(self) -> bool:
        """Whether the client has ended (closed, or lost for good)."""
        return self._session.state == CLOSED

    @property
    def close_reason(self) -> BaseException | None:
        """Why the client ended: None while open (or reconnecting).

        After :meth:`close` a :class:`ConnectionClosedOK` saying the user closed it;
        after a clean close by the server a :class:`ConnectionClosedOK` with its code;
        otherwise the error that ended the client.
        """
        error = self._session.close_error
        if error is None and self._session.state == CLOSED:
            return self._user_close
        return error

    @property
    def config(self) -> KalshiConfig:
        """The configuration the client was created with."""
        return self._session.config


    # ------------------------------------------------------------------ the seam for features

    def book_state(self, market: str) -> BookState:
        """How the reader sees the order book of ``market`` right now. Any thread.

        The reader is ahead of the callbacks: a gap it has seen makes ``synced`` False
        at once, before the dispatcher delivers the gap. A consumer that has applied
        the very ``snapshot`` object returned here, and to which ``synced`` is True, is
        up to date (OrderBookSet's is_synced() is exactly this).
        """
        self._session.check_process()
        with self._session.lock:
            synced, snapshot = self._session.protocol.market_book_state(market)
        return BookState(synced=synced, snapshot=snapshot)

    def resync_books(self, markets: Iterable[str] | str) -> list[str]:
        """Distrust these order books and ask Kalshi for fresh snapshots. Any thread.

        One ``get_snapshot`` per subscription is sent by the reader at its next tick
        (within half a second); until each snapshot arrives, its book reads unsynced in
        :meth:`book_state` and its deltas are held back.

        Returns:
            The markets some order-book subscription covers (the others are ignored).
        """
        self._session.check_process()
        if isinstance(markets, str):
            markets = [markets]
        with self._session.lock:
            return self._session.protocol.resync_markets(markets)

    def subscription_options(self, sid: int) -> dict[str, Any]:
        """The options a live subscription was made with (``use_yes_price``, ...), as
        this client tracks them; empty for an unknown sid. Any thread."""
        self._session.check_process()
        with self._session.lock:
            return self._session.protocol.subscription_options(sid)

    def report_callback_error(self, fn: Any, item: Any, exc: BaseException) -> None:
        """A callback of a feature built on the client raised: show it, count it and
        pass it to ``on_error``, exactly as for a user callback. Dispatcher thread."""
        self._session.dispatcher.callback_failed(fn, item, exc)

    def orderbooks(self, market_tickers: Iterable[str] | str, *, use_yes_price: bool = False,
                   timeout: float | None = None) -> OrderBookSet:
        """Subscribe ``orderbook_delta`` for these markets and keep exact local books.

        Returns once Kalshi accepted the subscription; use ``wait_synced()`` to wait
        for the first snapshots. See :class:`~kalshi_ws.bookset.OrderBookSet`.

        Args:
            market_tickers: The markets.
            use_yes_price: Ask Kalshi to quote NO levels on the YES scale. The books
                answer the same either way; this only chooses the wire convention.
            timeout: Seconds to wait for Kalshi's answer.

        Raises:
            CommandError: Kalshi refused the subscription.
            InvalidCommand, CommandTimeout, ConnectionClosed: as for :meth:`subscribe`.
        """
        if isinstance(market_tickers, str):
            market_tickers = [market_tickers]
        return OrderBookSet(self, market_tickers, use_yes_price=use_yes_price, timeout=timeout)

    def subscriptions(self) -> list[Subscription]:
        """The live subscriptions as this client tracks them (no round trip).

        Sids are the current ones: they change after a reconnect or resubscription.
        """
        self._session.check_process()
        with self._session.lock:
            return self._session.protocol.subscriptions()

    def stats(self) -> ClientStats:
        """Counters of messages received, delivered, dropped, duplicated, per channel,
        and freshness (time since the last message, latency) per channel and book."""
        session = self._session
        session.check_process()
        with session.lock:
            counters = session.protocol.channel_counters()
            live = session.protocol.subscriptions()
            freshness, books = session.freshness.snapshot(
                time.monotonic(), {str(s.channel) for s in live},
                {m for s in live if s.channel == Channel.ORDERBOOK_DELTA
                 for m in s.market_tickers})
        dispatcher = session.dispatcher
        delivered = dict(dispatcher.delivered)
        dropped = dispatcher.dropped + dispatcher.queue.dropped
        names = set(counters) | {str(k) for k in delivered} | {str(k) for k in dropped}
        channels = {}
        for name in sorted(names):
            received, duplicates, gaps, held = counters.get(name, (0, 0, 0, 0))
            channels[name] = ChannelStats(
                received=received, delivered=delivered.get(channel_of(name), 0)
                + (delivered.get(name, 0) if channel_of(name) != name else 0),
                dropped=dropped.get(channel_of(name), 0), duplicates=duplicates,
                gaps=gaps, held_back=held)
        return ClientStats(channels=channels, reconnects=session.reconnects,
                           pending=dispatcher.backlog, queued=dispatcher.queue.qsize(),
                           callback_errors=dispatcher.callback_errors,
                           freshness=freshness, book_freshness=books)

    # ------------------------------------------------------------------ closing

    def close(self, timeout: float | None = None) -> None:
        """Close the connection and stop both threads. Idempotent.

        Safe from any thread, including a callback. Updates already received are
        delivered until shortly before the deadline (a quarter of ``timeout``, at most
        0.5 s, is kept for ending the threads); the rest are discarded with a warning
        saying how many. :class:`Closed` is delivered last. Once close() returns, no
        callback starts, whatever state the client was in (also after it died, and
        when close() is called from a callback: :class:`Closed` then goes to the
        ``updates`` queue only). Commands still waiting fail with
        :class:`ConnectionClosedOK`.

        Args:
            timeout: Seconds the whole close may take (default: ``close_timeout``).

        Raises:
            InvalidCommand: ``timeout`` is not a positive number (nothing is closed).
        """
        self._session.check_process()
        check_timeout(timeout)
        if timeout is None:
            timeout = self._session.options.close_timeout
        try:
            self._close(timeout)
        finally:
            # Whatever happened above (a timeout, a stuck callback, an exception):
            # once close() returns, no callback starts.
            self._session.dispatcher.stop_callbacks()

    def _close(self, timeout: float) -> None:
        session = self._session
        deadline = time.monotonic() + timeout
        # Updates still undelivered a little before the deadline are discarded (counted,
        # warned), so that a callback that is slow but not stuck lets the dispatcher
        # finish in time and close() need not abandon it.
        delivery_deadline = deadline - min(0.5, timeout / 4)
        with session.lock:
            first = session.state not in (CLOSING, CLOSED)
            if first:
                session.state = CLOSING
                session.dispatcher_deadline = delivery_deadline
                self._user_close = ConnectionClosedOK("closed by the user (close())")
            transport = session.transport
        session.stop_requested.set()
        session.open_event.set()
        session.dispatcher.hurry(delivery_deadline)  # also when the client had already died
        attempt = session.attempt
        if attempt is not None:  # a reconnect attempt under way: stop it now
            attempt.abort()
        if first:
            logger.info("closing connection to %s", session.config.url)
            if transport is not None:
                if session.send_lock.acquire(timeout=min(1.0, timeout)):
                    try:
                        transport.send_close(1000, "client closing")
                    finally:
                        session.send_lock.release()
                else:
                    transport.abort()
        current = threading.current_thread()
        reader = session.reader
        if reader is not None and reader is not current:
            reader.join(max(0.0, deadline - time.monotonic() - 0.2))
            if reader.is_alive():
                transport = session.transport
                if transport is not None:
                    transport.abort()
                reader.join(max(0.2, deadline - time.monotonic()))
        elif reader is None:
            session.teardown(None, Closed(reason="client closed"))
        if reader is not None and reader is not current and reader.is_alive():
            logger.warning("close(): the reader thread is still in a connection attempt; it "
                           "exits without reconnecting when the attempt ends (within the "
                           "connect timeout of %g s)", session.options.timeout)
        elif not session.dispatcher.join(max(0.1, deadline - time.monotonic())) and \
                current is not session.dispatcher.thread:
            logger.warning("a callback is still running after close(); abandoning the "
                           "dispatcher thread %s", session.dispatcher.thread.name)

    def start_recording(self, target: str | os.PathLike[str] | Any) -> Recorder:
        """Record every frame received from now on (with its receive time) to a file.

        The file is JSON lines (see :mod:`kalshi_ws.recording`); replay it offline with
        ``FakeKalshiServer(replay=path)``. Recording stops at :meth:`stop_recording` or
        when the client closes. Frames are written by the reader thread, buffered.

        Args:
            target: A path, or a text file object opened for writing.

        Returns:
            The :class:`~kalshi_ws.recording.Recorder` (its ``count`` grows as it writes).
        """
        self._session.check_process()
        recorder = Recorder(target)
        previous, self._session.recorder = self._session.recorder, recorder
        if previous is not None:
            previous.close()
        return recorder

    def stop_recording(self) -> int:
        """Stop recording and flush the file; returns how many frames were recorded."""
        self._session.check_process()
        return self._session.stop_recording()
