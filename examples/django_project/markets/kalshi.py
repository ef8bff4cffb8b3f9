"""This process's Kalshi client: created on the first request of each worker, never at import.

``PerProcessClient`` runs :func:`connect` once per process (again after a fork, and if
the client ever ends) and closes the client at interpreter exit. The callback only
stores the newest ticker per market; views read that and never wait on Kalshi.
"""

from __future__ import annotations

import os
import threading

from kalshi_ws import (
    Channel,
    KalshiStreamClient,
    PerProcessClient,
    StreamItem,
    StreamUpdate,
    Ticker,
    config_from_env,
)

MARKETS = [m for m in os.environ.get("KALSHI_MARKETS", "").split(",") if m]

latest: dict[str, dict[str, str]] = {}
first_update = threading.Event()


def remember(item: StreamItem) -> None:
    """Runs on the client's dispatcher thread: keep the newest ticker per market."""
    if isinstance(item, StreamUpdate) and isinstance(item.msg, Ticker):
        ticker = item.msg
        latest[ticker.market_ticker] = {
            "price": str(ticker.price_dollars), "yes_bid": str(ticker.yes_bid_dollars),
            "yes_ask": str(ticker.yes_ask_dollars), "volume": str(ticker.volume_fp)}
        first_update.set()


def connect() -> KalshiStreamClient:
    """Create and subscribe this process's client (called by PerProcessClient).

    ``config_from_env()`` reads KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH, or with
    KALSHI_SIMULATE=1 starts a simulated exchange for this process.
    """
    client = KalshiStreamClient.connect(config_from_env(), reconnect=True, queue=False)
    client.add_callback(remember, channels=[Channel.TICKER])
    client.subscribe([Channel.TICKER], MARKETS or None, send_initial_snapshot=bool(MARKETS))
    return client


kalshi = PerProcessClient(connect)
