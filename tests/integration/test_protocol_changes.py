"""When Kalshi changes the protocol, and when data may be missing or stale: the real
client against the fake Kalshi server over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from kalshi_ws import (
    Backoff,
    Channel,
    ChannelResumed,
    ChannelStale,
    CommandError,
    ConfigurationError,
    HealthConfig,
    InvalidCommand,
    KalshiConfig,
    KalshiStreamClient,
    OrderbookDelta,
    Reconnected,
    ReconnectPolicy,
    StreamUpdate,
    SubscriptionError,
    Ticker,
    UnsequencedGap,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector

Connect = Callable[..., KalshiStreamClient]

FAST = ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05), restore_timeout=5)
QUIET = HealthConfig(ping_interval=None, idle_timeout=None)

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------- unknown fields, new types


def test_fields_kalshi_adds_reach_the_user_and_changed_types_still_read(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    client.add_callback(collector)
    client.subscribe([Channel.TICKER])
    server.publish("ticker", "ticker", {
        "market_ticker": "SIM-ALPHA", "price_dollars": "", "yes_bid_dollars": "0.4400",
        "ts": "2026-04-22T18:31:59.043421Z", "ts_ms": "1776882719043", "Clock": 8123456})
    (update,) = collector.wait_for(lambda items: collector.updates("ticker"))
    message = update.msg
    assert isinstance(message, Ticker)
    assert message.price_dollars is None  # "" reads as absent
    assert message.yes_bid_dollars == Decimal("0.4400")
    assert message.ts == 1776882719 and message.ts_ms == 1776882719043
    assert message.extra == {"Clock": 8123456}


# ---------------------------------------------------------------- escape hatches


def test_unknown_subscribe_options_are_sent_as_given_and_restored(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    result = client.subscribe([Channel.TICKER], ["SIM-ALPHA"], send_initial_snapshot=False,
                              extra_params={"update_interval_ms": 250})
    assert result.ok
    (sent,) = [c for c in server.commands if c.get("cmd") == "subscribe"]
    assert sent["params"]["update_interval_ms"] == 250
    server.drop_connections()
    collector.wait_for(lambda items: [i for i in items if isinstance(i, Reconnected)])
    restored = [c for c in server.commands if c.get("cmd") == "subscribe"][-1]
    assert restored["params"]["update_interval_ms"] == 250
    with pytest.raises(InvalidCommand, match="knows and checks"):
        client.subscribe([Channel.TICKER], extra_params={"use_yes_price": "maybe"})


def test_an_unknown_update_action_is_sent_and_kalshis_answer_returned(
        server: FakeKalshiServer, client: KalshiStreamClient) -> None:
    sid = client.subscribe([Channel.TICKER], ["SIM-ALPHA"]).sids[0]
    with pytest.raises(CommandError) as caught:
        client.update_subscription(sid, extra_params={"action": "set_update_interval",
                                                      "interval_ms": 100})
    assert caught.value.code == 13  # the fake server, like Kalshi, does not know it
    sent = [c for c in server.commands if c.get("cmd") == "update_subscription"][-1]
    assert sent["params"] == {"sids": [sid], "action": "set_update_interval",
                              "interval_ms": 100}


# ---------------------------------------------------------------- errors say which markets


def test_a_subscription_error_names_its_markets(server: FakeKalshiServer,
                                               client: KalshiStreamClient,
                                               collector: Collector) -> None:
    client.add_callback(collector)
    sid = client.subscribe([Channel.TICKER], ["SIM-ALPHA"]).sids[0]
    server.send_raw(json.dumps({"type": "error", "sid": sid, "sending_ts_ms": 1795273337418,
                                "msg": {"code": 26, "msg": "Subscription market limit exceeded",
                                        "market_tickers": ["SIM-BRAVO", "SIM-CHARLIE"]}}))
    (error,) = collector.wait_for(lambda items: [i for i in items
                                                 if isinstance(i, SubscriptionError)])
    assert error.code == 26 and error.markets == ("SIM-BRAVO", "SIM-CHARLIE")
    assert error.sending_ts_ms == 1795273337418


# ---------------------------------------------------------------- you may have missed something


def test_a_reconnect_says_which_unsequenced_channels_may_have_gaps_and_when(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    client.subscribe([Channel.FILL, Channel.TICKER, Channel.USER_ORDERS, Channel.TRADE])
    before = time.time()
    server.drop_connections()
    (event,) = collector.wait_for(lambda items: [i for i in items if isinstance(i, Reconnected)])
    after = time.time()
    gap = event.unsequenced_gap
    assert gap is not None
    assert gap.channels == (Channel.FILL, Channel.USER_ORDERS)  # not ticker: not user data
    assert gap.since <= before + 0.001 and before - 60 < gap.since
    assert gap.since <= gap.until <= after
    items = collector.items
    # The same message on its own, right after the announcement (for callbacks).
    follower = items[items.index(event) + 1]
    assert isinstance(follower, UnsequencedGap) and follower == gap


def test_a_reconnect_without_unsequenced_user_channels_reports_no_gap(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    client.subscribe([Channel.TICKER, Channel.TRADE])
    server.drop_connections()
    (event,) = collector.wait_for(lambda items: [i for i in items if isinstance(i, Reconnected)])
    assert event.unsequenced_gap is None
    assert not collector.of_type(UnsequencedGap)


# ---------------------------------------------------------------- freshness


def test_stats_report_latency_and_time_since_last_message(server: FakeKalshiServer,
                                                          client: KalshiStreamClient,
                                                          collector: Collector) -> None:
    client.add_callback(collector)
    client.subscribe([Channel.TICKER])
    client.orderbooks(["SIM-ALPHA"]).wait_synced(10)
    sent_ms = time.time_ns() // 1_000_000 - 5_000  # five seconds ago by our clock
    server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA", "ts_ms": sent_ms})
    server.publish("orderbook_delta", "orderbook_delta", {
        "market_ticker": "SIM-ALPHA", "side": "yes", "price_dollars": "0.4000",
        "delta_fp": "1.00", "ts_ms": sent_ms})
    collector.wait_for(lambda items: collector.updates("ticker") and
                       any(isinstance(u.msg, OrderbookDelta) for u in collector.updates()))
    stats = client.stats()
    ticker = stats.freshness["ticker"]
    assert ticker.samples == 1 and ticker.latency_median_ms is not None
    assert ticker.latency_median_ms >= 5_000 and ticker.latency_p99_ms == ticker.latency_median_ms
    assert ticker.since_last is not None and ticker.since_last >= 0 and not ticker.stale
    book = stats.book_freshness["SIM-ALPHA"]
    assert book.samples == 1 and book.latency_median_ms >= 5_000
    assert stats.stalest() is not None


def test_a_silent_channel_raises_the_alarm_and_its_next_message_resumes_it(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(stale_after={Channel.TRADE: 0.01})
    client.add_callback(collector)
    client.subscribe([Channel.TRADE, Channel.TICKER])
    (alarm,) = collector.wait_for(lambda items: [i for i in items if isinstance(i, ChannelStale)])
    assert alarm.channel == Channel.TRADE and alarm.stale_after == 0.01
    assert alarm.silent_for > 0.01
    assert client.stats().freshness.get("trade") is None  # nothing received yet
    server.publish("trade", "trade", {"market_ticker": "SIM-ALPHA", "trade_id": "t1",
                                      "count_fp": "1.00"})
    collector.wait_for(lambda items: collector.updates("trade"))
    items = collector.items
    resumed = next(i for i, item in enumerate(items) if isinstance(item, ChannelResumed))
    assert items[resumed].channel == Channel.TRADE and items[resumed].silent_for > 0.01
    nxt = items[resumed + 1]
    assert isinstance(nxt, StreamUpdate) and nxt.type == "trade"  # the resuming message
    assert not [i for i in items if isinstance(i, ChannelStale) and i.channel != Channel.TRADE]


@pytest.mark.parametrize("value", [0, -1, "5", {"ticker": 0}])
def test_stale_after_is_checked_at_connect(config: KalshiConfig, value: object) -> None:
    with pytest.raises(ConfigurationError, match="stale_after"):
        KalshiStreamClient.connect(config, stale_after=value)  # type: ignore[arg-type]


def test_the_cli_status_line_shows_the_stalest_channel(client: KalshiStreamClient,
                                                      server: FakeKalshiServer,
                                                      collector: Collector,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from kalshi_ws.cli import _StatusLine

    client.add_callback(collector)
    client.subscribe([Channel.TICKER])
    server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA"})
    collector.wait_for(lambda items: collector.updates("ticker"))
    status = _StatusLine(SimpleNamespace(client=client, received=1),  # type: ignore[arg-type]
                         shared=False)
    status.next = 0.0  # refresh now
    status.show()
    line = capsys.readouterr().err
    assert "reconnects | stalest: ticker " in line and line.rstrip().endswith(" s")


def test_freshness_reports_only_live_subscriptions(client: KalshiStreamClient,
                                                   server: FakeKalshiServer,
                                                   collector: Collector) -> None:
    """Review of issue 12: an unsubscribed channel stayed the 'stalest' for ever."""
    client.add_callback(collector)
    trade_sid = client.subscribe([Channel.TRADE]).successful[0].sid
    client.subscribe([Channel.TICKER])
    server.publish("trade", "trade", {"market_ticker": "SIM-ALPHA", "trade_id": "t1"})
    server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA"})
    collector.wait_for(lambda items: collector.updates("trade") and collector.updates("ticker"))
    assert {"trade", "ticker"} <= set(client.stats().freshness)
    client.unsubscribe(trade_sid)
    stats = client.stats()
    assert "trade" not in stats.freshness
    stalest = stats.stalest()
    assert stalest is not None and stalest[0] == "ticker"
