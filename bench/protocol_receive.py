"""How long ``KalshiProtocol.receive`` takes per data frame (the reader's hot path).

Frames are decoded up front, so only ``receive`` (and the drain the client makes after
each batch of 500) is timed: half ``orderbook_delta`` frames for 20 books in sync on one
sid, half ``ticker`` frames on another, every seq in order. CPU time of this process is
measured (``time.process_time``), so other processes on the machine move the numbers
less. There are no thresholds: this reports, it does not judge.

``--against DIR`` times another checkout's protocol (``DIR/kalshi_ws``, copied under
another package name) in the same process, runs interleaved, so that a change can be
compared with the code before it in one sitting::

    git worktree add /tmp/before main
    python bench/protocol_receive.py --against /tmp/before [--frames N] [--repeat R]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKETS = [f"M{i}" for i in range(20)]


def frame_texts(count: int) -> list[str]:
    texts = []
    for i in range(count // 2):
        market = MARKETS[i % len(MARKETS)]
        texts.append(json.dumps({
            "type": "orderbook_delta", "sid": 1, "seq": len(MARKETS) + i + 1,
            "msg": {"market_ticker": market, "market_id": "x", "price_dollars": "0.4100",
                    "delta_fp": "12.00", "side": "yes", "ts": "2026-11-30T06:00:00Z"}}))
        texts.append(json.dumps({
            "type": "ticker", "sid": 2, "seq": i + 1,
            "msg": {"market_ticker": market, "market_id": "x", "price_dollars": "0.4100",
                    "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4200",
                    "volume_fp": "1000.00", "open_interest_fp": "500.00", "ts": 1764482400}}))
    return texts


class Subject:
    """One package's protocol, with the frames decoded by that package."""

    def __init__(self, package: str, texts: list[str]) -> None:
        self.name = package
        wire = importlib.import_module(package + "._wire")
        self.protocol = importlib.import_module(package + ".protocol")
        self.frames = [wire.decode(text) for text in texts]

    def ready(self) -> Any:
        p = self.protocol.KalshiProtocol()
        for channel, sid in (("orderbook_delta", 1), ("ticker", 2)):
            command_id, _ = p.subscribe([channel], MARKETS, {})
            p.receive({"id": command_id, "type": "subscribed",
                       "msg": {"channel": channel, "sid": sid}})
        for seq, market in enumerate(MARKETS, 1):
            p.receive({"type": "orderbook_snapshot", "sid": 1, "seq": seq,
                       "msg": {"market_ticker": market, "market_id": "x",
                               "yes_dollars_fp": [["0.40", "10.00"]]}})
        p.take_deliveries()
        p.take_completions()
        p.take_outgoing()
        return p

    def run(self) -> float:
        """Nanoseconds of CPU per frame for one pass over every frame."""
        protocol = self.ready()
        receive, take, frames = protocol.receive, protocol.take_deliveries, self.frames
        start = time.process_time()
        for first in range(0, len(frames), 500):
            for frame in frames[first:first + 500]:
                receive(frame)
            delivered = take()
        elapsed = time.process_time() - start
        assert delivered and not any(type(u.msg).__name__ == "MalformedMessage"
                                     for u in delivered)
        return elapsed / len(frames) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    texts = frame_texts(args.frames)
    from bench.measure import compare_checkouts  # importable once ROOT is on the path

    compare_checkouts(lambda package: Subject(package, texts), args.against, args.repeat,
                      "frame", f"{len(texts)} frames")

if __name__ == "__main__":
    main()
