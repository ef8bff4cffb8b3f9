"""Conformance audit (session 20, helper 03): the protocol reference against the code.

Each test pins one place where the code disagreed with the protocol reference
(shared/kalshi-ws-protocol.md, Kalshi's AsyncAPI document) or with README.rst.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kalshi_ws import ErrorCode, MalformedMessage, SequenceGap, StreamUpdate, Ticker
from kalshi_ws.protocol import KalshiProtocol
from kalshi_ws.testing.rules import ERROR_TEXT, KalshiRules
from tests.conftest import DATA


def feed(protocol: KalshiProtocol, *frames: dict[str, Any]) -> None:
    for frame in frames:
        protocol.receive(json.loads(json.dumps(frame)))


def subscribed(protocol: KalshiProtocol, channel: str, markets: list[str] | None,
               sid: int = 1) -> None:
    command_id, _ = protocol.subscribe([channel], markets)
    feed(protocol, {"id": command_id, "type": "subscribed",
                    "msg": {"channel": channel, "sid": sid}})
    protocol.take_completions()
    protocol.take_deliveries()


# Kalshi numbers the sid-scoped replies of every subscription (the AsyncAPI ``ok`` and
# ``unsubscribed`` carry ``seq``), while ticker, fill, market_position and user_order data
# carry none (README "Sequence numbers"; reference 3.1, 5.4, 6.1). A reply's number on
# such a sid must not turn the sid's later, unnumbered data into malformed frames.
REPLIES_ON_UNSEQUENCED = [
    ("add_markets ok", "ticker", "ticker",
     lambda cid: {"id": cid, "sid": 1, "seq": 1, "type": "ok",
                  "msg": {"market_tickers": ["A", "B"]}}),
    ("error 13", "fill", "fill",
     lambda cid: {"id": cid, "sid": 1, "seq": 1, "type": "error",
                  "msg": {"code": 13, "msg": "Unsupported action"}}),
    ("add_markets ok, numbered far on", "user_orders", "user_order",
     lambda cid: {"id": cid, "sid": 1, "seq": 40, "type": "ok",
                  "msg": {"market_tickers": ["A", "B"]}}),
]


@pytest.mark.parametrize("channel, wire_type, reply", [r[1:] for r in REPLIES_ON_UNSEQUENCED],
                         ids=[r[0] for r in REPLIES_ON_UNSEQUENCED])
def test_a_numbered_reply_on_an_unsequenced_sid_leaves_its_data_readable(
        channel: str, wire_type: str, reply: Any) -> None:
    protocol = KalshiProtocol()
    subscribed(protocol, channel, ["A"])
    action = "get_snapshot" if reply(0)["type"] == "error" else "add_markets"
    command_id, _ = protocol.update_subscription(1, action, ["B"])
    feed(protocol, reply(command_id))
    protocol.take_completions()
    market = {"ticker": "B"} if wire_type == "user_order" else {"market_ticker": "B"}
    if wire_type in ("fill", "user_order"):
        market["order_id"] = "o-1"
    feed(protocol, {"type": wire_type, "sid": 1, "msg": market},
         {"type": wire_type, "sid": 1, "msg": market})
    items = protocol.take_deliveries()
    assert not [i for i in items if isinstance(i, SequenceGap)], items
    updates = [i for i in items if isinstance(i, StreamUpdate)]
    assert len(updates) == 2
    assert not [u for u in updates if isinstance(u.msg, MalformedMessage)], updates
    assert all(u.seq is None for u in updates)


def test_a_ticker_merge_ok_with_a_seq_leaves_later_tickers_readable() -> None:
    protocol = KalshiProtocol()
    subscribed(protocol, "ticker", ["A"])
    command_id, _ = protocol.subscribe(["ticker"], ["B"])
    feed(protocol, {"id": command_id, "sid": 1, "seq": 1, "type": "ok",
                    "msg": {"market_tickers": ["A", "B"]}},
         {"type": "ticker", "sid": 1, "msg": {"market_ticker": "B", "price_dollars": "0.41"}})
    (result,) = protocol.take_completions()
    assert result[1].successful[0].market_tickers == ("A", "B")
    (update,) = protocol.take_deliveries()
    assert isinstance(update.msg, Ticker)


def test_a_sequenced_sid_still_counts_its_replies() -> None:
    """The fix must not stop replies from filling a sequenced sid's numbering."""
    protocol = KalshiProtocol()
    subscribed(protocol, "trade", ["A"])
    feed(protocol, {"type": "trade", "sid": 1, "seq": 1, "msg": {"market_ticker": "A"}})
    command_id, _ = protocol.update_subscription(1, "add_markets", ["B"])
    feed(protocol, {"id": command_id, "sid": 1, "seq": 2, "type": "ok",
                    "msg": {"market_tickers": ["A", "B"]}},
         {"type": "trade", "sid": 1, "seq": 3, "msg": {"market_ticker": "B"}})
    items = protocol.take_deliveries()
    assert [type(i).__name__ for i in items] == ["StreamUpdate", "StreamUpdate"]


