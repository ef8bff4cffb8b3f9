"""The sans-I/O protocol: commands, replies, sequence numbers, resync, restore."""

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

import pytest

from kalshi_ws import (
    Channel,
    CommandError,
    InvalidCommand,
    MalformedMessage,
    Resubscribed,
    SequenceGap,
    SubscribeResult,
    SubscriptionError,
    SubscriptionInfo,
    Unsubscribed,
)
from kalshi_ws.protocol import KalshiProtocol, State


class Counters(NamedTuple):
    received: int
    duplicates: int
    gaps: int
    held_back: int


class Peer:
    """Drives a KalshiProtocol like a server would, and collects what comes out."""

    def __init__(self, **options: Any) -> None:
        self.p = KalshiProtocol(**options)

    def feed(self, *frames: dict[str, Any]) -> None:
        for frame in frames:
            self.p.receive(json.loads(json.dumps(frame)))

    def deliveries(self) -> list[Any]:
        return self.p.take_deliveries()

    def completions(self) -> dict[int, tuple[Any, Any]]:
        return {cid: (result, error) for cid, result, error in self.p.take_completions()}

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.p.take_outgoing()]

    def counters(self, channel: Any) -> Counters:
        """The channel's counters (read, not drained)."""
        return Counters(*self.p.channel_counters()[str(channel)])

    def subscribe(self, channels: Any, markets: Any = None, **options: Any) -> tuple[int, dict]:
        command_id, text = self.p.subscribe(channels, markets, options)
        return command_id, json.loads(text)

    def subscribed(self, command_id: int, *pairs: tuple[str, int]) -> None:
        for channel, sid in pairs:
            self.feed({"id": command_id, "type": "subscribed",
                       "msg": {"channel": channel, "sid": sid}})

    def book(self, markets: list[str], sid: int = 1) -> int:
        """A subscribed orderbook sid with snapshots for every market (seq 1..n)."""
        command_id, _ = self.subscribe(["orderbook_delta"], markets)
        self.subscribed(command_id, ("orderbook_delta", sid))
        for seq, market in enumerate(markets, 1):
            self.feed(snapshot(sid, seq, market))
        self.deliveries()
        self.completions()
        return sid


def snapshot(sid: int, seq: int, market: str, **extra: Any) -> dict[str, Any]:
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, **extra,
            "msg": {"market_ticker": market, "market_id": "id",
                    "yes_dollars_fp": [["0.40", "10.00"]]}}


def delta(sid: int, seq: int, market: str, size: str = "1.00") -> dict[str, Any]:
    return {"type": "orderbook_delta", "sid": sid, "seq": seq,
            "msg": {"market_ticker": market, "market_id": "id", "price_dollars": "0.40",
                    "delta_fp": size, "side": "yes"}}


def trade(sid: int, seq: int) -> dict[str, Any]:
    return {"type": "trade", "sid": sid, "seq": seq, "msg": {"market_ticker": "M"}}


# ---------------------------------------------------------------- commands


def test_command_ids_count_up_and_texts_have_kalshis_shape() -> None:
    peer = Peer()
    first, wire = peer.subscribe(["ticker"], ["A", "B"], send_initial_snapshot=True)
    second, text = peer.p.list_subscriptions()
    assert (first, second) == (1, 2)
    assert wire == {"id": 1, "cmd": "subscribe", "params": {
        "channels": ["ticker"], "market_tickers": ["A", "B"], "send_initial_snapshot": True}}
    assert json.loads(text) == {"id": 2, "cmd": "list_subscriptions"}


def test_orderbook_without_markets_is_refused_before_sending() -> None:
    with pytest.raises(InvalidCommand, match="requires market_tickers"):
        Peer().subscribe([Channel.ORDERBOOK_DELTA])


def test_orderbook_subscribe_always_states_the_price_convention() -> None:
    _, wire = Peer().subscribe([Channel.ORDERBOOK_DELTA], "M")
    assert wire["params"]["use_yes_price"] is False
    _, wire = Peer().subscribe([Channel.ORDERBOOK_DELTA], "M", use_yes_price=True)
    assert wire["params"]["use_yes_price"] is True


