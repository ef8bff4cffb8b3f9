"""The supervisor: the reader thread's life, reconnects, and restoring subscriptions.

:class:`Supervisor` opens the first connection (on the thread calling ``connect()``)
and then runs the reader thread: it reads the connection with a
:class:`~kalshi_ws._reader.ConnectionReader`, and when the read ends it decides, from
the :class:`~kalshi_ws._reader.ReadEnd`, whether to end the stream or to reconnect
with backoff and restore every subscription. It ends the client exactly once, with
``Closed`` or a final ``ConnectionLost``.

The pure backoff rules it follows live in :mod:`kalshi_ws.backoff` and are re-exported
here.
"""

from __future__ import annotations

import logging
import threading
import time

import attrs

from ._reader import RESTORED, ConnectionReader, ReadEnd
from ._session import OPEN, RECONNECTING, Final, Session
from ._transport import Transport
from .backoff import (
    END_OF_STREAM_CODE,
    END_OF_STREAM_REASON,
    backoff_ceiling,
    backoff_delays,
    is_end_of_stream,
    is_retryable,
    retry_after,
    retry_delay,
)
from .config import ReconnectPolicy
from .exceptions import (
    AuthenticationError,
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectionLost,
    HandshakeError,
    ProtocolError,
    SlowConsumerError,
)
from .freshness import insert_after, unsequenced_channels
from .models import Channel, Closed, Reconnected, UnsequencedGap

__all__ = ["END_OF_STREAM_CODE", "END_OF_STREAM_REASON", "Supervisor", "backoff_ceiling",
           "backoff_delays", "is_end_of_stream", "is_retryable", "retry_after", "retry_delay"]

# The client's parts log under its public name, as websockets names its loggers by
# role: users configure "kalshi_ws.client" whichever module does the work.
logger = logging.getLogger("kalshi_ws.client")

_CLIENT_CLOSED = "client closed"


@attrs.define
class _Outage:
    """What the supervisor knows about one lost connection while reconnecting."""

    cause: BaseException
    lost_at: float  # monotonic
    unsequenced: tuple[Channel | str, ...]  # unsequenced channels subscribed when it was lost
    last_read: float  # unix time of the last frame read


