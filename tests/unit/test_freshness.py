"""Freshness bookkeeping and the staleness alarm, with time passed in (no clock, no sockets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kalshi_ws import (
    Channel,
    ChannelResumed,
    ChannelStale,
    ClientStats,
    ConfigurationError,
    Freshness,
    OrderbookDelta,
    OrderbookSnapshot,
    SequenceGap,
    StreamUpdate,
    Subscription,
    Ticker,
)
from kalshi_ws.freshness import (
    CHANNEL_WINDOW,
    MARKET_WINDOW,
    FreshnessTracker,
    insert_after,
    stale_after_table,
    unsequenced_channels,
)


def ticker(ts_ms: int | None = None, sending_ts_ms: int | None = None) -> StreamUpdate:
    return StreamUpdate(channel=Channel.TICKER, type="ticker", sid=1, seq=None,
                        msg=Ticker(market_ticker="M", ts_ms=ts_ms), sending_ts_ms=sending_ts_ms)


def delta(market: str, ts_ms: int) -> StreamUpdate:
    return StreamUpdate(channel=Channel.ORDERBOOK_DELTA, type="orderbook_delta", sid=2, seq=1,
                        msg=OrderbookDelta(market_ticker=market, side="yes",
                                           price_dollars=Decimal("0.5"), delta_fp=Decimal(1),
                                           ts_ms=ts_ms))


def test_latency_is_receipt_minus_sending_time_else_the_payload_ts_ms() -> None:
    tracker = FreshnessTracker()
    tracker.observe([ticker(ts_ms=1_000, sending_ts_ms=1_040)], received_ms=1_100, now=5.0)
    tracker.observe([ticker(ts_ms=1_000)], received_ms=1_070, now=6.0)
    tracker.observe([ticker()], received_ms=9_999, now=7.0)  # no Kalshi time: no sample
    channels, books = tracker.snapshot(now=7.5)
    fresh = channels["ticker"]
    assert fresh.samples == 2
    assert fresh.latency_median_ms == 60 and fresh.latency_p99_ms == 70
    assert fresh.since_last == 0.5 and not fresh.stale
    assert books == {}


def test_median_and_p99_over_the_recent_window_only() -> None:
    tracker = FreshnessTracker()
    old = [ticker(ts_ms=0) for _ in range(CHANNEL_WINDOW)]
    tracker.observe(old, received_ms=10_000, now=1.0)  # latencies of 10 s, pushed out below
    recent = [ticker(ts_ms=-n) for n in range(1, CHANNEL_WINDOW + 1)]  # 1 .. 1024 ms
    tracker.observe(recent, received_ms=0, now=2.0)
    fresh = tracker.snapshot(now=2.0)[0]["ticker"]
    assert fresh.samples == CHANNEL_WINDOW
    assert fresh.latency_median_ms == 512  # the lower median
    assert fresh.latency_p99_ms == 1014  # nearest rank: ceil(0.99 * 1024) = 1014th
    # the 10 s samples are gone


def test_books_are_tracked_per_market() -> None:
    tracker = FreshnessTracker()
    tracker.observe([delta("A", 1_000), delta("B", 1_500)], received_ms=2_000, now=10.0)
    tracker.observe([StreamUpdate(channel=Channel.ORDERBOOK_DELTA, type="orderbook_snapshot",
                                  sid=2, seq=2, msg=OrderbookSnapshot(market_ticker="C"))],
                    received_ms=2_000, now=12.0)
    channels, books = tracker.snapshot(now=13.0)
    assert set(books) == {"A", "B", "C"}
    assert books["A"].latency_median_ms == 1_000 and books["B"].latency_median_ms == 500
    assert books["A"].since_last == 3.0 and books["C"].since_last == 1.0
    assert books["C"].samples == 0 and books["C"].latency_median_ms is None
    assert channels["orderbook_delta"].samples == 2


def test_a_books_latency_is_over_its_latest_messages_only() -> None:
    tracker = FreshnessTracker()
    tracker.observe([delta("A", -10_000)] * MARKET_WINDOW, received_ms=0, now=1.0)
    tracker.observe([delta("A", -n) for n in range(1, MARKET_WINDOW + 1)], received_ms=0,
                    now=2.0)
    book = tracker.snapshot(now=2.0)[1]["A"]
    assert book.samples == MARKET_WINDOW == 128
    assert book.latency_p99_ms == 127 and book.latency_median_ms == 64


def test_system_messages_are_not_data() -> None:
    tracker = FreshnessTracker()
    tracker.observe([SequenceGap(sid=1, channel=Channel.TRADE, expected=1, received=3)],
                    received_ms=0, now=0.0)
    assert tracker.snapshot(now=1.0) == ({}, {})


def test_a_silent_channel_raises_one_alarm_then_one_resume() -> None:
    tracker = FreshnessTracker(stale_after=5)
    subscribed = [Channel.TICKER]
    assert tracker.check(subscribed, now=100.0) == []  # watched from here
    assert tracker.check(subscribed, now=105.0) == []  # exactly the limit: not yet
    (alarm,) = tracker.check(subscribed, now=105.5)
    assert alarm == ChannelStale(channel=Channel.TICKER, silent_for=5.5, stale_after=5.0)
    assert tracker.check(subscribed, now=200.0) == []  # raised once
    assert tracker.snapshot(now=200.0)[0] == {}  # no message yet: nothing to report
    gap = SequenceGap(sid=1, channel=Channel.TRADE, expected=1, received=3)
    first, second = ticker(), ticker()
    items = tracker.observe([gap, first, second], received_ms=0, now=201.0)
    assert items == [gap, ChannelResumed(channel=Channel.TICKER, silent_for=101.0), first,
                     second]  # right before the channel's first message
    assert items[2] is first
    assert tracker.observe([ticker()], received_ms=0, now=202.0) is None
    assert tracker.check(subscribed, now=206.0) == []
    (again,) = tracker.check(subscribed, now=207.5)
    assert again.silent_for == 5.5


def test_silence_counts_from_the_last_message() -> None:
    tracker = FreshnessTracker(stale_after={"trade": 2.0})
    tracker.check([Channel.TRADE, Channel.TICKER], now=0.0)
    tracker.observe([StreamUpdate(channel=Channel.TRADE, type="trade", sid=1, seq=1,
                                  msg=Ticker(market_ticker="M"))], received_ms=0, now=10.0)
    assert tracker.check([Channel.TRADE, Channel.TICKER], now=11.9) == []
    (alarm,) = tracker.check([Channel.TRADE, Channel.TICKER], now=12.5)
    assert alarm.channel == Channel.TRADE  # ticker has no threshold: never alarmed
    assert tracker.snapshot(now=12.5)[0]["trade"].stale


def test_an_unsubscribed_channel_is_no_longer_watched_but_resumes_when_it_speaks() -> None:
    tracker = FreshnessTracker(stale_after=1)
    tracker.check([Channel.TICKER], now=0.0)
    assert len(tracker.check([Channel.TICKER], now=2.0)) == 1
    assert tracker.check([], now=3.0) == []  # unsubscribed: no alarm
    tracker.check([Channel.TICKER], now=10.0)  # subscribed again: watched afresh
    assert tracker.check([Channel.TICKER], now=10.5) == []  # no second alarm
    # Review of issue 12: its next message used to come without ChannelResumed.
    announced = tracker.observe([ticker()], received_ms=0, now=10.6)
    assert announced is not None and type(announced[0]).__name__ == "ChannelResumed"


def test_stats_forget_books_no_longer_subscribed() -> None:
    tracker = FreshnessTracker()
    for market in ("A", "B"):
        tracker.observe([StreamUpdate(channel=Channel.ORDERBOOK_DELTA, type="orderbook_delta",
                                      sid=1, seq=1, msg=_delta(market))], 0, 1.0)
    assert set(tracker.snapshot(2.0)[1]) == {"A", "B"}
    assert set(tracker.snapshot(2.0, markets={"A"})[1]) == {"A"}
    tracker.forget_markets({"B"})
    assert set(tracker.snapshot(2.0)[1]) == {"B"}


def test_without_stale_after_no_alarm_is_ever_raised() -> None:
    tracker = FreshnessTracker()
    assert not tracker.alarms_enabled
    assert tracker.check([Channel.TICKER], now=0.0) == []
    assert tracker.check([Channel.TICKER], now=10**9) == []


@pytest.mark.parametrize("value", [0, -1, True, "5", float("nan"), float("inf"),
                                   {"ticker": 0}, {"ticker": "x"}])
def test_stale_after_must_be_positive_seconds(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="stale_after"):
        stale_after_table(value)


def test_stale_after_per_channel_by_member_or_name() -> None:
    table, default = stale_after_table({Channel.TICKER: 3, "fill": 60})
    assert table == {"ticker": 3.0, "fill": 60.0} and default is None
    assert stale_after_table(2.5) == ({}, 2.5)


def test_stalest_names_the_channel_silent_longest() -> None:
    stats = ClientStats(channels={}, freshness={
        "ticker": Freshness(since_last=0.5), "trade": Freshness(since_last=30.0),
        "fill": Freshness()})
    assert stats.stalest() == ("trade", 30.0)
    assert ClientStats(channels={}).stalest() is None


def test_unsequenced_user_channels_are_fill_user_orders_and_market_positions() -> None:
    subs = [Subscription(channel=c, sid=n) for n, c in enumerate(
        [Channel.TICKER, Channel.FILL, Channel.ORDERBOOK_DELTA, Channel.USER_ORDERS,
         Channel.MARKET_POSITIONS, Channel.FILL, Channel.TRADE], 1)]
    assert unsequenced_channels(subs) == (Channel.FILL, Channel.MARKET_POSITIONS,
                                          Channel.USER_ORDERS)
    assert unsequenced_channels(subs[:1]) == ()


def test_insert_after_places_items_right_after_the_anchor() -> None:
    anchor = object()
    assert insert_after([1, anchor, 2], anchor, ["x"]) == [1, anchor, "x", 2]
    assert insert_after([1], anchor, ["x"]) == [1, "x"]
    items = [1]
    assert insert_after(items, anchor, []) is items


def test_frames_of_no_channel_are_not_a_channel_of_their_own() -> None:
    """Review of issue 12: an unreadable frame (channel "") showed as a channel ''."""
    from kalshi_ws import MalformedMessage, StreamUpdate
    from kalshi_ws.freshness import FreshnessTracker

    tracker = FreshnessTracker()
    bad = StreamUpdate(channel="", type="", sid=None, seq=None,
                       msg=MalformedMessage(type="", raw={}, error="x"))
    tracker.observe([bad, bad], 1_000, 1.0)
    assert "" not in tracker.snapshot(2.0)[0]


def _delta(market: str) -> Any:
    from kalshi_ws import OrderbookDelta
    return OrderbookDelta(market_ticker=market, market_id="i",  # type: ignore[call-arg]
                          price_dollars=Decimal("0.5"), delta_fp=Decimal(1), side="yes")


class _Model:
    """The freshness rules item by item, written plainly: what observe() must match."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.latencies: dict[str, list[int]] = {}
        self.stale: set[str] = set()

    def observe(self, items: list[Any], received_ms: int, now: float) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if type(item) is StreamUpdate and item.channel:
                keys = [str(item.channel)]
                market = getattr(item.msg, "market_ticker", None)
                if item.channel == Channel.ORDERBOOK_DELTA and isinstance(market, str):
                    keys.append("book " + market)
                if keys[0] in self.stale:
                    self.stale.discard(keys[0])
                    out.append(("resumed", keys[0]))
                sent = item.sending_ts_ms
                if sent is None:
                    sent = getattr(item.msg, "ts_ms", None)
                for key in keys:
                    self.last[key] = now
                    if isinstance(sent, int):
                        window = MARKET_WINDOW if key.startswith("book ") else CHANNEL_WINDOW
                        samples = self.latencies.setdefault(key, [])
                        samples.append(received_ms - sent)
                        del samples[:-window]
            out.append(item)
        return out