# README "Sequence numbers": a seq sent as a digit string ("7") is read as the number, and
# Kalshi's ok, unsubscribed and sid-scoped error replies count. A reply numbered "2" then
# fills the hole: the next frame, 3, is no gap.
@pytest.mark.parametrize("reply", [
    {"type": "ok", "msg": {"market_tickers": ["A"]}},
    {"type": "error", "msg": {"code": 26, "msg": "Subscription market limit exceeded"}},
], ids=["ok", "error"])
def test_a_replys_seq_sent_as_a_digit_string_counts_as_the_number(
        reply: dict[str, Any]) -> None:
    protocol = KalshiProtocol()
    subscribed(protocol, "trade", ["A", "B"])
    feed(protocol, {"type": "trade", "sid": 1, "seq": "1", "msg": {"market_ticker": "A"}})
    command_id, _ = protocol.update_subscription(1, "add_markets", ["C"])
    feed(protocol, {**reply, "id": command_id, "sid": 1, "seq": "2"},
         {"type": "trade", "sid": 1, "seq": "3", "msg": {"market_ticker": "A"}})
    items = protocol.take_deliveries()
    assert not [i for i in items if isinstance(i, SequenceGap)], items
    assert [i.seq for i in items if isinstance(i, StreamUpdate)] == [1, 3]


# The fake server, shipped for offline tests, answers as Kalshi does. AsyncAPI
# errorResponsePayload: ``seq`` is "Present on subscription-scoped errors on sequenced
# channels": ticker, fill, market_positions and user_orders are not sequenced.
@pytest.mark.parametrize("channel", ["ticker", "fill", "market_positions", "user_orders"])
def test_the_fake_server_numbers_no_error_of_an_unsequenced_subscription(channel: str) -> None:
    rules = KalshiRules()
    rules.handle({"id": 1, "cmd": "subscribe", "params": {"channels": [channel]}})
    (out,) = rules.handle({"id": 2, "cmd": "update_subscription",
                           "params": {"sid": 1, "action": "get_snapshot",
                                      "market_tickers": ["A"]}})
    assert out[0] == {"id": 2, "type": "error", "sid": 1,
                      "msg": {"code": 13, "msg": "Unsupported action"}}
    (sub,) = rules.find(channel)
    frame, _ = rules.end_subscription(sub, 10)
    assert "seq" not in frame and frame["sid"] == 1


def test_the_fake_server_still_numbers_errors_of_a_sequenced_subscription() -> None:
    rules = KalshiRules()
    rules.handle({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"]}})
    (out,) = rules.handle({"id": 2, "cmd": "update_subscription",
                           "params": {"sid": 1, "action": "get_snapshot",
                                      "market_tickers": ["A"]}})
    assert out[0] == {"id": 2, "type": "error", "sid": 1, "seq": 1,
                      "msg": {"code": 13, "msg": "Unsupported action"}}


def spec_error_codes() -> dict[int, str]:
    """Kalshi's error codes and texts (tests/data/SOURCES.md)."""
    with open(DATA / "asyncapi-error-codes.json", encoding="utf-8") as handle:
        return {int(code): text for code, text in json.load(handle).items()}


def test_every_error_code_kalshi_lists_is_named() -> None:
    assert set(spec_error_codes()) <= {code.value for code in ErrorCode}


@pytest.mark.parametrize("code, text", sorted(spec_error_codes().items()))
def test_the_fake_server_gives_each_error_kalshis_text(code: int, text: str) -> None:
    """Kalshi's ``msg.msg`` is the error's name (AsyncAPI x-error-codes; reference 4).
    The fake server answered "Error" for codes 18, 23, 26 and 27."""
    rules = KalshiRules()
    rules.handle({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"]}})
    (sub,) = rules.find("trade")
    frame, _ = rules.end_subscription(sub, code)
    assert frame["msg"] == {"code": code, "msg": text}
    assert ERROR_TEXT[code] == text


@pytest.mark.parametrize("command_id", [None, 0], ids=["no id", "id 0"])
def test_the_fake_server_echoes_no_id_when_the_command_had_none(command_id: Any) -> None:
    """Reference 3.1: ``id = 0`` is treated as "no id"; an ``id`` in a reply is an integer
    (AsyncAPI commandId). The fake server answered ``"id": null`` (or ``0``)."""
    rules = KalshiRules()
    sent = [
        {"cmd": "subscribe", "params": {"channels": ["trade", "nope"]}},
        {"cmd": "subscribe", "params": {"channels": ["cfbenchmarks_value"]}},
        {"cmd": "subscribe", "params": {"channels": ["trade"], "market_tickers": ["A"]}},
        {"cmd": "update_subscription",
         "params": {"sid": 1, "action": "add_markets", "market_tickers": ["B"]}},
        {"cmd": "update_subscription",
         "params": {"sid": 2, "action": "subscribe_indices", "index_ids": ["BRTI"]}},
        {"cmd": "update_subscription", "params": {"sid": 2, "action": "indexlist"}},
        {"cmd": "list_subscriptions"},
        {"cmd": "unsubscribe", "params": {"sids": [1, 9]}},
    ]
    replies = []
    for command in sent:
        if command_id is not None:
            command = {"id": command_id, **command}
        replies += [frame for frame, _ in rules.handle(command)]
    assert [r["type"] for r in replies] == [
        "subscribed", "error", "subscribed", "ok", "ok", "ok",
        "cfbenchmarks_value_indexlist", "ok", "unsubscribed", "error"]
    assert [r for r in replies if "id" in r] == []