@pytest.mark.parametrize("channels, markets, options, problem", [
    ([], None, {}, "at least one channel"),
    ([3], None, {}, "not a channel"),
    (["ticker"], [], {}, "empty"),
    (["ticker"], ["A", ""], {}, "non-empty strings"),
    (["ticker"], None, {"bogus": 1}, "unknown subscribe option"),
    (["communications"], None, {"shard_key": 1}, "requires shard_factor"),
    (["communications"], None, {"shard_factor": 101}, "between 1 and 100"),
    (["communications"], None, {"shard_factor": 2, "shard_key": 2}, "shard_key"),
    (["communications"], None, {"user_filter": "others"}, "user_filter"),
    (["ticker"], None, {"send_initial_snapshot": "yes"}, "must be bool"),
    (["ticker"], None, {"shard_factor": True}, "must be an int"),
])
def test_bad_subscribe_arguments_name_the_problem(channels: Any, markets: Any,
                                                  options: dict, problem: str) -> None:
    with pytest.raises(InvalidCommand, match=problem):
        Peer().subscribe(channels, markets, **options)


def test_subscribe_waits_for_one_reply_per_channel() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["orderbook_delta", "trade"], ["M"])
    peer.subscribed(command_id, ("orderbook_delta", 1))
    assert peer.completions() == {}
    peer.subscribed(command_id, ("trade", 2))
    result, error = peer.completions()[command_id]
    assert error is None
    assert [(s.channel, s.sid, s.market_tickers) for s in result.successful] == [
        (Channel.ORDERBOOK_DELTA, 1, ("M",)), (Channel.TRADE, 2, ("M",))]


def test_partial_failure_lists_the_refused_channel() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "ticker_v2"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 8,
                                                          "msg": "Unknown channel name"}})
    result, _ = peer.completions()[command_id]
    assert isinstance(result, SubscribeResult) and not result.ok
    assert [(f.channel, f.code) for f in result.failed] == [("ticker_v2", 8)]
    assert result.sids == (1,)


def test_an_error_before_a_siblings_success_fails_only_the_other_channel() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "ticker_v2"])
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 8,
                                                          "msg": "Unknown channel name"}})
    assert peer.completions() == {}  # the error does not say which channel it is about
    peer.subscribed(command_id, ("ticker", 1))
    result, _ = peer.completions()[command_id]
    assert [s.channel for s in result.successful] == [Channel.TICKER]
    assert [(f.channel, f.code) for f in result.failed] == [("ticker_v2", 8)]


def test_unknown_channel_errors_are_pinned_on_the_unknown_names() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "bogus", "trade"])
    peer.subscribed(command_id, ("trade", 3))
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 8,
                                                          "msg": "Unknown channel name"}})
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 9,
                                                          "msg": "Authentication required"}})
    result, _ = peer.completions()[command_id]
    assert sorted((str(f.channel), f.code) for f in result.failed) == [
        ("bogus", 8), ("ticker", 9)]


def test_a_merge_answered_twice_counts_once_and_waits_for_the_other_channel() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(first, ("ticker", 1))
    peer.completions()
    second, _ = peer.subscribe(["ticker", "trade"], ["B"])
    peer.subscribed(second, ("ticker", 1))
    peer.feed({"id": second, "sid": 1, "seq": 1, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}})
    assert peer.completions() == {}  # trade has not answered yet
    peer.subscribed(second, ("trade", 2))
    result, _ = peer.completions()[second]
    assert [(s.channel, s.sid) for s in result.successful] == [
        (Channel.TICKER, 1), (Channel.TRADE, 2)]
    assert [(s.channel, s.sid) for s in peer.p.subscriptions()] == [
        (Channel.TICKER, 1), (Channel.TRADE, 2)]


def test_a_command_level_error_fails_every_channel_at_once() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "trade"])
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 2, "msg": "Params required"}})
    result, _ = peer.completions()[command_id]
    assert [f.code for f in result.failed] == [2, 2]


def test_data_before_the_subscribed_reply_is_held_then_delivered_in_order() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.feed(trade(5, 1), trade(5, 2))
    assert peer.deliveries() == []
    peer.subscribed(command_id, ("trade", 5))
    assert [(u.sid, u.seq, u.channel) for u in peer.deliveries()] == [
        (5, 1, Channel.TRADE), (5, 2, Channel.TRADE)]


def test_a_repeated_subscribe_answered_with_ok_merges_markets() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(first, ("ticker", 1))
    second, _ = peer.subscribe(["ticker"], ["B"])
    peer.feed({"id": second, "sid": 1, "seq": 1, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}})
    result, _ = peer.completions()[second]
    assert result.successful[0].sid == 1
    assert result.successful[0].market_tickers == ("A", "B")
    assert peer.p.subscriptions()[0].market_tickers == ("A", "B")