@pytest.mark.parametrize("seed", range(10))
def test_observe_matches_a_plain_model_of_its_rules(seed: int) -> None:
    """Per run of a channel in a batch, observe() looks the channel up once: the times,
    latency windows, book markets and ChannelResumed places stay those of the rules
    applied item by item (runs, aliases of a channel, frames of no channel, stale
    channels resuming in the middle of a batch)."""
    import random

    from kalshi_ws import MalformedMessage, Trade

    rng = random.Random(seed)
    tracker = FreshnessTracker(stale_after=0.5)
    model = _Model()
    now = 10.0

    def item() -> Any:
        kind = rng.choice(["delta", "delta", "ticker", "trade", "bad", "system", "alias"])
        sending = rng.choice([None, None, rng.randint(0, 5_000)])
        ts = rng.choice([None, rng.randint(0, 5_000)])
        if kind == "delta":
            update = delta(rng.choice(["A", "B", "C"]), rng.randint(0, 5_000))
            return StreamUpdate(channel=update.channel, type=update.type, sid=2, seq=1,
                                msg=update.msg, sending_ts_ms=sending)
        if kind in ("ticker", "alias"):  # "ticker" as a plain string is the same channel
            return StreamUpdate(channel=Channel.TICKER if kind == "ticker" else "ticker",
                                type="ticker", sid=1, seq=None,
                                msg=Ticker(market_ticker="M", ts_ms=ts), sending_ts_ms=sending)
        if kind == "trade":
            return StreamUpdate(channel=Channel.TRADE, type="trade", sid=3, seq=1,
                                msg=Trade(market_ticker="M", ts_ms=ts),  # type: ignore[call-arg]
                                sending_ts_ms=sending)
        if kind == "bad":
            return StreamUpdate(channel="", type="", sid=None, seq=None,
                                msg=MalformedMessage(type="", raw={}, error="x"))
        return SequenceGap(sid=1, channel=Channel.TICKER, expected=1, received=2)

    for _ in range(200):
        now += rng.choice([0.1, 0.1, 0.7])
        if rng.random() < 0.3:
            live = [Channel.TICKER, Channel.TRADE, Channel.ORDERBOOK_DELTA]
            for alarm in tracker.check(live, now):
                model.stale.add(str(alarm.channel))
        batch = [item() for _ in range(rng.randint(0, 30))]
        received_ms = rng.randint(5_000, 6_000)
        got = tracker.observe(batch, received_ms, now)
        expected = model.observe(batch, received_ms, now)
        shown = [("resumed", str(i.channel)) if isinstance(i, ChannelResumed) else i
                 for i in (batch if got is None else got)]
        assert shown == expected
        channels, books = tracker.snapshot(now + 1.0)
        seen = {**channels, **{"book " + m: f for m, f in books.items()}}
        assert set(seen) == set(model.last)
        for key, fresh in seen.items():
            samples = sorted(model.latencies.get(key, []))
            assert fresh.since_last == pytest.approx(now + 1.0 - model.last[key])
            assert fresh.samples == len(samples)
            if samples:
                assert fresh.latency_median_ms == samples[(len(samples) - 1) // 2]
                assert fresh.latency_p99_ms == samples[max(0, -(-99 * len(samples) // 100) - 1)]


def test_new_book_markets_add_no_objects_the_garbage_collector_walks() -> None:
    """100,000 books must not mean 100,000 more objects for every full collection to
    walk (that made deltas over many markets pay for collections of the whole heap):
    a book's time and latency window live in flat dicts of floats, ints and arrays."""
    import gc

    tracker = FreshnessTracker()
    first = [delta(f"M{i}", 1_000 + i) for i in range(2_000)]
    again = [delta(f"M{i}", 2_000 + i) for i in range(2_000)]
    tracker.observe(first[:10], 10_000, 1.0)  # the dicts exist
    gc.collect()
    before = len(gc.get_objects())
    tracker.observe(first, 10_000, 1.0)
    tracker.observe(again, 10_000, 2.0)
    added = len(gc.get_objects()) - before
    assert added < 50, added  # was 4,000 (a track and a deque per market)
    books = tracker.snapshot(3.0)[1]
    assert len(books) == 2_000 and books["M500"].samples == 2
