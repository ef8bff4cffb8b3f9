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


def test_a_malformed_answer_to_a_resync_is_asked_again_once_then_resubscribed() -> None:
    peer = Peer()
    sid = peer.book(["A", "B"])
    peer.p.resync_market("A")
    assert _snapshot_requests(peer) == [["A"]]
    bad = snapshot(sid, 3, "A")  # seqs 1 and 2 were the first snapshots
    bad["msg"]["yes_dollars_fp"] = "garbage"
    peer.feed(bad)
    assert _snapshot_requests(peer) == [["A"]]  # asked again at once, as after a gap
    peer.feed({**bad, "seq": 4})
    assert _snapshot_requests(peer) == []  # not a third time: that request times out
    assert not peer.p.book_synced(sid, "A") and peer.p.book_synced(sid, "B")
    peer.p.tick(INTERNAL_COMMAND_TIMEOUT + 1)
    assert [c["cmd"] for c in peer.sent()] == ["unsubscribe"]  # then: resubscribe


def test_a_good_snapshot_after_a_bad_one_lets_a_later_bad_one_be_asked_again() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    bad = snapshot(sid, 2, "A")
    bad["msg"]["yes_dollars_fp"] = "garbage"
    for seq in (2, 4):
        peer.p.resync_market("A")
        assert _snapshot_requests(peer) == [["A"]]
        peer.feed({**bad, "seq": seq})
        assert _snapshot_requests(peer) == [["A"]]
        peer.feed(snapshot(sid, seq + 1, "A"))
        assert peer.p.book_synced(sid, "A")


def test_a_book_frame_without_seq_is_malformed() -> None:
    """A book cannot place an unnumbered delta: it is malformed and the book resyncs."""
    peer = Peer()
    sid = peer.book(["A"])
    frame = delta(sid, 2, "A")
    del frame["seq"]
    peer.feed(frame, {**delta(sid, 3, "A"), "seq": None})
    assert all(isinstance(u.msg, MalformedMessage) for u in peer.deliveries())
    assert not peer.p.book_synced(sid, "A")


def test_a_frame_without_seq_on_a_numbered_sid_is_delivered_unchecked() -> None:
    """Kalshi's rule: seq is optional, and only frames that carry one are gap-checked
    (communications frames once came without it). Outside order books an unnumbered
    frame is delivered with ``seq=None`` and leaves the sid's sequence as it was."""
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 2))
    unnumbered = trade(2, 2)
    del unnumbered["seq"]
    peer.feed(trade(2, 1), unnumbered, {**trade(2, 2), "seq": None}, trade(2, 2))
    items = peer.deliveries()
    assert [(type(u.msg).__name__, u.seq) for u in items] == \
        [("Trade", 1), ("Trade", None), ("Trade", None), ("Trade", 2)]


def test_a_stray_small_jump_does_not_swallow_the_frames_after_it() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), trade(1, 2), trade(1, 500), *(trade(1, n) for n in range(3, 8)))
    items = peer.deliveries()
    assert [(g.expected, g.received) for g in items if isinstance(g, SequenceGap)] == \
        [(3, 500)]
    assert [u.seq for u in items if not isinstance(u, SequenceGap)] == \
        [1, 2, 500, 3, 4, 5, 6, 7]


def test_the_duplicate_window_is_inclusive() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    last = DUPLICATE_WINDOW + 100
    peer.feed(*(trade(1, n) for n in range(1, last + 1)))
    peer.deliveries()
    peer.feed(trade(1, last - DUPLICATE_WINDOW))  # exactly the window behind: a copy
    assert peer.deliveries() == []
    peer.feed(trade(1, last - DUPLICATE_WINDOW - 1))  # one further: a restart
    assert any(isinstance(i, SequenceGap) for i in peer.deliveries())


def test_frames_held_before_a_late_ack_are_discarded_not_delivered() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.p.abandon(command_id)
    peer.feed(trade(4, 1), trade(4, 2))  # held: a subscribe is in flight
    peer.subscribed(command_id, ("trade", 4))
    assert peer.deliveries() == []


def test_a_subscribed_reply_nobody_asked_for_is_unsubscribed() -> None:
    peer = Peer()
    peer.feed({"id": 77, "type": "subscribed", "msg": {"channel": "trade", "sid": 9}})
    assert [(c["cmd"], c["params"]) for c in peer.sent()] == [("unsubscribe", {"sids": [9]})]
    peer.feed(trade(9, 1))
    assert peer.deliveries() == []