def test_a_repeated_subscribe_answered_with_subscribed_merges_markets() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(first, ("ticker", 1))
    second, _ = peer.subscribe(["ticker"], ["B"])
    peer.subscribed(second, ("ticker", 1))
    assert peer.p.subscriptions()[0].market_tickers == ("A", "B")


def test_unsubscribe_waits_for_every_sid_and_reports_them() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "trade"])
    peer.subscribed(command_id, ("ticker", 1), ("trade", 2))
    peer.completions()
    unsub_id, text = peer.p.unsubscribe([1, 2])
    assert json.loads(text)["params"] == {"sids": [1, 2]}
    peer.feed({"id": unsub_id, "sid": 1, "seq": 1, "type": "unsubscribed"})
    assert peer.completions() == {}
    peer.feed({"type": "unsubscribed", "sid": 2})  # older servers sent no id
    assert peer.completions()[unsub_id] == ([1, 2], None)
    assert [type(d) for d in peer.deliveries()] == [Unsubscribed, Unsubscribed]
    assert peer.p.subscriptions() == []


def test_unsubscribing_an_unknown_sid_raises_command_error() -> None:
    peer = Peer()
    unsub_id, _ = peer.p.unsubscribe(9)
    peer.feed({"id": unsub_id, "type": "error", "msg": {"code": 7,
                                                        "msg": "Unknown subscription ID"}})
    result, error = peer.completions()[unsub_id]
    assert result is None and isinstance(error, CommandError)
    assert (error.code, error.command_id) == (7, unsub_id)


@pytest.mark.parametrize("sids", [[], [0], ["1"], [True]])
def test_bad_sids_are_refused(sids: list) -> None:
    with pytest.raises(InvalidCommand):
        Peer().p.unsubscribe(sids)


def test_update_subscription_tracks_the_market_list() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(command_id, ("ticker", 3))
    add_id, text = peer.p.update_subscription(3, "add_markets", ["B"])
    assert json.loads(text)["params"] == {"sids": [3], "action": "add_markets",
                                          "market_tickers": ["B"]}
    peer.feed({"id": add_id, "sid": 3, "seq": 1, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}})
    delete_id, _ = peer.p.update_subscription(3, "delete_markets", "A")
    peer.feed({"id": delete_id, "sid": 3, "seq": 2, "type": "ok", "msg": {}})  # skip_ticker_ack
    done = peer.completions()
    assert done[add_id] == (["A", "B"], None)
    assert done[delete_id] == (["B"], None)
    assert peer.p.subscriptions()[0].market_tickers == ("B",)


@pytest.mark.parametrize("action, markets, params, problem", [
    ("add_markets", None, {}, "needs market_tickers"),
    ("get_snapshot", None, {}, "needs market_tickers"),
    ("subscribe_indices", None, {}, "needs index_ids"),
    ("", None, {}, "action"),
])
def test_update_subscription_refuses_actions_without_their_list(
        action: str, markets: Any, params: dict, problem: str) -> None:
    with pytest.raises(InvalidCommand, match=problem):
        Peer().p.update_subscription(1, action, markets, params)


def test_get_snapshot_completes_when_every_snapshot_arrived() -> None:
    peer = Peer()
    sid = peer.book(["A", "B"])
    command_id, _ = peer.p.update_subscription(sid, "get_snapshot", ["A", "B"])
    peer.feed(snapshot(sid, 3, "A", id=command_id))
    assert peer.completions() == {}
    peer.feed(snapshot(sid, 4, "B", id=command_id))
    assert peer.completions()[command_id] == (["A", "B"], None)
    peer.feed({"id": command_id, "sid": sid, "seq": 5, "type": "ok", "msg": {}})  # late ok
    assert peer.completions() == {}
    assert [u.type for u in peer.deliveries()] == ["orderbook_snapshot"] * 2


def test_get_snapshot_on_a_trade_sid_fails_with_code_13() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 2))
    update_id, _ = peer.p.update_subscription(2, "get_snapshot", ["M"])
    peer.feed({"id": update_id, "sid": 2, "seq": 1, "type": "error",
               "msg": {"code": 13, "msg": "Unsupported action"}})
    _, error = peer.completions()[update_id]
    assert error.code == 13 and error.sid == 2


