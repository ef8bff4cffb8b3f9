"""The protocol against a hostile server: bad book frames, absurd seqs, odd JSON, late acks.

Each test here failed before the fix it names (issue 10).
"""

from __future__ import annotations

from typing import Any

import pytest

from kalshi_ws import Channel, MalformedMessage, SequenceGap
from kalshi_ws.protocol import DUPLICATE_WINDOW, INTERNAL_COMMAND_TIMEOUT

from .test_protocol import Peer, delta, snapshot, trade


def _snapshot_requests(peer: Peer) -> list[list[str]]:
    return [c["params"]["market_tickers"] for c in peer.sent()
            if c["cmd"] == "update_subscription" and c["params"]["action"] == "get_snapshot"]


# ---------------------------------------------------------------- defect 1: bad book frames


def test_a_malformed_delta_unsyncs_its_book_and_asks_for_a_snapshot() -> None:
    peer = Peer()
    sid = peer.book(["A", "B"])
    bad = delta(sid, 3, "A")
    bad["msg"]["price_dollars"] = "not a price"
    peer.feed(bad)
    (update,) = peer.deliveries()
    assert isinstance(update.msg, MalformedMessage) and update.channel == Channel.ORDERBOOK_DELTA
    assert not peer.p.book_synced(sid, "A")
    assert peer.p.book_synced(sid, "B")  # the other market's book is untouched
    assert _snapshot_requests(peer) == [["A"]]
    peer.feed(delta(sid, 4, "A"))  # held back: the book waits for its snapshot
    assert peer.deliveries() == []
    peer.feed(snapshot(sid, 5, "A"))
    assert peer.p.book_synced(sid, "A")


def test_a_malformed_delta_without_a_readable_market_resyncs_every_book_of_the_sid() -> None:
    peer = Peer()
    sid = peer.book(["A", "B"])
    peer.feed({"type": "orderbook_delta", "sid": sid, "seq": 3, "msg": {"market_ticker": 7}})
    assert not peer.p.book_synced(sid, "A") and not peer.p.book_synced(sid, "B")
    assert _snapshot_requests(peer) == [["A", "B"]]


def test_a_malformed_snapshot_is_not_trusted_and_asks_for_another() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["orderbook_delta"], ["A"])
    peer.subscribed(command_id, ("orderbook_delta", 1))
    bad = snapshot(1, 1, "A")
    bad["msg"]["yes_dollars_fp"] = [["0.40", "lots"]]
    peer.feed(bad)
    (update,) = peer.deliveries()
    assert isinstance(update.msg, MalformedMessage)
    assert not peer.p.book_synced(1, "A")
    assert peer.p.market_book_state("A") == (False, None)
    assert _snapshot_requests(peer) == [["A"]]


def test_a_malformed_answer_to_a_resync_does_not_ask_twice() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.p.resync_market("A")
    assert _snapshot_requests(peer) == [["A"]]
    bad = snapshot(sid, 2, "A")
    bad["msg"]["yes_dollars_fp"] = "garbage"
    peer.feed(bad)
    assert _snapshot_requests(peer) == []  # the pending get_snapshot times out instead
    peer.p.tick(INTERNAL_COMMAND_TIMEOUT + 1)
    assert [c["cmd"] for c in peer.sent()] == ["unsubscribe"]  # then: resubscribe


# ---------------------------------------------------------------- defect 8: seq values


def test_an_absurd_seq_is_reported_and_the_stream_recovers() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), trade(1, 2**70), trade(1, 2), trade(1, 3))
    items = peer.deliveries()
    gaps = [i for i in items if isinstance(i, SequenceGap)]
    assert [(g.expected, g.received) for g in gaps] == [(2, 2**70), (2**70 + 1, 2)]
    assert [i.seq for i in items if not isinstance(i, SequenceGap)] == [1, 2**70, 2, 3]


def test_recent_duplicates_are_still_dropped() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(*(trade(1, n) for n in range(1, DUPLICATE_WINDOW + 10)))
    peer.deliveries()
    peer.feed(trade(1, 10))  # within the window behind: a copy
    assert peer.deliveries() == []
    assert peer.p.counters[Channel.TRADE].duplicates == 1