def test_orphan_frames_of_new_sids_and_types_keep_memory_and_logs_bounded(
        caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    for n in range(5_000):
        peer.p.receive({"type": f"invented_{n}", "sid": 1_000 + n, "msg": {}})
        peer.p.receive({"type": "ticker", "sid": f"s{n}", "msg": {}})
    assert len(peer.deliveries()) == 10_000  # nothing lost
    assert len(peer.p.channel_counters()) <= 2
    assert len(peer.p._tables.warned) <= 1_000 + 5
    assert len(caplog.records) <= 1_002


# ---------------------------------------------------------------- defect 8: seq values


def test_an_absurd_seq_is_reported_and_the_stream_recovers() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(trade(1, 1), trade(1, 2**70), trade(1, 2), trade(1, 3))
    items = peer.deliveries()
    gaps = [i for i in items if isinstance(i, SequenceGap)]
    assert [(g.expected, g.received) for g in gaps] == [(2, 2**70)]  # one report
    assert [i.seq for i in items if not isinstance(i, SequenceGap)] == [1, 2**70, 2, 3]


def test_recent_duplicates_are_still_dropped() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.feed(*(trade(1, n) for n in range(1, DUPLICATE_WINDOW + 10)))
    peer.deliveries()
    peer.feed(trade(1, 10))  # within the window behind: a copy
    assert peer.deliveries() == []
    assert peer.counters(Channel.TRADE).duplicates == 1


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
    held = sum(len(frames) for frames in peer.p._sequencer.unknown.values())
    assert held <= 10_000
    # The rest are dropped, not delivered ahead of the held ones: counted, and a gap
    # shows if a sid turns out to be ours.
    assert peer.deliveries() == [] and peer.p._sequencer.unknown_dropped == 30_000 - held


def test_an_abandoned_command_that_is_never_answered_is_forgotten() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.p.receive(trade(7, 1))  # held: it may belong to the subscribe in flight
    peer.p.abandon(command_id)
    peer.p.tick(INTERNAL_COMMAND_TIMEOUT + 1)
    assert peer.p._tables.pending == {}
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


def test_resyncing_many_books_sends_one_get_snapshot_per_subscription() -> None:
    """A Lagged on a large OrderBookSet resyncs every book: one command, not one each."""
    peer = Peer()
    markets = [f"M{n}" for n in range(2_000)]
    sid = peer.book(markets)
    assert peer.p.resync_markets(markets[:1_500] + ["NOT-OURS"]) == markets[:1_500]
    assert _snapshot_requests(peer) == [markets[:1_500]]
    assert not peer.p.book_synced(sid, "M0") and peer.p.book_synced(sid, "M1999")
    assert peer.p.resync_markets(markets[:10]) == markets[:10]
    assert _snapshot_requests(peer) == []  # already asked for
    assert peer.p.resync_market("NOT-OURS") is False


def test_an_unsubscribed_reply_naming_a_subscribe_does_not_swallow_it() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"])
    peer.feed({"id": command_id, "type": "unsubscribed", "sid": 5})
    assert peer.p.pending_count == 1  # still waiting for its "subscribed"
    peer.subscribed(command_id, ("ticker", 1))
    result, error = peer.completions()[command_id]
    assert error is None and [s.sid for s in result.successful] == [1]
    assert peer.sent() == []  # not mistaken for a subscription nobody asked for


def test_a_subscribed_reply_naming_an_update_is_a_subscription_nobody_asked_for() -> None:
    peer = Peer()
    sid = peer.book(["A"])
    update_id, _ = peer.p.update_subscription(sid, "add_markets", ["B"])
    peer.feed({"id": update_id, "type": "subscribed", "msg": {"channel": "ticker", "sid": 9}})
    assert [(c["cmd"], c["params"]) for c in peer.sent()] == [("unsubscribe", {"sids": [9]})]
    assert peer.p.pending_count == 1 and peer.p.subscription(9) is None
    peer.feed({"id": update_id, "sid": sid, "type": "ok", "msg": {"market_tickers": ["A", "B"]}})
    assert peer.completions() == {update_id: (["A", "B"], None)}


@pytest.mark.parametrize("payload, text", [
    ("Something went wrong", "Something went wrong"),
    ({"code": 2, "msg": "x" * 5000}, "x" * 1000 + "..."),
    ({"code": 2}, "(no message)"),
])
def test_an_error_replys_text_is_kept_whatever_its_shape(payload: Any, text: str) -> None:
    """A plain string as the error's msg is its text (not "(no message)"); a text is
    cut at 1,000 characters, so a hostile reply cannot make every error huge."""
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"])
    peer.feed({"id": command_id, "type": "error", "msg": payload})
    result, _ = peer.completions()[command_id]
    assert [f.message for f in result.failed] == [text]
