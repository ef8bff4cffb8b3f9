"""Conformance audit (session 20, helper 03): the real client against the fake Kalshi
server over real sockets on 127.0.0.1, where the code disagreed with the protocol
reference or README.rst."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalshi_ws import Channel, KalshiStreamClient, MalformedMessage, SequenceGap, Ticker
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector

pytestmark = pytest.mark.timeout(60)


def test_tickers_stay_readable_after_kalshi_numbers_a_reply_of_their_sid(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    """Kalshi's ``ok`` to add_markets (and to a repeated subscribe, which merges) carries
    a ``seq`` (AsyncAPI okResponsePayload), while ticker data carry none (README:
    "ticker, fill, market_position and user_order carry none"). Every ticker after the
    add_markets used to arrive as a MalformedMessage ("'seq' is not a positive integer")."""
    client.add_callback(collector)
    sid = client.subscribe([Channel.TICKER], ["SIM-ALPHA"]).successful[0].sid
    assert client.add_markets(sid, ["SIM-BRAVO"]) == ["SIM-ALPHA", "SIM-BRAVO"]
    merged = client.subscribe([Channel.TICKER], ["SIM-CHARLIE"]).successful[0]
    assert merged.sid == sid
    for market in ("SIM-ALPHA", "SIM-BRAVO", "SIM-CHARLIE"):
        server.publish("ticker", "ticker", {"market_ticker": market, "price_dollars": "0.4100"})
    updates = collector.wait_for(lambda items: len(collector.updates("ticker")) == 3 and
                                 collector.updates("ticker"))
    assert not collector.of_type(SequenceGap)
    assert [type(u.msg) for u in updates] == [Ticker] * 3, \
        [u.msg for u in updates if isinstance(u.msg, MalformedMessage)]
    assert [(u.msg.market_ticker, u.msg.price_dollars, u.seq) for u in updates] == [
        (m, Decimal("0.4100"), None) for m in ("SIM-ALPHA", "SIM-BRAVO", "SIM-CHARLIE")]


@pytest.mark.parametrize("subscribed_with", [False, True])
def test_the_fake_server_honours_add_markets_own_send_initial_snapshot(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector,
        subscribed_with: bool) -> None:
    """AsyncAPI updateSubscriptionCommandPayload: ``send_initial_snapshot`` (default
    false) "If true, receive an initial snapshot for newly added market tickers on the
    ticker channel". The fake server used the subscribe's flag instead: it sent nothing
    for add_markets(..., send_initial_snapshot=True), and initial tickers for an
    add_markets that did not ask for them."""
    client.add_callback(collector)
    sid = client.subscribe([Channel.TICKER], ["SIM-ALPHA"],
                           send_initial_snapshot=subscribed_with).successful[0].sid
    client.add_markets(sid, ["SIM-BRAVO"], send_initial_snapshot=True)
    client.add_markets(sid, ["SIM-CHARLIE"])
    server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA", "price_dollars": "0.99"})
    collector.wait_for(lambda items: any(u.msg.price_dollars == Decimal("0.99")
                                         for u in collector.updates("ticker")))
    markets = [u.msg.market_ticker for u in collector.updates("ticker")]
    initial = ["SIM-ALPHA"] if subscribed_with else []
    assert markets == [*initial, "SIM-BRAVO", "SIM-ALPHA"]
