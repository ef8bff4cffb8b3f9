"""The clients under test. Each runner reads one connection of the blast server.

A runner is a function ``fn(target) -> Result``: it connects to ``target["url"]``,
subscribes to ``target["channels"]`` on ``target["markets"]``, reads until the stream
ends and says how many data messages it got and how long that took (from just before
the subscribe command to the end of the stream). Runners are table-driven
(:data:`THROUGHPUT`, :data:`LATENCY`): adding a client is one function and one row.

The orchestrator (:mod:`bench.run`) runs every runner in a fresh interpreter::

    python -m bench.runners NAME 'TARGET-JSON'

which prints one ``RESULT {...}`` line. Imports of the clients happen inside the
runners, so this module also loads in an interpreter where only a peer client is
installed.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import memory_kb, percentile, summarize_latency

__all__ = ["LATENCY", "MEMORY", "SCALE", "SLOW", "THROUGHPUT", "Result", "Runner", "run_child"]

Target = dict[str, Any]

#: Seconds a runner waits for the end of its stream before giving up.
STREAM_TIMEOUT = 120.0


@dataclass
class Result:
    """What one runner measured.

    Attributes:
        messages: Data messages received (subscribe replies excluded).
        seconds: From just before the subscribe command to the end of the stream.
        extra: Runner-specific details (latency percentiles, memory, queue sizes).
    """

    messages: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Runner:
    """A row of a runner table.

    Attributes:
        key: Short name used on the command line and in the JSON.
        label: What the row measures, for the table.
        fn: The runner.
        available: Returns None when the runner can run here, else why not.
        peer: Runs in the peer interpreter (``--peer-python``) instead of this one.
        pure_python: Runs with ``KALSHI_WS_PURE_PYTHON=1``, set before anything imports
            kalshi_ws (its order-book steps read the variable at import), to show the
            optional C code's gain side by side. Each runner has its own process.
    """

    key: str
    label: str
    fn: Callable[[Target], Result]
    available: Callable[[], str | None] = lambda: None
    peer: bool = False
    pure_python: bool = False


def _subscribe_command(target: Target) -> str:
    return json.dumps({"id": 1, "cmd": "subscribe",
                       "params": {"channels": target["channels"],
                                  "market_tickers": target["markets"]}})


# ---------------------------------------------------------------------- (a), (b): bare loops


_CLOSE_1000 = b"\x88\x02\x03\xe8"  # the server's close frame (code 1000, no reason)


def run_socket_sink(target: Target) -> Result:
    """(s) Server capacity: a raw socket that reads and discards the bytes.

    No WebSocket parsing at all (the stream is ASCII JSON, so the close frame's
    bytes cannot occur inside it); shows how fast the blast server can send.
    """
    import base64
    import os
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(target["url"])
    sock = socket.create_connection((url.hostname, url.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    tail = head.partition(b"\r\n\r\n")[2]
    command = _subscribe_command(target).encode()
    started = time.perf_counter()
    sock.sendall(bytes([0x81, 0x80 | 126]) + len(command).to_bytes(2, "big")
                 + b"\0\0\0\0" + command)  # a zero mask leaves the payload as it is
    buffer = bytearray(1 << 20)
    received = len(tail)
    while not tail.endswith(_CLOSE_1000):
        size = sock.recv_into(buffer)
        if not size:
            break
        received += size
        tail = (tail + bytes(buffer[max(0, size - 8):size]))[-8:]
    elapsed = time.perf_counter() - started
    sock.sendall(b"\x88\x82\0\0\0\0\x03\xe8")
    sock.close()
    return Result(target["expected"], elapsed,
                  {"bytes": received, "mb_per_s": received / elapsed / 1e6,
                   "note": "frames not parsed: count is the number sent"})



def run_websocket_client(target: Target) -> Result:
    """(a) The ceiling: websocket-client's own ``recv()`` loop, nothing else."""
    import websocket

    ws = websocket.create_connection(target["url"], skip_utf8_validation=True,
                                     suppress_origin=True)
    started, cpu = time.perf_counter(), time.process_time()
    ws.send(_subscribe_command(target))
    received = 0
    recv = ws.recv
    while recv():  # "" once the server's close frame arrives
        received += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ws.close()
    return Result(received - len(target["channels"]), elapsed, {"cpu_s": cpu})