def test_index_list_reply_answers_the_command_and_is_delivered() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["cfbenchmarks_value"], index_ids=["BRTI"])
    peer.subscribed(command_id, ("cfbenchmarks_value", 1))
    list_id, _ = peer.p.update_subscription(1, "indexlist")
    peer.feed({"type": "cfbenchmarks_value_indexlist", "id": list_id, "sid": 1, "seq": 1,
               "msg": {"index_ids": ["BRTI", "ETHUSD_RTI"]}})
    assert peer.completions()[list_id] == (["BRTI", "ETHUSD_RTI"], None)
    assert peer.deliveries()[0].msg.index_ids == ("BRTI", "ETHUSD_RTI")


def test_list_subscriptions_reads_both_reply_shapes() -> None:
    peer = Peer()
    first, _ = peer.p.list_subscriptions()
    peer.feed({"id": first, "type": "ok", "msg": [{"channel": "ticker", "sid": 2}]})
    second, _ = peer.p.list_subscriptions()
    peer.feed({"id": second, "type": "ok", "subscriptions": [{"channel": "fill", "sid": 3}]})
    done = peer.completions()
    assert done[first] == ([SubscriptionInfo(channel=Channel.TICKER, sid=2)], None)
    assert done[second] == ([SubscriptionInfo(channel=Channel.FILL, sid=3)], None)


def test_a_late_acknowledgement_of_an_abandoned_subscribe_is_unsubscribed() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.p.abandon(command_id)
    peer.subscribed(command_id, ("trade", 4))
    assert peer.completions() == {}
    assert peer.p.subscriptions() == []
    assert [(c["cmd"], c["params"]) for c in peer.sent()] == [("unsubscribe", {"sids": [4]})]
    peer.feed(trade(4, 1))
    assert peer.deliveries() == []


# ---------------------------------------------------------------- sequence numbers


def test_in_order_frames_are_delivered_duplicates_dropped() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), trade(1, 2), trade(1, 2), trade(1, 1), trade(1, 3))
    assert [u.seq for u in peer.deliveries()] == [1, 2, 3]
    assert peer.counters(Channel.TRADE).duplicates == 2


def test_a_gap_is_reported_with_expected_and_received() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), trade(1, 4))
    _, gap, update = peer.deliveries()
    assert gap == SequenceGap(sid=1, channel=Channel.TRADE, expected=2, received=4)
    assert update.seq == 4
    assert peer.sent() == []  # trades are gone for good: nothing to resync


def test_gaps_and_malformed_frames_log_as_kalshi_ws_protocol(
        caplog: pytest.LogCaptureFixture) -> None:
    # README (Logging): the protocol's warnings log as "kalshi_ws.protocol", whichever
    # of its modules does the work.
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    with caplog.at_level(logging.WARNING):
        peer.feed(trade(1, 1), trade(1, 4))
        peer.p.receive_invalid(b"not json", "Expecting value")
    warnings = [(r.name, r.getMessage().split(" ")[0]) for r in caplog.records]
    assert warnings == [("kalshi_ws.protocol", "sequence"), ("kalshi_ws.protocol", "malformed")]


def test_control_replies_consume_sequence_numbers() -> None:
    peer = Peer()
    sid = peer.book(["A"])  # seq 1
    add_id, _ = peer.p.update_subscription(sid, "add_markets", ["B"])
    peer.feed({"id": add_id, "sid": sid, "seq": 2, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}})
    peer.feed(snapshot(sid, 3, "B"), delta(sid, 4, "A"))
    peer.feed({"type": "error", "sid": sid, "seq": 5, "msg": {"code": 18,
                                                              "msg": "Command timeout"}})
    peer.feed(delta(sid, 6, "B"))
    kinds = [type(d).__name__ for d in peer.deliveries()]
    assert "SequenceGap" not in kinds
    assert kinds == ["StreamUpdate", "StreamUpdate", "SubscriptionError", "StreamUpdate"]


def test_a_new_sid_whose_first_frames_were_lost_reports_a_gap() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 3))  # seq starts at 1: seqs 1 and 2 were lost
    gap, update = peer.deliveries()
    assert gap == SequenceGap(sid=1, channel=Channel.TRADE, expected=1, received=3)
    assert update.seq == 3


