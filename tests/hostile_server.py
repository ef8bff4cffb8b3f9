"""A deliberately hostile WebSocket server for tests, on raw sockets.

Unlike :class:`kalshi_ws.testing.FakeKalshiServer`, whose faults are polite, this server
lets a test write any bytes at all to the client: absurd frame lengths, frames trickled
one byte at a time, endless continuation fragments, garbage JSON, floods, TCP resets,
refused handshakes. It can still answer the client's commands (subscribe, unsubscribe,
update_subscription get_snapshot, list_subscriptions) so that a scenario can start from
a real subscription.

One thread accepts connections and performs the HTTP upgrade (or refuses it, as the test
scripted); each connection has one thread reading the client's masked frames. No thread is
named ``kalshi-ws-*``, so the suite's thread-leak check only sees the client's threads; the
server joins its own threads in :meth:`HostileServer.close`.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.timing import MS, WAIT

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def frame(payload: bytes | str, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """Encode one unmasked server-to-client frame."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return header(len(payload), opcode, fin) + payload


def header(length: int, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """The header of a server frame announcing ``length`` payload bytes (any 63-bit value)."""
    first = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        return first + bytes([length])
    if length < 65536:
        return first + bytes([126]) + struct.pack("!H", length)
    return first + bytes([127]) + struct.pack("!Q", length)


def text_frame(value: Any) -> bytes:
    """A text frame carrying ``value`` as compact JSON."""
    return frame(json.dumps(value, separators=(",", ":")))


class Refusal:
    """A scripted non-101 answer to one handshake."""

    def __init__(self, status: int, headers: dict[str, str] | None = None,
                 body: str = "", raw: bytes | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.raw = raw  # sent instead of a status line and headers, when given

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(self.status, "Error")
        body = self.body.encode()
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Length: {len(body)}",
                 "Connection: close"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HostileServer:
    """Listens on 127.0.0.1 (port 0); every accepted connection is a :class:`Conn`.

    Args:
        respond: Whether new connections answer the client's commands by themselves
            (see :class:`Conn`); a test may change ``conn.respond`` at any time.
        hold: Command names the connections never answer (the test answers them).
    """

    def __init__(self, *, respond: bool = True, hold: Iterable[str] = ()) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.respond = respond
        self.hold = set(hold)
        #: Scripted answers for the next handshakes, used in order; then 101.
        self.refusals: collections.deque[Refusal] = collections.deque()
        #: monotonic() when each upgrade request was fully read (refused or not).
        self.handshakes: list[float] = []
        #: monotonic() when each refusal was sent (after its bytes were written).
        self.refused_at: list[float] = []
        #: Called with each new connection before its reader starts (e.g. to close it).
        self.on_connect: Callable[[Conn], None] | None = None
        self.connections: list[Conn] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="hostile-accept",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> HostileServer:  # noqa: PYI034 - not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ waiting

    def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Wait until ``predicate()`` is true, checked whenever the server's state changes
        (connections, handshakes, the client's frames, end of file): it must read that
        state only."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"server condition not met within {timeout} s")
                self._changed.wait(remaining)

    def connection(self, index: int = 0, timeout: float = WAIT) -> Conn:
        """The ``index``-th upgraded connection, waiting for it to arrive."""
        self.wait_for(lambda: len(self.connections) > index, timeout)
        return self.connections[index]

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._handshake(sock)
            except OSError:
                sock.close()

    def _handshake(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                return
            request += chunk
        with self._changed:
            self.handshakes.append(time.monotonic())
            refusal = self.refusals.popleft() if self.refusals else None
            self._changed.notify_all()
        if refusal is not None:
            sock.sendall(refusal.encode())
            sock.close()
            with self._changed:
                self.refused_at.append(time.monotonic())
                self._changed.notify_all()
            return
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        sock.settimeout(None)
        conn = Conn(self, sock, len(self.connections))
        if self.on_connect is not None:
            self.on_connect(conn)
        with self._changed:
            self.connections.append(conn)
            self._changed.notify_all()
        conn.start()

    def close(self) -> None:
        """Stop accepting, close every connection and join every server thread."""
        self._stopping.set()
        self._listener.close()
        self._thread.join(5_000 * MS)
        for conn in self.connections:
            conn.close()


class Conn:
    """One upgraded connection: write anything to it; its reader collects the client's frames.

    With ``respond`` true the reader answers commands the way Kalshi does: ``subscribed``
    per channel (then one ``orderbook_snapshot`` per market for ``orderbook_delta``, from
    :attr:`book`), ``unsubscribed``, ``ok`` for ``list_subscriptions`` and for
    ``update_subscription`` (after the snapshots of a ``get_snapshot``). It answers pings
    with pongs and a close frame with a close frame. Commands named in ``hold`` are
    recorded but not answered.
    """

    def __init__(self, server: HostileServer, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock = sock
        self.index = index
        self.respond = server.respond
        self.hold = set(server.hold)
        #: The client's text frames, parsed (or the raw bytes when not JSON), in order.
        self.commands: list[Any] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.close_code: int | None = None
        self.eof = threading.Event()
        #: The levels each new snapshot of a market carries (yes side, [price, size]).
        self.book: dict[str, list[list[str]]] = {}
        self.subs: dict[int, tuple[str, list[str]]] = {}
        #: Called after each command was answered (e.g. to drop the connection then).
        self.after_answer: Callable[[Conn, dict[str, Any]], None] | None = None
        self._seq: dict[int, int] = {}
        self._next_sid = 1
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"hostile-conn-{index}")

    def start(self) -> None:
        self._reader.start()

    # ------------------------------------------------------------------ sending

    def send_raw(self, data: bytes) -> bool:
        """Write bytes as they are; False when the client is gone."""
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError:
            return False
        return True

    def send(self, value: Any) -> bool:
        """Send one JSON text frame."""
        return self.send_raw(text_frame(value))

    def next_seq(self, sid: int) -> int:
        with self._send_lock:
            seq = self._seq[sid] = self._seq.get(sid, 0) + 1
        return seq

    def data(self, sid: int, wire_type: str, msg: Any, seq: Any = None) -> dict[str, Any]:
        """A data frame for ``sid`` with the sid's next seq (or the given one)."""
        return {"type": wire_type, "sid": sid, "seq": self.next_seq(sid) if seq is None else seq,
                "msg": msg}

    def send_close(self, code: int = 1000, reason: str = "") -> bool:
        return self.send_raw(frame(struct.pack("!H", code) + reason.encode(), OP_CLOSE))

    def finish(self, code: int = 1011, reason: str = "") -> None:
        """Send a close frame and end our side (FIN after the data, never a RST)."""
        self.send_close(code, reason)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def reset(self) -> None:
        """Abort the TCP connection with a RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def in_background(self, target: Callable[[], Any], name: str) -> threading.Thread:
        """Run ``target`` in a server thread joined by :meth:`close`."""
        thread = threading.Thread(target=target, name=f"hostile-{name}-{self.index}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def trickle(self, data: bytes, interval: float) -> threading.Thread:
        """Send ``data`` one byte per ``interval`` seconds, in the background, until the
        client goes away or the connection is closed."""
        def run() -> None:
            for index in range(len(data)):
                if not self.send_raw(data[index:index + 1]) or self._stop.wait(interval):
                    return
        return self.in_background(run, "trickle")

    def stream(self, chunks: Iterable[bytes]) -> threading.Thread:
        """Send chunks in the background until they end or the client goes away."""
        def run() -> None:
            for chunk in chunks:
                if self._stop.is_set() or not self.send_raw(chunk):
                    return
        return self.in_background(run, "stream")

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        current = threading.current_thread()
        for thread in [self._reader, *self._threads]:
            if thread is not current and thread.ident is not None:
                thread.join(5_000 * MS)

    # ------------------------------------------------------------------ waiting

    def wait_command(self, predicate: Callable[[Any], bool], timeout: float = WAIT,
                     start: int = 0) -> Any:
        """The first command from index ``start`` on that satisfies ``predicate``."""
        def found() -> Any:
            for command in self.commands[start:]:
                if isinstance(command, dict) and predicate(command):
                    return command
            return None
        return self.server.wait_for(found, timeout)

    def wait_cmd(self, name: str, timeout: float = WAIT, start: int = 0, **params: Any) -> Any:
        """The first ``name`` command whose params include ``params``."""
        return self.wait_command(
            lambda c: c.get("cmd") == name and all(
                (c.get("params") or {}).get(k) == v for k, v in params.items()),
            timeout, start)

    # ------------------------------------------------------------------ reading

    def _recv_exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                b0, b1 = self._recv_exact(2)
                length = b1 & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._recv_exact(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._recv_exact(8))[0]
                mask = self._recv_exact(4) if b1 & 0x80 else b"\0\0\0\0"
                raw = self._recv_exact(length)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(raw))
                self._client_frame(b0 & 0x0F, payload)
        except (OSError, EOFError):
            pass
        finally:
            self.eof.set()
            self.server.notify()

    def _client_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            with self.server._changed:
                self.pings.append(payload)
                self.server._changed.notify_all()
            self.send_raw(frame(payload, OP_PONG))
        elif opcode == OP_PONG:
            with self.server._changed:
                self.pongs.append(payload)
                self.server._changed.notify_all()
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.send_raw(frame(payload[:2], OP_CLOSE))
        else:
            try:
                command: Any = json.loads(payload)
            except ValueError:
                command = payload
            if isinstance(command, dict) and self.respond and command.get("cmd") not in self.hold:
                self._answer(command)
                if self.after_answer is not None:
                    self.after_answer(self, command)
            with self.server._changed:
                self.commands.append(command)
                self.server._changed.notify_all()

    def _answer(self, command: dict[str, Any]) -> None:
        cid = command.get("id")
        cmd = command.get("cmd")
        params = command.get("params") or {}
        if cmd == "subscribe":
            markets = list(params.get("market_tickers") or [])
            if params.get("market_ticker"):
                markets.append(params["market_ticker"])
            for channel in params.get("channels") or []:
                sid = self._next_sid
                self._next_sid += 1
                self.subs[sid] = (channel, markets)
                self.send({"id": cid, "type": "subscribed", "msg": {"channel": channel,
                                                                    "sid": sid}})
                if channel == "orderbook_delta":
                    for market in markets:
                        self.send(self.snapshot(sid, market))
        elif cmd == "unsubscribe":
            for sid in params.get("sids") or []:
                if self.subs.pop(sid, None) is None:
                    self.send({"id": cid, "type": "error", "msg": {"code": 7,
                                                                   "msg": "unknown sid"}})
                else:
                    self.send({"id": cid, "sid": sid, "seq": self.next_seq(sid),
                               "type": "unsubscribed"})
        elif cmd == "list_subscriptions":
            self.send({"id": cid, "type": "ok", "msg": [
                {"channel": channel, "sid": sid} for sid, (channel, _) in self.subs.items()]})
        elif cmd == "update_subscription":
            sid = (params.get("sids") or [params.get("sid")])[0]
            markets = list(params.get("market_tickers") or [])
            if params.get("action") == "get_snapshot":
                for market in markets:
                    self.send(self.snapshot(sid, market))
            self.send({"id": cid, "sid": sid, "seq": self.next_seq(sid), "type": "ok",
                       "msg": {"market_tickers": markets}})

    def snapshot(self, sid: int, market: str) -> dict[str, Any]:
        """An orderbook_snapshot of ``market`` (levels from :attr:`book`) with the next seq."""
        levels = self.book.get(market, [["0.4000", "10.00"]])
        return self.data(sid, "orderbook_snapshot", {
            "market_ticker": market, "market_id": f"id-{market}", "yes_dollars_fp": levels})
