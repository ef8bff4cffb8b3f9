"""Findings of the hostile review of issue 13 (speed), each pinned by the test that showed it."""

from __future__ import annotations

import json
import queue
import random
from decimal import Decimal
from typing import Any

import pytest

from kalshi_ws import Channel, OrderbookSnapshot, StreamUpdate, Ticker
from kalshi_ws._dispatch import UpdatesQueue
from kalshi_ws._reader import feed_frames
from kalshi_ws._shapes import ShapeDecoder
from kalshi_ws._wire import decode
from kalshi_ws.bookset import OrderBookSet
from kalshi_ws.models import BookState, SubscribeResult, Subscription
from kalshi_ws.protocol import KalshiProtocol
from tests.unit.test_shapes import exact


def _ticker(seq: int) -> StreamUpdate:
    return StreamUpdate(channel="ticker", type="ticker", sid=1, seq=seq,
                        msg=Ticker(market_ticker="M"))


def _book_protocol(markets: list[str]) -> KalshiProtocol:
    protocol = KalshiProtocol()
    protocol.tick(0.0)
    command_id, _ = protocol.subscribe(["orderbook_delta"], markets, {})
    protocol.receive({"id": command_id, "type": "subscribed",
                      "msg": {"channel": "orderbook_delta", "sid": 1}})
    for seq, market in enumerate(markets, 1):
        protocol.receive({"type": "orderbook_snapshot", "sid": 1, "seq": seq,
                          "msg": {"market_ticker": market,
                                  "yes_dollars_fp": [["0.40", "5.00"]]}})
    protocol.take_deliveries()
    protocol.take_completions()
    protocol.take_outgoing()
    return protocol


def test_resyncs_of_one_sid_timing_out_in_the_same_tick_do_not_break_the_clock() -> None:
    """Two get_snapshot resyncs of one sid, unanswered, expire in the same tick: the
    first one's timeout re-creates the subscription, which forgets the second; the
    clock must carry on (a KeyError here ended the whole client as an internal error)."""
    protocol = _book_protocol(["A", "B"])
    protocol.resync_markets(["A"])
    protocol.resync_markets(["B"])
    sent = [json.loads(text) for text in protocol.take_outgoing()]
    assert [s["params"]["action"] for s in sent] == ["get_snapshot", "get_snapshot"]
    protocol.tick(1_000.0)  # both unanswered past their deadline
    commands: list[Any] = [json.loads(text)["cmd"] for text in protocol.take_outgoing()]
    assert commands == ["unsubscribe"]  # re-created once: unsubscribe, then subscribe


def test_the_updates_queue_refuses_a_negative_timeout_as_queue_queue_does() -> None:
    """client.updates is documented as a queue.Queue: get(timeout=-1) raises ValueError
    whether or not an item waits (the fast path of get() returned the item instead)."""
    reference: queue.Queue[int] = queue.Queue()
    reference.put(1)
    with pytest.raises(ValueError, match="non-negative"):
        reference.get(timeout=-1)
    updates = UpdatesQueue(10, lambda channel: False)
    updates.put(_ticker(1))
    with pytest.raises(ValueError, match="non-negative"):
        updates.get(timeout=-1)
    assert updates.get(timeout=0).seq == 1  # still there, as in queue.Queue
    with pytest.raises(queue.Empty):
        updates.get(block=False, timeout=-1)  # no block: the timeout is ignored


class _Books:
    """The client side an OrderBookSet sees (bookset.BookSource), for the set's own rules:
    the test says what the reader's view (book_state) is and feeds the set's listener."""

    def __init__(self) -> None:
        self.listener: Any = None
        self.state = BookState(synced=False)

    def subscribe(self, channels: Any, markets: Any, **options: Any) -> SubscribeResult:
        return SubscribeResult(successful=(Subscription(
            channel=Channel.ORDERBOOK_DELTA, sid=1, market_tickers=tuple(markets)),))

    def subscriptions(self) -> list[Subscription]:
        return []

    def add_listener(self, fn: Any, channels: Any = None) -> Any:
        self.listener = fn
        return object()

    def remove_callback(self, handle: Any) -> bool:
        return True

    def subscription_options(self, sid: int) -> dict[str, Any]:
        return {}

    def book_state(self, market: str) -> BookState:
        return self.state


