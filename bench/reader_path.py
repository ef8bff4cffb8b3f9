"""CPU per frame of the reader's path from a frame's bytes to a queued StreamUpdate.

The bench's own frame mix (:func:`bench.frames.build_frames`: 70% order-book deltas,
20% tickers, 10% trades after one snapshot per market) is fed to a ready protocol in
reads of 128 frames, as the reader does (``kalshi_ws._reader.feed_frames``: learned
shapes first, then JSON decoding and ``KalshiProtocol.receive``), and the deliveries
are drained after each read. No sockets, threads or callbacks: this is the part of
row (c) that the reader thread spends in Python per frame, measured in CPU time of
this process (``time.process_time``), so other processes move it less.

``--against DIR`` times another checkout (``DIR/kalshi_ws``, copied under another
package name) in the same process, runs interleaved. A checkout without
``feed_frames`` is fed as its reader did (decode, then ``receive``)::

    git worktree add /tmp/before main
    python bench/reader_path.py --against /tmp/before [--frames N] [--repeat R]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.frames import CHANNEL_SIDS, build_frames
from bench.measure import compare_checkouts

READ = 128  # frames per read, as the reader's lock slices


class Subject:
    """One package's reader path."""

    def __init__(self, package: str, texts: list[bytes], markets: list[str]) -> None:
        self.name = package
        self.texts = texts
        self.markets = markets
        self.protocol_module = importlib.import_module(package + ".protocol")
        self.wire = importlib.import_module(package + "._wire")
        reader = importlib.import_module(package + "._reader")
        self.feed = getattr(reader, "feed_frames", None)
        shapes = importlib.import_module(package + "._shapes") if self.feed else None
        self.new_shapes = shapes.ShapeDecoder if shapes else None

    def ready(self) -> Any:
        protocol = self.protocol_module.KalshiProtocol()
        for channel, sid in CHANNEL_SIDS.items():
            command_id, _ = protocol.subscribe([channel], self.markets, {})
            protocol.receive({"id": command_id, "type": "subscribed",
                              "msg": {"channel": channel, "sid": sid}})
        protocol.take_deliveries()
        protocol.take_completions()
        protocol.take_outgoing()
        return protocol

    def run(self) -> float:
        """Nanoseconds of CPU per frame for one pass over every frame."""
        protocol = self.ready()
        take, texts = protocol.take_deliveries, self.texts
        delivered = 0
        if self.feed is not None:
            feed, shapes = self.feed, self.new_shapes()  # type: ignore[misc]
            start = time.process_time()
            for first in range(0, len(texts), READ):
                feed(protocol, shapes, texts[first:first + READ])
                delivered += len(take())
        else:
            receive, decode = protocol.receive, self.wire.decode
            start = time.process_time()
            for first in range(0, len(texts), READ):
                for text in texts[first:first + READ]:
                    receive(decode(text))
                delivered += len(take())
        elapsed = time.process_time() - start
        assert delivered == len(texts), (delivered, len(texts))
        return elapsed / len(texts) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    frames = build_frames(args.frames)
    texts = list(frames.payloads())
    markets = list(frames.markets)
    compare_checkouts(lambda package: Subject(package, texts, markets), args.against,
                      args.repeat, "frame", f"{len(texts)} frames")

if __name__ == "__main__":
    main()
