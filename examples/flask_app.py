"""A Flask app serving live Kalshi tickers from one kalshi_ws client per worker process.

Run it (offline, against the built-in simulator)::

    KALSHI_SIMULATE=1 flask --app examples/flask_app.py run
    curl 'http://127.0.0.1:5000/markets?wait=2'

or under a pre-forking server, each worker with its own client::

    KALSHI_SIMULATE=1 gunicorn -w 4 --chdir examples flask_app:app

What it does right (it matters under gunicorn/uWSGI):

* no client at import time: the master process imports the app and then forks its
  workers, and threads do not survive fork(). ``PerProcessClient`` connects on the
  first request of each process, and again if the client ever ends;
* callbacks only store the latest ticker per market; requests read that, so a request
  never waits on Kalshi (except ``?wait=`` on a cold start);
* the client is closed at interpreter exit; a client created before a fork raises
  ``ConcurrencyError`` when used in the child instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from flask import Flask, jsonify, request

from kalshi_ws import (
    Channel,
    KalshiConfig,
    KalshiStreamClient,
    PerProcessClient,
    StreamUpdate,
    Ticker,
)
from kalshi_ws.environment import simulating

MARKETS = [m for m in os.environ.get("KALSHI_MARKETS", "").split(",") if m]

latest: dict[str, dict[str, Any]] = {}
first_update = threading.Event()
_simulation = contextlib.ExitStack()


def remember(update: Any) -> None:
    """Runs on the client's dispatcher thread: keep the newest ticker per market."""
    if isinstance(update, StreamUpdate) and isinstance(update.msg, Ticker):
        ticker = update.msg
        latest[ticker.market_ticker] = {
            "price": str(ticker.price_dollars), "yes_bid": str(ticker.yes_bid_dollars),
            "yes_ask": str(ticker.yes_ask_dollars), "volume": str(ticker.volume_fp)}
        first_update.set()


def connect() -> KalshiStreamClient:
    """Create and subscribe this process's client (called by PerProcessClient)."""
    markets = MARKETS
    if simulating():  # KALSHI_SIMULATE=1
        from kalshi_ws.testing import simulated

        simulation = _simulation.enter_context(simulated())
        config, markets = simulation.config, markets or simulation.markets
    else:
        config = KalshiConfig.from_env()
    client = KalshiStreamClient.connect(config, reconnect=True, queue=False)
    client.add_callback(remember, channels=[Channel.TICKER])
    client.subscribe([Channel.TICKER], markets or None, send_initial_snapshot=bool(markets))
    return client


kalshi = PerProcessClient(connect)
app = Flask(__name__)


@app.get("/markets")
def markets() -> Any:
    kalshi.get()
    wait = min(float(request.args.get("wait", 0)), 10.0)
    if wait:
        first_update.wait(wait)
    return jsonify(markets=dict(latest), pid=os.getpid())


@app.get("/health")
def health() -> Any:
    client = kalshi.get()
    stats = client.stats()
    return jsonify(state=client.state, reconnects=stats.reconnects,
                   received=stats.total().received, dropped=stats.total().dropped)


def shutdown() -> None:
    """Close the client and the simulation (also registered at interpreter exit)."""
    kalshi.close()
    _simulation.close()