def run_websockets_sync(target: Target) -> Result:
    """(b) Reference: the ``websockets`` sync client's ``recv()`` loop."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws = connect(target["url"], compression=None, max_size=None)
    started, cpu = time.perf_counter(), time.process_time()
    ws.send(_subscribe_command(target))
    received = 0
    recv = ws.recv
    try:
        while True:
            recv()
            received += 1
    except ConnectionClosed:
        pass
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ws.close()
    return Result(received - len(target["channels"]), elapsed, {"cpu_s": cpu})


# ---------------------------------------------------------------------- kalshi_ws


def _kalshi_connect(target: Target, no_ping: bool = True, **options: Any) -> Any:
    from kalshi_ws import HealthConfig, KalshiConfig, KalshiStreamClient

    config = KalshiConfig.from_key_file("bench", target["key_path"], ws_url=target["url"])
    health = HealthConfig(ping_interval=None) if target.get("no_ping", no_ping) else None
    return KalshiStreamClient.connect(config, health=health, **options)


class _Counter:
    """The callback of runners (c) and (e): reads two fields of each update.

    Every 1,000 updates it also notes the dispatcher's backlog, and the memory when
    the count reaches ``mark_at`` (a multiple of 1,000).
    """

    def __init__(self, client: Any, mark_at: int = 0) -> None:
        from kalshi_ws import StreamUpdate

        self.update_type = StreamUpdate
        self.count = 0
        self.ended_at = 0.0
        self.cpu_at_end = 0.0
        self.final: Any = None
        self.done = threading.Event()
        self.peak_backlog = 0
        # Private, read only every 10,000 updates: how far the callbacks lag.
        # (kalshi_ws keeps it on its session; versions before 2026-11-30 on the client.)
        session = getattr(client, "_session", None)
        self._dispatcher = getattr(session, "dispatcher", None) or getattr(
            client, "_dispatcher", None)
        self.mark_at = mark_at
        self.mark: dict[str, int] | None = None

    def __call__(self, item: Any) -> None:
        if type(item) is self.update_type:
            item.seq  # noqa: B018 - the two field reads being measured
            item.msg.market_ticker  # noqa: B018
            self.count += 1
            if not self.count % 1000:
                self._sample()
        elif getattr(item, "final", False):
            self.ended_at = time.perf_counter()
            self.cpu_at_end = time.process_time()  # every thread of this process
            self.final = item
            self.done.set()

    def _sample(self) -> None:
        if self._dispatcher is not None:
            self.peak_backlog = max(self.peak_backlog, self._dispatcher.backlog)
        if self.count == self.mark_at:
            self.mark = memory_kb()


def _final_text(item: Any) -> str:
    """How the stream ended, e.g. ``Closed(code=1000)``."""
    if item is None:
        return "no final message (timed out)"
    return f"{type(item).__name__}(code={getattr(item, 'code', None)})"


def run_kalshi_callback(target: Target) -> Result:
    """(c) kalshi_ws typed StreamUpdates to a callback reading two fields."""
    client = _kalshi_connect(target, queue=False, max_pending=target["max_pending"])
    counter = _Counter(client)
    client.add_callback(counter)
    started, cpu = time.perf_counter(), time.process_time()
    client.subscribe(target["channels"], target["markets"])
    counter.done.wait(STREAM_TIMEOUT)
    client.close()
    return Result(counter.count, counter.ended_at - started,
                  {"final": _final_text(counter.final), "peak_backlog": counter.peak_backlog,
                   "max_pending": target["max_pending"], "cpu_s": counter.cpu_at_end - cpu})


def run_kalshi_queue(target: Target) -> Result:
    """(d) kalshi_ws through the ``updates`` queue to a consumer thread."""
    from kalshi_ws import StreamUpdate

    size = target["max_pending"]
    client = _kalshi_connect(target, queue=True, queue_maxsize=size, max_pending=size)
    state: dict[str, Any] = {"count": 0, "ended_at": 0.0, "final": None, "peak_queue": 0}

    def consume() -> None:
        get = client.updates.get
        qsize = client.updates.qsize
        count = 0
        while True:
            item = get()
            if type(item) is StreamUpdate:
                item.seq  # noqa: B018 - the two field reads being measured
                item.msg.market_ticker  # noqa: B018
                count += 1
                if not count % 10_000:
                    state["peak_queue"] = max(state["peak_queue"], qsize())
            elif getattr(item, "final", False):
                state["ended_at"] = time.perf_counter()
                state["cpu_at_end"] = time.process_time()
                state["final"] = item
                break
        state["count"] = count

    consumer = threading.Thread(target=consume, name="bench-consumer")
    consumer.start()
    started, cpu = time.perf_counter(), time.process_time()
    client.subscribe(target["channels"], target["markets"])
    consumer.join(STREAM_TIMEOUT)
    client.close()
    return Result(state["count"], state["ended_at"] - started,
                  {"final": _final_text(state["final"]), "peak_queue": state["peak_queue"],
                   "queue_maxsize": size, "max_pending": size,
                   "cpu_s": state.get("cpu_at_end", cpu) - cpu})


def _orderbooks_missing() -> str | None:
    try:
        from kalshi_ws import KalshiStreamClient
    except ImportError as exc:  # pragma: no cover - the bench needs kalshi_ws
        return f"kalshi_ws does not import: {exc}"
    if not hasattr(KalshiStreamClient, "orderbooks"):
        return "n/a (OrderBookSet not available)"
    return None


def run_kalshi_orderbooks(target: Target) -> Result:
    """(e) kalshi_ws into order books: ``client.orderbooks(markets)`` applies every
    snapshot and delta (and cross-checks tickers), plus the counting callback.

    Hook: this row runs when ``KalshiStreamClient.orderbooks`` exists.
    """
    from kalshi_ws import Channel

    client = _kalshi_connect(target, queue=False, max_pending=target["max_pending"])
    counter = _Counter(client)
    client.add_callback(counter)
    started, cpu = time.perf_counter(), time.process_time()
    books = client.orderbooks(target["markets"])
    others = [c for c in target["channels"] if c != Channel.ORDERBOOK_DELTA.value]
    if others:
        client.subscribe(others, target["markets"])
    counter.done.wait(STREAM_TIMEOUT)
    ended = counter.ended_at
    levels = sum(len(books.get(m).yes_bids) + len(books.get(m).no_bids)
                 for m in target["markets"])
    cross = books.cross_check()
    client.close()
    return Result(counter.count, ended - started,
                  {"final": _final_text(counter.final), "peak_backlog": counter.peak_backlog,
                   "max_pending": target["max_pending"], "book_levels_at_end": levels,
                   "cpu_s": counter.cpu_at_end - cpu,
                   "resyncs": books.resyncs, "ticker_checks": cross.checked,
                   "ticker_disagreements": cross.disagreements})


# ---------------------------------------------------------------------- (f) peers


def _pykalshi_missing() -> str | None:
    try:
        import pykalshi  # noqa: F401
    except ImportError:
        return "pykalshi is not installed in this interpreter"
    return None


def run_pykalshi(target: Target) -> Result:
    """(f) pykalshi 2.x ``Feed``: websockets asyncio client on a background thread,
    pydantic models, handlers per channel.

    The Feed has no URL option: the private ``_ws_url`` is set after construction.
    It has no end-of-stream event either (it reconnects after a close), so the run
    ends when the expected count has arrived (or after 3 s without a message).
    """
    from pykalshi import KalshiClient

    client = KalshiClient(api_key_id="bench", private_key_path=target["key_path"],
                          api_base="http://127.0.0.1:9/trade-api/v2")
    feed = client.feed()
    feed._ws_url = target["url"]
    expected = target["expected"]
    state = {"count": 0, "last": 0.0}
    done = threading.Event()

    def handler(msg: Any) -> None:
        msg.market_ticker  # noqa: B018 - the two field reads being measured
        getattr(msg, "ts_ms", None)
        state["count"] += 1
        if state["count"] >= expected:
            state["last"] = time.perf_counter()
            done.set()

    for channel in target["channels"]:
        feed.on(channel, handler)
        feed.subscribe(channel, market_tickers=list(target["markets"]))
    started = time.perf_counter()
    feed.start()
    seen = -1
    while not done.wait(3.0) and state["count"] != seen:
        seen = state["count"]
    if not done.is_set():
        state["last"] = time.perf_counter() - 3.0
    feed.stop()
    return Result(state["count"], state["last"] - started,
                  {"note": "subscribes each channel with its own command (as Feed does); "
                           "timed from feed.start()"})


# ---------------------------------------------------------------------- latency


def latency_websocket_client(target: Target) -> Result:
    """Latency floor: websocket-client ``recv()`` return minus the server's stamp."""
    import websocket

    ws = websocket.create_connection(target["url"], skip_utf8_validation=True,
                                     suppress_origin=True)
    samples: list[int] = []
    started = time.perf_counter()
    ws.send(_subscribe_command(target))
    now_ns = time.monotonic_ns
    loads = json.loads
    while True:
        text = ws.recv()
        now = now_ns()
        if not text:
            break
        frame = loads(text)
        if frame.get("type") == "trade":
            samples.append(now - int(frame["msg"]["trade_id"]))
    elapsed = time.perf_counter() - started
    ws.close()
    return Result(len(samples), elapsed, summarize_latency(samples))