def test_a_lost_first_snapshot_resyncs_the_book_instead_of_stalling_it() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["orderbook_delta"], ["A"])
    peer.subscribed(command_id, ("orderbook_delta", 1))
    peer.completions()
    peer.feed(delta(1, 2, "A"))  # seq 1, the snapshot of A, never arrived
    (gap,) = peer.deliveries()
    assert gap == SequenceGap(sid=1, channel=Channel.ORDERBOOK_DELTA, expected=1, received=2)
    (request,) = peer.sent()
    assert request["params"] == {"sids": [1], "action": "get_snapshot", "market_tickers": ["A"]}
    peer.feed(snapshot(1, 3, "A", id=request["id"]), delta(1, 4, "A"))
    assert [u.type for u in peer.deliveries()] == ["orderbook_snapshot", "orderbook_delta"]
    assert peer.p.book_synced(1, "A")


def test_unsequenced_channels_are_not_gap_checked() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.feed(*[{"type": "ticker", "sid": 1, "msg": {"market_ticker": "M"}}] * 3)
    assert [u.seq for u in peer.deliveries()] == [None] * 3


# ---------------------------------------------------------------- order-book resync


def test_a_gap_on_a_book_holds_deltas_and_asks_for_snapshots() -> None:
    peer = Peer()
    sid = peer.book(["A", "B"])  # seq 1, 2
    peer.feed(delta(sid, 4, "A"))  # seq 3 was lost
    gap, *rest = peer.deliveries()
    assert isinstance(gap, SequenceGap) and rest == []
    assert not peer.p.book_synced(sid, "A") and not peer.p.book_synced(sid, "B")
    (request,) = peer.sent()
    assert request["cmd"] == "update_subscription"
    assert request["params"] == {"sids": [sid], "action": "get_snapshot",
                                 "market_tickers": ["A", "B"]}
    peer.feed(delta(sid, 5, "B"), snapshot(sid, 6, "A", id=request["id"]), delta(sid, 7, "A"),
              delta(sid, 8, "B"))
    delivered = [(u.type, u.msg.market_ticker) for u in peer.deliveries()]
    assert delivered == [("orderbook_snapshot", "A"), ("orderbook_delta", "A")]
    assert peer.counters(Channel.ORDERBOOK_DELTA).held_back == 3
    peer.feed(snapshot(sid, 9, "B", id=request["id"]), delta(sid, 10, "B"))
    assert [u.type for u in peer.deliveries()] == ["orderbook_snapshot", "orderbook_delta"]
    assert peer.p.book_synced(sid, "B")


def test_a_delta_for_a_book_without_snapshot_asks_for_one() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed(delta(sid, 2, "Z"))
    assert peer.deliveries() == []
    (request,) = peer.sent()
    assert request["params"]["market_tickers"] == ["Z"]
    peer.feed(delta(sid, 3, "Z"))  # already asked: no second request
    assert peer.sent() == []


def test_failed_get_snapshot_falls_back_to_unsubscribe_and_subscribe() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed(delta(sid, 3, "A"))  # gap
    peer.deliveries()
    (request,) = peer.sent()
    peer.feed({"id": request["id"], "sid": sid, "seq": 4, "type": "error",
               "msg": {"code": 13, "msg": "Unsupported action"}})
    (unsub,) = peer.sent()
    assert unsub["cmd"] == "unsubscribe" and unsub["params"] == {"sids": [sid]}
    peer.feed(delta(sid, 5, "A"))  # stale frame of the old sid: never delivered
    assert peer.deliveries() == []
    peer.feed({"id": unsub["id"], "sid": sid, "seq": 6, "type": "unsubscribed"})
    (resub,) = peer.sent()
    assert resub["cmd"] == "subscribe"
    assert resub["params"] == {"channels": ["orderbook_delta"], "market_tickers": ["A"],
                               "use_yes_price": False}
    peer.subscribed(resub["id"], ("orderbook_delta", 2))
    peer.feed(delta(2, 1, "A"))  # before its snapshot: held back
    peer.feed(snapshot(2, 2, "A"), delta(2, 3, "A"))
    delivered = peer.deliveries()
    assert delivered[0] == Resubscribed(channel=Channel.ORDERBOOK_DELTA, old_sid=sid,
                                        new_sid=2, reason="get_snapshot failed: error 13")
    assert [u.type for u in delivered[1:]] == ["orderbook_snapshot", "orderbook_delta"]


