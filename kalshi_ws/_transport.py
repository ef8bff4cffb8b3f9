"""The WebSocket transport: the only module that imports websocket-client.

websocket-client performs the opening handshake (headers, TLS, proxies) and every
send (framing, masking, its own send lock). Frames are *read* here, from the raw
socket, through one buffer: websocket-client's reader issues two or three ``recv``
calls per frame (each preceded by a ``poll`` when the socket has a timeout) and
validates UTF-8 in pure Python, while this reader takes whatever the kernel has in
one call and splits it into frames. UTF-8 is validated later, in C, when the JSON
layer decodes the payload.

Only the client's reader thread calls :meth:`Transport.receive`. ``send_*`` may be
called from any thread; the caller serialises them with its own send lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import websocket

from . import _compiled
from .exceptions import (
    AuthenticationError,
    ConnectionLost,
    HandshakeError,
    ProtocolError,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "ConnectAttempt",
    "Transport",
    "parse_close",
]

logger = logging.getLogger("kalshi_ws.client")  # README "Logging": connections log as the client

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_CONTROL = frozenset({OP_CLOSE, OP_PING, OP_PONG})
_DATA = frozenset({OP_TEXT, OP_BINARY})

#: Default bound of one message, in bytes (see ``connect(max_message_size=...)``). The
#: largest frames Kalshi can legitimately send are replies listing a subscription's
#: markets: 500,000 tickers (its per-session limit) make about 20 MB. The deepest order
#: book, 10,000 levels a side at 0.0001 steps, makes a snapshot of about 0.5 MB.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

_RECV_SIZE = 256 * 1024
_LARGE_READ = 4 * 1024 * 1024
_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """Split a close frame payload into (code, reason)."""
    if len(payload) < 2:
        return None, ""
    return _unpack_16(payload)[0], payload[2:].decode("utf-8", "replace")


class Transport:
    """One open WebSocket connection.

    Use :meth:`connect` to open one. ``receive`` returns the frames that arrived,
    answering pings itself; ``send_*`` write frames; ``abort`` wakes a blocked reader.
    """

    def __init__(self, ws: websocket.WebSocket, tick: float,
                 max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
                 compiled: bool | None = None) -> None:
        self._ws = ws
        sock = ws.sock
        if sock is None:  # pragma: no cover - websocket-client sets it once connected
            raise ConnectionLost("the WebSocket has no socket")
        self._sock: socket.socket = sock
        self._sock.settimeout(tick)
        self._tick = tick
        self._max_size = max_message_size
        self._fragment_size = 0  # bytes of the fragmented message received so far
        self._failure: ProtocolError | None = None  # raised at the next receive()
        # Bytes of an incomplete frame, kept across calls; _need is that frame's size
        # once its header is known (0 before), _have the bytes held.
        self._view = memoryview(bytearray(_RECV_SIZE))
        self._pieces: list[bytes] = []
        self._have = 0
        self._need = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._close_sent = False
        # The C loop for the common frames (see _split), where built and not turned off
        # (``compiled``: the client's choice, made once; None: the process's).
        in_c = _compiled.enabled() if compiled is None else compiled
        self._split_data = _compiled.speedups.split_data if in_c else None

    # ------------------------------------------------------------------ opening

    @classmethod
    def connect(
        cls,
        url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        tick: float,
        ssl_context: ssl.SSLContext | None = None,
        attempt: ConnectAttempt | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        compiled: bool | None = None,
    ) -> Transport:
        """Open a connection and perform the handshake.

        Args:
            url: ws:// or wss:// URL.
            headers: Extra handshake headers (Kalshi's signed auth headers).
            timeout: Seconds for TCP connect, TLS and the HTTP upgrade together.
            tick: Socket timeout used afterwards by :meth:`receive`.
            ssl_context: TLS settings for wss://; default verifies certificate and host.
            attempt: Lets another thread abort the attempt at any stage (see
                :class:`ConnectAttempt`). Without a proxy the TCP connect and TLS are
                done here for that; with one, websocket-client does them (not abortable).
            max_message_size: Largest message accepted, in bytes (None: no limit).
            compiled: Cut frames with the optional C module (None: where it is used,
                see :mod:`kalshi_ws._compiled`).

        Raises:
            AuthenticationError: the server answered 401 or 403.
            HandshakeError: any other failure to open (refused, DNS, TLS, other status,
                aborted).
        """
        secure = url.startswith("wss://")
        context = (ssl_context or ssl.create_default_context()) if secure else None
        sslopt: dict[str, Any] | None = None if context is None else {"context": context}
        options: dict[str, Any] = {
            "header": dict(headers),
            "suppress_origin": True,  # Kalshi's CDN answers 403 to an Origin header
            "timeout": timeout,
        }
        if sslopt is not None:
            options["sslopt"] = sslopt
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True,
                                 sslopt=sslopt)
        watchdog: threading.Timer | None = None
        try:
            if attempt is not None and not _proxy_configured():
                deadline = time.monotonic() + timeout
                options["socket"] = attempt.open_socket(url, context, deadline)
                options["timeout"] = max(0.01, deadline - time.monotonic())
                # websocket-client's timeout bounds each read of the upgrade, not the
                # whole of it: a server trickling endless headers would hold it forever.
                watchdog = threading.Timer(options["timeout"], attempt.expire)
                watchdog.name = "kalshi-ws-connect-deadline"
                watchdog.daemon = True
                watchdog.start()
            try:
                ws.connect(url, **options)  # type: ignore[no-untyped-call]
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                    watchdog.join(5.0)  # at most an expire() under way: a shutdown()
            if attempt is not None and attempt.expired:  # opened just as time ran out
                ws.shutdown()  # type: ignore[no-untyped-call]
                raise TimeoutError("timed out")
        except websocket.WebSocketBadStatusException as exc:
            raise _status_error(exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise HandshakeError(
                f"TLS certificate verification failed for {url}: {exc.verify_message or exc}; "
                "pass ssl_context= with the right CA to trust this server"
            ) from exc
        except (OSError, websocket.WebSocketException) as exc:
            if attempt is not None and attempt.expired:
                raise HandshakeError(f"could not connect to {url}: timed out after "
                                     f"{timeout:g} s (the handshake did not complete)"
                                     ) from exc
            if attempt is not None and attempt.aborted:
                raise HandshakeError(f"connection attempt to {url} aborted") from exc
            raise HandshakeError(f"could not connect to {url}: {exc}") from exc
        if ws.frame_buffer.recv_buffer:  # pragma: no cover - websocket-client never over-reads
            raise ProtocolError("handshake left unread bytes in websocket-client's buffer")
        return cls(ws, tick, max_message_size, compiled)

    # ------------------------------------------------------------------ receiving

    def receive(self) -> list[tuple[int, bytes]]:
        """Return the frames available now, or wait up to one tick for some.

        Pings are answered here (pong with the same payload) and also returned, so the
        caller sees every sign of life. Fragmented messages are reassembled. Only whole
        frames count: a frame still arriving when the tick has passed returns an empty
        list, however fast its bytes trickle in, so the caller's idle check sees it.

        Returns:
            A list of (opcode, payload); empty when the tick passed with no frame.

        Raises:
            ConnectionLost: the peer closed the TCP connection or it failed.
            ProtocolError: the bytes are not valid WebSocket framing, or a message is
                larger than ``max_message_size`` (known from the frame header, before
                its bytes are read; a close frame with code 1009 is sent).
        """
        if self._failure is not None:  # found with good frames before it: now it counts
            raise self._failure
        frames: list[tuple[int, bytes]] = []
        give_up = 0.0  # when a frame keeps arriving without completing: return anyway
        while True:
            chunk = self._read_chunk()
            if chunk is None:
                return frames
            pieces = self._pieces
            if not pieces:
                buffer = chunk
            else:
                pieces.append(chunk)
                self._have += len(chunk)
                if self._have < self._need:  # a large frame is still arriving: join once,
                    buffer = b""             # at the end, but return at each tick
                else:
                    buffer = b"".join(pieces)
            if buffer and (not self._split_buffer(buffer, frames) or frames):
                return frames
            now = time.monotonic()  # part of a frame: read on until the tick is over
            if not give_up:
                give_up = now + self._tick
            elif now >= give_up:
                return frames

    def _read_chunk(self) -> bytes | None:
        """The next bytes from the socket; None when the tick passed with none.

        Raises:
            ConnectionLost: end of file or a socket error.
        """
        want = self._need - self._have
        try:
            if want > _RECV_SIZE:  # the rest of a large frame, read straight into bytes
                chunk = self._sock.recv(min(want, _LARGE_READ))
            else:
                # Into a reused buffer: recv(n) would allocate n bytes on every call,
                # which costs far more than the copy below when frames come one by one.
                view = self._view
                chunk = view[:self._sock.recv_into(view)].tobytes()
        except (TimeoutError, ssl.SSLWantReadError):
            return None
        except OSError as exc:
            raise ConnectionLost(_read_failure(exc)) from exc
        if not chunk:
            raise ConnectionLost("connection closed by peer without a close frame (EOF)")
        return chunk

    def _split_buffer(self, buffer: bytes, frames: list[tuple[int, bytes]]) -> bool:
        """Cut ``buffer`` into ``frames``, keeping the incomplete rest for later.

        Returns False when the bytes are not valid framing after some whole frames:
        those are handed over first and the error is raised at the next receive().

        Raises:
            ProtocolError: invalid framing before any whole frame.
        """
        try:
            rest = self._split(buffer, frames)
        except ProtocolError as exc:
            if not frames:
                raise
            self._failure = exc  # hand over the whole frames before it first
            return False
        if rest:
            self._pieces = [rest]
            self._have = len(rest)
            self._need = self._frame_length(rest) if len(rest) >= 10 else 0
        else:
            self._pieces = []
            self._have = self._need = 0
        return True

    @staticmethod
    def _frame_length(buffer: bytes) -> int:
        """Total bytes of the frame starting at ``buffer[0]`` (header of 10+ bytes given)."""
        length = buffer[1] & 0x7F
        masked = 4 if buffer[1] & 0x80 else 0
        if length == 126:
            size: int = _unpack_16(buffer, 2)[0]
            return 4 + masked + size
        if length == 127:
            size = _unpack_64(buffer, 2)[0]
            return 10 + masked + size
        return 2 + masked + length

    def _split(self, buffer: bytes, frames: list[tuple[int, bytes]]) -> bytes:
        """Move every complete frame of ``buffer`` into ``frames``; return the rest.

        The leading run of whole, final, unmasked data frames within the size limit is
        cut in C where the C module is used; this loop takes every frame from the
        first one that is anything else, with the same rules either way.
        """
        pos = 0
        if self._split_data is not None and not self._fragments:
            pos = self._split_data(buffer, frames, self._max_size)
        size = len(buffer)
        append = frames.append
        while size - pos >= 2:
            b0 = buffer[pos]
            b1 = buffer[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = _unpack_16(buffer, start)[0]
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = _unpack_64(buffer, start)[0]
                start += 8
            if b1 & 0x80:
                raise ProtocolError("the server sent a masked frame")
            # Sizes are checked as soon as the header is here, before the payload is read.
            if b0 & 0x08:
                if length > 125:
                    raise ProtocolError(f"control frame of {length} bytes (at most 125)")
            elif self._max_size is not None and length + self._fragment_size > self._max_size:
                self._too_big(length + self._fragment_size)
            end = start + length
            if end > size:
                break
            payload = buffer[start:end]
            pos = end
            if b0 & 0x70:
                raise ProtocolError("the server set reserved frame bits (no extension agreed)")
            opcode = b0 & 0x0F
            if b0 & 0x80 and not self._fragments and opcode in _DATA:
                append((opcode, payload))  # the common case: one whole text frame
                continue
            self._frame(opcode, bool(b0 & 0x80), payload, append)
        return buffer[pos:] if pos else buffer

    def _too_big(self, size: int) -> None:
        self.send_close(1009, "message too big")
        raise ProtocolError(
            f"the server sent a message of {size} bytes, over max_message_size "
            f"({self._max_size} bytes); raise it with connect(max_message_size=...) or "
            "pass None for no limit")

    def _frame(self, opcode: int, fin: bool, payload: bytes, append: object) -> None:
        """Handle the rare frames: control frames and fragments."""
        if opcode in _CONTROL:
            if not fin or len(payload) > 125:
                raise ProtocolError("fragmented or oversized control frame")
            if opcode == OP_PING and not self._close_sent:
                try:
                    self._ws.pong(payload)
                except (OSError, websocket.WebSocketException) as exc:
                    raise ConnectionLost(f"could not answer a ping: {exc}") from exc
            append((opcode, payload))  # type: ignore[operator]
            return
        if opcode in _DATA:
            if self._fragments:
                raise ProtocolError("new data frame before the last fragmented message ended")
            self._fragment_opcode = opcode
            self._fragments = [payload]
            self._fragment_size = len(payload)
        elif opcode == OP_CONT:
            if not self._fragments:
                raise ProtocolError("continuation frame without a message to continue")
            self._fragments.append(payload)
            self._fragment_size += len(payload)
        else:
            raise ProtocolError(f"unknown frame opcode {opcode:#x}")
        if fin:
            message = b"".join(self._fragments)
            self._fragments = []
            self._fragment_size = 0
            append((self._fragment_opcode, message))  # type: ignore[operator]

    # ------------------------------------------------------------------ sending

    def send_text(self, text: str) -> None:
        """Send one text frame.

        Raises:
            ConnectionLost: the socket failed.
        """
        try:
            self._ws.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"send failed: {exc}") from exc

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping frame. Raises ConnectionLost if the socket failed."""
        try:
            self._ws.ping(payload)
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"ping failed: {exc}") from exc

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once). Errors are ignored: the socket may be gone."""
        if self._close_sent:
            return
        self._close_sent = True
        try:
            self._ws.send_close(code, reason.encode("utf-8")[:120])
        except (OSError, websocket.WebSocketException) as exc:
            logger.debug("could not send close frame: %s", exc)

    @property
    def close_sent(self) -> bool:
        """Whether a close frame was sent on this connection."""
        return self._close_sent

    def abort(self) -> None:
        """Shut the socket down, waking a reader blocked in :meth:`receive`."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close_socket(self) -> None:
        """Release the socket. Call once no thread uses the transport any more."""
        self.abort()
        try:
            self._sock.close()
        except OSError:
            pass


