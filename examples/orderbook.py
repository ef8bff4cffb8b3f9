"""Keep exact local order books and print the top of book as it moves.

    python examples/orderbook.py --simulate --seconds 5
    python examples/orderbook.py KXHIGHNY-26NOV21-T58 KXHIGHNY-26NOV21-T60

The books apply Kalshi's snapshots and deltas with exact Decimal arithmetic on the
client's dispatcher thread; this script reads immutable snapshots of them from the
main thread. A book that missed a message says so (``is_synced`` is False) until the
client has fetched a fresh snapshot, which it does by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import time

from kalshi_ws import KalshiConfig, KalshiStreamClient
from kalshi_ws.environment import simulating
from kalshi_ws.orderbook import TopOfBook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("markets", nargs="*")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to watch")
    parser.add_argument("--simulate", action="store_true", help="use the built-in simulator")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.simulate or simulating():  # KALSHI_SIMULATE=1
            from kalshi_ws.testing import simulated

            simulation = stack.enter_context(simulated())
            config, markets = simulation.config, args.markets or simulation.markets
        else:
            config, markets = KalshiConfig.from_env(), args.markets
        if not markets:
            parser.error("give at least one market ticker (or --simulate)")
        client = stack.enter_context(KalshiStreamClient.connect(config, reconnect=True))
        books = stack.enter_context(client.orderbooks(markets))
        changes: queue.Queue[tuple[str, TopOfBook]] = queue.Queue()
        books.on_change(lambda market, top: changes.put((market, top)))  # dispatcher thread
        if not books.wait_synced(timeout=10):
            print("books not synced yet; showing them anyway")

        deadline = time.monotonic() + args.seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                market, top = changes.get(timeout=remaining)
            except queue.Empty:
                break
            state = "synced" if books.is_synced(market) else "UNSYNCED"
            print(f"{market:<14} bid {top.best_yes_bid} x {top.best_yes_bid_size:<9} "
                  f"ask {top.best_yes_ask} x {top.best_yes_ask_size:<9} seq {top.last_seq} "
                  f"{state}")

        for market in markets:
            book = books.get(market)
            print(f"\n{market}: spread {book.spread}, mid {book.mid}, last seq {book.last_seq}")
            depth = book.depth(3)
            for bid, ask in zip(depth.yes_bids, depth.yes_asks):
                print(f"  {bid[0]} x {bid[1]:<10} | {ask[0]} x {ask[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