def _kalshi_latency(target: Target, use_queue: bool) -> Result:
    from kalshi_ws import StreamUpdate

    size = target["max_pending"]
    client = _kalshi_connect(target, queue=use_queue, queue_maxsize=size, max_pending=size)
    samples: list[int] = []
    done = threading.Event()
    now_ns = time.monotonic_ns

    def on_item(item: Any) -> None:
        now = now_ns()
        if type(item) is StreamUpdate:
            samples.append(now - int(item.msg.trade_id))
        elif getattr(item, "final", False):
            done.set()

    if use_queue:
        def consume() -> None:
            for item in client.iter_updates():
                on_item(item)
        consumer = threading.Thread(target=consume, name="bench-consumer")
        consumer.start()
    else:
        client.add_callback(on_item)
    started = time.perf_counter()
    client.subscribe(target["channels"], target["markets"])
    done.wait(STREAM_TIMEOUT)
    elapsed = time.perf_counter() - started
    client.close()
    return Result(len(samples), elapsed, summarize_latency(samples))


def latency_kalshi_callback(target: Target) -> Result:
    """kalshi_ws: callback entry minus the server's stamp."""
    return _kalshi_latency(target, use_queue=False)


def latency_kalshi_queue(target: Target) -> Result:
    """kalshi_ws: ``updates.get()`` return in a consumer thread minus the stamp."""
    return _kalshi_latency(target, use_queue=True)