@pytest.mark.parametrize("code", [10, 25])
def test_terminal_errors_resubscribe_at_once(code: int) -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed({"type": "error", "sid": sid, "seq": 2,
               "msg": {"code": code, "msg": "Subscription buffer overflow"}})
    error, = peer.deliveries()
    assert error == SubscriptionError(sid=sid, channel=Channel.ORDERBOOK_DELTA, code=code,
                                      message="Subscription buffer overflow")
    (resub,) = peer.sent()
    assert resub["cmd"] == "subscribe"
    peer.feed(delta(sid, 3, "A"))
    assert peer.deliveries() == []
    peer.subscribed(resub["id"], ("orderbook_delta", 7))
    assert [s.sid for s in peer.p.subscriptions()] == [7]
    assert isinstance(peer.deliveries()[0], Resubscribed)


def test_terminal_error_without_resync_ends_the_subscription() -> None:
    peer = Peer(resync=False)
    sid = peer.book(["A"])
    peer.feed({"type": "error", "sid": sid, "seq": 2, "msg": {"code": 25, "msg": "overflow"}})
    assert [type(d) for d in peer.deliveries()] == [SubscriptionError, Unsubscribed]
    assert peer.sent() == [] and peer.p.subscriptions() == []


def test_an_unanswered_resync_falls_back_to_resubscribing() -> None:
    peer = Peer()
    peer.p.tick(100.0)
    sid = peer.book(["A"])
    peer.feed(delta(sid, 3, "A"))
    peer.sent()
    peer.p.tick(101.0)
    assert peer.sent() == []
    peer.p.tick(200.0)
    (unsub,) = peer.sent()
    assert unsub["cmd"] == "unsubscribe"


def test_add_markets_on_a_book_holds_deltas_until_their_snapshot() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    add_id, _ = peer.p.update_subscription(sid, "add_markets", ["B"])
    peer.feed(delta(sid, 2, "B"))
    assert peer.deliveries() == [] and peer.sent() == []
    peer.feed({"id": add_id, "sid": sid, "seq": 3, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}}, snapshot(sid, 4, "B"), delta(sid, 5, "B"))
    assert [u.type for u in peer.deliveries()] == ["orderbook_snapshot", "orderbook_delta"]


# ---------------------------------------------------------------- reconnect


def test_restore_replays_every_subscription_with_its_current_markets() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    add_id, _ = peer.p.update_subscription(sid, "add_markets", ["B"])
    peer.feed({"id": add_id, "sid": sid, "seq": 2, "type": "ok",
               "msg": {"market_tickers": ["A", "B"]}})
    command_id, _ = peer.subscribe(["ticker"], None, skip_ticker_ack=True)
    peer.subscribed(command_id, ("ticker", 2))
    pending, _ = peer.p.list_subscriptions()
    peer.completions()
    assert peer.p.connection_lost() == [pending]
    assert peer.p.subscriptions() == []
    assert peer.p.begin_restore() == 2
    plans = {tuple(c["params"]["channels"]): c for c in peer.sent()}
    assert plans[("orderbook_delta",)]["params"] == {
        "channels": ["orderbook_delta"], "market_tickers": ["A", "B"], "use_yes_price": False}
    assert plans[("ticker",)]["params"] == {"channels": ["ticker"], "skip_ticker_ack": True}
    peer.subscribed(plans[("ticker",)]["id"], ("ticker", 1))
    peer.feed({"type": "ticker", "sid": 1, "msg": {"market_ticker": "A"}})
    assert peer.deliveries() == [] and peer.p.restore_result() is None  # held until all are back
    peer.subscribed(plans[("orderbook_delta",)]["id"], ("orderbook_delta", 2))
    assert peer.p.restore_result() is not None
    assert dict(peer.p.restore_result().sid_map) == {1: 2, 2: 1}
    peer.feed({"type": "ticker", "sid": 1, "msg": {"market_ticker": "B"}})
    assert peer.deliveries() == []  # still held: the announcement comes first
    peer.p.finish_restore("RECONNECTED")
    delivered = peer.deliveries()
    assert delivered[0] == "RECONNECTED"
    assert [u.msg.market_ticker for u in delivered[1:]] == ["A", "B"]
    peer.feed({"type": "ticker", "sid": 1, "msg": {"market_ticker": "C"}})
    assert len(peer.deliveries()) == 1  # and afterwards nothing is held


def test_restore_with_nothing_to_restore_is_done_at_once() -> None:
    peer = Peer()
    peer.p.connection_lost()
    assert peer.p.begin_restore() == 0
    assert peer.p.restore_result() is not None and not peer.p.restore_result().sid_map


