"""Test a bot offline by replaying a recorded Kalshi session (run with pytest).

1. Record a real session once (or use the simulator, as this example's recording did)::

       kalshi-ws record session.jsonl trade ticker --market KXHIGHNY-26NOV21-T58 --duration 600

2. Replay it to your bot in a test, as often as you like, with no account and no
   network: ``FakeKalshiServer(replay=...)`` plays the recording to the client's
   subscriptions (new sids, consistent sequence numbers) and closes the connection at
   the end, so the stream ends and the test finishes::

       pytest examples/test_bot_with_replay.py

``data/sample_session.jsonl`` was made with
``kalshi-ws record examples/data/sample_session.jsonl trade ticker --simulate --limit 120``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Channel,
    Closed,
    KalshiConfig,
    KalshiStreamClient,
    StreamUpdate,
    Trade,
)
from kalshi_ws.recording import read_recording
from kalshi_ws.testing import FakeKalshiServer

RECORDING = Path(__file__).parent / "data" / "sample_session.jsonl"


class VwapBot:
    """The bot under test: volume-weighted average trade price per market."""

    def __init__(self) -> None:
        self.notional: dict[str, Decimal] = defaultdict(Decimal)
        self.volume: dict[str, Decimal] = defaultdict(Decimal)

    def on_update(self, update: object) -> None:
        trade = update.msg_as(Trade) if isinstance(update, StreamUpdate) else None
        if trade is not None and trade.yes_price_dollars is not None and trade.count_fp:
            self.notional[trade.market_ticker] += trade.yes_price_dollars * trade.count_fp
            self.volume[trade.market_ticker] += trade.count_fp

    def vwap(self, market: str) -> Decimal:
        return self.notional[market] / self.volume[market]


def expected_vwaps() -> dict[str, Decimal]:
    """The same numbers computed straight from the file, to check the bot against."""
    notional: dict[str, Decimal] = defaultdict(Decimal)
    volume: dict[str, Decimal] = defaultdict(Decimal)
    for recorded in read_recording(RECORDING):
        frame = json.loads(recorded.frame)
        if frame.get("type") == "trade":
            msg = frame["msg"]
            notional[msg["market_ticker"]] += (Decimal(msg["yes_price_dollars"])
                                              * Decimal(msg["count_fp"]))
            volume[msg["market_ticker"]] += Decimal(msg["count_fp"])
    return {market: notional[market] / volume[market] for market in volume}


def test_the_bot_computes_vwap_from_a_recorded_session() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # throwaway
    bot = VwapBot()
    with FakeKalshiServer(public_key=key.public_key(), replay=RECORDING) as server:
        config = KalshiConfig("test", key, ws_url=server.url)
        # queue=True: the bot's callback and the queue both get the stream, from the
        # start (a short replay can end before iter_updates() begins to read).
        with KalshiStreamClient.connect(config, queue=True) as client:
            client.add_callback(bot.on_update, channels=[Channel.TRADE])
            client.subscribe([Channel.TRADE])
            last = list(client.iter_updates(timeout=30))[-1]  # ends when the replay does
    assert isinstance(last, Closed)
    expected = expected_vwaps()
    assert expected, "the recording holds trades"
    assert {market: bot.vwap(market) for market in expected} == expected