# ---------------------------------------------------------------------- memory


def memory_kalshi_callback(target: Target) -> Result:
    """(c) over a long stream, watching RSS and threads."""
    threads_before = threading.active_count()
    client = _kalshi_connect(target, queue=False, max_pending=target["max_pending"])
    after_connect = memory_kb()
    mark_at = target["mark_at"]
    counter = _Counter(client, mark_at=mark_at)
    client.add_callback(counter)
    started = time.perf_counter()
    client.subscribe(target["channels"], target["markets"])
    counter.done.wait(STREAM_TIMEOUT * 3)
    at_end = memory_kb()
    client.close()
    gc.collect()
    after_close = memory_kb()
    threads_after = threading.active_count()
    mark = counter.mark or {"rss": 0, "hwm": 0}
    return Result(counter.count, counter.ended_at - started, {
        "final": _final_text(counter.final),
        "mark_at": mark_at,
        "rss_after_connect_kb": after_connect["rss"],
        "rss_at_mark_kb": mark["rss"],
        "rss_at_end_kb": at_end["rss"],
        "rss_after_close_kb": after_close["rss"],
        "peak_rss_kb": after_close["hwm"],
        "growth_after_mark_kb": at_end["rss"] - mark["rss"] if mark["rss"] else None,
        "threads_before": threads_before,
        "threads_after_close": threads_after,
        "peak_backlog": counter.peak_backlog,
        "max_pending": target["max_pending"],
    })


