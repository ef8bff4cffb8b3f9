"""The blast server: a minimal WebSocket server on a raw socket, in its own process.

It must never be the bottleneck, so it does as little as possible per frame: the
frames are generated and encoded once (:mod:`bench.frames`), and a connection is
served by a few large ``sendall`` calls of that buffer. Each call sends whole frames
(the batches end at frame boundaries) under the connection's write lock, so a reply
sent meanwhile by the connection's reader thread (a pong, a ``list_subscriptions``
answer) lands between two frames, never inside one. The server side of RFC 6455
is done by hand: the HTTP upgrade, ``Sec-WebSocket-Accept``, reading the client's
masked frames, answering pings, the close handshake. Authentication headers are
accepted without checking.

Each connection says what it wants in the query string of its URL:

* ``?mode=blast&n=N``: once every channel of the frame set (``orderbook_delta``,
  ``ticker``, ``trade``) is subscribed, send the first N frames as fast as the socket
  takes them, then a close frame (1000). ``&batch=B`` sends at most B bytes per
  ``sendall`` (default 1 MiB; always whole frames): a smaller batch lets replies
  through sooner. ``&hold=S`` keeps the connection open after the last frame, up to S
  seconds, until the client closes it (as Kalshi would).
* ``?mode=scale&m=M&n=N``: once ``orderbook_delta`` is subscribed (for the M markets
  of :func:`bench.frames.scale_markets`), send one 20-levels-a-side snapshot per
  market; then, once the client has sent ``list_subscriptions`` (its "books synced,
  go on"), N deltas spread evenly over the markets; then wait up to ``&hold=S``
  seconds (default 10) for the client to close the connection.
* ``?mode=paced&rate=R&n=N``: once ``trade`` is subscribed, send N ``trade`` frames at
  R frames per second, each stamped at send time with ``time.monotonic_ns()`` in its
  ``trade_id``, then close.

Add ``&token=T`` to make a URL single-use: a second connection with the same token is
refused (HTTP 410), so a client that reconnects after the close cannot start another
blast.

Subscribe replies follow Kalshi: one ``subscribed`` per channel, with the command's
id; the sid of a channel is fixed (:data:`bench.frames.CHANNEL_SIDS`).
``list_subscriptions`` is answered at any time (Kalshi's ``ok`` with the array of
subscribed channels); other commands are counted and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .frames import (
    CHANNEL_SIDS,
    FrameSet,
    build_frames,
    build_scale_frames,
    server_frame,
    stamped_trade_frame,
)

__all__ = ["BlastServer", "serve"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK = 1 << 20  # bytes per sendall (at most, unless one frame is larger)
_PATH = "/trade-api/ws/v2"


class _Refused(Exception):
    """The connection is answered with an HTTP error and dropped."""


class _Conn:
    """One accepted client: frame reading (masked) and locked writing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.write_lock = threading.Lock()
        self.closed_by_client = threading.Event()
        self.commands: list[dict[str, Any]] = []
        self.subscribed: dict[str, int] = {}  # channel -> sid, for list_subscriptions
        self.listed = 0  # list_subscriptions answered
        self.asked = threading.Event()  # set at the first list_subscriptions
        self.subscribe_bytes = 0  # size of the largest subscribe command
        self.subscribe_markets = 0  # market tickers in the largest subscribe command

    def read_request(self) -> tuple[str, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF during the handshake")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return target, headers

    def accept(self, key: str) -> None:
        digest = hashlib.sha1(key.encode() + _GUID).digest()
        accept = base64.b64encode(digest).decode()
        self.sock.sendall(
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())

    def refuse(self, status: str) -> None:
        body = status.encode()
        self.sock.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                          f"Connection: close\r\n\r\n".encode() + body)

    def read_frame(self) -> tuple[int, bytes]:
        """One whole message (opcode, unmasked payload); fragments are joined."""
        opcode = 0
        parts: list[bytes] = []
        while True:
            b0, b1 = self._exactly(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exactly(8))[0]
            mask = self._exactly(4) if b1 & 0x80 else b""
            payload = self._exactly(length)
            if mask:
                payload = _unmask(payload, mask)
            op = b0 & 0x0F
            if op >= 0x8:
                return op, payload  # control frames are never fragmented
            if op:
                opcode = op
            parts.append(payload)
            if b0 & 0x80:
                return opcode, b"".join(parts)

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, data: bytes | memoryview) -> None:
        with self.write_lock:
            self.sock.sendall(data)

    def send_json(self, value: dict[str, Any]) -> None:
        self.send(server_frame(json.dumps(value, separators=(",", ":")).encode()))

    def send_batches(self, blob: bytes, ends: list[int], start: int = 0) -> None:
        """Send ``blob`` from ``start`` in batches ending at ``ends`` (frame boundaries),
        each under the write lock: whatever else is sent lands between two frames."""
        view = memoryview(blob)
        for end in ends:
            self.send(view[start:end])
            start = end

    def answer_list(self, command: dict[str, Any]) -> None:
        """Kalshi's reply to ``list_subscriptions``: ``ok`` with an array."""
        self.listed += 1
        self.asked.set()
        self.send_json({"id": command.get("id"), "type": "ok",
                        "msg": [{"channel": c, "sid": s} for c, s in self.subscribed.items()]})