def test_a_ticker_is_compared_as_the_stream_shows_its_book_and_confirmed_if_it_disagrees(
        ) -> None:
    """CrossCheck.checked counts tickers compared with a book the stream shows in sync at
    the ticker's place; a disagreement counts only if the reader agrees the book is in
    sync (the set asks it under the client's lock only then). Review of issue 13."""
    source = _Books()
    books = OrderBookSet(source, ["M"])  # type: ignore[arg-type]  # the seam's protocol
    snapshot = OrderbookSnapshot(market_ticker="M", yes_dollars_fp=(
        (Decimal("0.40"), Decimal("5.00")),), no_dollars_fp=((Decimal("0.55"), Decimal("3.00")),))
    source.listener(StreamUpdate(channel=Channel.ORDERBOOK_DELTA, type="orderbook_snapshot",
                                 sid=1, seq=1, msg=snapshot))
    source.state = BookState(synced=True, snapshot=snapshot)
    assert books.is_synced("M")
    top = books.get("M")
    ticker = Ticker(market_ticker="M", yes_bid_dollars=top.best_yes_bid,
                    yes_ask_dollars=top.best_yes_ask)
    source.listener(StreamUpdate(channel=Channel.TICKER, type="ticker", sid=2, seq=None,
                                 msg=ticker))
    assert books.cross_check().checked == 1  # synced and agreeing: counted
    # client.resync_books(["M"]): the reader distrusts the book and holds its deltas
    # back; nothing about it travels on the stream.
    source.state = BookState(synced=False, snapshot=snapshot)
    assert not books.is_synced("M")
    source.listener(StreamUpdate(channel=Channel.TICKER, type="ticker", sid=2, seq=None,
                                 msg=ticker))
    assert books.cross_check().checked == 2  # in sync as far as the stream shows
    wrong = Ticker(market_ticker="M", yes_bid_dollars=Decimal("0.01"),
                   yes_ask_dollars=top.best_yes_ask)
    source.listener(StreamUpdate(channel=Channel.TICKER, type="ticker", sid=2, seq=None,
                                 msg=wrong))
    check = books.cross_check()
    assert (check.checked, check.disagreements) == (2, 0)  # the reader distrusts it
    source.state = BookState(synced=True, snapshot=snapshot)
    source.listener(StreamUpdate(channel=Channel.TICKER, type="ticker", sid=2, seq=None,
                                 msg=wrong))
    check = books.cross_check()
    assert (check.checked, check.disagreements) == (3, 1)


def test_a_removed_and_added_again_market_is_compared_only_after_its_new_snapshot() -> None:
    source = _Books()
    source.add_markets = lambda sid, markets, timeout=None: list(markets)  # type: ignore
    source.remove_markets = lambda sid, markets, timeout=None: list(markets)  # type: ignore
    books = OrderBookSet(source, ["M"])  # type: ignore[arg-type]  # the seam's protocol
    snapshot = OrderbookSnapshot(market_ticker="M", yes_dollars_fp=(
        (Decimal("0.40"), Decimal("5.00")),), no_dollars_fp=((Decimal("0.55"), Decimal("3.00")),))
    source.listener(StreamUpdate(channel=Channel.ORDERBOOK_DELTA, type="orderbook_snapshot",
                                 sid=1, seq=1, msg=snapshot))
    books.remove_markets(["M"])
    books.add_markets(["M"])
    empty = books.get("M")  # an empty book, until the new snapshot
    source.state = BookState(synced=True, snapshot=snapshot)  # whatever the reader says
    source.listener(StreamUpdate(channel=Channel.TICKER, type="ticker", sid=2, seq=None,
                                 msg=Ticker(market_ticker="M", yes_bid_dollars=empty.best_yes_bid,
                                            yes_ask_dollars=empty.best_yes_ask)))
    assert books.cross_check().checked == 0


# ---------------------------------------------------------------------- the fast path in every state

_MARKETS = ["A", "B", "C"]
_SIDS = [1, 2, 3, 4, 5, 6]
_PAYLOADS: dict[str, dict[str, Any]] = {
    "ticker": {"market_ticker": "A", "yes_bid_dollars": "0.40", "ts": 1},
    "trade": {"market_ticker": "A", "yes_price_dollars": "0.41", "count_fp": "1.00"},
    "fill": {"order_id": "o", "market_ticker": "A", "count_fp": "1.00"},
}


