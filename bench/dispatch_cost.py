"""CPU per update of the two steps after the protocol: freshness and the dispatcher.

Both run for every delivered update: :meth:`FreshnessTracker.observe` on the reader
thread (once per read, over the read's updates) and the :class:`Dispatcher` thread,
which takes the updates the reader posts and calls the callbacks. With the GIL, their
CPU adds to the reader's, so this reports nanoseconds of CPU per update
(``time.process_time``: the whole process, both threads, not the wall clock):

* ``freshness``: ``observe`` over batches of ``--batch`` updates;
* ``dispatch backlog``: ``post`` of every batch while the dispatcher is held in a
  callback, then every update delivered to one callback (the dispatcher takes its
  batches from a long inbox, as when the reader is ahead: row (c) of the benchmark);
* ``dispatch live``: ``post`` and delivery at the same time (short inbox; thread
  switches included, so this one is noisier);
* ``dispatch + queue``: as ``dispatch backlog``, with the updates queue on (it is by
  default): every update is also put in the queue (never read here).

The updates are decoded by each package's own protocol from :func:`bench.frames.build_frames`
(deltas, tickers and trades on 8 markets, as the blast server sends them).

``--against DIR`` times another checkout (``DIR/kalshi_ws``, copied under another
package name) in the same process, runs interleaved, so that a change can be compared
with the code before it in one sitting::

    python bench/dispatch_cost.py --against /work/main [--updates N] [--repeat R]

There are no thresholds: this reports, it does not judge. Each run's results (the
freshness snapshot, the order of delivered updates) must be the same for every package.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = {"orderbook_delta": 1, "ticker": 2, "trade": 3}
WAIT = 60.0


def updates_of(package: str, payloads: list[bytes], markets: list[str]) -> list[Any]:
    """The stream updates ``package``'s protocol makes of ``payloads``."""
    wire = importlib.import_module(package + "._wire")
    protocol = importlib.import_module(package + ".protocol").KalshiProtocol()
    for channel, sid in CHANNELS.items():
        command_id, _ = protocol.subscribe([channel], markets, {})
        protocol.receive({"id": command_id, "type": "subscribed",
                          "msg": {"channel": channel, "sid": sid}})
    protocol.take_deliveries()
    for payload in payloads:
        protocol.receive(wire.decode(payload))
    updates = protocol.take_deliveries()
    malformed = [u for u in updates if type(u.msg).__name__ == "MalformedMessage"]
    assert not malformed and len(updates) == len(payloads), (len(updates), malformed[:1])
    return updates


class Subject:
    """One package's freshness tracker and dispatcher, with updates of its own."""

    def __init__(self, package: str, payloads: list[bytes], markets: list[str],
                 batch: int) -> None:
        self.name = package
        self.freshness = importlib.import_module(package + ".freshness")
        self.dispatch = importlib.import_module(package + "._dispatch")
        self.models = importlib.import_module(package + ".models")
        updates = updates_of(package, payloads, markets)
        self.batches = [updates[i:i + batch] for i in range(0, len(updates), batch)]
        self.count = len(updates)
        self.received_ms = max(getattr(u.msg, "ts_ms", 0) or 0 for u in updates) + 40

    def run_freshness(self) -> tuple[float, Any]:
        """ns of CPU per update for ``observe`` over every batch; the snapshot made."""
        tracker = self.freshness.FreshnessTracker()
        observe, received_ms = tracker.observe, self.received_ms
        now = 1000.0
        start = time.process_time()
        for batch in self.batches:
            observe(batch, received_ms, now)
            now += 0.001
        elapsed = time.process_time() - start
        channels, books = tracker.snapshot(now)
        summary = {k: repr(v) for k, v in {**channels, **books}.items()}
        return elapsed / self.count * 1e9, summary

    def run_dispatch(self, held: bool, queue: bool = False) -> tuple[float, Any]:
        """ns of CPU per update from ``post`` to the callback; what the callback saw."""
        release = threading.Event()
        done = threading.Event()
        seen: list[Any] = []
        append = seen.append
        update_class = self.models.StreamUpdate

        def callback(item: Any) -> None:
            if type(item) is update_class:
                append(item)
            elif getattr(item, "sid", 0) == -1:
                release.wait(WAIT)
            elif getattr(item, "final", False):
                done.set()

        dispatcher = self.dispatch.Dispatcher(
            name="kalshi-ws-bench-dispatch", inbox_limit=self.count + 2,
            policy=lambda channel: "drop_oldest", on_overflow=lambda text: None,
            queue_maxsize=self.count + 2)
        dispatcher.queue_enabled = queue
        dispatcher.add_callback(callback, None)
        if held:  # the dispatcher waits in the callback while everything is posted
            holder = self.models.Unsubscribed(channel="ticker", sid=-1)
            dispatcher.post([holder])
        post = dispatcher.post
        start = time.process_time()
        for batch in self.batches:
            post(batch)
        release.set()
        dispatcher.post_final(self.models.Closed(reason="bench"), None)
        assert done.wait(WAIT) and dispatcher.join(WAIT)
        elapsed = time.process_time() - start
        assert len(seen) == self.count
        if queue:  # filled, never read: the holder, the updates, the final item
            assert dispatcher.queue.qsize() == self.count + 2
        return elapsed / self.count * 1e9, [id(u) for u in seen] == [
            id(u) for batch in self.batches for u in batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=800,
                        help="updates per read (row (c) posts about 800 at a time)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--rows", default="freshness,dispatch backlog,dispatch live,"
                        "dispatch + queue",
                        help="comma-separated rows to run (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.frames import build_frames

    frames = build_frames(args.updates)
    payloads = list(frames.payloads(args.updates))
    markets = list(frames.markets)
    subjects = [Subject("kalshi_ws", payloads, markets, args.batch)]
    with tempfile.TemporaryDirectory() as scratch:
        if args.against is not None:
            shutil.copytree(args.against / "kalshi_ws", Path(scratch) / "kalshi_ws_against")
            sys.path.insert(0, scratch)
            subjects.append(Subject("kalshi_ws_against", payloads, markets, args.batch))
        rows = {"freshness": lambda s: s.run_freshness(),
                "dispatch backlog": lambda s: s.run_dispatch(held=True),
                "dispatch live": lambda s: s.run_dispatch(held=False),
                "dispatch + queue": lambda s: s.run_dispatch(held=True, queue=True)}
        rows = {row: rows[row] for row in args.rows.split(",")}
        times: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.repeat):
            for row, run in rows.items():
                results = []
                for subject in subjects if rep % 2 == 0 else subjects[::-1]:
                    ns, result = run(subject)
                    times.setdefault((row, subject.name), []).append(ns)
                    results.append(result)
                assert all(r == results[0] for r in results), f"{row}: results differ"
                if row.startswith("dispatch"):
                    assert results[0] is True, f"{row}: updates delivered out of order"
    print(f"{args.repeat} interleaved runs of {subjects[0].count} updates, "
          f"{args.batch} per batch; ns of CPU per update (best / median)")
    for row in rows:
        for subject in subjects:
            runs = times[(row, subject.name)]
            label = "this checkout" if subject.name == "kalshi_ws" else str(args.against)
            print(f"  {row:17} {label:20} {min(runs):6.0f} / {statistics.median(runs):6.0f}")


if __name__ == "__main__":
    main()
