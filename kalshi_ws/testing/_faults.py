"""The fake server's fault injection: what a test does to the connections, as a layer
over the shell's sessions and their :class:`~kalshi_ws.testing.rules.KalshiRules`.

:class:`FaultInjection` is a base of :class:`~kalshi_ws.testing.FakeKalshiServer`; its
methods are the server's public fault API. Each runs its work on the server's event
loop (sequencing decisions are the rules object's), except the handshake faults, which
queue verdicts in the shell's :class:`~kalshi_ws.testing._handshake.HandshakeGate`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._handshake import HandshakeGate, load_public_key
from ._session import ServerCore, ServerSession, abort

__all__ = ["FaultInjection"]


class FaultInjection(ServerCore):
    """The fault injectors of :class:`~kalshi_ws.testing.FakeKalshiServer`.

    Every method may be called from any thread but the server's event loop. Those that
    act on connections raise ``RuntimeError`` when the server is not running and
    ``TimeoutError`` when its event loop does not answer within 10 seconds.
    """

    _handshake: HandshakeGate

    # ------------------------------------------------------------------ handshakes

    def reject_handshakes(self, status: int, count: int | None = 1, body: str = "",
                          retry_after: str | None = None) -> None:
        """Answer the next ``count`` handshakes (None: all) with ``status``.

        Any thread; takes effect at the next handshake, running or not.

        Args:
            status: The HTTP status.
            count: How many handshakes (None: every one until accept_handshakes()).
            body: The error message in the JSON body.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP date).
        """
        self._handshake.reject(status, count, body, retry_after)

    def drop_handshakes(self, count: int) -> None:
        """Reset the TCP connection of the next ``count`` connection attempts.

        Any thread. They are recorded in :attr:`handshakes` with status 0.
        """
        self._handshake.drops += count

    def accept_handshakes(self) -> None:
        """Undo :meth:`reject_handshakes` and :meth:`drop_handshakes` (any thread)."""
        self._handshake.accept()

    def set_public_key(self, public_key: Any) -> None:
        """Verify signatures with another key from now on (e.g. to revoke the client's).

        Any thread. ``public_key`` is what the constructor takes (None: no checks).

        Raises:
            TypeError: not a PEM key, an RSA key or a KalshiConfig.
            ValueError: PEM text that cannot be read.
        """
        self._handshake.public_key = load_public_key(public_key)

    # ------------------------------------------------------------------ connections

    def drop_connections(self) -> int:
        """Reset every TCP connection (no close frame). Returns how many.

        Raises:
            RuntimeError: the server is not running.
        """
        def drop() -> int:
            for session in self.sessions:
                abort(session.ws)
            return len(self.sessions)
        return self.call(drop)

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Close every connection with a close frame carrying ``code`` and ``reason``.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> None:
            await asyncio.gather(*(s.ws.close(code, reason) for s in list(self.sessions)),
                                 return_exceptions=True)
        self._run_coroutine(run())

    def stop_answering(self) -> None:
        """Go silent on every connection: read nothing, send nothing, no pings or pongs.

        The TCP connections stay open: to the client this is a half-open connection.
        Stopping the server then resets them, with no close frame, like a hung process
        that dies.

        Raises:
            RuntimeError: the server is not running.
        """
        self._freeze(True)

    def resume_answering(self) -> None:
        """Undo :meth:`stop_answering`.

        Raises:
            RuntimeError: the server is not running.
        """
        self._freeze(False)

    def _freeze(self, frozen: bool) -> None:
        self._each_session(lambda session: session.freeze(frozen))

    def mute_pongs(self, muted: bool = True) -> None:
        """Stop (or resume) answering the clients' pings, answering everything else.

        Raises:
            RuntimeError: the server is not running.
        """
        def mute(session: ServerSession) -> None:
            session.mute_pongs = muted
        self._each_session(mute)

    # ------------------------------------------------------------------ sequence numbers

    def skip_seq(self, channel: str | None = None, count: int = 1) -> None:
        """Make the next message of each matching subscription skip ``count`` seq numbers.

        ``channel`` None: every subscription of every connection.

        Raises:
            RuntimeError: the server is not running.
        """
        self._each_session(lambda session: session.rules.skip_seq(channel, count))

    def lose_next(self, channel: str | None = None, count: int = 1) -> None:
        """Number the next ``count`` frames of each matching subscription but never send
        them: a real loss, which the client sees as a sequence gap on the next frame.

        Raises:
            RuntimeError: the server is not running.
        """
        self._each_session(lambda session: session.rules.lose_next(channel, count))

    def repeat_last(self, channel: str | None = None) -> int:
        """Send the last frame of each matching subscription again (a duplicate seq).

        Returns:
            How many frames were sent again.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> int:
            sent = 0
            for session in list(self.sessions):
                for text in session.rules.repeats(channel):
                    await session.send_text(text)
                    sent += 1
            return sent
        return self._run_coroutine(run())

    def send_subscription_error(self, channel: str, code: int, message: str = "") -> int:
        """Send a sid-scoped error to each subscription of ``channel`` (no command id).

        Codes 10 and 25 end the subscription on the server, as on Kalshi. Returns how
        many errors were sent.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> int:
            sent = 0
            for session, sub in self._receivers(channel):
                await session.send(*session.rules.end_subscription(sub, code, message))
                sent += 1
            return sent
        return self._run_coroutine(run())
