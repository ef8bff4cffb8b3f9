"""KalshiStreamClient: the threaded client.

Threads
-------
* **Caller threads** (scripts, web request threads, the REPL, callbacks): run
  commands and ``close()``. A command registers a response slot (an Event plus a
  result or error), sends its frame, and waits on the slot holding no lock.
* **Reader** (``kalshi-ws-reader-N``): the only thread that reads the socket. It
  answers pings, feeds frames to the protocol under ``_lock``, then (lock released)
  fills response slots and posts updates to the dispatcher without blocking. It also
  pings, watches for silence, resynchronises and reconnects. It never runs user code.
* **Dispatcher** (``kalshi-ws-dispatch-N``): the only thread that runs callbacks and
  fills the ``updates`` queue.

Locks
-----
Two plain locks, always taken in this order: ``_send_lock`` (held across "check the
state, write a frame", so nothing follows our close frame) then ``_lock`` (the
protocol, the slot table, the state). Neither is held while waiting, joining or
running user code.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue as queue_module
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from . import _wire
from ._dispatch import DROP_OLDEST, ERROR, CallbackHandle, Dispatcher, UpdatesQueue
from ._transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    OP_BINARY,
    OP_CLOSE,
    OP_PONG,
    OP_TEXT,
    ConnectAttempt,
    Transport,
    parse_close,
)
from .config import (
    ConnectStrategy,
    HealthConfig,
    KalshiConfig,
    ReconnectPolicy,
    check_timeout,
    is_seconds,
)
from .exceptions import (
    AuthenticationError,
    CommandTimeout,
    ConcurrencyError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    HandshakeError,
    InvalidCommand,
    ProtocolError,
    SlowConsumerError,
)
from .freshness import (
    FreshnessTracker,
    insert_after,
    stale_after_table,
    unsequenced_channels,
)
from .models import (
    Channel,
    ChannelStats,
    ClientStats,
    Closed,
    Reconnected,
    StreamItem,
    SubscribeResult,
    Subscription,
    SubscriptionInfo,
    SystemMessage,
    UnsequencedGap,
    channel_of,
)
from .protocol import KalshiProtocol
from .reconnect import (
    backoff_ceiling,
    backoff_delays,
    is_end_of_stream,
    is_retryable,
    retry_delay,
)
from .recording import Recorder

if TYPE_CHECKING:
    from .bookset import OrderBookSet

__all__ = ["KalshiStreamClient"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_client_numbers = itertools.count(1)

#: The last item of a stream: Closed, or a final ConnectionLost (an exception that is
#: also a SystemMessage, registered virtually, which type checkers do not see).
_Final = SystemMessage | ConnectionLost

CONNECTING = "CONNECTING"
OPEN = "OPEN"
RECONNECTING = "RECONNECTING"
CLOSING = "CLOSING"
CLOSED = "CLOSED"

_TICK = 0.5  # seconds: the reader's socket timeout, hence its health-check period
_PING_PAYLOAD = b"kalshi-ws"
_FRAMES_PER_LOCK = 128


class _Slot:
    """Where the reader leaves the answer to one command."""

    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Stop(Exception):
    """Internal: why the reader stopped reading the current connection."""

    def __init__(self, error: BaseException, close_code: int | None = None,
                 close_reason: str = "") -> None:
        super().__init__(str(error))
        self.error = error
        self.close_code = close_code
        self.close_reason = close_reason


class KalshiStreamClient:
    """A connection to Kalshi's WebSocket API, with a background reader thread.

    Create one with :meth:`connect`. Every public method may be called from any
    thread, including from inside a callback, unless it says otherwise.

    Updates arrive as :class:`StreamUpdate` (and system messages such as
    :class:`Closed`) on callbacks registered with :meth:`add_callback` / :meth:`on`,
    and in the :attr:`updates` queue. Callbacks run on the dispatcher thread, one at
    a time, in stream order; a callback that raises is logged and delivery goes on.
    """

    # ------------------------------------------------------------------ construction

    def __init__(self, config: KalshiConfig, options: _Options | None = None) -> None:
        if not isinstance(options, _Options):
            raise TypeError("create a client with KalshiStreamClient.connect(config, "
                            "**options), which opens the connection; the constructor is "
                            "internal")
        if not isinstance(config, KalshiConfig):
            raise ConfigurationError(
                f"config must be a KalshiConfig, not {type(config).__name__}")
        self._config = config
        self._options = options
        self._signer = config.signer()
        self._number = next(_client_numbers)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._state = CONNECTING
        self._protocol = KalshiProtocol(resync=options.resync, lock=self._lock)
        self._protocol.tick(time.monotonic())  # its clock is right before any command
        self._slots: dict[int, _Slot] = {}
        self._transport: Transport | None = None
        self._close_error: BaseException | None = None
        self._user_close: ConnectionClosedOK | None = None  # set by the first close()
        self._stop_requested = threading.Event()
        self._open_event = threading.Event()
        self._slow_consumer: SlowConsumerError | None = None
        self._reconnects = 0
        self._connected_at = 0.0  # monotonic time the current connection opened
        self._ticks = 0  # housekeeping ticks so far (the reader's)
        self._backoff_level = 0  # where the reconnect backoff goes on from (see _reconnect)
        self._queue_claimed = options.queue is True
        self._pending_outgoing: list[str] = []
        self._recorder: Recorder | None = None
        self._dispatcher_deadline: float | None = None  # set by close()
        self._book_sets: list[OrderBookSet] = []  # live order-book sets (see orderbooks())
        self._freshness = FreshnessTracker(options.stale_after)  # guarded by _lock
        self._attempt: ConnectAttempt | None = None  # a connection attempt under way
        self._dispatcher = Dispatcher(
            name=f"kalshi-ws-dispatch-{self._number}",
            inbox_limit=options.max_pending,
            policy=options.overflow_policy,
            on_overflow=self._consumer_overflowed,
            on_drop=self._updates_dropped,
            queue_maxsize=options.queue_maxsize,
            on_error=options.on_error,
        )
        self._dispatcher.queue_enabled = options.queue is not False
        self._reader: threading.Thread | None = None

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
        options = _Options.build(
            timeout=timeout, strategy=strategy, health=health, reconnect=reconnect,
            command_timeout=command_timeout, close_timeout=close_timeout, queue=queue,
            queue_maxsize=queue_maxsize, max_pending=max_pending, overflow=overflow,
            resync=resync, ssl_context=ssl_context, max_message_size=max_message_size,
            on_error=on_error, stale_after=stale_after)
        client = cls(config, options)
        try:
            client._first_connect()
        except BaseException:
            client._dispatcher.post_final(Closed(reason="connect failed"), None)
            client._dispatcher.join(1.0)
            raise
        return client

    def _first_connect(self) -> None:
        strategy = self._options.strategy
        backoff = strategy.backoff
        limit = backoff.max_attempts if strategy.retries else 1  # attempts in all
        delays = backoff_delays(attrs.evolve(backoff, max_attempts=None))
        attempt = 0
        while True:
            attempt += 1
            try:
                transport = self._open_transport()
                break
            except HandshakeError as exc:
                if not is_retryable(exc) or (limit is not None and attempt >= limit):
                    raise
                delay = retry_delay(next(delays), exc, backoff)
                logger.warning("connect attempt %d to %s failed (%s); retrying in %.2f s",
                               attempt, self._config.url, exc, delay)
                time.sleep(delay)
        self._transport = transport
        self._state = OPEN
        self._open_event.set()
        self._last_frame = self._connected_at = time.monotonic()
        self._reader = threading.Thread(target=self._reader_main,
                                        name=f"kalshi-ws-reader-{self._number}", daemon=True)
        self._reader.start()
        logger.info("connected to %s", self._config.url)

    def _open_transport(self) -> Transport:
        attempt = ConnectAttempt()
        self._attempt = attempt
        if self._stop_requested.is_set():  # close() came first (it sets the flag, then
            attempt.abort()                # aborts whatever attempt it finds)
        try:
            return Transport.connect(
                self._config.url, self._signer.headers(), timeout=self._options.timeout,
                tick=_TICK, ssl_context=self._options.ssl_context, attempt=attempt,
                max_message_size=self._options.max_message_size)
        finally:
            self._attempt = None

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> KalshiStreamClient:  # noqa: PYI034 - final class in practice
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<KalshiStreamClient {self._number} {self._state} url={self._config.url!r} "
                f"subscriptions={len(self._protocol.subscriptions())} "
                f"reconnects={self._reconnects}>")

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> str:
        """``"OPEN"``, ``"RECONNECTING"``, ``"CLOSING"`` or ``"CLOSED"``."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the client has ended (closed, or lost for good)."""
        return self._state == CLOSED

    @property
    def close_reason(self) -> BaseException | None:
        """Why the client ended: None while open (or reconnecting).

        After :meth:`close` a :class:`ConnectionClosedOK` saying the user closed it;
        after a clean close by the server a :class:`ConnectionClosedOK` with its code;
        otherwise the error that ended the client.
        """
        error = self._close_error
        if error is None and self._state == CLOSED:
            return self._user_close
        return error

    @property
    def config(self) -> KalshiConfig:
        """The configuration the client was created with."""
        return self._config

    @property
    def updates(self) -> UpdatesQueue:
        """The queue of stream items (updates and system messages), bounded.

        Reading this property turns the queue on if callbacks had turned it off.
        """
        self._check_process()
        self._claim_queue()
        return self._dispatcher.queue

    def _claim_queue(self) -> None:
        if self._options.queue is False:
            raise InvalidCommand("the updates queue is off (connect(..., queue=False))")
        self._queue_claimed = True
        self._dispatcher.queue_enabled = True

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
        self._check_process()
        if not callable(fn):
            raise InvalidCommand(f"callback must be callable, not {type(fn).__name__}")
        return self._add_callback(fn, channels, internal=False)

    def _add_callback(self, fn: Callable[[StreamItem], Any],
                      channels: Iterable[Channel | str] | Channel | str | None, *,
                      internal: bool) -> CallbackHandle:
        """Register a callback; ``internal`` ones (the library's own) leave the queue alone."""
        if isinstance(channels, (str, Channel)):
            channels = [channels]
        names = None if channels is None else [str(channel_of(str(c))) for c in channels]
        if not internal and self._options.queue is None and not self._queue_claimed and \
                not self._dispatcher.queue.was_read:
            # Callbacks only: do not let an unread queue fill up and end the client.
            self._dispatcher.queue_enabled = False
            self._dispatcher.queue.clear()
            logger.info("callbacks registered: the updates queue is off until it is read "
                        "(pass queue=True to connect() to keep both)")
        return self._dispatcher.add_callback(fn, names)

    def remove_callback(self, handle: CallbackHandle) -> bool:
        """Unregister a callback. Returns False if it was not registered."""
        return self._dispatcher.remove_callback(handle)

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
        if self._on_dispatcher_thread():
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
                if not self._dispatcher.thread.is_alive() and updates.empty():
                    return
                continue
            yield item
            if isinstance(item, SystemMessage) and item.final:
                return

    # ------------------------------------------------------------------ commands

    def subscribe(
        self,
        channels: Iterable[Channel | str] | Channel | str,
        market_tickers: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SubscribeResult:
        """Subscribe to channels and wait until Kalshi answers for every one.

        Args:
            channels: :class:`Channel` members or wire names.
            market_tickers: Market filter (required for ``orderbook_delta``).
            timeout: Seconds to wait (default: the client's command timeout).
            **options: Kalshi's subscribe parameters: ``send_initial_snapshot``,
                ``skip_ticker_ack``, ``use_yes_price``, ``market_ids``,
                ``shard_factor``, ``shard_key``, ``user_filter``, ``index_ids``,
                ``underlying_tickers``. Each is checked before sending.
            extra_params: Parameters this library does not know (a new Kalshi option),
                sent as given and unchecked, and again when the subscription is restored.
                A known option here is refused: pass it as a keyword.

        Returns:
            One :class:`Subscription` per accepted channel in ``successful`` and one
            :class:`SubscribeFailure` per refused channel in ``failed``.

        Raises:
            InvalidCommand: refused before sending (e.g. orderbook_delta without markets,
                or a timeout that is not a positive number).
            CommandTimeout: no complete answer in time.
            ConnectionClosed: the connection ended first.
        """
        result: SubscribeResult = self._command(
            lambda p: p.subscribe(channels, market_tickers, options, extra_params), timeout)
        return result

    def unsubscribe(self, sids: Iterable[int] | int, *, timeout: float | None = None,
                    ) -> list[int]:
        """Unsubscribe one or more sids and wait for each ``unsubscribed`` reply.

        Returns:
            The sids unsubscribed.

        Raises:
            CommandError: Kalshi refused (e.g. code 7, unknown sid).
            InvalidCommand, CommandTimeout, ConnectionClosed: as for :meth:`subscribe`.
        """
        done: list[int] = self._command(lambda p: p.unsubscribe(sids), timeout)
        return done

    def update_subscription(
        self,
        sid: int,
        action: str | None = None,
        market_tickers: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> list[str]:
        """Change a subscription and wait for Kalshi's answer.

        Args:
            sid: The subscription.
            action: ``add_markets``, ``delete_markets``, ``get_snapshot``,
                ``subscribe_indices``, ``unsubscribe_indices``, ``indexlist``,
                ``subscribe_underlyings``, ``unsubscribe_underlyings``,
                ``underlying_list``; None when ``extra_params`` carries an action this
                library does not know.
            market_tickers: The markets the action concerns.
            timeout: Seconds to wait (default: the client's command timeout).
            extra_params: Parameters, and an ``"action"``, this library does not know,
                sent as given and unchecked (``{"action": "new_action", "x": 1}``).
            **params: Other parameters (``market_ids``, ``index_ids``,
                ``underlying_tickers``, ``send_initial_snapshot``), checked.

        Returns:
            The list Kalshi reports: the subscription's markets after add/delete, the
            markets snapshotted, or the indices / underlyings.

        Raises:
            CommandError: Kalshi refused (e.g. 13, action not supported by the channel).
            InvalidCommand, CommandTimeout, ConnectionClosed: as for :meth:`subscribe`.
        """
        reported: list[str] = self._command(
            lambda p: p.update_subscription(sid, action, market_tickers, params, extra_params),
            timeout)
        return reported

    def add_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                    timeout: float | None = None, **params: Any) -> list[str]:
        """Add markets to a subscription; returns its market list afterwards."""
        return self.update_subscription(sid, "add_markets", market_tickers,
                                        timeout=timeout, **params)

    def remove_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                       timeout: float | None = None) -> list[str]:
        """Remove markets from a subscription (wire action ``delete_markets``)."""
        return self.update_subscription(sid, "delete_markets", market_tickers, timeout=timeout)

    def get_snapshot(self, sid: int, market_tickers: Iterable[str] | str, *,
                     timeout: float | None = None) -> list[str]:
        """Ask for fresh order-book snapshots on an ``orderbook_delta`` subscription.

        Returns once the snapshots (or Kalshi's ``ok``) have arrived; the snapshots
        themselves are delivered on the stream, in order.
        """
        return self.update_subscription(sid, "get_snapshot", market_tickers, timeout=timeout)

    def list_subscriptions(self, *, timeout: float | None = None) -> list[SubscriptionInfo]:
        """Ask Kalshi which subscriptions this connection has."""
        infos: list[SubscriptionInfo] = self._command(lambda p: p.list_subscriptions(),
                                                      timeout)
        return infos

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
        from .bookset import OrderBookSet

        if isinstance(market_tickers, str):
            market_tickers = [market_tickers]
        return OrderBookSet(self, market_tickers, use_yes_price=use_yes_price, timeout=timeout)

    def _on_dispatcher_thread(self) -> bool:
        """Whether the caller is the thread that runs callbacks (and fills the queue)."""
        return threading.current_thread() is self._dispatcher.thread

    def _subscription_options(self, sid: int) -> dict[str, Any]:
        with self._lock:
            return self._protocol.subscription_options(sid)

    def _market_book_state(self, market: str) -> tuple[bool, Any]:
        """(whether the reader trusts the book now, the latest snapshot message accepted)."""
        with self._lock:
            return self._protocol.market_book_state(market)

    def _callback_failed(self, fn: Any, item: Any, exc: BaseException) -> None:
        """A callback of a feature built on the client (an order-book change listener)
        raised: shown, counted and passed to ``on_error`` exactly as a user callback's.

        Dispatcher thread only.
        """
        self._dispatcher.callback_failed(fn, item, exc)

    def _resync_book(self, market: str) -> None:
        """Ask for a fresh snapshot of one book; the reader sends it at its next tick."""
        self._resync_books([market])

    def _resync_books(self, markets: Iterable[str]) -> None:
        """Ask for fresh snapshots of these books (one get_snapshot per subscription)."""
        with self._lock:
            self._protocol.resync_markets(markets)

    def subscriptions(self) -> list[Subscription]:
        """The live subscriptions as this client tracks them (no round trip).

        Sids are the current ones: they change after a reconnect or resubscription.
        """
        self._check_process()
        with self._lock:
            return self._protocol.subscriptions()

    def stats(self) -> ClientStats:
        """Counters of messages received, delivered, dropped, duplicated, per channel,
        and freshness (time since the last message, latency) per channel and book."""
        self._check_process()
        with self._lock:
            counters = self._protocol.channel_counters()
            live = self._protocol.subscriptions()
            freshness, books = self._freshness.snapshot(
                time.monotonic(), {str(s.channel) for s in live},
                {m for s in live if s.channel == Channel.ORDERBOOK_DELTA
                 for m in s.market_tickers})
        delivered = dict(self._dispatcher.delivered)
        dropped = self._dispatcher.dropped + self._dispatcher.queue.dropped
        names = set(counters) | {str(k) for k in delivered} | {str(k) for k in dropped}
        channels = {}
        for name in sorted(names):
            received, duplicates, gaps, held = counters.get(name, (0, 0, 0, 0))
            channels[name] = ChannelStats(
                received=received, delivered=delivered.get(channel_of(name), 0)
                + (delivered.get(name, 0) if channel_of(name) != name else 0),
                dropped=dropped.get(channel_of(name), 0), duplicates=duplicates,
                gaps=gaps, held_back=held)
        return ClientStats(channels=channels, reconnects=self._reconnects,
                           pending=self._dispatcher.backlog,
                           queued=self._dispatcher.queue.qsize(),
                           callback_errors=self._dispatcher.callback_errors,
                           freshness=freshness, book_freshness=books)

    def _command(self, build: Callable[[KalshiProtocol], tuple[int, str]],
                 timeout: float | None) -> Any:
        self._check_process()
        if threading.current_thread() is self._reader:
            raise ConcurrencyError("commands cannot be sent from the reader thread")
        check_timeout(timeout)
        if timeout is None:
            timeout = self._options.command_timeout
        deadline = time.monotonic() + timeout
        slot = _Slot()
        while True:
            self._wait_open(deadline)
            if not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise CommandTimeout(f"could not send the command within {timeout:g} s "
                                     "(another thread is stuck sending)")
            try:
                with self._lock:
                    if self._state == RECONNECTING:
                        continue  # lost meanwhile: wait for the new connection
                    self._raise_unless_open()
                    command_id, text = build(self._protocol)
                    self._slots[command_id] = slot
                    transport = self._transport
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("> %s", text)
                try:
                    assert transport is not None
                    transport.send_text(text)
                except ConnectionLost as exc:
                    with self._lock:
                        self._slots.pop(command_id, None)
                        self._protocol.abandon(command_id, time.monotonic())
                    if transport is not None:
                        transport.abort()  # make sure the reader notices at once
                    error = ConnectionLost(
                        f"the connection was lost while sending command {command_id} "
                        f"({exc.reason}); Kalshi did not answer it"
                        + ("; the client is reconnecting" if self._options.reconnect
                           else ""))
                    raise error from exc
                break
            finally:
                self._send_lock.release()
        if not slot.event.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                if self._slots.pop(command_id, None) is not None:
                    self._protocol.abandon(command_id, time.monotonic())
            if not slot.event.is_set():
                raise CommandTimeout(f"no answer from Kalshi to command {command_id} "
                                     f"within {timeout:g} s")
        if slot.error is not None:
            raise _fresh(slot.error)
        return slot.result

    def _wait_open(self, deadline: float) -> None:
        while True:
            state = self._state
            if state == OPEN:
                return
            if state in (CLOSING, CLOSED):
                self._raise_unless_open()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._open_event.wait(remaining):
                if self._state == OPEN:
                    return
                raise CommandTimeout("the client is reconnecting and did not get a new "
                                     "connection in time")

    def _raise_unless_open(self) -> None:
        state = self._state
        if state == OPEN:
            return
        if state == RECONNECTING:
            raise ConnectionLost("the connection was lost; the client is reconnecting")
        cause = self._close_error
        if cause is None:
            raise ConnectionClosedOK("the client is closed")
        error: ConnectionClosed
        if isinstance(cause, ConnectionClosedOK):  # e.g. the server's clean 1000 close
            error = ConnectionClosedOK(f"the client is closed: {cause.reason}", code=cause.code)
        else:
            error = ConnectionClosedError(f"the client is closed: {cause}")
        raise error from cause

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise ConcurrencyError(
                f"this KalshiStreamClient was created in process {self._pid}; its threads "
                "did not survive fork(). Create the client lazily in each worker process "
                "(see examples/flask_app.py).")

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
        self._check_process()
        check_timeout(timeout)
        if timeout is None:
            timeout = self._options.close_timeout
        try:
            self._close(timeout)
        finally:
            # Whatever happened above (a timeout, a stuck callback, an exception):
            # once close() returns, no callback starts.
            self._dispatcher.stop_callbacks()

    def _close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Updates still undelivered a little before the deadline are discarded (counted,
        # warned), so that a callback that is slow but not stuck lets the dispatcher
        # finish in time and close() need not abandon it.
        delivery_deadline = deadline - min(0.5, timeout / 4)
        with self._lock:
            first = self._state not in (CLOSING, CLOSED)
            if first:
                self._state = CLOSING
                self._dispatcher_deadline = delivery_deadline
                self._user_close = ConnectionClosedOK("closed by the user (close())")
            transport = self._transport
        self._stop_requested.set()
        self._open_event.set()
        self._dispatcher.hurry(delivery_deadline)  # also when the client had already died
        attempt = self._attempt
        if attempt is not None:  # a reconnect attempt under way: stop it now
            attempt.abort()
        if first:
            logger.info("closing connection to %s", self._config.url)
            if transport is not None:
                if self._send_lock.acquire(timeout=min(1.0, timeout)):
                    try:
                        transport.send_close(1000, "client closing")
                    finally:
                        self._send_lock.release()
                else:
                    transport.abort()
        current = threading.current_thread()
        reader = self._reader
        if reader is not None and reader is not current:
            reader.join(max(0.0, deadline - time.monotonic() - 0.2))
            if reader.is_alive():
                transport = self._transport
                if transport is not None:
                    transport.abort()
                reader.join(max(0.2, deadline - time.monotonic()))
        elif reader is None:
            self._teardown(None, Closed(reason="client closed"))
        if reader is not None and reader is not current and reader.is_alive():
            logger.warning("close(): the reader thread is still in a connection attempt; it "
                           "exits without reconnecting when the attempt ends (within the "
                           "connect timeout of %g s)", self._options.timeout)
        elif not self._dispatcher.join(max(0.1, deadline - time.monotonic())) and \
                current is not self._dispatcher.thread:
            logger.warning("a callback is still running after close(); abandoning the "
                           "dispatcher thread %s", self._dispatcher.thread.name)

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
        self._check_process()
        recorder = Recorder(target)
        previous, self._recorder = self._recorder, recorder
        if previous is not None:
            previous.close()
        return recorder

    def stop_recording(self) -> int:
        """Stop recording and flush the file; returns how many frames were recorded."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return 0
        recorder.close()
        return recorder.count

    def _teardown(self, error: BaseException | None, final: _Final) -> None:
        """End the client once: fail every waiter, release the socket, post the last item."""
        with self._lock:
            if self._state == CLOSED:
                return
            self._state = CLOSED
            self._close_error = error
            slots, self._slots = self._slots, {}
            self._protocol.connection_lost()
            self._protocol.forget_subscriptions()
            transport, self._transport = self._transport, None
        reason = error or ConnectionClosedOK("the client was closed")
        for slot in slots.values():
            slot.error = reason if isinstance(reason, ConnectionClosed) else \
                _closed_by(reason)
            slot.event.set()
        self._open_event.set()
        if transport is not None:
            transport.close_socket()
        self.stop_recording()
        self._dispatcher.post_final(final, self._dispatcher_deadline)
        if isinstance(final, Closed):
            logger.info("connection to %s closed", self._config.url)

    # ------------------------------------------------------------------ reader thread

    def _reader_main(self) -> None:
        final: _Final
        error: BaseException | None
        try:
            stop = self._read_connection()
            while True:
                if self._stop_requested.is_set():
                    final, error = Closed(code=stop.close_code, reason=stop.close_reason
                                          or "client closed"), None
                    break
                if self._options.reconnect is None or not is_retryable(stop.error) or \
                        is_end_of_stream(stop.close_code, stop.close_reason):
                    final, error = self._final_message(stop)
                    break
                failure = self._reconnect(stop)
                if failure is not None:
                    if self._stop_requested.is_set():
                        final, error = Closed(reason="client closed"), None
                    else:
                        final, error = self._final_message(failure)
                    break
                stop = self._read_connection()  # reconnected: read the new connection
        except BaseException as exc:
            logger.exception("internal error in the reader thread")
            error = ProtocolError(f"internal error: {exc!r}")
            error.__cause__ = exc
            final = _connection_lost(error, False)
        self._teardown(error, final)

    def _final_message(self, stop: _Stop) -> tuple[_Final, BaseException | None]:
        error = stop.error
        if isinstance(error, ConnectionClosedOK):
            return Closed(code=stop.close_code, reason=stop.close_reason), error
        logger.warning("connection to %s lost: %s", self._config.url, error)
        return _connection_lost(error, False), error

    def _read_connection(self, restore_deadline: float | None = None) -> _Stop:
        """Read the current connection until it ends.

        With ``restore_deadline``, stop as soon as the subscriptions are restored, or
        fail when that takes past the deadline.
        """
        transport = self._transport
        assert transport is not None
        health = self._options.health
        now = time.monotonic()
        self._last_frame = now
        next_ping = now + health.ping_interval if health.ping_interval else None
        pong_deadline: float | None = None
        next_tick = now
        receive = transport.receive
        process = self._process
        while True:
            try:
                frames = receive()
            except (ConnectionLost, ProtocolError) as exc:
                if self._slow_consumer is not None:
                    return _Stop(self._slow_consumer)
                if self._stop_requested.is_set():
                    return _Stop(ConnectionClosedOK("client closed"))
                return _Stop(exc)
            now = time.monotonic()
            if frames:
                self._last_frame = now
                texts = []
                for opcode, payload in frames:
                    if opcode == OP_TEXT or opcode == OP_BINARY:
                        texts.append(payload)
                    elif opcode == OP_PONG:
                        pong_deadline = None
                    elif opcode == OP_CLOSE:
                        if texts:
                            process(texts)
                        return self._closed_by_server(transport, payload)
                if texts:
                    stop = process(texts)
                    if stop is not None:
                        return stop
                    if restore_deadline is not None and self._protocol.restore_finished():
                        return _Stop(ConnectionClosedOK("restored"))
            if now >= next_tick:
                next_tick = now + _TICK
                stop = self._housekeeping(transport, now)
                if stop is not None:
                    return stop
                if restore_deadline is not None:
                    if self._protocol.restore_finished():
                        return _Stop(ConnectionClosedOK("restored"))
                    if now > restore_deadline:
                        return _Stop(ConnectionLost("Kalshi did not acknowledge the restored "
                                                    "subscriptions in time"))
                idle = health.idle_timeout
                if idle is not None and now - self._last_frame > idle:
                    return _Stop(ConnectionLost(f"no frame received for {idle:g} s "
                                                "(idle timeout)"))
                if pong_deadline is not None and now > pong_deadline:
                    return _Stop(ConnectionLost(f"no pong within {health.pong_timeout:g} s "
                                                "(pong timeout)"))
                if next_ping is not None and now >= next_ping:
                    next_ping = now + health.ping_interval  # type: ignore[operator]
                    if not transport.close_sent and self._send_lock.acquire(blocking=False):
                        try:
                            transport.send_ping(_PING_PAYLOAD)
                        except ConnectionLost as exc:
                            return _Stop(exc)
                        finally:
                            self._send_lock.release()
                        if pong_deadline is None:
                            pong_deadline = now + health.pong_timeout

    def _closed_by_server(self, transport: Transport, payload: bytes) -> _Stop:
        code, reason = parse_close(payload)
        if not transport.close_sent:
            transport.send_close(code or 1000, "")
        if self._stop_requested.is_set():
            return _Stop(ConnectionClosedOK("client closed", code=code), code, reason)
        text = f"server closed the connection: {reason or 'no reason'}"
        if code in (1000, 1001) or is_end_of_stream(code, reason):
            return _Stop(ConnectionClosedOK(text, code=code), code, reason)
        return _Stop(ConnectionClosedError(text, code=code), code, reason)

    def _housekeeping(self, transport: Transport, now: float) -> _Stop | None:
        with self._lock:
            self._protocol.tick(now)
            outgoing = self._take_outgoing()
            self._ticks += 1
            if self._ticks % 20 == 0:  # every 10 s: forget the books no longer subscribed
                self._freshness.forget_markets(
                    {m for s in self._protocol.subscriptions()
                     if s.channel == Channel.ORDERBOOK_DELTA for m in s.market_tickers})
            alarms = self._freshness.check(
                [s.channel for s in self._protocol.subscriptions()], now) \
                if self._freshness.alarms_enabled else None
        if alarms:
            self._dispatcher.post(alarms)  # system messages always fit
        return self._send_outgoing(transport, outgoing)

    def _take_outgoing(self) -> list[str]:
        """Collect the protocol's own commands (call holding _lock)."""
        outgoing = self._pending_outgoing + self._protocol.take_outgoing()
        self._pending_outgoing = []
        return outgoing

    def _send_outgoing(self, transport: Transport, outgoing: list[str]) -> _Stop | None:
        if not outgoing:
            return None
        if not self._send_lock.acquire(timeout=0.2):
            self._pending_outgoing[:0] = outgoing  # a caller is sending; try next tick
            return None
        try:
            if self._state in (CLOSING, CLOSED) or transport.close_sent:
                return None  # nothing may follow our close frame
            for text in outgoing:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("> %s", text)
                transport.send_text(text)
        except ConnectionLost as exc:
            return _Stop(exc)
        finally:
            self._send_lock.release()
        return None

    def _process(self, texts: list[bytes]) -> _Stop | None:
        """Feed frames to the protocol, then answer callers and post updates."""
        recorder = self._recorder
        if recorder is not None:
            self._record(recorder, texts)
        decode = _wire.decode
        parsed: list[Any] = []
        bad: dict[int, tuple[bytes, str]] = {}
        for text in texts:
            try:
                parsed.append(decode(text))
            except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
                bad[len(parsed)] = (text, str(exc) or type(exc).__name__)
                parsed.append(None)
        if logger.isEnabledFor(logging.DEBUG):
            for text in texts:
                logger.debug("< %s", text[:500])
        protocol = self._protocol
        receive = protocol.receive
        lock = self._lock
        # In slices, so that a command or a book's is_synced() never waits behind a
        # whole read (which can hold hundreds of frames).
        for start in range(0, len(parsed), _FRAMES_PER_LOCK):
            with lock:
                for index in range(start, min(start + _FRAMES_PER_LOCK, len(parsed))):
                    try:
                        if index in bad:
                            protocol.receive_invalid(*bad[index])
                        else:
                            receive(parsed[index])
                    except Exception as exc:
                        logger.exception("could not process a frame; reporting it as malformed")
                        protocol.receive_invalid(texts[index], f"{type(exc).__name__}: {exc}",
                                                 what="could not process the frame")
        with lock:
            deliveries = protocol.take_deliveries()
            if deliveries:
                announced = self._freshness.observe(deliveries, time.time_ns() // 1_000_000,
                                                    time.monotonic())
                if announced is not None:  # with ChannelResumed messages inserted
                    deliveries = announced
            completions = protocol.take_completions()
            if completions:
                slots = self._slots
                answered = [(slots.pop(cid, None), result, error)
                            for cid, result, error in completions]
            else:
                answered = None
        if answered:
            for slot, result, error in answered:
                if slot is not None:
                    slot.result = result
                    slot.error = error
                    slot.event.set()
        # Post before sending anything: a failed send must not lose what was received.
        if deliveries and not self._dispatcher.post(deliveries):
            return _Stop(SlowConsumerError(
                f"{self._options.max_pending} updates are waiting for the callbacks: a "
                "callback is too slow (raise max_pending, or use overflow='drop_oldest' "
                "for channels that may drop)"))
        if protocol.wants_to_send() or self._pending_outgoing:
            with lock:
                outgoing = self._take_outgoing()
            transport = self._transport
            if transport is not None:
                return self._send_outgoing(transport, outgoing)
        return None

    def _record(self, recorder: Recorder, texts: list[bytes]) -> None:
        try:
            recorder.write(time.time(), texts)
        except (OSError, ValueError) as exc:
            logger.error("recording failed and was stopped: %s", exc)
            self._recorder = None

    def _updates_dropped(self, dropped: list[Any]) -> None:
        """Reader thread: updates were dropped before any callback saw them. An order
        book that lost one is distrusted at once and resynchronised."""
        markets = {u.msg.market_ticker for u in dropped
                   if u.channel == Channel.ORDERBOOK_DELTA and hasattr(u.msg, "market_ticker")}
        if markets:
            with self._lock:
                self._protocol.resync_markets(markets)

    def _consumer_overflowed(self, text: str) -> None:
        """The updates queue overflowed on an ``error`` channel (dispatcher thread)."""
        if self._slow_consumer is not None:
            return  # already ending this connection
        logger.error("slow consumer: %s", text)
        self._slow_consumer = SlowConsumerError(text)
        transport = self._transport
        if transport is not None:
            transport.abort()

    # ------------------------------------------------------------------ reconnecting

    def _reconnect(self, stop: _Stop) -> _Stop | None:
        """Reconnect with backoff and restore subscriptions.

        Returns None once reconnected, or the reason to give up.
        """
        policy = self._options.reconnect
        assert policy is not None
        lost_at = time.monotonic()
        cause = stop.error
        with self._lock:
            if self._state != OPEN:
                return _Stop(ConnectionClosedOK("client closed"))
            self._state = RECONNECTING
            self._open_event.clear()
            # Unsequenced user channels lose messages unseen from the last frame read.
            unsequenced = unsequenced_channels(self._protocol.subscriptions())
            last_read = time.time() - (lost_at - self._last_frame)
            failed_ids = self._protocol.connection_lost()
            slots = [self._slots.pop(cid) for cid in failed_ids if cid in self._slots]
            transport, self._transport = self._transport, None
        self._slow_consumer = None
        for slot in slots:
            slot.error = _lost_during_command(cause)
            slot.event.set()
        if transport is not None:
            transport.close_socket()
        logger.warning("connection to %s lost (%s); reconnecting", self._config.url, cause)
        self._dispatcher.post([_connection_lost(cause, True)])
        if isinstance(cause, SlowConsumerError) and not self._wait_for_consumers():
            return _Stop(ConnectionClosedOK("client closed"))
        if lost_at - self._connected_at >= policy.healthy_after:
            self._backoff_level = 0  # the connection was healthy: start small again
        attempt = 0
        last_error: BaseException = cause
        for delay in backoff_delays(policy.backoff, start=self._backoff_level):
            attempt += 1
            delay = retry_delay(delay, last_error, policy.backoff)
            logger.info("reconnect attempt %d in %.3f s (backoff ceiling %.3f s)", attempt,
                        delay, backoff_ceiling(policy.backoff, self._backoff_level))
            self._backoff_level += 1
            if self._stop_requested.wait(delay):
                return _Stop(ConnectionClosedOK("client closed"))
            try:
                transport = self._open_transport()
                if self._stop_requested.is_set():  # close() came during the handshake
                    transport.close_socket()
                    return _Stop(ConnectionClosedOK("client closed"))
            except AuthenticationError as exc:
                logger.error("reconnect refused: %s; giving up (the same key would fail "
                             "again)", exc)
                return _Stop(exc)
            except HandshakeError as exc:
                last_error = exc
                logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                continue
            restored = self._restore(transport, policy.restore_timeout)
            if restored is None:
                downtime = time.monotonic() - lost_at
                self._reconnects += 1
                with self._lock:
                    done = self._protocol.restore_result()
                assert done is not None
                gap = UnsequencedGap(channels=unsequenced, since=last_read,
                                     until=time.time()) if unsequenced else None
                announcement = Reconnected(attempt=attempt, downtime=downtime,
                                           sid_map=done.sid_map, failed=done.failed,
                                           unsequenced_gap=gap)
                with self._lock:
                    if self._stop_requested.is_set():
                        return _Stop(ConnectionClosedOK("client closed"))
                    self._protocol.finish_restore(announcement)
                    deliveries = self._protocol.take_deliveries()
                    deliveries = self._freshness.observe(
                        deliveries, time.time_ns() // 1_000_000, time.monotonic()) or deliveries
                    if gap is not None:  # right after the announcement
                        deliveries = insert_after(deliveries, announcement, [gap])
                    self._state = OPEN
                    self._connected_at = time.monotonic()
                self._open_event.set()
                logger.info("reconnected to %s after %.2f s (attempt %d); %d subscription(s) "
                            "restored", self._config.url, downtime, attempt, len(done.sid_map))
                if not self._dispatcher.post(deliveries):
                    return _Stop(SlowConsumerError("updates are not consumed fast enough"))
                return None
            last_error = restored.error
            logger.warning("reconnect attempt %d did not restore the subscriptions: %s",
                           attempt, restored.error)
            with self._lock:
                self._protocol.connection_lost()
                self._transport = None
            transport.close_socket()
        return _Stop(ConnectionLost(
            f"gave up reconnecting after {attempt} attempt(s); last error: {last_error}"))

    def _wait_for_consumers(self) -> bool:
        """After a slow-consumer loss, wait until the backlog is half drained.

        Resubscribing into a full queue would only overflow it again. Returns False if
        close() was called meanwhile.
        """
        dispatcher = self._dispatcher
        options = self._options
        warned = False
        while dispatcher.backlog > options.max_pending // 2 or (
                dispatcher.queue_enabled and
                dispatcher.queue.qsize() > options.queue_maxsize // 2):
            if not warned:
                logger.warning("waiting for the consumer to catch up before reconnecting")
                warned = True
            if self._stop_requested.wait(0.05):
                return False
        return True

    def _restore(self, transport: Transport, restore_timeout: float) -> _Stop | None:
        """On a new connection, re-create every subscription; None on success."""
        with self._lock:
            self._transport = transport
            self._protocol.begin_restore()
            outgoing = self._take_outgoing()
        stop = self._send_outgoing(transport, outgoing)
        if stop is not None:
            return stop
        if self._protocol.restore_finished():
            return None
        stop = self._read_connection(restore_deadline=time.monotonic() + restore_timeout)
        return None if self._protocol.restore_finished() else stop


# ---------------------------------------------------------------------- helpers


class _Options:
    """Validated options of one client."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    timeout: float
    strategy: ConnectStrategy
    health: HealthConfig
    reconnect: ReconnectPolicy | None
    command_timeout: float
    close_timeout: float
    queue: bool | None
    queue_maxsize: int
    max_pending: int
    overflow: dict[str, str]
    overflow_default: str | None
    resync: bool
    ssl_context: ssl.SSLContext | None
    max_message_size: int | None
    on_error: Callable[[BaseException, Any], Any] | None
    stale_after: float | Mapping[Channel | str, float] | None

    def overflow_policy(self, channel: Any) -> str:
        policy = self.overflow.get(str(channel))
        if policy is not None:
            return policy
        if self.overflow_default is not None:
            return self.overflow_default
        member = channel_of(str(channel))
        return member.default_overflow if isinstance(member, Channel) else ERROR

    @classmethod
    def build(cls, **values: Any) -> _Options:
        for name in ("timeout", "command_timeout", "close_timeout"):
            value = values[name]
            if not is_seconds(value):
                raise ConfigurationError(f"{name} must be a positive number of seconds, "
                                         f"not {value!r}")
        for name in ("queue_maxsize", "max_pending"):
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int")
        if values["on_error"] is not None and not callable(values["on_error"]):
            raise ConfigurationError("on_error must be callable (or None)")
        size = values["max_message_size"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size < 1):
            raise ConfigurationError(f"max_message_size must be a positive number of bytes "
                                     f"or None, not {size!r}")
        if not isinstance(values["strategy"], ConnectStrategy):
            raise ConfigurationError("strategy must be ConnectStrategy.SIMPLE, "
                                     "ConnectStrategy.RETRY or ConnectStrategy.retry(...)")
        health = values["health"] or HealthConfig()
        if not isinstance(health, HealthConfig):
            raise ConfigurationError("health must be a HealthConfig")
        values["health"] = health
        reconnect = values["reconnect"]
        if reconnect is True:
            reconnect = ReconnectPolicy()
        elif reconnect is False or reconnect is None:
            reconnect = None
        elif not isinstance(reconnect, ReconnectPolicy):
            raise ConfigurationError("reconnect must be True, False or a ReconnectPolicy")
        values["reconnect"] = reconnect
        if not any(values["queue"] is allowed for allowed in (True, False, None)):
            raise ConfigurationError("queue must be True, False or None")
        overflow = values.pop("overflow")
        values["overflow"], values["overflow_default"] = _overflow_table(overflow)
        stale_after_table(values["stale_after"])  # raises ConfigurationError
        context = values["ssl_context"]
        if context is not None:
            if not isinstance(context, ssl.SSLContext):
                raise ConfigurationError("ssl_context must be an ssl.SSLContext")
            if context.verify_mode == ssl.CERT_NONE or not context.check_hostname:
                logger.warning("ssl_context does not verify the server certificate and host "
                               "name: the connection can be intercepted")
        return cls(**values)


def _overflow_table(overflow: Any) -> tuple[dict[str, str], str | None]:
    policies = (DROP_OLDEST, ERROR)
    if overflow is None:
        return {}, None
    if isinstance(overflow, str):
        if overflow not in policies:
            raise ConfigurationError(f"overflow must be 'error' or 'drop_oldest', "
                                     f"not {overflow!r}")
        return {}, overflow
    if isinstance(overflow, Mapping):
        table = {}
        for channel, policy in overflow.items():
            if policy not in policies:
                raise ConfigurationError(
                    f"overflow policy for {channel} must be 'error' or 'drop_oldest', "
                    f"not {policy!r}")
            table[str(channel_of(str(channel)))] = policy
        return table, None
    raise ConfigurationError("overflow must be a policy name or a mapping of channel to policy")


def _connection_lost(error: BaseException, will_reconnect: bool) -> ConnectionLost:
    """The stream item announcing a loss; its cause is the error."""
    reason = error.reason if isinstance(error, ConnectionClosed) else str(error)
    message = ConnectionLost(reason, code=getattr(error, "code", None),
                             will_reconnect=will_reconnect)
    message.__cause__ = error
    return message


def _closed_by(error: BaseException) -> ConnectionClosed:
    closed = ConnectionClosedError(f"the client closed: {error}")
    closed.__cause__ = error
    return closed


def _lost_during_command(cause: BaseException) -> ConnectionLost:
    error = ConnectionLost(f"the connection was lost before Kalshi answered ({cause}); "
                           "the client is reconnecting - the command may or may not have "
                           "taken effect")
    error.__cause__ = cause
    return error


def _fresh(error: BaseException) -> BaseException:
    """A new exception for this caller, with the cause of a possibly shared one.

    Raising one shared instance from several threads would keep growing its traceback.
    """
    if isinstance(error, ConnectionClosed):
        fresh = type(error)(error.reason, code=error.code)
        fresh.__cause__ = error.__cause__
        return fresh
    return error