class ConnectAttempt:
    """One connection attempt that another thread may abort at any stage.

    The TCP connect polls the abort flag every tenth of a second; the TLS handshake
    runs in slices as well; during the HTTP upgrade :meth:`abort` shuts the socket
    down, which wakes the waiting read (and :meth:`expire`, from a timer, does the same
    at the attempt's deadline). Used for reconnects, so that ``close()`` never waits
    for an attempt against a black-holed server.
    """

    _SLICE = 0.1

    def __init__(self) -> None:
        self._aborted = threading.Event()
        self._expired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    @property
    def expired(self) -> bool:
        """Whether the attempt was aborted because its deadline passed (:meth:`expire`)."""
        return self._expired

    def expire(self) -> None:
        """The attempt's deadline passed (called by a timer): abort it as timed out."""
        self._expired = True
        self.abort()

    def abort(self) -> None:
        """Stop the attempt; thread-safe, idempotent."""
        with self._lock:
            self._aborted.set()
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _check(self, deadline: float) -> float:
        if self._aborted.is_set():
            raise ConnectionAbortedError("connection attempt aborted")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        return remaining

    def open_socket(self, url: str, context: ssl.SSLContext | None,
                    deadline: float) -> socket.socket:
        """TCP connect (and TLS for wss://) to the URL's host, abortably."""
        parsed = urlsplit(url)
        host = parsed.hostname or ""
        port = parsed.port or (443 if parsed.scheme == "wss" else 80)
        last_error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _name, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            with self._lock:
                self._sock = sock
            try:
                self._connect(sock, address, deadline)
            except (ConnectionAbortedError, TimeoutError):
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is None:
                sock.settimeout(self._check(deadline))
                return sock
            return self._wrap(sock, context, host, deadline)
        raise last_error

    def _connect(self, sock: socket.socket, address: Any, deadline: float) -> None:
        sock.setblocking(False)
        error = sock.connect_ex(address)
        while error in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            remaining = self._check(deadline)
            _, writable, _ = select.select([], [sock], [], min(self._SLICE, remaining))
            if writable:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._check(deadline)
        if error:
            raise OSError(error, os.strerror(error))

    def _wrap(self, sock: socket.socket, context: ssl.SSLContext, host: str,
              deadline: float) -> ssl.SSLSocket:
        tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        with self._lock:
            self._sock = tls
        while True:
            tls.settimeout(min(self._SLICE, self._check(deadline)))
            try:
                tls.do_handshake()
                break
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
        tls.settimeout(self._check(deadline))
        return tls


def _proxy_configured() -> bool:
    """Whether the environment names a proxy (websocket-client then connects itself)."""
    return any(os.environ.get(name) for name in (
        "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))


def _status_error(exc: websocket.WebSocketBadStatusException) -> HandshakeError:
    status = exc.status_code
    headers = {str(k).lower(): str(v) for k, v in (exc.resp_headers or {}).items()}
    raw = exc.resp_body or b""
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if status in (401, 403):
        hint = ("check the API key id, the private key and the clock"
                if status == 401 else "the key lacks access, or an Origin header was sent")
        return AuthenticationError(
            f"Kalshi refused the credentials: HTTP {status} ({hint}); body: {body[:200]!r}",
            status_code=status, headers=headers, body=body)
    return HandshakeError(f"handshake failed: HTTP {status}; body: {body[:200]!r}",
                          status_code=status, headers=headers, body=body)


def _read_failure(exc: OSError) -> str:
    """A failed read as a sentence (the errno stays on the exception's cause)."""
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset (by the server or the network), without a close frame"
    if isinstance(exc, ConnectionAbortedError):
        return "the connection was aborted"
    return f"connection failed: {exc.strerror or exc}"