# ---------------------------------------------------------------------- slow consumer


def slow_consumer(target: Target) -> Result:
    """(g) A stuck callback, a full buffer and a flood of mixed traffic.

    The callback blocks on its first update until the stream has been read (it never
    returns before), so the dispatcher's buffer fills to ``max_pending`` and every
    later update makes room under ``overflow="drop_oldest"`` (every channel). Meanwhile
    a thread sends ``list_subscriptions`` every ``command_every`` seconds and times
    each round trip. The main thread polls ``client.stats()`` to see how far the
    reader got. Pings are on (the default health settings): a reader that stalls
    shows as a lost connection.

    Reported: the time the reader took for the whole blast, the time per message
    once the buffer was full (the cost of making room), and the command round trips.
    """
    from kalshi_ws import CommandTimeout, KalshiWSError

    expected = target["expected"]
    limit = target["slow_timeout"]
    release = threading.Event()
    stuck_on: list[float] = []

    def stuck(item: Any) -> None:
        if not stuck_on:
            stuck_on.append(time.perf_counter())
        release.wait(limit + 30.0)  # never returns before the stream has been read

    client = _kalshi_connect(target, queue=False, overflow="drop_oldest",
                             max_pending=target["slow_max_pending"], no_ping=False)
    client.add_callback(stuck)
    rtts: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def commands() -> None:  # at least one, then every command_every seconds
        while True:
            began = time.perf_counter()
            try:
                client.list_subscriptions(timeout=10.0)
            except CommandTimeout:
                failures.append("timeout")
                rtts.append(time.perf_counter() - began)
            except KalshiWSError as exc:  # the connection ended: stop asking
                failures.append(type(exc).__name__)
                return
            else:
                rtts.append(time.perf_counter() - began)
            if done.wait(target["command_every"]):
                return

    started = time.perf_counter()
    client.subscribe(target["channels"], target["markets"])
    asker = threading.Thread(target=commands, name="bench-commands")
    asker.start()
    full_at: tuple[float, int] | None = None
    samples = 0
    received = 0
    deadline = started + limit
    while time.perf_counter() < deadline:
        stats = client.stats()
        received = sum(c.received for c in stats.channels.values())
        now = time.perf_counter()
        samples += 1
        if full_at is None and stats.pending >= target["slow_max_pending"]:
            full_at = (now, received)
        if received >= expected or client.closed:
            break
        time.sleep(0.02)
    ended = time.perf_counter()
    finished = received >= expected
    done.set()
    asker.join(15.0)
    stats = client.stats()
    release.set()
    final = client.close_reason
    client.close(timeout=5.0)
    total = stats.total()
    per_message_us = None
    if full_at is not None and received > full_at[1]:
        per_message_us = (ended - full_at[0]) / (received - full_at[1]) * 1e6
    ordered = sorted(rtts)
    extra: dict[str, Any] = {
        "finished": finished, "timeout_s": limit, "expected": expected,
        "max_pending": target["slow_max_pending"],
        "full_after_s": None if full_at is None else full_at[0] - started,
        "received_when_full": None if full_at is None else full_at[1],
        "per_message_us_full": per_message_us,
        "per_message_us_overall": (ended - started) / received * 1e6 if received else None,
        "dropped": total.dropped, "held_back": total.held_back,
        "delivered": total.delivered, "pending_at_end": stats.pending,
        "commands": len(rtts), "command_failures": failures,
        "rtt_p50_ms": percentile(ordered, 0.5) * 1e3 if ordered else None,
        "rtt_p99_ms": percentile(ordered, 0.99) * 1e3 if ordered else None,
        "rtt_max_ms": ordered[-1] * 1e3 if ordered else None,
        "connection_end": None if final is None else repr(final)[:200],
        "callback_stuck": bool(stuck_on), "stats_samples": samples,
    }
    return Result(received, ended - started, extra)