def test_an_absurd_seq_on_a_book_resyncs_it() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed(delta(sid, 2**70, "A"))
    assert not peer.p.book_synced(sid, "A")
    assert _snapshot_requests(peer) == [["A"]]


@pytest.mark.parametrize("seq", [2.0, "two", "", True, -1, 0, [3], {"n": 3}, "9" * 40])
def test_a_seq_that_is_not_a_positive_integer_makes_the_frame_malformed(seq: Any) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1))
    peer.feed({**trade(1, 2), "seq": seq})
    peer.feed(trade(1, 2))
    first, bad, good = peer.deliveries()
    assert isinstance(bad.msg, MalformedMessage) and "seq" in bad.msg.error
    assert (first.seq, good.seq) == (1, 2)


def test_a_seq_sent_as_a_digit_string_is_read_as_a_number() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), {**trade(1, 2), "seq": "2"}, trade(1, 3))
    assert [u.seq for u in peer.deliveries()] == [1, 2, 3]


def test_a_book_frame_with_a_bad_seq_resyncs_its_book() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed({**delta(sid, 2, "A"), "seq": 2.5})
    assert not peer.p.book_synced(sid, "A")
    assert _snapshot_requests(peer) == [["A"]]


# ---------------------------------------------------------------- defect 10: any JSON value


@pytest.mark.parametrize("wire_type", [["ticker"], {"a": 1}, 5, None, True])
def test_a_frame_whose_type_is_not_a_string_is_malformed_with_the_real_reason(
        wire_type: Any) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    for sid in (1, 99, None):
        peer.p.receive({"type": wire_type, "sid": sid, "seq": 1, "msg": {}})
    updates = peer.deliveries()
    assert len(updates) == 3
    for update in updates:
        assert isinstance(update.msg, MalformedMessage)
        assert "type" in update.msg.error and "JSON" not in update.msg.error


def test_a_list_reply_with_a_bad_list_completes_the_command_without_raising() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["cfbenchmarks_value"])
    peer.subscribed(command_id, ("cfbenchmarks_value", 1))
    peer.completions()
    update_id, _ = peer.p.update_subscription(1, "indexlist", None, {})
    peer.p.receive({"type": "cfbenchmarks_value_indexlist", "id": update_id, "sid": 1,
                    "msg": {"index_ids": 5}})
    assert peer.completions() == {update_id: ([], None)}


# ---------------------------------------------------------------- defect 4: late acknowledgements


def test_frames_of_unknown_sids_are_bounded_in_all() -> None:
    peer = Peer()
    peer.subscribe(["trade"])  # a subscribe in flight: unknown sids are held
    for sid in range(100, 130):
        for seq in range(1, 1001):
            peer.p.receive(trade(sid, seq))
    held = sum(len(frames) for frames in peer.p._unknown.values())
    assert held <= 10_000
    assert len(peer.deliveries()) == 30_000 - held  # the rest went out unchecked, not lost


def test_an_abandoned_command_that_is_never_answered_is_forgotten() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.p.receive(trade(7, 1))  # held: it may belong to the subscribe in flight
    peer.p.abandon(command_id)
    peer.p.tick(INTERNAL_COMMAND_TIMEOUT + 1)
    assert peer.p._pending == {}
    (update,) = peer.deliveries()  # nothing in flight any more: delivered unchecked
    assert update.sid == 7


def test_a_late_merge_of_an_abandoned_subscribe_keeps_the_markets() -> None:
    peer = Peer()
    first, _ = peer.subscribe(["ticker"], ["A"])
    peer.subscribed(first, ("ticker", 1))
    second, _ = peer.subscribe(["ticker"], ["B"])
    peer.p.abandon(second)
    peer.feed({"id": second, "type": "ok", "sid": 1, "msg": {"market_tickers": ["A", "B"]}})
    assert [s.market_tickers for s in peer.p.subscriptions()] == [("A", "B")]
    assert [c["cmd"] for c in peer.sent()] == []
