"""Session: the state one client's threads share, and the rules for touching it.

A :class:`~kalshi_ws.client.KalshiStreamClient` is three kinds of thread around one
:class:`Session`:

* **caller threads** (scripts, request threads, callbacks) send commands through
  :meth:`Session.command` and wait on a response slot holding no lock;
* the **reader** (``kalshi-ws-reader-N``, see :mod:`kalshi_ws._reader` and the
  supervisor in :mod:`kalshi_ws.reconnect`) owns the socket, feeds frames to the
  protocol, fills the slots and posts updates;
* the **dispatcher** (``kalshi-ws-dispatch-N``, :mod:`kalshi_ws._dispatch`) runs
  callbacks and fills the ``updates`` queue.

Locks
-----
Two plain locks, always taken in this order: ``send_lock`` (held across "check the
state, write a frame", so nothing follows our close frame) then ``lock`` (the
protocol, the slot table, the state). Neither is held while waiting, joining or
running user code.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _compiled
from ._dispatch import Dispatcher
from ._locklog import SessionLock, defer_library_logs
from ._transport import ConnectAttempt, Transport
from .exceptions import (
    CommandTimeout,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    SlowConsumerError,
)
from .freshness import FreshnessTracker
from .models import Channel, Closed, SystemMessage
from .protocol import KalshiProtocol
from .recording import Recorder

if TYPE_CHECKING:
    from .config import KalshiConfig
    from .options import ClientOptions

__all__ = ["CLOSED", "CLOSING", "CONNECTING", "OPEN", "RECONNECTING", "TICK", "Session"]

# The client's parts log under its public name, as websockets names its loggers by
# role: users configure "kalshi_ws.client" whichever module does the work.
logger = logging.getLogger("kalshi_ws.client")

_client_numbers = itertools.count(1)

#: The last item of a stream: Closed, or a final ConnectionLost (an exception that is
#: also a SystemMessage, registered virtually, which type checkers do not see).
Final = SystemMessage | ConnectionLost

CONNECTING = "CONNECTING"
OPEN = "OPEN"
RECONNECTING = "RECONNECTING"
CLOSING = "CLOSING"
CLOSED = "CLOSED"

TICK = 0.5  # seconds: the reader's socket timeout, hence its health-check period


class Slot:
    """Where the reader leaves the answer to one command."""

    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Session:
    """The state shared by one client's caller threads, reader and dispatcher.

    Attributes guarded by ``lock``: ``state``, ``protocol``, ``slots``,
    ``transport``, ``close_error``, ``pending_outgoing``, ``freshness``. The rest are
    written by one thread only (named beside each) and read by the others.
    """

    def __init__(self, config: KalshiConfig, options: ClientOptions) -> None:
        self.config = config
        self.options = options
        self.signer = config.signer()
        self.number = next(_client_numbers)
        self.pid = os.getpid()
        # Log records made under the lock reach their handlers (user code) after it.
        defer_library_logs()
        self.lock = SessionLock()
        self.send_lock = SessionLock()  # its holder logs the frames it sends
        self.state = CONNECTING
        # The C code or not, chosen once for the client (README: KALSHI_WS_PURE_PYTHON
        # "when a client is created"): its protocol, shapes and every connection's framing.
        self.compiled = _compiled.enabled()
        self.protocol = KalshiProtocol(resync=options.resync, lock=self.lock)
        self.protocol.tick(time.monotonic())  # its clock is right before any command
        self.slots: dict[int, Slot] = {}
        self.transport: Transport | None = None
        self.close_error: BaseException | None = None
        self.stop_requested = threading.Event()  # set by close()
        self.open_event = threading.Event()  # set while OPEN (and when the client ends)
        self.slow_consumer: SlowConsumerError | None = None  # dispatcher sets, reader reads
        self.reconnects = 0  # reader
        self.connected_at = 0.0  # reader: monotonic time the current connection opened
        self.pending_outgoing: list[str] = []
        self.recorder: Recorder | None = None  # any caller thread
        self.dispatcher_deadline: float | None = None  # set by close()
        self.freshness = FreshnessTracker(options.stale_after)
        self.attempt: ConnectAttempt | None = None  # a connection attempt under way
        self.dispatcher = Dispatcher(
            name=f"kalshi-ws-dispatch-{self.number}",
            inbox_limit=options.max_pending,
            policy=options.overflow_policy,
            on_overflow=self.consumer_overflowed,
            on_drop=self.updates_dropped,
            queue_maxsize=options.queue_maxsize,
            on_error=options.on_error,
        )
        self.dispatcher.queue_enabled = options.queue is not False
        self.reader: threading.Thread | None = None

    def check_process(self) -> None:
        """Raise ConcurrencyError in a process forked after the client was created."""
        if os.getpid() != self.pid:
            raise ConcurrencyError(
                f"this KalshiStreamClient was created in process {self.pid}; its threads "
                "did not survive fork(). Create the client lazily in each worker process "
                "(see examples/flask_app.py).")

    # ------------------------------------------------------------------ connecting

    def open_transport(self) -> Transport:
        """Open one connection (reader or connect() thread); close() can abort it.

        Raises:
            HandshakeError: the connection could not be opened.
        """
        attempt = ConnectAttempt()
        self.attempt = attempt
        if self.stop_requested.is_set():  # close() came first (it sets the flag, then
            attempt.abort()               # aborts whatever attempt it finds)
        try:
            return Transport.connect(
                self.config.url, self.signer.headers(), timeout=self.options.timeout,
                tick=TICK, ssl_context=self.options.ssl_context, attempt=attempt,
                max_message_size=self.options.max_message_size, compiled=self.compiled)
        finally:
            self.attempt = None

    # ------------------------------------------------------------------ commands

    def command(self, build: Callable[[KalshiProtocol], tuple[int, str]],
                timeout: float) -> Any:
        """Send one command and wait for its answer (caller threads).

        Raises:
            CommandTimeout: no answer within ``timeout``.
            ConnectionClosed: the client is closed, or closes while waiting.
            ConnectionLost: the connection was lost before the answer.
            CommandError: Kalshi refused the command (raised from the slot).
        """
        deadline = time.monotonic() + timeout
        slot = Slot()
        command_id = self._send_command(build, slot, deadline, timeout)
        if not slot.event.wait(max(0.0, deadline - time.monotonic())):
            with self.lock:
                if self.slots.pop(command_id, None) is not None:
                    self.protocol.abandon(command_id, time.monotonic())
            if not slot.event.is_set():
                raise CommandTimeout(f"no answer from Kalshi to command {command_id} "
                                     f"within {timeout:g} s")
        if slot.error is not None:
            raise fresh_error(slot.error)
        return slot.result

    def _send_command(self, build: Callable[[KalshiProtocol], tuple[int, str]], slot: Slot,
                      deadline: float, timeout: float) -> int:
        while True:
            self._wait_open(deadline)
            if not self.send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise CommandTimeout(f"could not send the command within {timeout:g} s "
                                     "(another thread is stuck sending)")
            try:
                with self.lock:
                    if self.state == RECONNECTING:
                        continue  # lost meanwhile: wait for the new connection
                    self.raise_unless_open()
                    command_id, text = build(self.protocol)
                    self.slots[command_id] = slot
                    transport = self.transport
                assert transport is not None
                self._write_command(transport, command_id, text)
                return command_id
            finally:
                self.send_lock.release()

    def _write_command(self, transport: Transport, command_id: int, text: str) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("> %s", text)
        try:
            transport.send_text(text)
        except ConnectionLost as exc:
            with self.lock:
                self.slots.pop(command_id, None)
                self.protocol.abandon(command_id, time.monotonic())
            transport.abort()  # make sure the reader notices at once
            error = ConnectionLost(
                f"the connection was lost while sending command {command_id} "
                f"({exc.reason}); Kalshi did not answer it"
                + ("; the client is reconnecting" if self.options.reconnect else ""))
            raise error from exc

    def _wait_open(self, deadline: float) -> None:
        while True:
            state = self.state
            if state == OPEN:
                return
            if state in (CLOSING, CLOSED):
                self.raise_unless_open()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.open_event.wait(remaining):
                if self.state == OPEN:
                    return
                raise CommandTimeout("the client is reconnecting and did not get a new "
                                     "connection in time")

    def raise_unless_open(self) -> None:
        """Raise the error a command meets in the current state, if not OPEN.

        Raises:
            ConnectionLost: reconnecting.
            ConnectionClosedOK: closed cleanly (by the user or the server's 1000).
            ConnectionClosedError: closed after an error (the cause is chained).
        """
        state = self.state
        if state == OPEN:
            return
        if state == RECONNECTING:
            raise ConnectionLost("the connection was lost; the client is reconnecting")
        cause = self.close_error
        if cause is None:
            raise ConnectionClosedOK("the client is closed")
        error: ConnectionClosed
        if isinstance(cause, ConnectionClosedOK):  # e.g. the server's clean 1000 close
            error = ConnectionClosedOK(f"the client is closed: {cause.reason}", code=cause.code)
        else:
            error = ConnectionClosedError(f"the client is closed: {cause}")
        raise error from cause

    @staticmethod
    def answer(answered: list[tuple[Slot | None, Any, BaseException | None]]) -> None:
        """Fill response slots and wake their callers (reader thread, no lock held)."""
        for slot, result, error in answered:
            if slot is not None:
                slot.result = result
                slot.error = error
                slot.event.set()

    # ------------------------------------------------------------------ outgoing

    def take_outgoing(self) -> list[str]:
        """Collect the protocol's own commands (call holding ``lock``)."""
        outgoing = self.pending_outgoing + self.protocol.take_outgoing()
        self.pending_outgoing = []
        return outgoing

    def send_outgoing(self, transport: Transport, outgoing: list[str]) -> ConnectionLost | None:
        """Send the protocol's own commands (reader thread); the error that ends the
        connection if sending fails, else None."""
        if not outgoing:
            return None
        if not self.send_lock.acquire(timeout=0.2):
            with self.lock:  # a caller is sending; try again at the next tick
                self.pending_outgoing[:0] = outgoing
            return None
        try:
            if self.state in (CLOSING, CLOSED) or transport.close_sent:
                return None  # nothing may follow our close frame
            for text in outgoing:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("> %s", text)
                transport.send_text(text)
        except ConnectionLost as exc:
            return exc
        finally:
            self.send_lock.release()
        return None

    # ------------------------------------------------------------------ dispatcher hooks

    def updates_dropped(self, dropped: list[Any]) -> None:
        """Updates were dropped before any callback saw them (reader thread). An order
        book that lost one is distrusted at once and resynchronised."""
        markets = {u.msg.market_ticker for u in dropped
                   if u.channel == Channel.ORDERBOOK_DELTA and hasattr(u.msg, "market_ticker")}
        if markets:
            with self.lock:
                self.protocol.resync_markets(markets)

    def consumer_overflowed(self, text: str) -> None:
        """The updates queue overflowed on an ``error`` channel (dispatcher thread)."""
        if self.slow_consumer is not None:
            return  # already ending this connection
        logger.error("slow consumer: %s", text)
        self.slow_consumer = SlowConsumerError(text)
        transport = self.transport
        if transport is not None:
            transport.abort()

    # ------------------------------------------------------------------ recording

    def record(self, texts: list[bytes]) -> None:
        """Write received frames to the recording, if any (reader thread)."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder.write(time.time(), texts)
        except (OSError, ValueError) as exc:
            logger.error("recording failed and was stopped: %s", exc)
            self.recorder = None

    def stop_recording(self) -> int:
        """Stop recording and flush the file; how many frames were recorded (any thread)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return 0
        recorder.close()
        return recorder.count

    # ------------------------------------------------------------------ the end

    def teardown(self, error: BaseException | None, final: Final) -> None:
        """End the client once: fail every waiter, release the socket, post the last item.

        Called by the reader as it exits, or by close() when there is no reader.
        """
        with self.lock:
            if self.state == CLOSED:
                return
            self.state = CLOSED
            self.close_error = error
            slots, self.slots = self.slots, {}
            self.protocol.connection_lost()
            self.protocol.forget_subscriptions()
            transport, self.transport = self.transport, None
        reason = error or ConnectionClosedOK("the client was closed")
        for slot in slots.values():
            slot.error = reason if isinstance(reason, ConnectionClosed) else \
                closed_by(reason)
            slot.event.set()
        self.open_event.set()
        if transport is not None:
            transport.close_socket()
        self.stop_recording()
        self.dispatcher.post_final(final, self.dispatcher_deadline)
        if isinstance(final, Closed):
            logger.info("connection to %s closed", self.config.url)


def closed_by(error: BaseException) -> ConnectionClosed:
    """The error a waiting command gets when the client ends because of ``error``."""
    closed = ConnectionClosedError(f"the client closed: {error}")
    closed.__cause__ = error
    return closed


def fresh_error(error: BaseException) -> BaseException:
    """A new exception for this caller, with the cause of a possibly shared one.

    Raising one shared instance from several threads would keep growing its traceback.
    A connection error is chained to its cause (an OS error, say), or else to the shared
    error itself (a close frame, an end of file, close()): never to nothing.
    """
    if isinstance(error, ConnectionClosed):
        fresh = type(error)(error.reason, code=error.code)
        fresh.__cause__ = error.__cause__ if error.__cause__ is not None else error
        return fresh
    return error
