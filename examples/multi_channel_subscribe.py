"""Subscribe to several channels in one command, with a callback per channel.

Kalshi answers a multi-channel subscribe once per channel; ``subscribe`` waits for
every answer and reports the channels it refused (here ``ticker_v2``, which Kalshi
removed in February 2026) instead of failing the whole command.

    python examples/multi_channel_subscribe.py --simulate
    python examples/multi_channel_subscribe.py KXHIGHNY-26NOV21-T58 --seconds 30
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import threading

from kalshi_ws import (
    Channel,
    KalshiConfig,
    KalshiStreamClient,
    StreamItem,
    StreamUpdate,
    Trade,
)
from kalshi_ws.environment import simulating


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("markets", nargs="*", help="market tickers (needed for order books)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to listen")
    parser.add_argument("--simulate", action="store_true", help="use the built-in simulator")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.simulate or simulating():  # KALSHI_SIMULATE=1
            from kalshi_ws.testing import simulated

            simulation = stack.enter_context(simulated())
            config, markets = simulation.config, args.markets or simulation.markets
        else:
            config, markets = KalshiConfig.from_env(), args.markets
        client = stack.enter_context(KalshiStreamClient.connect(config))
        counts: collections.Counter[str] = collections.Counter()

        @client.on(Channel.TRADE)
        def on_trade(update: StreamItem) -> None:
            if isinstance(update, StreamUpdate) and isinstance(update.msg, Trade):
                trade = update.msg
                print(f"trade  {trade.market_ticker} {trade.count_fp} @ {trade.yes_price_dollars}")

        @client.on(Channel.ORDERBOOK_DELTA, Channel.TICKER)
        def count(update: StreamItem) -> None:
            if isinstance(update, StreamUpdate):
                counts[update.type] += 1

        channels = [Channel.ORDERBOOK_DELTA, Channel.TICKER, Channel.TRADE, "ticker_v2"]
        result = client.subscribe(channels, markets or None)
        for subscription in result.successful:
            print(f"subscribed {subscription.channel} as sid {subscription.sid}")
        for failure in result.failed:
            print(f"refused    {failure.channel}: error {failure.code} ({failure.message})")

        threading.Event().wait(args.seconds)  # let the callbacks work for a while
        print(f"received: {dict(counts)}")
        for channel, stats in client.stats().channels.items():
            print(f"  {channel:<16} received {stats.received:>5}  delivered {stats.delivered:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