def frame_batches(payload_sizes: list[int], limit: int) -> list[int]:
    """End offsets of batches of whole frames of at most ``limit`` bytes each.

    Args:
        payload_sizes: Payload size of each frame, in order (as :meth:`FrameSet.encode`
            returns them); a frame's header is 2, 4 or 10 bytes (RFC 6455).
        limit: Largest batch; a single larger frame makes a batch of its own.

    Returns:
        Offsets into the encoded buffer where each batch ends (the last is its length).
    """
    ends: list[int] = []
    offset = start = 0
    for size in payload_sizes:
        frame = size + (2 if size < 126 else 4 if size < 1 << 16 else 10)
        if offset + frame - start > limit and offset > start:
            ends.append(offset)
            start = offset
        offset += frame
    if offset > start:
        ends.append(offset)
    return ends


def _unmask(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


class _Server:
    """Serves connections one at a time from one pre-encoded frame set."""

    def __init__(self, frames: FrameSet) -> None:
        self.frames = frames
        self.encoded: dict[int, tuple[bytes, list[int]]] = {}
        self.tokens: set[str] = set()

    def buffer(self, count: int) -> tuple[bytes, list[int]]:
        """The first ``count`` frames, encoded once and kept, and their payload sizes."""
        encoded = self.encoded.get(count)
        if encoded is None:
            encoded = self.frames.encode(count)
            self.encoded = {count: encoded}  # keep one: a 1,000,000-frame buffer is big
        return encoded

    def handle(self, sock: socket.socket) -> dict[str, Any]:
        conn = _Conn(sock)
        sock.settimeout(30.0)
        target, headers = conn.read_request()
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            if split.path != _PATH:
                raise _Refused("404 Not Found")
            token = query.get("token")
            if token is not None:
                if token in self.tokens:
                    raise _Refused("410 Gone")
                self.tokens.add(token)
            key = headers.get("sec-websocket-key")
            if not key or headers.get("upgrade", "").lower() != "websocket":
                raise _Refused("400 Bad Request")
        except _Refused as refusal:
            conn.refuse(str(refusal))
            return {"refused": str(refusal), "token": query.get("token")}
        mode = query.get("mode", "blast")
        count = int(query.get("n", "1000"))
        batch = int(query.get("batch", str(_CHUNK)))
        blob = b""
        built_in = 0.0
        if mode == "blast":
            blob, sizes = self.buffer(count)  # before the 101: encoding is not timed
            ends = frame_batches(sizes, batch)
            needed = set(self.frames.channels)
        elif mode == "scale":
            began = time.monotonic()
            markets = int(query.get("m", "10"))
            blob, sizes = build_scale_frames(markets, count)
            # Snapshots, then (after the client's go) deltas: two runs of batches.
            snapshot_ends = frame_batches(sizes[:markets], batch)
            split = snapshot_ends[-1] if snapshot_ends else 0
            ends = snapshot_ends + [split + end for end in frame_batches(sizes[markets:], batch)]
            built_in = time.monotonic() - began
            needed = {"orderbook_delta"}
        elif mode == "paced":
            needed = {"trade"}
        else:
            conn.refuse("400 Bad Request")
            return {"refused": f"unknown mode {mode!r}", "token": query.get("token")}
        conn.accept(key)
        self._await_subscriptions(conn, needed)
        sock.settimeout(None)
        reader = threading.Thread(target=self._read_rest, args=(conn,), daemon=True)
        reader.start()
        started = time.monotonic()
        hold = query.get("hold", "10" if mode == "scale" else None)
        if mode == "paced":
            self._paced(conn, float(query.get("rate", "1000")), count)
        elif mode == "scale":
            first = len(snapshot_ends)
            conn.send_batches(blob, ends[:first])
            conn.asked.wait(float(hold or 10))  # the client's books are synced
            conn.send_batches(blob, ends[first:], start=split)
        else:
            conn.send_batches(blob, ends)
        sent_in = time.monotonic() - started
        del blob
        if hold is not None:  # the client closes when it has seen everything
            conn.closed_by_client.wait(float(hold))
        try:
            conn.send(server_frame(struct.pack("!H", 1000), 0x8))
        except OSError:
            pass
        conn.closed_by_client.wait(10.0)
        return {"token": query.get("token"), "mode": mode, "frames": count,
                "send_seconds": sent_in, "build_seconds": built_in,
                "client_closed": conn.closed_by_client.is_set(),
                "list_subscriptions": conn.listed,
                "subscribe_bytes": conn.subscribe_bytes,
                "subscribe_markets": conn.subscribe_markets,
                "other_commands": len(conn.commands)}

    @staticmethod
    def _await_subscriptions(conn: _Conn, needed: set[str]) -> None:
        subscribed: set[str] = set()
        while not needed <= subscribed:
            opcode, payload = conn.read_frame()
            if opcode == 0x9:
                conn.send(server_frame(payload, 0xA))
                continue
            if opcode == 0x8:
                raise ConnectionError("client closed before subscribing")
            if opcode != 0x1:
                continue
            command = json.loads(payload)
            if command.get("cmd") == "list_subscriptions":
                conn.answer_list(command)
                continue
            if command.get("cmd") != "subscribe":
                conn.commands.append(command)
                continue
            params = command.get("params", {})
            if len(payload) > conn.subscribe_bytes:
                conn.subscribe_bytes = len(payload)
                conn.subscribe_markets = len(params.get("market_tickers") or ())
            for channel in params.get("channels", []):
                sid = CHANNEL_SIDS.get(channel, 100 + len(subscribed))
                subscribed.add(channel)
                conn.subscribed[channel] = sid
                conn.send_json({"id": command.get("id"), "type": "subscribed",
                                "msg": {"channel": channel, "sid": sid}})

    @staticmethod
    def _read_rest(conn: _Conn) -> None:
        """After the subscriptions: answer pings, note commands, wait for the close."""
        try:
            while True:
                opcode, payload = conn.read_frame()
                if opcode == 0x9:
                    conn.send(server_frame(payload, 0xA))
                elif opcode == 0x8:
                    break
                elif opcode == 0x1:
                    command = json.loads(payload)
                    if command.get("cmd") == "list_subscriptions":
                        conn.answer_list(command)
                    else:
                        conn.commands.append(command)
        except (OSError, ValueError):
            pass
        conn.closed_by_client.set()

    @staticmethod
    def _paced(conn: _Conn, rate: float, count: int) -> None:
        """Send ``count`` stamped trade frames at ``rate`` per second."""
        interval = 1.0 / rate
        monotonic = time.monotonic
        start = monotonic()
        for seq in range(1, count + 1):
            due = start + (seq - 1) * interval
            delay = due - monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.send(stamped_trade_frame(seq, time.monotonic_ns()))


def serve(ready: Any, frame_count: int, seed: int, results: Any) -> None:
    """Process entry point: listen on 127.0.0.1, report the port, serve until killed.

    Args:
        ready: A connection on which ``(port, frame-set summary)`` is sent once the
            frames are built and the socket listens.
        frame_count: Frames in the base set (longer blasts replay it).
        seed: Seed of the frame set.
        results: A queue receiving one dict per served connection.
    """
    frames = build_frames(frame_count, seed)
    server = _Server(frames)
    server.buffer(len(frames))
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    sizes = [len(p) for p in frames.payloads()]
    ready.send((listener.getsockname()[1], {
        "frames": len(frames), "kinds": frames.kinds, "markets": list(frames.markets),
        "channels": frames.channels,
        "seed": seed, "bytes_mean": sum(sizes) / len(sizes),
        "bytes_min": min(sizes), "bytes_max": max(sizes)}))
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            results.put(server.handle(sock))
        except Exception as exc:  # noqa: BLE001 - the server must outlive a bad client
            print(f"blast server: connection failed: {exc!r}", file=sys.stderr)
            if not isinstance(exc, (OSError, ValueError)):
                traceback.print_exc()
            results.put({"error": repr(exc)})
        finally:
            try:
                sock.close()
            except OSError:
                pass


class BlastServer:
    """Runs :func:`serve` in a spawned process; use as a context manager.

    Example::

        with BlastServer(200_000) as server:
            url = server.url("blast", n=200_000)
    """

    def __init__(self, frame_count: int, seed: int = 20261121) -> None:
        self.frame_count = frame_count
        self.seed = seed
        self.port = 0
        self.info: dict[str, Any] = {}
        self._tokens = 0
        context = multiprocessing.get_context("spawn")
        self._results = context.Queue()
        self._ready, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=serve, args=(child_end, frame_count, seed, self._results),
            name="blast-server", daemon=True)

    def __enter__(self) -> BlastServer:  # noqa: PYI034 - final class in practice
        self._process.start()
        if not self._ready.poll(120):
            self._process.kill()
            raise RuntimeError("the blast server did not start")
        self.port, self.info = self._ready.recv()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.kill()
        self._process.join(5)

    def url(self, mode: str = "blast", **params: Any) -> str:
        """A single-use URL for one connection in ``mode``."""
        self._tokens += 1
        query = "&".join(f"{k}={v}" for k, v in
                         {"mode": mode, **params, "token": self._tokens}.items())
        return f"ws://127.0.0.1:{self.port}{_PATH}?{query}"

    def drain(self) -> None:
        """Forget the reports of the connections served so far."""
        while self.last_result(timeout=0.05) is not None:
            pass

    def last_result(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The report of the next finished connection (None if none came in time)."""
        try:
            return self._results.get(timeout=timeout)
        except Exception:  # noqa: BLE001 - queue.Empty, or the process died
            return None
