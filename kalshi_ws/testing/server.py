"""FakeKalshiServer: a real WebSocket server that speaks Kalshi's protocol, for tests.

It runs the ``websockets`` asyncio server on its own event-loop thread, bound to
127.0.0.1 on an OS-assigned port, and behaves like Kalshi where a client can tell:

* the handshake is checked like Kalshi's: the three ``KALSHI-ACCESS-*`` headers, an
  RSA-PSS signature over ``<timestamp>GET/trade-api/ws/v2`` made with the private key
  matching ``public_key``, a fresh timestamp, and no ``Origin`` header (Kalshi's CDN
  answers 403 to one); failures get 401/403 with a JSON body;
* heartbeat pings with payload ``heartbeat`` every ``ping_interval`` seconds, and
  clients that never pong are dropped;
* ``subscribe`` / ``unsubscribe`` / ``update_subscription`` (every action, including
  ``get_snapshot``) / ``list_subscriptions`` with Kalshi's reply shapes, error codes
  and per-sid sequence numbers (control replies consume them too);
* order books, tickers and trades from a :class:`MarketSimulator`.

Kalshi's command and sequencing rules live in :mod:`kalshi_ws.testing.rules`, a pure
object per connection (a command in, frames out); this module is the shell around it:
the asyncio server, the handshake, publishing, replay and fault injection.

Tests (yours too) drive it from any thread: :meth:`publish` any message, and inject
faults: drop the TCP connection, stop answering, close with a code, skip or repeat
sequence numbers, send raw text, refuse handshakes, revoke the key.

Example::

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeKalshiServer(public_key=key.public_key()) as server:
        config = KalshiConfig("test-key", key, ws_url=server.url)
        with KalshiStreamClient.connect(config) as client:
            client.subscribe(["ticker"], ["SIM-ALPHA"])
            server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA"})
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.http11 import Request, Response

from .._wire import TYPE_CHANNELS
from ..reconnect import END_OF_STREAM_CODE, END_OF_STREAM_REASON
from ..recording import read_recording
from .rules import KalshiRules, Outgoing, ServerSubscription
from .simulator import BookChange, MarketSimulator, TradePrint

__all__ = ["FakeKalshiServer", "ServerSession", "ServerSubscription", "book_fingerprint"]

logger = logging.getLogger(__name__)


class _RedactSignatures(logging.Filter):
    """Blanks the value of a ``KALSHI-ACCESS-SIGNATURE`` header in a log record.

    The ``websockets`` library logs every handshake header at DEBUG; a signature is a
    credential for as long as its timestamp is fresh, so it never reaches a log.
    """

    _HEADER = re.compile(r"""(KALSHI-ACCESS-SIGNATURE['"]?\s*[:=]\s*['"]?)[^\s'",}]+""",
                         re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "signature" in text.lower():
            record.msg, record.args = self._HEADER.sub(r"\1[redacted]", text), ()
        return True


#: The websockets library's log of the fake server (handshakes, frames), signatures
#: redacted; silent unless the application configures logging for it.
_wire_logger = logging.getLogger(f"{__name__}.websockets")
_wire_logger.addFilter(_RedactSignatures())
logger.addFilter(_RedactSignatures())

T = TypeVar("T")

SIGN_PATH = "/trade-api/ws/v2"


class ServerSession:
    """One client connection to the fake server: its rules state, and its I/O."""

    def __init__(self, server: FakeKalshiServer, ws: ServerConnection, number: int) -> None:
        self.server = server
        self.ws = ws
        self.number = number  # 1 for the server's first connection, 2 for the next...
        self.rules = KalshiRules(self._initial_data, get_snapshot_ok=server.get_snapshot_ok)
        self.replaying: asyncio.Task[None] | None = None
        self.frozen = False
        self.mute_pongs = False
        self.commands: list[dict[str, Any]] = []

    @property
    def subscriptions(self) -> dict[int, ServerSubscription]:
        """The connection's subscriptions, by sid."""
        return self.rules.subscriptions

    def find(self, channel: str | None = None) -> list[ServerSubscription]:
        """The connection's subscriptions of ``channel`` (None: all), oldest first."""
        return self.rules.find(channel)

    def frame(self, sub: ServerSubscription, wire_type: str, msg: Any,
              command_id: int | None = None) -> dict[str, Any]:
        """A data frame of ``sub``, taking its next seq if the channel is sequenced."""
        return self.rules.frame(sub, wire_type, msg, command_id)

    def _initial_data(self, rules: KalshiRules, sub: ServerSubscription, markets: list[str],
                      command_id: int | None) -> list[Outgoing]:
        """The simulator's data after a subscribe, add_markets or get_snapshot."""
        server = self.server
        if server._replay is not None:
            return []  # the recording carries its own snapshots
        simulator = server.simulator
        out: list[Outgoing] = []
        if sub.channel == "orderbook_delta":
            for market in markets:
                simulator.add_market(market)
                msg = simulator.snapshot_msg(market, use_yes_price=sub.use_yes_price)
                frame = rules.frame(sub, "orderbook_snapshot", msg, command_id)
                server._log_book(self, frame, market)
                out.append((frame, sub))
        elif sub.channel == "ticker" and sub.params.get("send_initial_snapshot"):
            out += [(rules.frame(sub, "ticker", simulator.ticker_msg(market)), sub)
                    for market in markets if market in simulator.books]
        return out

    async def send(self, frame: Mapping[str, Any], sub: ServerSubscription | None = None) -> None:
        """Send a frame as JSON on the server's event loop (``sub``: its last frame, or lost)."""
        text = json.dumps(frame, separators=(",", ":"), default=str)
        if sub is not None:
            if sub.lose and "seq" in frame:
                sub.lose -= 1
                return  # numbered, never sent: the client must notice the hole
            sub.last_frame = text
        await self.send_text(text)

    async def send_text(self, text: str) -> None:
        """Send one text frame as is (on the server's event loop), unless frozen."""
        if self.frozen:
            return
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            pass