class _Twins:
    """The same protocol twice: one fed through feed_frames (learned shapes, one decoder
    for the whole script), the other through decode and receive only."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.general, self.fast, self.shapes = KalshiProtocol(), KalshiProtocol(), ShapeDecoder()
        self.seqs: dict[int, int] = {}
        self.pending: list[tuple[int, str]] = []

    def feed(self, frames: list[dict[str, Any]]) -> None:
        texts = [json.dumps(f, separators=(",", ":")).encode() for f in frames]
        for text in texts:
            self.general.receive(decode(text))
        feed_frames(self.fast, self.shapes, texts)

    def both(self, name: str, *args: Any) -> Any:
        getattr(self.fast, name)(*args)
        return getattr(self.general, name)(*args)

    def data(self) -> dict[str, Any]:
        rng = self.rng
        market = rng.choice(_MARKETS)
        wire_type = rng.choice(["orderbook_delta"] * 4 + ["orderbook_snapshot", *_PAYLOADS])
        sid = rng.choice(_SIDS)
        subs = self.general.subscriptions()
        if subs and rng.random() < 0.85:  # mostly frames of live sids, of their channel
            sub = rng.choice(subs)
            sid, channel = sub.sid, str(sub.channel)
            if channel != "orderbook_delta":
                wire_type = channel
            elif not wire_type.startswith("orderbook"):
                wire_type = "orderbook_delta"
        if wire_type == "orderbook_delta":
            msg: dict[str, Any] = {"market_ticker": market,
                                   "price_dollars": rng.choice(["0.40", "0.41", "x"]),
                                   "delta_fp": rng.choice(["1.00", "-1.00", ""]), "side": "yes"}
        elif wire_type == "orderbook_snapshot":
            msg = {"market_ticker": market, "yes_dollars_fp": [["0.40", "5.00"]]}
        else:
            msg = {**_PAYLOADS[wire_type], "market_ticker": market}
        frame: dict[str, Any] = {"type": wire_type, "sid": sid}
        last = self.seqs.get(sid, 0)
        step = rng.choice(["next"] * 20 + ["gap", "repeat", "none", "restart"])
        if step != "none" and wire_type != "fill":
            seq = {"next": last + 1, "gap": last + 3, "repeat": max(last, 1), "restart": 1}[step]
            self.seqs[sid] = 1 if step == "restart" else max(last, seq)
            frame["seq"] = seq
        frame["msg"] = msg
        if rng.random() < 0.2:
            frame["sending_ts_ms"] = 1764482400123
        return frame

    def compare(self, where: Any) -> None:
        general, fast = self.general, self.fast
        assert exact(fast.take_deliveries()) == exact(general.take_deliveries()), where
        assert fast.take_outgoing() == general.take_outgoing(), where
        assert repr(fast.take_completions()) == repr(general.take_completions()), where
        assert fast.channel_counters() == general.channel_counters(), where
        assert fast.subscriptions() == general.subscriptions(), where
        for market in _MARKETS:
            assert fast.market_book_state(market) == general.market_book_state(market), where


def _one_step(twins: _Twins, step: int) -> None:
    rng = twins.rng
    op = rng.choice(["data"] * 12 + ["subscribe", "reply", "unsubscribe", "update", "resync",
                                     "reconnect", "tick"])
    if op == "data":
        twins.feed([twins.data() for _ in range(rng.randint(1, 5))])
    elif op == "subscribe":
        channel = rng.choice(["orderbook_delta", *_PAYLOADS])
        markets = rng.sample(_MARKETS, rng.randint(1, 3)) if channel != "fill" else None
        command_id, _ = twins.both("subscribe", [channel], markets, {})
        twins.pending.append((command_id, channel))
    elif op == "reply" and twins.pending:
        command_id, channel = twins.pending.pop(rng.randrange(len(twins.pending)))
        sid = rng.choice(_SIDS)
        twins.seqs[sid] = 0
        twins.feed([{"id": command_id, "type": "subscribed",
                     "msg": {"channel": channel, "sid": sid}}])
    elif op == "unsubscribe" and twins.general.subscriptions():
        sid = rng.choice(twins.general.subscriptions()).sid
        command_id, _ = twins.both("unsubscribe", [sid])
        if rng.random() < 0.8:
            twins.feed([{"id": command_id, "sid": sid, "type": "unsubscribed"}])
    elif op == "update":
        subs = [s for s in twins.general.subscriptions() if s.market_tickers]
        if subs:
            sub = rng.choice(subs)
            action = rng.choice(["add_markets", "delete_markets"])
            market = rng.choice(_MARKETS)
            now = set(sub.market_tickers) | {market} if action == "add_markets" else \
                set(sub.market_tickers) - {market}
            if not now:
                return
            command_id, _ = twins.both("update_subscription", sub.sid, action, [market])
            seq = twins.seqs[sub.sid] = twins.seqs.get(sub.sid, 0) + 1
            twins.feed([{"id": command_id, "sid": sub.sid, "seq": seq, "type": "ok",
                         "msg": {"market_tickers": sorted(now)}}])
    elif op == "resync":
        twins.both("resync_markets", rng.sample(_MARKETS, 2))
    elif op == "reconnect":  # data of the new sids before, among and after the replies
        twins.both("connection_lost")
        twins.compare((step, "lost"))
        twins.pending.clear()
        twins.both("begin_restore")
        replies = []
        for text in twins.general.take_outgoing():
            twins.fast.take_outgoing()
            command = json.loads(text)
            for channel in command["params"].get("channels", []):
                sid = rng.choice(_SIDS)
                twins.seqs[sid] = 0
                replies.append({"id": command["id"], "type": "subscribed",
                                "msg": {"channel": channel, "sid": sid}})
        twins.feed([twins.data() for _ in range(rng.randint(0, 3))] + replies)
        twins.feed([twins.data() for _ in range(rng.randint(0, 3))])  # held while restoring
        if twins.general.restore_finished():
            twins.both("finish_restore", "announcement")
    elif op == "tick":
        twins.both("tick", 1e9 + step)
    twins.compare((step, op))


@pytest.mark.parametrize("seed", range(60))
def test_the_fast_path_matches_the_general_path_through_subscription_changes(seed: int) -> None:
    """Random scripts of data frames (gaps, repeats, restarts, unknown sids, unsynced
    books), subscribes answered late or never, unsubscribes, update_subscription,
    resync_markets, reconnects with restores (new sids, data held while restoring) and
    clock ticks: both protocols deliver, count, answer and ask exactly alike."""
    twins = _Twins(random.Random(seed))
    for step in range(twins.rng.randint(5, 120)):
        _one_step(twins, step)
