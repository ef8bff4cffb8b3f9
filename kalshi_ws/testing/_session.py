"""The fake server's connections: one :class:`ServerSession` per client, and the core
(sessions, event loop, waiters) that the shell, the fault layer and the publishing
layer of :class:`~kalshi_ws.testing.FakeKalshiServer` share.

A session owns its connection's I/O (sending, heartbeat pings, muted pongs, freezing);
its Kalshi state and every sequencing decision are its :class:`KalshiRules`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from ._handshake import RedactSignatures
from .rules import KalshiRules, Outgoing, ServerSubscription

if TYPE_CHECKING:
    from .server import FakeKalshiServer

__all__ = ["ServerCore", "ServerSession", "abort"]

# The fake server's parts log under its public name, as before it was split: users and
# the CLI configure "kalshi_ws.testing.server".
logger = logging.getLogger("kalshi_ws.testing.server")
logger.addFilter(RedactSignatures())  # also set by server.py: the same logger, redacted either way

T = TypeVar("T")


class ServerSession:
    """One client connection to the fake server: its rules state, and its I/O.

    Created and driven on the server's event loop; tests read it from any thread
    (:meth:`FakeKalshiServer.call` gives a consistent view).
    """

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
        return self.server._initial_data(self, sub, markets, command_id)

    async def send(self, frame: Mapping[str, Any], sub: ServerSubscription | None = None) -> None:
        """Send a frame as JSON on the server's event loop (``sub``: its last frame, or lost)."""
        text = self.rules.encode(frame, sub)
        if text is not None:
            await self.send_text(text)

    async def send_text(self, text: str) -> None:
        """Send one text frame as is (on the server's event loop), unless frozen."""
        if self.frozen:
            return
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            pass

    def freeze(self, frozen: bool) -> None:
        """Stop (or resume) reading and sending anything, pongs included (event loop)."""
        self.frozen = frozen
        if frozen:
            self.ws.transport.pause_reading()
        else:
            self.ws.transport.resume_reading()

    def hold_pongs(self) -> None:
        """Send no pong while :attr:`mute_pongs` or :attr:`frozen` is set (event loop)."""
        protocol = self.ws.protocol
        send_frame = protocol.send_frame

        def send_frame_unless_muted(frame: Any) -> None:
            if frame.opcode is Opcode.PONG and (self.mute_pongs or self.frozen):
                return
            send_frame(frame)

        protocol.send_frame = send_frame_unless_muted  # type: ignore[method-assign]

    async def heartbeat(self, interval: float | None, timeout: float | None) -> None:
        """Ping every ``interval`` seconds; drop a client that takes over ``timeout``."""
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            if not self.frozen and not await self._ping(timeout):
                return

    async def _ping(self, timeout: float | None) -> bool:
        """One heartbeat ping; False once the connection is gone (or dropped for it)."""
        try:
            pong = await self.ws.ping(b"heartbeat")
            await asyncio.wait_for(pong, timeout)
        except (TimeoutError, asyncio.TimeoutError):  # noqa: UP041 - distinct before 3.11
            logger.info("fake server: client never answered the heartbeat; dropping it")
            abort(self.ws)
            return False
        except ConnectionClosed:
            return False
        except Exception as exc:  # noqa: BLE001 - e.g. a ping already in flight
            logger.debug("fake server: heartbeat ping failed: %s", exc)
        return True


class ServerCore:
    """What the shell, the fault layer and the publishing layer share: the connected
    sessions, the event loop they live on, and the condition that wakes waiters.

    The shell (:class:`~kalshi_ws.testing.FakeKalshiServer`) sets every attribute in
    its ``__init__``; the layers only use them.
    """

    sessions: list[ServerSession]
    _loop: asyncio.AbstractEventLoop | None
    _changed: threading.Condition

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's event loop and return its result.

        Any thread but the server's own may call it; it blocks up to ``timeout`` seconds.

        Raises:
            RuntimeError: the server is not running.
            TimeoutError: the event loop did not run ``fn`` in time.
            Exception: whatever ``fn`` raised.
        """
        async def run() -> T:
            return fn()
        return self._run_coroutine(run(), timeout)

    def _run_coroutine(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the fake server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def _each_session(self, act: Callable[[ServerSession], None]) -> None:
        """Run ``act`` on every connected session, on the event loop (any other thread).

        Raises:
            RuntimeError: the server is not running.
        """
        def run() -> None:
            for session in self.sessions:
                act(session)
        self.call(run)

    def _receivers(self, channel: str | None, market: str | None = None
                   ) -> Iterator[tuple[ServerSession, ServerSubscription]]:
        """Each (session, subscription) of ``channel`` that a frame about ``market``
        goes to, connection by connection (event loop)."""
        for session in list(self.sessions):
            for sub in session.rules.receivers(channel, market):
                yield session, sub

    def _notify(self) -> None:
        """Wake every thread blocked in :meth:`_wait` (any thread)."""
        with self._changed:
            self._changed.notify_all()

    def _wait(self, ready: Callable[[], Any], timeout: float, what: str) -> Any:
        """Block until ``ready()`` is true (any thread but the event loop's).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
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


def abort(ws: ServerConnection) -> None:
    """Close the TCP connection with a reset, like a dropped network path (event loop)."""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
