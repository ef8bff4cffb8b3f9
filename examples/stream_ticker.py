"""Print live ticker updates for a few markets.

Against Kalshi (credentials in KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH)::

    python examples/stream_ticker.py KXHIGHNY-26NOV21-T58 KXHIGHNY-26NOV21-T60

Offline, against the built-in fake server and market simulator::

    python examples/stream_ticker.py --simulate
"""

from __future__ import annotations

import argparse
import contextlib

from kalshi_ws import Channel, KalshiConfig, KalshiStreamClient, StreamUpdate, Ticker
from kalshi_ws.environment import simulating


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("markets", nargs="*", help="market tickers (default: all markets)")
    parser.add_argument("--count", type=int, default=20, help="stop after this many updates")
    parser.add_argument("--simulate", action="store_true", help="use the built-in simulator")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.simulate or simulating():  # KALSHI_SIMULATE=1
            from kalshi_ws.testing import simulated

            simulation = stack.enter_context(simulated())
            config = simulation.config
        else:
            config = KalshiConfig.from_env()
        client = stack.enter_context(KalshiStreamClient.connect(config))
        result = client.subscribe([Channel.TICKER], args.markets or None)
        print(f"subscribed: sid {result.sids}")

        received = 0
        for item in client.iter_updates(timeout=30):
            if not isinstance(item, StreamUpdate):
                print(f"-- {item!r}")  # Closed, ConnectionLost, ...
                continue
            ticker = item.msg_as(Ticker)  # typed; None for a malformed or unknown message
            if ticker is None:
                print(f"-- {item.msg!r}")
                continue
            print(f"{ticker.market_ticker:<24} last {ticker.price_dollars}  "
                  f"bid {ticker.yes_bid_dollars}  ask {ticker.yes_ask_dollars}")
            received += 1
            if received >= args.count:
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