class FakeKalshiServer:
    """A fake Kalshi WebSocket server on 127.0.0.1, for tests and offline demos.

    Args:
        public_key: The key the handshake signature must verify with: a PEM public
            key, a ``cryptography`` RSA public or private key, or a KalshiConfig. None
            accepts any (or no) credentials.
        host: Address to bind (default 127.0.0.1).
        port: Port to bind (default 0: the OS picks one).
        ssl_context: Serve wss:// with this server-side TLS context.
        ping_interval: Seconds between heartbeat pings (None: no pings).
        pong_timeout: Seconds a client may take to answer a heartbeat before it is
            dropped (default: ping_interval).
        max_clock_skew: Seconds a handshake timestamp may differ from the server clock.
        simulator: The market simulator (default: three markets, fixed seed).
        get_snapshot_ok: Also answer get_snapshot with an ``ok`` after the snapshots
            (Kalshi's behaviour here is undocumented; by default only the snapshots,
            which carry the command id, answer it).
        track_books: Log a fingerprint of the true book with every order-book frame
            (see :attr:`book_log` and :func:`book_fingerprint`), so a test can check a
            client's book against the truth at any sequence number.
        replay: A recording (see :mod:`kalshi_ws.recording`) to play to each client.
            Playback starts at the client's first subscribe; each recorded data frame
            goes to the client's subscriptions of its channel (and market), with the
            client's own sids and sequence numbers. The simulator sends nothing then.
        replay_speed: None plays as fast as possible; 1.0 at the recorded pace, 2.0 twice
            as fast.
        replay_close: When the recording ends, close the connection with code 4000,
            reason "end of stream" (:data:`kalshi_ws.reconnect.END_OF_STREAM_CODE`): the
            client's stream ends with ``Closed`` and it does not reconnect, even with
            reconnection on.

    Every public method may be called from any thread.
    """

    def __init__(
        self,
        public_key: Any = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        ping_interval: float | None = 10.0,
        pong_timeout: float | None = None,
        max_clock_skew: float = 30.0,
        simulator: MarketSimulator | None = None,
        get_snapshot_ok: bool = False,
        track_books: bool = False,
        replay: str | os.PathLike[str] | None = None,
        replay_speed: float | None = None,
        replay_close: bool = True,
    ) -> None:
        self._public_key = _load_public_key(public_key)
        self.host = host
        self.port: int = port
        self.ssl_context = ssl_context
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout if pong_timeout is not None else ping_interval
        self.max_clock_skew = max_clock_skew
        self.simulator = simulator or MarketSimulator(seed=7)
        self.get_snapshot_ok = get_snapshot_ok
        self.track_books = track_books
        self.sessions: list[ServerSession] = []
        #: Every connection attempt: (time.monotonic(), HTTP status; 0 when dropped).
        self.handshakes: list[tuple[float, int]] = []
        self.commands: list[dict[str, Any]] = []
        self._rejections: collections.deque[tuple[int, str]] = collections.deque()
        self._reject_forever: tuple[int, str] | None = None
        self._retry_after: str | None = None
        self._drops = 0
        self._connections = 0
        #: With track_books: (connection number, seq, market, fingerprint of the true
        #: book right after that frame) for every order-book frame sent or lost.
        self.book_log: list[tuple[int, int, str, int]] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._ready = threading.Event()
        self._started_once = False  # for the repr: "stopped" rather than "not started"
        self._start_error: BaseException | None = None
        self._simulation: asyncio.Task[None] | None = None
        self.replay_speed = replay_speed
        self.replay_close = replay_close
        self._replay: list[tuple[float, str, str, dict[str, Any]]] | None = (
            _load_replay(replay) if replay is not None else None)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The WebSocket URL of the server (valid after :meth:`start`)."""
        scheme = "wss" if self.ssl_context else "ws"
        host = "localhost" if self.ssl_context and self.host == "127.0.0.1" else self.host
        return f"{scheme}://{host}:{self.port}{SIGN_PATH}"

    def start(self) -> FakeKalshiServer:
        """Start listening; returns once the port is bound.

        Raises:
            OSError: the address could not be bound.
        """
        if self._thread is not None:
            return self
        self._started_once = True
        self._thread = threading.Thread(target=self._run, name="fake-kalshi-server",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            raise self._start_error
        return self

    def stop(self, *, abrupt: bool = False) -> None:
        """Stop the server and close every connection (abruptly: TCP reset, no close frame)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if abrupt:
            self.drop_connections()
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        except Exception:
            logger.exception("fake server shutdown failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None
        self._ready.clear()

    def __enter__(self) -> FakeKalshiServer:  # noqa: PYI034
        return self.start()

    def __repr__(self) -> str:
        running = self._thread is not None
        where = self.url if running else "stopped" if self._started_once else "not started"
        mode = "replay" if self._replay is not None else "simulator"
        auth = "signed handshakes" if self._public_key is not None else "no auth"
        return (f"<FakeKalshiServer {where} {mode} {auth} sessions={len(self.sessions)} "
                f"markets={len(self.simulator.markets)}>")

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # noqa: BLE001
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _listen(self) -> None:
        self._server = await serve(
            self._handle, self.host, self.port, ssl=self.ssl_context,
            process_request=self._check_handshake, ping_interval=None,
            compression=None, max_size=None, max_queue=4096, close_timeout=2,
            logger=_wire_logger,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._simulation is not None:
            self._simulation.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's event loop and return its result."""
        async def run() -> T:
            return fn()
        return self._run_coroutine(run(), timeout)

    def _run_coroutine(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the fake server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def replay_contents(self) -> tuple[list[str], list[str]]:
        """The channels and the markets of the recording being replayed (sorted).

        Both are empty without ``replay``.
        """
        frames = self._replay or []
        channels = sorted({channel for _, channel, _, _ in frames})
        markets = sorted({msg["market_ticker"] for _, _, _, msg in frames
                          if isinstance(msg, dict) and isinstance(msg.get("market_ticker"), str)})
        return channels, markets

    # ------------------------------------------------------------------ handshake

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._drops:
            self._drops -= 1
            self.handshakes.append((time.monotonic(), 0))
            with self._changed:
                self._changed.notify_all()
            _abort(connection)  # reset the TCP connection before any response
            return connection.respond(500, "dropped")
        status, text = self._handshake_verdict(request)
        self.handshakes.append((time.monotonic(), status))
        with self._changed:
            self._changed.notify_all()
        if status == 101:
            return None
        body = json.dumps({"error": {"code": "authentication_error" if status == 401 else
                                     "error", "message": text}})
        response = connection.respond(status, body)
        response.headers["Content-Type"] = "application/json"
        if self._retry_after is not None:
            response.headers["Retry-After"] = self._retry_after
        return response

    def _handshake_verdict(self, request: Request) -> tuple[int, str]:
        if self._rejections:
            return self._rejections.popleft()
        if self._reject_forever is not None:
            return self._reject_forever
        if "Origin" in request.headers:
            return 403, "Forbidden"
        if self._public_key is None:
            return 101, ""
        key_id = request.headers.get("KALSHI-ACCESS-KEY")
        timestamp = request.headers.get("KALSHI-ACCESS-TIMESTAMP")
        signature = request.headers.get("KALSHI-ACCESS-SIGNATURE")
        if not key_id or not timestamp or not signature:
            return 401, "missing KALSHI-ACCESS headers"
        try:
            stamp = int(timestamp)
        except ValueError:
            return 401, "bad KALSHI-ACCESS-TIMESTAMP"
        if abs(stamp / 1000 - time.time()) > self.max_clock_skew:
            return 401, "stale KALSHI-ACCESS-TIMESTAMP"
        path = request.path.split("?", 1)[0]
        try:
            self._public_key.verify(
                base64.b64decode(signature, validate=True), (timestamp + "GET" + path).encode(),
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                            salt_length=padding.PSS.DIGEST_LENGTH),
                hashes.SHA256())
        except (InvalidSignature, ValueError):
            return 401, "INCORRECT_API_KEY_SIGNATURE"
        return 101, ""

    def reject_handshakes(self, status: int, count: int | None = 1, body: str = "",
                          retry_after: str | None = None) -> None:
        """Answer the next ``count`` handshakes (None: all) with ``status``.

        Args:
            status: The HTTP status.
            count: How many handshakes (None: every one until accept_handshakes()).
            body: The error message in the JSON body.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP date).
        """
        self._retry_after = retry_after
        verdict = (status, body or f"rejected with {status} by the test")
        if count is None:
            self._reject_forever = verdict
        else:
            self._rejections.extend([verdict] * count)

    def drop_handshakes(self, count: int) -> None:
        """Reset the TCP connection of the next ``count`` connection attempts.

        They are recorded in :attr:`handshakes` with status 0.
        """
        self._drops += count

    def accept_handshakes(self) -> None:
        """Undo :meth:`reject_handshakes` and :meth:`drop_handshakes`."""
        self._rejections.clear()
        self._reject_forever = None
        self._retry_after = None
        self._drops = 0

    def set_public_key(self, public_key: Any) -> None:
        """Verify signatures with another key from now on (e.g. to revoke the client's)."""
        self._public_key = _load_public_key(public_key)

    # ------------------------------------------------------------------ sessions

    async def _handle(self, ws: ServerConnection) -> None:
        self._connections += 1
        session = ServerSession(self, ws, self._connections)
        self._patch_pongs(session)
        self.sessions.append(session)
        with self._changed:
            self._changed.notify_all()
        heartbeat = asyncio.ensure_future(self._heartbeat(session))
        try:
            async for message in ws:
                if session.frozen:
                    continue
                await self._command(session, message)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            if session.replaying is not None:
                session.replaying.cancel()
            self.sessions.remove(session)
            with self._changed:
                self._changed.notify_all()

    def _patch_pongs(self, session: ServerSession) -> None:
        protocol = session.ws.protocol
        send_frame = protocol.send_frame

        def send_frame_unless_muted(frame: Any) -> None:
            if frame.opcode is Opcode.PONG and (session.mute_pongs or session.frozen):
                return
            send_frame(frame)

        protocol.send_frame = send_frame_unless_muted  # type: ignore[method-assign]

    async def _heartbeat(self, session: ServerSession) -> None:
        if not self.ping_interval:
            return
        while True:
            await asyncio.sleep(self.ping_interval)
            if session.frozen:
                continue
            try:
                pong = await session.ws.ping(b"heartbeat")
                await asyncio.wait_for(pong, self.pong_timeout)
            except TimeoutError:
                logger.info("fake server: client never answered the heartbeat; dropping it")
                _abort(session.ws)
                return
            except ConnectionClosed:
                return
            except Exception as exc:  # noqa: BLE001 - e.g. a ping already in flight
                logger.debug("fake server: heartbeat ping failed: %s", exc)
                continue

    def wait_for_sessions(self, count: int, timeout: float = 10.0) -> list[ServerSession]:
        """Block until exactly ``count`` clients are connected; return their sessions.

        Raises:
            TimeoutError: not reached in time.
        """
        self._wait(lambda: len(self.sessions) == count, timeout,
                   f"{count} connected client(s)")
        return list(self.sessions)

    def wait_for_handshakes(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` handshakes have been attempted in all."""
        self._wait(lambda: len(self.handshakes) >= count, timeout, f"{count} handshake(s)")

    def wait_for_command(self, cmd: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` commands named ``cmd`` have been received in all."""
        self._wait(lambda: sum(c.get("cmd") == cmd for c in self.commands) >= count,
                   timeout, f"{count} {cmd!r} command(s)")

    def _wait(self, ready: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = ready()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake server: timed out waiting for {what}")
                self._changed.wait(remaining)

    # ------------------------------------------------------------------ commands

    async def _command(self, session: ServerSession, message: str | bytes) -> None:
        command = session.rules.parse(message)
        if command is not None:
            session.commands.append(command)
            self.commands.append(command)
            with self._changed:
                self._changed.notify_all()
        for frame, sub in session.rules.handle(command):
            await session.send(frame, sub)
        if command is not None and command.get("cmd") == "subscribe" and \
                self._replay is not None and session.replaying is None and \
                session.subscriptions:
            session.replaying = asyncio.ensure_future(self._play(session, self._replay))

    # ------------------------------------------------------------------ publishing

    def publish(self, channel: str, wire_type: str, msg: Mapping[str, Any], *,
                market_ticker: str | None = None) -> int:
        """Send a message to every subscription of ``channel`` that wants it.

        Args:
            channel: The channel whose subscribers receive it.
            wire_type: The message ``type``.
            msg: The payload (Decimals are sent as strings).
            market_ticker: Deliver only to subscriptions covering this market
                (default: the payload's ``market_ticker``).

        Returns:
            How many frames were sent.
        """
        market = market_ticker if market_ticker is not None else msg.get("market_ticker")
        return self._run_coroutine(self._publish(channel, wire_type, dict(msg), market))

    async def _publish(self, channel: str, wire_type: str, msg: dict[str, Any],
                       market: str | None) -> int:
        sent = 0
        for session in list(self.sessions):
            for sub in session.find(channel):
                if sub.wants(market):
                    await session.send(session.frame(sub, wire_type, msg), sub)
                    sent += 1
        return sent

    def publish_many(self, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Publish many (channel, type, msg) items in one go, in order."""
        async def run() -> int:
            sent = 0
            for channel, wire_type, msg in items:
                sent += await self._publish(channel, wire_type, dict(msg),
                                            msg.get("market_ticker"))
            return sent
        return self._run_coroutine(run(), timeout=600)

    def send_raw(self, text: str) -> int:
        """Send ``text`` as one text frame to every connected client, as is."""
        async def run() -> int:
            for session in list(self.sessions):
                await session.send_text(text)
            return len(self.sessions)
        return self._run_coroutine(run())

    def step_market(self, market: str | None = None, *, count: int = 1,
                    trades: float = 0.0) -> list[BookChange]:
        """Make ``count`` random book changes and stream them to subscribers.

        Args:
            market: Change this market only (default: random markets).
            count: How many changes.
            trades: Probability of a trade (and a ticker update) after each change.
        """
        async def run() -> list[BookChange]:
            changes = []
            for index in range(count):
                changes.append(await self._step(market, trades))
                if index % 32 == 31:
                    await asyncio.sleep(0)  # let commands in, as a real server would
            return changes
        return self._run_coroutine(run(), timeout=600)

    async def _step(self, market: str | None, trades: float) -> BookChange:
        simulator = self.simulator
        change = simulator.step(market)
        await self._broadcast_change(change)
        if trades and simulator.rng.random() < trades:
            trade = simulator.trade(change.market)
            await self._broadcast_trade(trade)
        return change

    async def _broadcast_change(self, change: BookChange) -> None:
        plain = self.simulator.delta_msg(change)
        flipped = None
        for session in list(self.sessions):
            for sub in session.find("orderbook_delta"):
                if sub.wants(change.market):
                    if sub.use_yes_price:
                        flipped = flipped or self.simulator.delta_msg(change, use_yes_price=True)
                        msg = flipped
                    else:
                        msg = plain
                    frame = session.frame(sub, "orderbook_delta", msg)
                    self._log_book(session, frame, change.market)
                    await session.send(frame, sub)

    def _log_book(self, session: ServerSession, frame: Mapping[str, Any], market: str) -> None:
        if self.track_books:
            book = self.simulator.book(market)
            self.book_log.append((session.number, frame["seq"], market,
                                  book_fingerprint(book["yes"].items(), book["no"].items())))

    async def _broadcast_trade(self, trade: TradePrint) -> None:
        await self._publish("trade", "trade", self.simulator.trade_msg(trade), trade.market)
        await self._publish("ticker", "ticker", self.simulator.ticker_msg(trade.market),
                            trade.market)

    def start_simulation(self, interval: float = 0.05, trades: float = 0.2) -> None:
        """Stream random market activity every ``interval`` seconds until stopped."""
        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._step(None, trades)

        def start() -> None:
            if self._simulation is None or self._simulation.done():
                self._simulation = asyncio.ensure_future(run())
        self.call(start)

    def stop_simulation(self) -> None:
        """Stop the activity started by :meth:`start_simulation`."""
        def stop() -> None:
            if self._simulation is not None:
                self._simulation.cancel()
        self.call(stop)

    async def _play(self, session: ServerSession,
                    frames: list[tuple[float, str, str, dict[str, Any]]]) -> None:
        """Stream a recording to one session, remapping sids and sequence numbers."""
        speed = self.replay_speed
        started = time.monotonic()
        first = frames[0][0] if frames else 0.0
        for index, (t, channel, wire_type, msg) in enumerate(frames):
            if speed:
                delay = (t - first) / speed - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            elif index % 256 == 0:
                await asyncio.sleep(0)  # let the session's commands through
            market = msg.get("market_ticker") if isinstance(msg, dict) else None
            for sub in session.find(channel):
                if sub.wants(market):
                    await session.send(session.frame(sub, wire_type, msg), sub)
        if self.replay_close:
            await session.ws.close(END_OF_STREAM_CODE, END_OF_STREAM_REASON)

    # ------------------------------------------------------------------ faults

    def drop_connections(self) -> int:
        """Reset every TCP connection (no close frame). Returns how many."""
        def drop() -> int:
            for session in self.sessions:
                _abort(session.ws)
            return len(self.sessions)
        return self.call(drop)

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Close every connection with a close frame carrying ``code``."""
        async def run() -> None:
            await asyncio.gather(*(s.ws.close(code, reason) for s in list(self.sessions)),
                                 return_exceptions=True)
        self._run_coroutine(run())

    def stop_answering(self) -> None:
        """Go silent on every connection: read nothing, send nothing, no pings or pongs.

        The TCP connections stay open: to the client this is a half-open connection.
        """
        def freeze() -> None:
            for session in self.sessions:
                session.frozen = True
                session.ws.transport.pause_reading()
        self.call(freeze)

    def resume_answering(self) -> None:
        """Undo :meth:`stop_answering`."""
        def thaw() -> None:
            for session in self.sessions:
                session.frozen = False
                session.ws.transport.resume_reading()
        self.call(thaw)

    def mute_pongs(self, muted: bool = True) -> None:
        """Stop (or resume) answering the clients' pings, answering everything else."""
        def mute() -> None:
            for session in self.sessions:
                session.mute_pongs = muted
        self.call(mute)

    def skip_seq(self, channel: str | None = None, count: int = 1) -> None:
        """Make the next message of each matching subscription skip ``count`` seq numbers."""
        def skip() -> None:
            for session in self.sessions:
                for sub in session.find(channel):
                    sub.skip += count
        self.call(skip)

    def lose_next(self, channel: str | None = None, count: int = 1) -> None:
        """Number the next ``count`` frames of each matching subscription but never send
        them: a real loss, which the client sees as a sequence gap on the next frame."""
        def lose() -> None:
            for session in self.sessions:
                for sub in session.find(channel):
                    sub.lose += count
        self.call(lose)

    def repeat_last(self, channel: str | None = None) -> int:
        """Send the last frame of each matching subscription again (a duplicate seq)."""
        async def run() -> int:
            sent = 0
            for session in list(self.sessions):
                for sub in session.find(channel):
                    if sub.last_frame is not None:
                        await session.send_text(sub.last_frame)
                        sent += 1
            return sent
        return self._run_coroutine(run())

    def send_subscription_error(self, channel: str, code: int, message: str = "") -> int:
        """Send a sid-scoped error to each subscription of ``channel`` (no command id).

        Codes 10 and 25 end the subscription on the server, as on Kalshi.
        """
        async def run() -> int:
            sent = 0
            for session in list(self.sessions):
                for sub in session.find(channel):
                    await session.send(*session.rules.end_subscription(sub, code, message))
                    sent += 1
            return sent
        return self._run_coroutine(run())

    def subscriptions(self) -> list[list[ServerSubscription]]:
        """Per connected client, its subscriptions (a snapshot)."""
        return self.call(lambda: [list(s.subscriptions.values()) for s in self.sessions])


def book_fingerprint(yes: Iterable[tuple[Any, Any]], no: Iterable[tuple[Any, Any]]) -> int:
    """A fingerprint of a book's levels (prices and sizes as Decimal, NO side in NO terms)
    that compares books kept in any container or order."""
    return hash((tuple(sorted(yes)), tuple(sorted(no))))


def _load_replay(path: str | os.PathLike[str]) -> list[tuple[float, str, str, dict[str, Any]]]:
    """Read a recording: its data frames as (time, channel, type, msg)."""
    channels: dict[Any, str] = {}
    frames = []
    for recorded in read_recording(path):
        try:
            frame = json.loads(recorded.frame)
        except ValueError:
            continue
        if not isinstance(frame, dict):
            continue
        wire_type = frame.get("type")
        if wire_type == "subscribed" and isinstance(frame.get("msg"), dict):
            channels[frame["msg"].get("sid")] = str(frame["msg"].get("channel"))
            continue
        if wire_type in ("unsubscribed", "ok", "error") or not isinstance(wire_type, str):
            continue
        channel = channels.get(frame.get("sid")) or str(TYPE_CHANNELS.get(wire_type, wire_type))
        msg = frame.get("msg")
        frames.append((recorded.t, channel, wire_type, msg if isinstance(msg, dict) else {}))
    return frames


def _abort(ws: ServerConnection) -> None:
    """Close the TCP connection with a reset, like a dropped network path."""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def _load_public_key(key: Any) -> rsa.RSAPublicKey | None:
    if key is None:
        return None
    if hasattr(key, "public_key_pem"):  # a KalshiConfig
        key = key.public_key_pem()
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, (bytes, bytearray)):
        loaded = serialization.load_pem_public_key(bytes(key))
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise TypeError("public_key must be an RSA key")
        return loaded
    raise TypeError(f"public_key must be PEM, an RSA key or a KalshiConfig, not {type(key)}")

