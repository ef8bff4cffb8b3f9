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
object per connection (a command in, frames out). This module is the shell around it:
the asyncio server on its own thread, the handshake check and the session bookkeeping.
Thin layers over the rules object do the rest: ``_handshake`` (signature rules, queued
refusals), ``_session`` (one connection's I/O), ``_faults`` (fault injection),
``_publishing`` (publishing and the simulator) and ``_replay`` (recordings).

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
import json
import logging
import os
import ssl
import threading
import time
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ._faults import FaultInjection
from ._handshake import HandshakeGate
from ._handshake import RedactSignatures as _RedactSignatures
from ._publishing import Publishing, book_fingerprint
from ._replay import ReplayFrame, load_replay
from ._session import ServerCore, ServerSession, abort
from .rules import ServerSubscription
from .simulator import MarketSimulator

__all__ = ["FakeKalshiServer", "ServerSession", "ServerSubscription", "book_fingerprint"]

logger = logging.getLogger(__name__)

#: The websockets library's log of the fake server (handshakes, frames), signatures
#: redacted; silent unless the application configures logging for it.
_wire_logger = logging.getLogger(f"{__name__}.websockets")
_wire_logger.addFilter(_RedactSignatures())
logger.addFilter(_RedactSignatures())

SIGN_PATH = "/trade-api/ws/v2"


class FakeKalshiServer(FaultInjection, Publishing):
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

    Every public method may be called from any thread but the server's own event loop
    (:meth:`call` runs code there). The fault injectors come from
    :class:`~kalshi_ws.testing._faults.FaultInjection`, publishing and replay from
    :class:`~kalshi_ws.testing._publishing.Publishing`.

    Raises:
        TypeError: ``public_key`` is not a PEM key, an RSA key or a KalshiConfig.
        ValueError: ``replay`` is not a recording.
        OSError: ``replay`` cannot be read.
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
        self._handshake = HandshakeGate(public_key, max_clock_skew=max_clock_skew)
        self.host = host
        self.port: int = port
        self.ssl_context = ssl_context
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout if pong_timeout is not None else ping_interval
        self.simulator = simulator or MarketSimulator(seed=7)
        self.get_snapshot_ok = get_snapshot_ok
        self.track_books = track_books
        self.sessions: list[ServerSession] = []
        #: Every connection attempt: (time.monotonic(), HTTP status; 0 when dropped).
        self.handshakes: list[tuple[float, int]] = []
        self.commands: list[dict[str, Any]] = []
        self._connections = 0
        #: With track_books: (connection number, seq, market, fingerprint of the true
        #: book right after that frame) for every order-book frame sent or lost.
        self.book_log: list[tuple[int, int, str, int]] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._owner_pid = 0  # the process whose thread runs the server (see stop())
        self._server: Server | None = None
        self._ready = threading.Event()
        self._started_once = False  # for the repr: "stopped" rather than "not started"
        self._start_error: BaseException | None = None
        self._simulation: asyncio.Task[None] | None = None
        self.replay_speed = replay_speed
        self.replay_close = replay_close
        self._replay: list[ReplayFrame] | None = (
            load_replay(replay) if replay is not None else None)

    @property
    def max_clock_skew(self) -> float:
        """Seconds a handshake timestamp may differ from the server clock."""
        return self._handshake.max_clock_skew

    @max_clock_skew.setter
    def max_clock_skew(self, seconds: float) -> None:
        self._handshake.max_clock_skew = seconds

    # The layers' public methods, named here as the server's own: pdoc's API reference
    # lists no member a class inherits from a module it does not document.
    call = ServerCore.call
    reject_handshakes = FaultInjection.reject_handshakes
    drop_handshakes = FaultInjection.drop_handshakes
    accept_handshakes = FaultInjection.accept_handshakes
    set_public_key = FaultInjection.set_public_key
    drop_connections = FaultInjection.drop_connections
    close_connections = FaultInjection.close_connections
    stop_answering = FaultInjection.stop_answering
    resume_answering = FaultInjection.resume_answering
    mute_pongs = FaultInjection.mute_pongs
    skip_seq = FaultInjection.skip_seq
    lose_next = FaultInjection.lose_next
    repeat_last = FaultInjection.repeat_last
    send_subscription_error = FaultInjection.send_subscription_error
    publish = Publishing.publish
    publish_many = Publishing.publish_many
    send_raw = Publishing.send_raw
    step_market = Publishing.step_market
    start_simulation = Publishing.start_simulation
    stop_simulation = Publishing.stop_simulation
    replay_contents = Publishing.replay_contents

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The WebSocket URL of the server (valid after :meth:`start`)."""
        scheme = "wss" if self.ssl_context else "ws"
        host = "localhost" if self.ssl_context and self.host == "127.0.0.1" else self.host
        return f"{scheme}://{host}:{self.port}{SIGN_PATH}"

    def start(self) -> FakeKalshiServer:
        """Start listening; returns once the port is bound (at most 10 s).

        Any thread; starting a running server does nothing.

        Raises:
            OSError: the address could not be bound.
        """
        if self._thread is not None:
            return self
        self._started_once = True
        self._owner_pid = os.getpid()
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
        """Stop the server and end every connection.

        Connections are closed with 1001 (going away), except silent ones
        (:meth:`stop_answering`) and, with ``abrupt``, all of them: those are reset.

        Any thread but the server's; blocks up to about 30 s (10 s each to drop the
        connections, shut the server down and join its thread). Stopping a stopped
        server does nothing; a failed shutdown is logged, not raised. In a process
        forked from the one that started it (a pre-forking web server's worker), the
        server's thread does not exist: stop() only forgets the server there, at once,
        and the parent's server goes on serving.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if os.getpid() != self._owner_pid:
            logger.debug("fake server of process %d forgotten in its forked child %d",
                         self._owner_pid, os.getpid())
            self._thread = None
            self._loop = None
            self._ready.clear()
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
        auth = "signed handshakes" if self._handshake.public_key is not None else "no auth"
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
        for session in self.sessions:
            if session.frozen:
                # Silent (stop_answering): it sends nothing, a close frame included, and
                # could not read the answer to one. It ends like a hung process that dies.
                abort(session.ws)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------------ handshake

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Kalshi's answer to an upgrade request (None: accepted), on the event loop."""
        gate = self._handshake
        if gate.take_drop():
            self._record_handshake(0)
            abort(connection)  # reset the TCP connection before any response
            return connection.respond(500, "dropped")
        status, text = gate.verdict(request.headers, request.path)
        self._record_handshake(status)
        if status == 101:
            return None
        body = json.dumps({"error": {"code": "authentication_error" if status == 401 else
                                     "error", "message": text}})
        response = connection.respond(status, body)
        response.headers["Content-Type"] = "application/json"
        if gate.retry_after is not None:
            response.headers["Retry-After"] = gate.retry_after
        return response

    def _record_handshake(self, status: int) -> None:
        self.handshakes.append((time.monotonic(), status))
        self._notify()

    # ------------------------------------------------------------------ sessions

    async def _handle(self, ws: ServerConnection) -> None:
        self._connections += 1
        session = ServerSession(self, ws, self._connections)
        session.hold_pongs()
        self.sessions.append(session)
        self._notify()
        heartbeat = asyncio.ensure_future(session.heartbeat(self.ping_interval,
                                                            self.pong_timeout))
        try:
            async for message in ws:
                if not session.frozen:
                    await self._command(session, message)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            if session.replaying is not None:
                session.replaying.cancel()
            self.sessions.remove(session)
            self._notify()

    def wait_for_sessions(self, count: int, timeout: float = 10.0) -> list[ServerSession]:
        """Block until exactly ``count`` clients are connected; return their sessions.

        Any thread but the server's.

        Raises:
            TimeoutError: not reached in time.
        """
        self._wait(lambda: len(self.sessions) == count, timeout,
                   f"{count} connected client(s)")
        return list(self.sessions)

    def wait_for_handshakes(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` handshakes have been attempted in all (any thread but the
        server's).

        Raises:
            TimeoutError: not reached in time.
        """
        self._wait(lambda: len(self.handshakes) >= count, timeout, f"{count} handshake(s)")

    def wait_for_command(self, cmd: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` commands named ``cmd`` have been received in all (any
        thread but the server's).

        Raises:
            TimeoutError: not reached in time.
        """
        self._wait(lambda: sum(c.get("cmd") == cmd for c in self.commands) >= count,
                   timeout, f"{count} {cmd!r} command(s)")

    # ------------------------------------------------------------------ commands

    async def _command(self, session: ServerSession, message: str | bytes) -> None:
        command = session.rules.parse(message)
        if command is not None:
            session.commands.append(command)
            self.commands.append(command)
            self._notify()
        for frame, sub in session.rules.handle(command):
            await session.send(frame, sub)
        if command is not None and command.get("cmd") == "subscribe":
            self._start_replay(session)

    def subscriptions(self) -> list[list[ServerSubscription]]:
        """Per connected client, its subscriptions (a snapshot).

        Raises:
            RuntimeError: the server is not running.
        """
        return self.call(lambda: [list(s.subscriptions.values()) for s in self.sessions])