# ---------------------------------------------------------------------- scale


def _settled_memory() -> dict[str, int]:
    """RSS after a full collection and, on glibc, ``malloc_trim(0)``: memory that is
    free but still held by the allocator (left by a burst of messages) is given back,
    so what remains is what lives."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return memory_kb()


def scale_books(target: Target) -> Result:
    """Order books for M markets: subscribe, snapshots, then N deltas into books.

    The server answers one ``orderbook_delta`` subscribe for the M markets of
    :func:`bench.frames.scale_markets` and sends a 20-levels-a-side snapshot per
    market. Once ``wait_synced()`` has returned, the runner notes the memory and sends
    ``list_subscriptions``, on which the server sends N deltas spread evenly. Measured:
    how long ``client.orderbooks(markets)`` takes (the subscribe), how long until
    ``wait_synced()`` returns, deltas per second into the books (from the command to
    the last delta seen by a callback that runs after the books applied it: reader and
    dispatcher together), and RSS per book once synced and again once the deltas are
    applied. Everything is bounded by ``scale_timeout``.
    """
    from bench.frames import scale_markets
    from kalshi_ws import StreamUpdate

    markets = scale_markets(target["markets_count"])
    deltas = target["deltas"]
    limit = target["scale_timeout"]
    state = {"snapshots": 0, "deltas": 0, "last_delta": 0.0, "last_snapshot": 0.0}
    ended = threading.Event()

    def count(item: Any) -> None:
        if type(item) is StreamUpdate:
            if item.type == "orderbook_delta":
                state["deltas"] += 1
                if state["deltas"] == deltas:
                    state["last_delta"] = time.perf_counter()
                    ended.set()
            elif item.type == "orderbook_snapshot":
                state["snapshots"] += 1
                state["last_snapshot"] = time.perf_counter()
        elif getattr(item, "final", False):
            ended.set()

    before = _settled_memory()
    client = _kalshi_connect(target, queue=False, max_pending=target["max_pending"],
                             timeout=60.0)
    after_connect = _settled_memory()
    started = time.perf_counter()
    deadline = started + limit
    extra: dict[str, Any] = {"markets": len(markets), "deltas": deltas, "timeout_s": limit,
                             "rss_before_kb": before["rss"],
                             "rss_after_connect_kb": after_connect["rss"]}
    synced = False
    go = 0.0
    try:
        books = client.orderbooks(markets, timeout=limit)
        extra["subscribe_s"] = time.perf_counter() - started
        # Registered after the books' own callback: it sees a delta once it is applied.
        client.add_callback(count)
        synced = books.wait_synced(timeout=max(0.0, deadline - time.perf_counter()))
        if synced:
            extra["synced_s"] = time.perf_counter() - started
            synced_memory = _settled_memory()
            extra["rss_synced_kb"] = synced_memory["rss"]
            extra["rss_per_book_kib"] = (synced_memory["rss"] - after_connect["rss"]) / len(
                markets)
            go = time.perf_counter()
            client.list_subscriptions(timeout=max(0.1, deadline - go))  # deltas, please
            ended.wait(max(0.0, deadline - time.perf_counter()))
            if state["deltas"] == deltas:
                # Every book has now moved past its snapshot (one side or both changed).
                moved = _settled_memory()
                extra["rss_per_book_after_deltas_kib"] = (
                    moved["rss"] - after_connect["rss"]) / len(markets)
            extra["book_levels_first_1000"] = sum(
                len(books.get(m).yes_bids) + len(books.get(m).no_bids) for m in markets[:1000])
    except Exception as exc:  # noqa: BLE001 - report what the client did
        extra["error"] = f"{type(exc).__name__}: {exc}"[:300]
    stopped = time.perf_counter()
    finished = synced and state["deltas"] == deltas
    extra.update(finished=finished, synced=synced, snapshots_seen=state["snapshots"],
                 deltas_seen=state["deltas"], seconds_total=stopped - started)
    if go and state["deltas"]:
        last = state["last_delta"] or stopped
        extra["deltas_per_s"] = state["deltas"] / max(1e-9, last - go)
    if state["last_snapshot"]:
        extra["snapshots_done_s"] = state["last_snapshot"] - started
    extra["peak_rss_kb"] = memory_kb()["hwm"]
    client.close(timeout=5.0)
    return Result(state["deltas"], stopped - started, extra)


def _compiled_parser() -> bool:
    """Whether this process's clients use any of the C speed-ups: a client's own (chosen
    when it is made) or the order books' (chosen when kalshi_ws was imported)."""
    import kalshi_ws
    from kalshi_ws import orderbook

    return bool(kalshi_ws.speedups()) or \
        orderbook._changed_side is not orderbook._changed_side_in_python