def test_the_state_follows_the_connection_through_a_restore() -> None:
    peer = Peer()
    assert peer.p.state is State.OPEN
    command_id, _ = peer.subscribe(["ticker"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.p.connection_lost()
    assert peer.p.state is State.LOST
    assert peer.p.begin_restore() == 1
    assert peer.p.state is State.RESTORING
    (restore,) = peer.sent()
    peer.subscribed(restore["id"], ("ticker", 4))
    assert peer.p.state is State.RESTORED and peer.p.restore_finished()
    peer.p.finish_restore("RECONNECTED")
    assert peer.p.state is State.OPEN and not peer.p.restore_finished()
    peer.p.connection_lost()
    peer.p.forget_subscriptions()
    assert peer.p.begin_restore() == 0
    assert peer.p.state is State.OPEN  # nothing to restore: nothing held
    with pytest.raises(AttributeError):
        peer.p.state = State.LOST  # type: ignore[misc]


@pytest.mark.parametrize("channel", ["ticker", "orderbook_delta"])
def test_a_subscription_emptied_of_markets_is_not_restored_as_all_markets(
        channel: str) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe([channel], ["A"])
    peer.subscribed(command_id, (channel, 7))
    remove_id, _ = peer.p.update_subscription(7, "delete_markets", ["A"])
    peer.feed({"id": remove_id, "sid": 7, "type": "ok", "msg": {"market_tickers": []}})
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 8))
    peer.completions()
    peer.p.connection_lost()
    assert peer.p.begin_restore() == 1
    (plan,) = peer.sent()
    assert plan["params"] == {"channels": ["trade"]}  # the emptied one is not re-sent
    assert peer.p.restore_result() is None
    peer.subscribed(plan["id"], ("trade", 1))
    assert peer.p.restore_result() is not None
    assert dict(peer.p.restore_result().sid_map) == {8: 1}
    ((old_sid, reason),) = peer.p.restore_result().failed
    assert old_sid == 7 and "no markets left" in reason


def test_restoring_only_emptied_subscriptions_is_done_at_once() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(command_id, ("ticker", 3))
    remove_id, _ = peer.p.update_subscription(3, "delete_markets", ["A"])
    peer.feed({"id": remove_id, "sid": 3, "type": "ok", "msg": {"market_tickers": []}})
    peer.p.connection_lost()
    assert peer.p.begin_restore() == 0
    assert peer.sent() == []
    assert peer.p.restore_result() is not None and peer.p.restore_result().failed[0][0] == 3


def test_an_emptied_subscription_ended_by_kalshi_is_not_recreated_wider() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["orderbook_delta"], ["A"])
    peer.subscribed(command_id, ("orderbook_delta", 4))
    remove_id, _ = peer.p.update_subscription(4, "delete_markets", ["A"])
    peer.feed({"id": remove_id, "sid": 4, "seq": 1, "type": "ok",
               "msg": {"market_tickers": []}})
    peer.completions()
    peer.feed({"type": "error", "sid": 4, "seq": 2,
               "msg": {"code": 25, "msg": "Subscription buffer overflow"}})
    assert not any(c["cmd"] == "subscribe" for c in peer.sent())
    ended = [d for d in peer.deliveries() if isinstance(d, Unsubscribed)]
    assert len(ended) == 1 and ended[0].sid == 4 and "no markets left" in ended[0].reason


def test_a_refused_restore_is_reported_not_retried_forever() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["fill"])
    peer.subscribed(command_id, ("fill", 1))
    peer.p.connection_lost()
    peer.p.begin_restore()
    (plan,) = peer.sent()
    peer.feed({"id": plan["id"], "type": "error", "msg": {"code": 9,
                                                          "msg": "Authentication required"}})
    assert peer.p.restore_result() is not None
    assert peer.p.restore_result().failed == ((1, "error 9: Authentication required"),)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("frame", [[1, 2], "text", None, {"no": "type"}, {"type": 5}])
def test_frames_that_are_not_messages_become_malformed_updates(frame: Any) -> None:
    peer = Peer()
    peer.p.receive(frame)
    (update,) = peer.deliveries()
    assert isinstance(update.msg, MalformedMessage)


def test_invalid_json_is_delivered_as_malformed() -> None:
    peer = Peer()
    peer.p.receive_invalid(b"{oops", "Expecting property name")
    (update,) = peer.deliveries()
    assert isinstance(update.msg, MalformedMessage) and "invalid JSON" in update.msg.error
    assert update.msg.raw == {"text": "{oops"}


