"""Findings of the hostile review of issue 13 (speed), each pinned by the test that showed it."""

from __future__ import annotations

import json
from typing import Any

from kalshi_ws.protocol import KalshiProtocol


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
