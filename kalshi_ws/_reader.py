"""The reader's world: reading one connection, liveness, and the frame-to-update path.

:class:`ConnectionReader` runs on the reader thread only. It reads one connection
until it ends and returns a :class:`ReadEnd` saying why; the supervisor
(:mod:`kalshi_ws.reconnect`) decides what follows. The path of a frame:

1. :meth:`Transport.receive` returns the whole frames read within one tick;
2. :meth:`ConnectionReader.process` decodes them and feeds them to the protocol, one
   by one, under the session lock in slices of ``FRAMES_PER_LOCK``, then drains the
   protocol's deliveries (timestamped by the freshness tracker) and completions;
3. with the lock released, it fills the response slots and posts the updates to the
   dispatcher, which runs callbacks and fills the queue on its own thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs

from . import _wire
from ._session import TICK, Session
from ._shapes import ShapeDecoder
from ._transport import OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT, Transport, parse_close
from .backoff import is_end_of_stream
from .config import HealthConfig
from .exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    ProtocolError,
    SlowConsumerError,
)
from .models import Channel
from .protocol import KalshiProtocol

__all__ = ["FRAMES_PER_LOCK", "RESTORED", "ConnectionReader", "Liveness", "ReadEnd", "feed_frames"]

# The client's parts log under its public name, as websockets names its loggers by
# role: users configure "kalshi_ws.client" whichever module does the work.
logger = logging.getLogger("kalshi_ws.client")

PING_PAYLOAD = b"kalshi-ws"
FRAMES_PER_LOCK = 128


@attrs.frozen
class ReadEnd:
    """Why the reader stopped reading a connection.

    Attributes:
        error: What ended it: a :class:`ConnectionClosedOK` for a clean end (the
            user's close, the server's 1000), else the error. None when ``restored``.
        close_code: The server's close code, if it sent a close frame.
        close_reason: The server's close reason.
        restored: A restore read ended because every subscription was restored.
    """

    error: BaseException | None
    close_code: int | None = None
    close_reason: str = ""
    restored: bool = False


#: The end of a restore read once every subscription is restored.
RESTORED = ReadEnd(None, restored=True)


class Liveness:
    """Ping, pong and silence rules of one connection (pure: the caller gives the time).

    Args:
        health: The intervals and timeouts.
        now: When the connection opened (monotonic seconds).
    """

    def __init__(self, health: HealthConfig, now: float) -> None:
        self.health = health
        self.last_frame = now
        self.next_ping = now + health.ping_interval if health.ping_interval else None
        self.pong_deadline: float | None = None

    def failure(self, now: float) -> str | None:
        """Why the connection must be deemed dead at ``now``, or None."""
        idle = self.health.idle_timeout
        if idle is not None and now - self.last_frame > idle:
            return f"no frame received for {idle:g} s (idle timeout)"
        if self.pong_deadline is not None and now > self.pong_deadline:
            return f"no pong within {self.health.pong_timeout:g} s (pong timeout)"
        return None

    def ping_due(self, now: float) -> bool:
        """Whether a ping is due at ``now``; if so, the next one is scheduled."""
        interval = self.health.ping_interval
        if self.next_ping is None or interval is None or now < self.next_ping:
            return False
        self.next_ping = now + interval
        return True

    def pinged(self, now: float) -> None:
        """A ping was sent at ``now``: expect a pong (unless one is awaited already)."""
        if self.pong_deadline is None:
            self.pong_deadline = now + self.health.pong_timeout


class ConnectionReader:
    """Reads connections for one session (reader thread only).

    Args:
        session: The client's shared state.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ticks = 0  # housekeeping ticks so far
        self.liveness: Liveness | None = None  # of the connection read last
        # Learned frame shapes, kept across connections; in C as the client chose.
        self.shapes = ShapeDecoder(compiled=session.compiled)

    @property
    def last_frame(self) -> float:
        """Monotonic time of the last frame of the connection read last (or of its start)."""
        return 0.0 if self.liveness is None else self.liveness.last_frame

    def read(self, transport: Transport, restore_deadline: float | None = None) -> ReadEnd:
        """Read ``transport`` until it ends; why it ended.

        With ``restore_deadline``, stop as soon as the subscriptions are restored
        (``ReadEnd.restored``), or fail when that takes past the deadline.
        """
        session = self.session
        liveness = self.liveness = Liveness(session.options.health, time.monotonic())
        next_tick = liveness.last_frame
        receive = transport.receive
        while True:
            try:
                frames = receive()
            except (ConnectionLost, ProtocolError) as exc:
                return self._receive_failed(exc)
            now = time.monotonic()
            if frames:
                liveness.last_frame = now
                end = self._frames(transport, frames, liveness)
                if end is None and restore_deadline is not None:
                    end = self._restore_progress(now, None)
                if end is not None:
                    return end
            if now >= next_tick:
                next_tick = now + TICK
                end = self._tick(transport, now, liveness, restore_deadline)
                if end is not None:
                    return end

    def _receive_failed(self, exc: ConnectionLost | ProtocolError) -> ReadEnd:
        session = self.session
        if session.slow_consumer is not None:
            return ReadEnd(session.slow_consumer)
        if session.stop_requested.is_set():
            return ReadEnd(ConnectionClosedOK("client closed"))
        return ReadEnd(exc)

    def _frames(self, transport: Transport, frames: list[tuple[int, bytes]],
                liveness: Liveness) -> ReadEnd | None:
        """Handle one read's frames: texts to the protocol, pongs, a close."""
        texts = []
        for opcode, payload in frames:
            if opcode == OP_TEXT or opcode == OP_BINARY:
                texts.append(payload)
            elif opcode == OP_PONG:
                liveness.pong_deadline = None
            elif opcode == OP_CLOSE:
                if texts:
                    self.process(texts)
                return self._closed_by_server(transport, payload)
        return self.process(texts) if texts else None

    def _restore_progress(self, now: float, deadline: float | None) -> ReadEnd | None:
        if self.session.protocol.restore_finished():
            return RESTORED
        if deadline is not None and now > deadline:
            return ReadEnd(ConnectionLost("Kalshi did not acknowledge the restored "
                                          "subscriptions in time"))
        return None

    def _tick(self, transport: Transport, now: float, liveness: Liveness,
              restore_deadline: float | None) -> ReadEnd | None:
        """Every TICK: housekeeping, the restore deadline, liveness and pings."""
        end = self._housekeeping(transport, now)
        if end is None and restore_deadline is not None:
            end = self._restore_progress(now, restore_deadline)
        if end is not None:
            return end
        failure = liveness.failure(now)
        if failure is not None:
            return ReadEnd(ConnectionLost(failure))
        if liveness.ping_due(now) and not transport.close_sent:
            send_lock = self.session.send_lock
            if send_lock.acquire(blocking=False):
                try:
                    transport.send_ping(PING_PAYLOAD)
                except ConnectionLost as exc:
                    return ReadEnd(exc)
                finally:
                    send_lock.release()
                liveness.pinged(now)
        return None

    def _closed_by_server(self, transport: Transport, payload: bytes) -> ReadEnd:
        code, reason = parse_close(payload)
        if not transport.close_sent:
            transport.send_close(code or 1000, "")
        if self.session.stop_requested.is_set():
            return ReadEnd(ConnectionClosedOK("client closed", code=code), code, reason)
        text = f"server closed the connection: {reason or 'no reason'}"
        if code in (1000, 1001) or is_end_of_stream(code, reason):
            return ReadEnd(ConnectionClosedOK(text, code=code), code, reason)
        return ReadEnd(ConnectionClosedError(text, code=code), code, reason)

    def _housekeeping(self, transport: Transport, now: float) -> ReadEnd | None:
        session = self.session
        freshness = session.freshness
        with session.lock:
            protocol = session.protocol
            protocol.tick(now)
            outgoing = session.take_outgoing()
            self.ticks += 1
            forget = self.ticks % 20 == 0  # every 10 s: forget books no longer subscribed
            live = protocol.subscriptions() if forget or freshness.alarms_enabled else []
            if forget:
                freshness.forget_markets({m for s in live if s.channel == Channel.ORDERBOOK_DELTA
                                          for m in s.market_tickers})
            alarms = freshness.check([s.channel for s in live], now) \
                if freshness.alarms_enabled else None
        if alarms:
            session.dispatcher.post(alarms)  # system messages always fit
        return self._send(transport, outgoing)

    def _send(self, transport: Transport, outgoing: list[str]) -> ReadEnd | None:
        error = self.session.send_outgoing(transport, outgoing)
        return None if error is None else ReadEnd(error)

    # ------------------------------------------------------------------ the hot path

    def process(self, texts: list[bytes]) -> ReadEnd | None:
        """Feed frames to the protocol, then answer callers and post updates."""
        session = self.session
        if session.recorder is not None:
            session.record(texts)
        if logger.isEnabledFor(logging.DEBUG):
            for text in texts:
                logger.debug("< %s", text[:500])
        self._feed(texts)
        deliveries, answered = self._drain()
        if answered:
            session.answer(answered)
        # Post before sending anything: a failed send must not lose what was received.
        if deliveries and not session.dispatcher.post(deliveries):
            return ReadEnd(SlowConsumerError(
                f"{session.options.max_pending} updates are waiting for the callbacks: a "
                "callback is too slow (raise max_pending, or use overflow='drop_oldest' "
                "for channels that may drop)"))
        if session.protocol.wants_to_send() or session.pending_outgoing:
            with session.lock:
                outgoing = session.take_outgoing()
            transport = session.transport
            if transport is not None:
                return self._send(transport, outgoing)
        return None

    def _feed(self, texts: list[bytes]) -> None:
        """Give frames to the protocol, under the lock in slices, so that a command or a
        book's is_synced() never waits behind a whole read.

        Each frame is decoded right before it is processed: a decoded frame (a snapshot
        is dozens of lists) is garbage once its message is built, so it dies young and
        never reaches the collector's older generations, whose collections cost the
        whole heap (decoding a whole read first made syncing 100,000 books quadratic).
        """
        lock = self.session.lock
        for start in range(0, len(texts), FRAMES_PER_LOCK):
            with lock:
                self._feed_slice(texts[start:start + FRAMES_PER_LOCK])

    def _feed_slice(self, texts: list[bytes]) -> None:
        """Give frames to the protocol (holding the session lock)."""
        feed_frames(self.session.protocol, self.shapes, texts)

    def _drain(self) -> tuple[list[Any], list[Any] | None]:
        """Take the protocol's deliveries (timestamped) and the answered slots."""
        session = self.session
        with session.lock:
            protocol = session.protocol
            deliveries = protocol.take_deliveries()
            if deliveries:
                announced = session.freshness.observe(
                    deliveries, time.time_ns() // 1_000_000, time.monotonic())
                if announced is not None:  # with ChannelResumed messages inserted
                    deliveries = announced
            completions = protocol.take_completions()
            if not completions:
                return deliveries, None
            slots = session.slots
            return deliveries, [(slots.pop(cid, None), result, error)
                                for cid, result, error in completions]


def feed_frames(protocol: KalshiProtocol, shapes: ShapeDecoder, texts: list[bytes]) -> None:
    """Decode frames and give them to the protocol, one by one, in order.

    A frame of a learned shape (see :mod:`kalshi_ws._shapes`) goes straight to its
    message and :meth:`KalshiProtocol.receive_built`; any other, or one the protocol
    does not take as plain, is decoded and given to :meth:`KalshiProtocol.receive`,
    and may teach ``shapes`` its shape. Never raises: a frame that cannot be read
    becomes a MalformedMessage.

    Reader thread only, holding the session lock (or a protocol of the caller's own).
    """
    receive, receive_built = protocol.receive, protocol.receive_built
    decode = _wire.decode
    parse = shapes.parse
    for data in texts:
        parsed = parse(data)
        if parsed is not None and receive_built(*parsed):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            protocol.receive_invalid(data, str(exc))
            continue
        try:
            frame = decode(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
            protocol.receive_invalid(data, str(exc) or type(exc).__name__)
            continue
        try:
            receive(frame)
        except Exception as exc:
            logger.exception("could not process a frame; reporting it as malformed")
            protocol.receive_invalid(data, f"{type(exc).__name__}: {exc}",
                                     what="could not process the frame")
            continue
        if parsed is None:
            shapes.consider(data, frame)