def test_replies_with_bad_shapes_do_not_raise() -> None:
    peer = Peer()
    peer.feed({"type": "subscribed", "id": 1, "msg": "x"}, {"type": "ok", "id": 99},
              {"type": "error"}, {"type": "unsubscribed", "sid": "x"})
    assert peer.completions() == {}


# ---------------------------------------------------------------- review regressions


def test_a_terminal_error_during_a_resync_still_resubscribes() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed(delta(sid, 3, "A"))  # a gap: a get_snapshot is now in flight
    peer.deliveries()
    (request,) = peer.sent()
    assert request["params"]["action"] == "get_snapshot"
    peer.feed({"type": "error", "sid": sid, "seq": 4,
               "msg": {"code": 25, "msg": "Subscription buffer overflow"}})
    assert [type(d) for d in peer.deliveries()] == [SubscriptionError]
    (resub,) = peer.sent()
    assert resub["cmd"] == "subscribe"
    assert peer.p.subscriptions() == []  # the dead sid is no longer tracked


def test_sid_map_after_a_failed_restore_maps_the_sids_the_user_knows() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"])
    peer.subscribed(first, ("ticker", 1))
    second, _ = peer.subscribe(["trade"])
    peer.subscribed(second, ("trade", 2))
    peer.p.connection_lost()
    peer.p.begin_restore()
    plans = peer.sent()
    peer.subscribed(plans[1]["id"], ("trade", 5))  # half restored, then lost again
    peer.p.connection_lost()
    peer.p.begin_restore()
    for plan, new_sid in zip(peer.sent(), (7, 8)):
        peer.subscribed(plan["id"], (plan["params"]["channels"][0], new_sid))
    assert peer.p.restore_result() is not None
    assert set(peer.p.restore_result().sid_map) == {1, 2}  # not the intermediate sid 5
    peer.p.finish_restore("RECONNECTED")
    peer.p.connection_lost()
    peer.p.begin_restore()
    for plan, new_sid in zip(peer.sent(), (3, 4)):
        peer.subscribed(plan["id"], (plan["params"]["channels"][0], new_sid))
    assert set(peer.p.restore_result().sid_map) == {7, 8}  # after the announcement: the new sids


def test_a_merge_answered_without_a_market_list_still_tracks_the_markets() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"], ["A"], skip_ticker_ack=True)
    peer.subscribed(first, ("ticker", 1))
    second, _ = peer.subscribe(["ticker"], ["B"], skip_ticker_ack=True)
    peer.feed({"id": second, "sid": 1, "seq": 1, "type": "ok"})
    result, _ = peer.completions()[second]
    assert result.successful[0].market_tickers == ("A", "B")
    peer.p.connection_lost()
    peer.p.begin_restore()
    (plan,) = peer.sent()
    assert plan["params"]["market_tickers"] == ["A", "B"]


@pytest.mark.parametrize("frame", [
    {"type": "trade", "sid": [1], "seq": 1, "msg": {}},
    {"type": "trade", "sid": {"x": 1}, "msg": {}},
    {"type": "ok", "id": [2], "msg": {}},
    {"type": "cfbenchmarks_value_indexlist", "id": [3], "sid": 9, "msg": {}},
])
def test_unhashable_ids_never_raise(frame: dict[str, Any]) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.p.receive(frame)  # must not raise


def test_an_order_book_delta_with_a_bad_market_never_raises() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed({"type": "orderbook_delta", "sid": sid, "seq": 2,
               "msg": {"market_ticker": ["A"], "side": "yes"}})
    peer.feed(delta(sid, 3, "A"))
    # The unreadable delta is delivered as such; the book it may belong to is
    # resynchronised, so the next delta waits for the fresh snapshot.
    (update,) = peer.deliveries()
    assert isinstance(update.msg, MalformedMessage) and update.seq == 2
    assert not peer.p.book_synced(sid, "A")


def test_the_latest_snapshot_is_remembered_per_market() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    synced, latest = peer.p.market_book_state("A")
    assert synced and latest.market_ticker == "A"
    peer.feed(snapshot(sid, 2, "A"))
    (update,) = peer.deliveries()
    assert peer.p.market_book_state("A") == (True, update.msg)
    peer.p.resync_market("A")
    assert peer.p.market_book_state("A")[0] is False