# ---------------------------------------------------------------------- tables

THROUGHPUT: tuple[Runner, ...] = (
    Runner("s", "raw socket sink, no parsing (server capacity)", run_socket_sink),
    Runner("a", "websocket-client bare recv() loop (ceiling)", run_websocket_client),
    Runner("b", "websockets sync client bare recv() loop", run_websockets_sync),
    Runner("c", "kalshi_ws typed updates -> callback", run_kalshi_callback),
    Runner("d", "kalshi_ws typed updates -> updates queue -> thread", run_kalshi_queue),
    Runner("e", "kalshi_ws -> OrderBookSet (books + callback)", run_kalshi_orderbooks,
           _orderbooks_missing),
    Runner("f", "pykalshi 2.x Feed (threaded, peer)", run_pykalshi, _pykalshi_missing,
           peer=True),
    Runner("c-py", "(c) without the C speed-ups (pure Python)", run_kalshi_callback,
           pure_python=True),
    Runner("d-py", "(d) without the C speed-ups (pure Python)", run_kalshi_queue,
           pure_python=True),
    Runner("e-py", "(e) without the C speed-ups (pure Python)", run_kalshi_orderbooks,
           _orderbooks_missing, pure_python=True),
)

LATENCY: tuple[Runner, ...] = (
    Runner("a", "websocket-client recv() (floor)", latency_websocket_client),
    Runner("c", "kalshi_ws callback entry", latency_kalshi_callback),
    Runner("d", "kalshi_ws updates queue get()", latency_kalshi_queue),
)

MEMORY = Runner("c", "kalshi_ws callback, long stream", memory_kalshi_callback)

SLOW = Runner("g", "kalshi_ws stuck callback, full buffer, drop_oldest", slow_consumer)

SCALE = Runner("m", "kalshi_ws OrderBookSet for M markets", scale_books, _orderbooks_missing)

_ALL = {f"throughput.{r.key}": r for r in THROUGHPUT} | \
    {f"latency.{r.key}": r for r in LATENCY} | {f"memory.{MEMORY.key}": MEMORY} | \
    {f"slow.{SLOW.key}": SLOW, f"scale.{SCALE.key}": SCALE}


def run_child(name: str, target: Target) -> dict[str, Any]:
    """Run one runner here and now; the dict that the child prints."""
    runner = _ALL[name]
    if runner.pure_python:
        os.environ["KALSHI_WS_PURE_PYTHON"] = "1"
    missing = runner.available()
    if missing is not None:
        return {"skipped": missing}
    result = runner.fn(target)
    extra = result.extra
    if runner in THROUGHPUT and runner.key[0] in "cde":
        extra = {**extra, "c_parser": _compiled_parser()}
    return {"messages": result.messages, "seconds": result.seconds, "extra": extra}


def main(argv: list[str]) -> int:
    """``python -m bench.runners NAME TARGET-JSON``: run one runner, print its result."""
    if len(argv) != 2 or argv[0] not in _ALL:
        print(f"usage: python -m bench.runners {{{','.join(_ALL)}}} TARGET-JSON",
              file=sys.stderr)
        return 2
    outcome = run_child(argv[0], json.loads(argv[1]))
    print("RESULT " + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
