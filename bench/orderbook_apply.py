"""How many order-book deltas per second one core applies (``OrderBook.apply_delta``).

The stream is generated up front so only the apply is timed: a snapshot of 20 to 100
levels per side, then deltas of which about 70% change an existing level near the
top, 15% open a new level and 15% remove a level, with fractional sizes, on both
sides. The same stream is applied ``--repeat`` times to fresh books; the best and
median runs are printed. There are no thresholds: this reports, it does not judge.

Run from the repository root::

    python bench/orderbook_apply.py [--deltas N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi_ws.models import OrderbookDelta, OrderbookSnapshot
from kalshi_ws.orderbook import OrderBook

MARKET = "KXBENCH-26JAN01-T50"
TICK = Decimal("0.0025")  # a sub-penny grid, so a side can hold 100+ levels
TICKS_BELOW_HALF = range(1, 200)  # bids under $0.50 on both sides: never crossed
MIN_LEVELS, MAX_LEVELS = 20, 100


def _size(rng: random.Random, low: int = 1, high: int = 50_000) -> Decimal:
    """A size in contracts with two decimals, whole about half of the time."""
    hundredths = rng.randint(low, high)
    if rng.random() < 0.5:
        hundredths = max(100, hundredths - hundredths % 100)
    return Decimal(hundredths).scaleb(-2)


def _price(ticks: int) -> Decimal:
    return (TICK * ticks).quantize(Decimal("0.0001"))


def make_stream(
    n_deltas: int, seed: int
) -> tuple[OrderbookSnapshot, list[OrderbookDelta]]:
    """A snapshot and a realistic delta stream that stays valid against it."""
    rng = random.Random(seed)
    books: dict[str, dict[int, Decimal]] = {}
    for side in ("yes", "no"):
        ticks = rng.sample(TICKS_BELOW_HALF, rng.randint(MIN_LEVELS, MAX_LEVELS))
        books[side] = {t: _size(rng) for t in ticks}
    snapshot = OrderbookSnapshot(
        market_ticker=MARKET,
        market_id="bench",
        yes_dollars_fp=tuple((_price(t), s) for t, s in sorted(books["yes"].items())),
        no_dollars_fp=tuple((_price(t), s) for t, s in sorted(books["no"].items())),
    )
    deltas: list[OrderbookDelta] = []
    while len(deltas) < n_deltas:
        side = "yes" if rng.random() < 0.5 else "no"
        book = books[side]
        levels = sorted(book, reverse=True)
        roll = rng.random()
        if roll < 0.70:
            # Change a level near the top (exponentially favouring the best), never
            # down to zero.
            ticks = levels[min(len(levels) - 1, int(rng.expovariate(0.4)))]
            change = _size(rng, 1, 5_000)
            if rng.random() < 0.5 and book[ticks] > change:
                change = -change
            book[ticks] += change
        elif (roll < 0.85 or len(levels) <= MIN_LEVELS) and len(levels) < MAX_LEVELS:
            # A new level: half of the time a better price, else anywhere.
            free = [t for t in TICKS_BELOW_HALF if t not in book]
            better = [t for t in free if t > levels[0]]
            ticks = rng.choice(better if better and rng.random() < 0.5 else free)
            change = _size(rng)
            book[ticks] = change
        else:
            # A level disappears, usually near the top.
            ticks = levels[min(len(levels) - 1, int(rng.expovariate(0.3)))]
            change = -book.pop(ticks)
        deltas.append(OrderbookDelta(
            market_ticker=MARKET, market_id="bench", side=side,
            price_dollars=_price(ticks), delta_fp=change,
        ))
    return snapshot, deltas


def run_once(snapshot: OrderbookSnapshot, deltas: list[OrderbookDelta]) -> float:
    """Apply the stream to a fresh book; return the seconds the deltas took."""
    book = OrderBook(MARKET)
    book.apply_snapshot(snapshot, seq=1)
    apply_delta = book.apply_delta
    gc.disable()
    try:
        start = time.perf_counter()
        for seq, delta in enumerate(deltas, 2):
            apply_delta(delta, seq=seq)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    snapshot, deltas = make_stream(args.deltas, args.seed)
    counts = {"yes": len(snapshot.yes_dollars_fp), "no": len(snapshot.no_dollars_fp)}
    run_once(snapshot, deltas[: min(len(deltas), 10_000)])  # warm up
    rates = [len(deltas) / run_once(snapshot, deltas) for _ in range(args.repeat)]
    sys.stdout.write(
        f"orderbook apply_delta: {len(deltas)} deltas, snapshot {counts['yes']} YES / "
        f"{counts['no']} NO levels, {args.repeat} runs, Python "
        f"{sys.version.split()[0]}\n"
        f"  best   {max(rates):>12,.0f} deltas/s\n"
        f"  median {statistics.median(rates):>12,.0f} deltas/s\n"
    )


if __name__ == "__main__":
    main()
