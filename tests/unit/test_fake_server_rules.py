"""The fake server's Kalshi rules as a pure object: a command in, frames out (no sockets)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kalshi_ws.testing.rules import (
    ERROR_TEXT,
    KalshiRules,
    Outgoing,
    ServerSubscription,
)


def snapshots(rules: KalshiRules, sub: ServerSubscription, markets: list[str],
              command_id: int | None) -> list[Outgoing]:
    """Initial data for the tests: one snapshot per order-book market."""
    if sub.channel != "orderbook_delta":
        return []
    return [(rules.frame(sub, "orderbook_snapshot", {"market_ticker": m}, command_id), sub)
            for m in markets]


def frames(out: list[Outgoing]) -> list[dict[str, Any]]:
    return [frame for frame, _ in out]


def command(cmd: str, command_id: int = 1, **params: Any) -> dict[str, Any]:
    return {"id": command_id, "cmd": cmd, "params": params}


@pytest.fixture
def rules() -> KalshiRules:
    return KalshiRules(snapshots)


def test_subscribe_answers_each_channel_then_its_initial_data(rules: KalshiRules) -> None:
    out = frames(rules.handle(command("subscribe", channels=["orderbook_delta", "trade"],
                                      market_tickers=["A", "B"])))
    assert out == [
        {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}},
        {"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": {"market_ticker": "A"}},
        {"type": "orderbook_snapshot", "sid": 1, "seq": 2, "msg": {"market_ticker": "B"}},
        {"id": 1, "type": "subscribed", "msg": {"channel": "trade", "sid": 2}},
    ]


def test_a_repeated_subscribe_merges_and_the_ok_consumes_a_seq(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["orderbook_delta"], market_tickers=["A"]))
    out = frames(rules.handle(command("subscribe", 2, channels=["orderbook_delta"],
                                      market_tickers=["A", "B"])))
    assert out == [
        {"id": 2, "sid": 1, "seq": 2, "type": "ok", "msg": {"market_tickers": ["A", "B"]}},
        {"type": "orderbook_snapshot", "sid": 1, "seq": 3, "msg": {"market_ticker": "B"}},
    ]


@pytest.mark.parametrize(("params", "code"), [
    ({}, 3),
    ({"channels": ["nope"]}, 8),
    ({"channels": ["orderbook_delta"]}, 14),
    ({"channels": ["communications"], "shard_key": 1}, 20),
    ({"channels": ["communications"], "shard_factor": 0}, 19),
    ({"channels": ["communications"], "shard_factor": 101}, 22),
    ({"channels": ["communications"], "shard_factor": 4, "shard_key": 4}, 21),
])
def test_subscribe_refusals_carry_kalshis_codes(rules: KalshiRules, params: dict[str, Any],
                                               code: int) -> None:
    (frame,) = frames(rules.handle(command("subscribe", **params)))
    assert frame == {"type": "error", "id": 1, "msg": {"code": code, "msg": ERROR_TEXT[code]}}
    assert rules.subscriptions == {}


def test_commands_that_kalshi_cannot_read(rules: KalshiRules) -> None:
    assert frames(rules.handle(None))[0]["msg"]["code"] == 1
    assert frames(rules.handle({"id": 3, "cmd": "dance"}))[0]["msg"]["code"] == 5
    assert frames(rules.handle({"id": 3, "cmd": "subscribe"}))[0]["msg"]["code"] == 2
    assert rules.parse(b"[1, 2]") is None and rules.parse("{") is None
    assert rules.parse('{"id": 1}') == {"id": 1}


def test_unsubscribe_answers_every_sid_and_refuses_unknown_ones(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["trade"]))
    out = frames(rules.handle(command("unsubscribe", 2, sids=[1, 9])))
    assert out == [{"id": 2, "sid": 1, "seq": 1, "type": "unsubscribed"},
                   {"type": "error", "id": 2, "msg": {"code": 7, "msg": ERROR_TEXT[7]}}]
    assert frames(rules.handle(command("unsubscribe", 3)))[0]["msg"]["code"] == 4


def test_update_subscription_actions(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["orderbook_delta"], market_tickers=["A"]))
    out = frames(rules.handle(command("update_subscription", 2, sids=[1],
                                      action="add_markets", market_tickers=["B"])))
    assert out[0] == {"id": 2, "sid": 1, "seq": 2, "type": "ok",
                      "msg": {"market_tickers": ["A", "B"]}}
    assert out[1]["type"] == "orderbook_snapshot" and out[1]["msg"]["market_ticker"] == "B"
    out = frames(rules.handle(command("update_subscription", 3, sids=[1],
                                      action="get_snapshot", market_tickers=["A"])))
    assert out == [{"type": "orderbook_snapshot", "sid": 1, "id": 3, "seq": 4,
                    "msg": {"market_ticker": "A"}}]
    out = frames(rules.handle(command("update_subscription", 4, sids=[1],
                                      action="delete_markets", market_tickers=["A"])))
    assert out[0]["msg"] == {"market_tickers": ["B"]} and out[0]["seq"] == 5
    for params, code in (({"sids": [1, 2], "action": "x"}, 12), ({"sids": [9]}, 7),
                         ({"sids": [1]}, 15), ({"sids": [1], "action": "indexlist"}, 13),
                         ({"sids": [1], "action": "add_markets"}, 14)):
        (frame,) = frames(rules.handle(command("update_subscription", 5, **params)))
        assert frame["msg"]["code"] == code


def test_index_lists_and_sid_scoped_errors(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["cfbenchmarks_value"]))
    out = frames(rules.handle(command("update_subscription", 2, sids=[1],
                                      action="subscribe_indices", index_ids=["BRTI"])))
    assert out == [{"id": 2, "sid": 1, "seq": 1, "type": "ok", "msg": {"index_ids": ["BRTI"]}}]
    out = frames(rules.handle(command("update_subscription", 3, sids=[1], action="indexlist")))
    assert out == [{"type": "cfbenchmarks_value_indexlist", "sid": 1, "id": 3, "seq": 2,
                    "msg": {"index_ids": ["BRTI"]}}]
    (sub,) = rules.find("cfbenchmarks_value")
    frame, _ = rules.end_subscription(sub, 25)
    assert frame == {"type": "error", "sid": 1, "seq": 3,
                     "msg": {"code": 25, "msg": ERROR_TEXT[25]}}
    assert rules.subscriptions == {}


def test_list_subscriptions_and_unfiltered_channels(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["market_lifecycle_v2", "ticker"],
                         market_tickers=["A"]))
    (lifecycle, ticker) = rules.find()
    assert lifecycle.markets is None and ticker.markets == {"A"}
    assert not ticker.sequenced and lifecycle.sequenced
    (frame,) = frames(rules.handle({"id": 9, "cmd": "list_subscriptions"}))
    assert frame == {"id": 9, "type": "ok", "msg": [
        {"channel": "market_lifecycle_v2", "sid": 1}, {"channel": "ticker", "sid": 2}]}


# ---------------------------------------------------------------------- sequencing faults

def test_receivers_are_the_channels_subscriptions_that_want_the_market(
        rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["ticker"], market_tickers=["A"]))
    rules.handle(command("subscribe", 2, channels=["trade"]))
    ticker, trade = rules.find()
    assert rules.receivers("ticker", "A") == [ticker]
    assert rules.receivers("ticker", "B") == []
    assert rules.receivers("ticker") == [ticker]  # a frame of no market goes to all
    assert rules.receivers(None, "B") == [trade]


def test_skip_seq_jumps_the_next_numbered_frame_of_the_channel_only(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["orderbook_delta"], market_tickers=["A"]))
    rules.handle(command("subscribe", 2, channels=["trade"]))
    book, trade = rules.find()
    rules.skip_seq("orderbook_delta", 2)
    assert [rules.frame(book, "orderbook_delta", {})["seq"] for _ in range(2)] == [4, 5]
    assert rules.frame(trade, "trade", {})["seq"] == 1
    rules.skip_seq(None)
    assert rules.frame(trade, "trade", {})["seq"] == 3
    assert rules.frame(book, "orderbook_delta", {})["seq"] == 7


def test_a_lost_frame_takes_its_seq_and_is_never_encoded(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["trade", "ticker"]))
    trade, ticker = rules.find()
    rules.lose_next("trade", 2)
    assert rules.encode(rules.frame(trade, "trade", {}), trade) is None
    assert rules.encode({"type": "ok", "id": 5}, None) == '{"type":"ok","id":5}'
    assert rules.encode(rules.frame(trade, "trade", {}), trade) is None
    text = rules.encode(rules.frame(trade, "trade", {}), trade)
    assert text is not None and json.loads(text)["seq"] == 3
    rules.lose_next(None)  # an unnumbered frame cannot be lost: the loss waits
    assert rules.encode(rules.frame(ticker, "ticker", {}), ticker) is not None
    assert ticker.lose == 1 and trade.lose == 1


def test_repeats_are_the_last_frames_sent(rules: KalshiRules) -> None:
    rules.handle(command("subscribe", channels=["trade", "orderbook_delta"],
                         market_tickers=["A"]))
    trade, book = rules.find()
    assert rules.repeats() == []
    sent = rules.encode(rules.frame(trade, "trade", {"price": Decimal("0.42")}), trade)
    assert sent == '{"type":"trade","sid":1,"seq":1,"msg":{"price":"0.42"}}'
    rules.lose_next("trade")
    rules.encode(rules.frame(trade, "trade", {}), trade)  # lost: not the last frame sent
    assert rules.repeats("trade") == [sent] and rules.repeats("orderbook_delta") == []
    rules.encode(rules.frame(book, "orderbook_delta", {}), book)
    assert len(rules.repeats()) == 2


def test_the_simulators_messages_carry_every_field_of_kalshis_examples() -> None:
    """What the simulator sends has at least the fields of Kalshi's own example of each
    message (tests/data/kalshi-asyncapi-examples.jsonl), deprecated ones included: code
    tested offline must not meet a field for the first time against Kalshi."""
    from kalshi_ws.testing.simulator import MarketSimulator
    from tests.conftest import load_examples

    fields: dict[str, set[str]] = {}
    for example in load_examples():
        payload = example["payload"]
        if isinstance(payload, dict) and isinstance(payload.get("msg"), dict):
            fields.setdefault(payload.get("type", ""), set()).update(payload["msg"])
    simulator = MarketSimulator(seed=7)
    market = simulator.markets[0]
    sent = {"ticker": simulator.ticker_msg(market),
            "trade": simulator.trade_msg(simulator.trade(market)),
            "orderbook_snapshot": simulator.snapshot_msg(market),
            "orderbook_delta": simulator.delta_msg(simulator.step(market))}
    missing = {kind: sorted(fields[kind] - set(msg)) for kind, msg in sent.items()}
    assert missing == {kind: [] for kind in sent}