class Supervisor:
    """Runs one client's reader thread and its reconnects.

    Args:
        session: The client's shared state.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.reader = ConnectionReader(session)
        self._backoff_level = 0  # where the reconnect backoff goes on from

    # ------------------------------------------------------------------ the first connection

    def first_connect(self) -> None:
        """Open the first connection, retrying as the strategy says, then start the
        reader thread. Runs on the thread calling ``connect()``.

        Raises:
            HandshakeError: the connection could not be opened (after retries, if any).
            AuthenticationError: the key was refused (never retried).
        """
        session = self.session
        backoff = session.options.strategy.backoff
        limit = backoff.max_attempts if session.options.strategy.retries else 1
        delays = backoff_delays(attrs.evolve(backoff, max_attempts=None))
        attempt = 0
        while True:
            attempt += 1
            try:
                transport = session.open_transport()
                break
            except HandshakeError as exc:
                if not is_retryable(exc) or (limit is not None and attempt >= limit):
                    raise
                delay = retry_delay(next(delays), exc, backoff)
                logger.warning("connect attempt %d to %s failed (%s); retrying in %.2f s",
                               attempt, session.config.url, exc, delay)
                time.sleep(delay)
        session.transport = transport
        session.state = OPEN
        session.open_event.set()
        session.connected_at = time.monotonic()
        session.reader = threading.Thread(target=self.run, daemon=True,
                                          name=f"kalshi-ws-reader-{session.number}")
        session.reader.start()
        logger.info("connected to %s", session.config.url)

    # ------------------------------------------------------------------ the reader thread

    def run(self) -> None:
        """The reader thread: read, reconnect while allowed, then end the client."""
        session = self.session
        final: Final
        error: BaseException | None
        try:
            final, error = self._supervise()
        except BaseException as exc:
            logger.exception("internal error in the reader thread")
            error = ProtocolError(f"internal error: {exc!r}")
            error.__cause__ = exc
            final = connection_lost_message(error, False)
        session.teardown(error, final)

    def _supervise(self) -> tuple[Final, BaseException | None]:
        session = self.session
        transport = session.transport
        assert transport is not None
        end = self.reader.read(transport)
        while True:
            if session.stop_requested.is_set():
                return Closed(code=end.close_code,
                              reason=end.close_reason or _CLIENT_CLOSED), None
            error = end.error
            assert error is not None
            if session.options.reconnect is None or not is_retryable(error) or \
                    is_end_of_stream(end.close_code, end.close_reason):
                return self._final_message(end)
            failure = self._reconnect(session.options.reconnect, error)
            if failure is not None:
                if session.stop_requested.is_set():
                    return Closed(reason=_CLIENT_CLOSED), None
                return self._final_message(failure)
            transport = session.transport
            assert transport is not None
            end = self.reader.read(transport)  # reconnected: read the new connection

    def _final_message(self, end: ReadEnd) -> tuple[Final, BaseException | None]:
        error = end.error
        assert error is not None
        if isinstance(error, ConnectionClosedOK):
            return Closed(code=end.close_code, reason=end.close_reason), error
        logger.warning("connection to %s lost: %s", self.session.config.url, error)
        return connection_lost_message(error, False), error

    # ------------------------------------------------------------------ reconnecting

    def _reconnect(self, policy: ReconnectPolicy, cause: BaseException) -> ReadEnd | None:
        """Reconnect with backoff and restore subscriptions.

        Returns None once reconnected, or why it gave up.
        """
        outage = self._lose_connection(cause)
        if outage is None:
            return ReadEnd(ConnectionClosedOK(_CLIENT_CLOSED))
        if isinstance(cause, SlowConsumerError) and not self._wait_for_consumers():
            return ReadEnd(ConnectionClosedOK(_CLIENT_CLOSED))
        if outage.lost_at - self.session.connected_at >= policy.healthy_after:
            self._backoff_level = 0  # the connection was healthy: start small again
        attempt = 0
        last_error: BaseException = cause
        for delay in backoff_delays(policy.backoff, start=self._backoff_level):
            attempt += 1
            delay = retry_delay(delay, last_error, policy.backoff)
            logger.info("reconnect attempt %d in %.3f s (backoff ceiling %.3f s)", attempt,
                        delay, backoff_ceiling(policy.backoff, self._backoff_level))
            self._backoff_level += 1
            if self.session.stop_requested.wait(delay):
                return ReadEnd(ConnectionClosedOK(_CLIENT_CLOSED))
            result = self._attempt(policy, outage, attempt)
            if not isinstance(result, BaseException):
                return result
            last_error = result
        return ReadEnd(ConnectionLost(
            f"gave up reconnecting after {attempt} attempt(s); last error: {last_error}"))

    def _lose_connection(self, cause: BaseException) -> _Outage | None:
        """Mark the client RECONNECTING and fail the commands in flight; None if the
        client is closing."""
        session = self.session
        lost_at = time.monotonic()
        with session.lock:
            if session.state != OPEN:
                return None
            session.state = RECONNECTING
            session.open_event.clear()
            # Unsequenced user channels lose messages unseen from the last frame read.
            outage = _Outage(cause, lost_at,
                             unsequenced_channels(session.protocol.subscriptions()),
                             time.time() - (lost_at - self.reader.last_frame))
            failed_ids = session.protocol.connection_lost()
            slots = [session.slots.pop(cid) for cid in failed_ids if cid in session.slots]
            transport, session.transport = session.transport, None
        session.slow_consumer = None
        Session.answer([(slot, None, lost_during_command(cause)) for slot in slots])
        if transport is not None:
            transport.close_socket()
        logger.warning("connection to %s lost (%s); reconnecting", session.config.url, cause)
        session.dispatcher.post([connection_lost_message(cause, True)])
        return outage

    def _attempt(self, policy: ReconnectPolicy, outage: _Outage,
                 attempt: int) -> ReadEnd | BaseException | None:
        """One reconnect attempt: None when reconnected, a ReadEnd to give up with, or
        the error that makes another attempt worth it."""
        session = self.session
        try:
            transport = session.open_transport()
            if session.stop_requested.is_set():  # close() came during the handshake
                transport.close_socket()
                return ReadEnd(ConnectionClosedOK(_CLIENT_CLOSED))
        except AuthenticationError as exc:
            logger.error("reconnect refused: %s; giving up (the same key would fail "
                         "again)", exc)
            return ReadEnd(exc)
        except HandshakeError as exc:
            logger.warning("reconnect attempt %d failed: %s", attempt, exc)
            return exc
        restored = self._restore(transport, policy.restore_timeout)
        if restored.restored:
            return self._announce(outage, attempt)
        logger.warning("reconnect attempt %d did not restore the subscriptions: %s",
                       attempt, restored.error)
        with session.lock:
            session.protocol.connection_lost()
            session.transport = None
        transport.close_socket()
        assert restored.error is not None
        return restored.error

    def _restore(self, transport: Transport, restore_timeout: float) -> ReadEnd:
        """On a new connection, re-create every subscription."""
        session = self.session
        with session.lock:
            session.transport = transport
            session.protocol.begin_restore()
            outgoing = session.take_outgoing()
        error = session.send_outgoing(transport, outgoing)
        if error is not None:
            return ReadEnd(error)
        if not session.protocol.restore_finished():
            end = self.reader.read(transport,
                                   restore_deadline=time.monotonic() + restore_timeout)
            if not session.protocol.restore_finished():
                return end
        return RESTORED

    def _announce(self, outage: _Outage, attempt: int) -> ReadEnd | None:
        """Reopen the client after a restore and post ``Reconnected``."""
        session = self.session
        downtime = time.monotonic() - outage.lost_at
        session.reconnects += 1
        with session.lock:
            done = session.protocol.restore_result()
        assert done is not None
        gap = UnsequencedGap(channels=outage.unsequenced, since=outage.last_read,
                             until=time.time()) if outage.unsequenced else None
        announcement = Reconnected(attempt=attempt, downtime=downtime, sid_map=done.sid_map,
                                   failed=done.failed, unsequenced_gap=gap)
        with session.lock:
            if session.stop_requested.is_set():
                return ReadEnd(ConnectionClosedOK(_CLIENT_CLOSED))
            session.protocol.finish_restore(announcement)
            deliveries = session.protocol.take_deliveries()
            deliveries = session.freshness.observe(
                deliveries, time.time_ns() // 1_000_000, time.monotonic()) or deliveries
            if gap is not None:  # right after the announcement
                deliveries = insert_after(deliveries, announcement, [gap])
            session.state = OPEN
            session.connected_at = time.monotonic()
        session.open_event.set()
        logger.info("reconnected to %s after %.2f s (attempt %d); %d subscription(s) "
                    "restored", session.config.url, downtime, attempt, len(done.sid_map))
        if not session.dispatcher.post(deliveries):
            return ReadEnd(SlowConsumerError("updates are not consumed fast enough"))
        return None

    def _wait_for_consumers(self) -> bool:
        """After a slow-consumer loss, wait until the backlog is half drained.

        Resubscribing into a full queue would only overflow it again. Returns False if
        close() was called meanwhile.
        """
        session = self.session
        dispatcher = session.dispatcher
        options = session.options
        warned = False
        while dispatcher.backlog > options.max_pending // 2 or (
                dispatcher.queue_enabled and
                dispatcher.queue.qsize() > options.queue_maxsize // 2):
            if not warned:
                logger.warning("waiting for the consumer to catch up before reconnecting")
                warned = True
            if session.stop_requested.wait(0.05):
                return False
        return True


def connection_lost_message(error: BaseException, will_reconnect: bool) -> ConnectionLost:
    """The stream item announcing a loss; its cause is the error."""
    reason = error.reason if isinstance(error, ConnectionClosed) else str(error)
    message = ConnectionLost(reason, code=getattr(error, "code", None),
                             will_reconnect=will_reconnect)
    message.__cause__ = error
    return message


def lost_during_command(cause: BaseException) -> ConnectionLost:
    """The error of a command in flight when the connection was lost."""
    error = ConnectionLost(f"the connection was lost before Kalshi answered ({cause}); "
                           "the client is reconnecting - the command may or may not have "
                           "taken effect")
    error.__cause__ = cause
    return error
