"""Findings of the hostile review of issue 13 (speed), each pinned by the test that showed it."""

from __future__ import annotations

import json
import queue
from typing import Any

import pytest

from kalshi_ws import StreamUpdate, Ticker
from kalshi_ws._dispatch import UpdatesQueue
from kalshi_ws.protocol import KalshiProtocol


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
