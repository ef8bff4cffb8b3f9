"""Per-sid sequencing and order-book trust (sans-I/O): what happens off the hot path.

:meth:`KalshiProtocol.receive <kalshi_ws.protocol.KalshiProtocol.receive>` handles the
common frame inline (the next seq of a known sid; a delta for a book in sync) and hands
everything else to the :class:`Sequencer`: a seq out of order (gap, duplicate within
:data:`DUPLICATE_WINDOW`, restart, unreadable), an order-book frame that changes or
breaks a book's trust (snapshots, deltas before their snapshot, malformed frames, which
ask for fresh snapshots) and frames of sids not known (yet), held while a subscribe is in
flight, up to :data:`UNKNOWN_SID_BUFFER` frames in all.

Not thread-safe: only the protocol calls it, serialised by the client's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _wire
from ._protocol_tables import Counters, Purpose, Sub, Tables, logger
from .models import (
    MalformedMessage,
    OrderbookDelta,
    OrderbookSnapshot,
    SequenceGap,
    StreamUpdate,
)

if TYPE_CHECKING:
    from ._protocol_update import UpdateCommands

# A seq this far behind the last one is not a duplicate but a sequence that went back.
DUPLICATE_WINDOW = 1024
# Longest digit string read as a seq (Python refuses to parse very long ones anyway).
MAX_SEQ_DIGITS = 20
# Frames of sids not known yet (Kalshi may send a sid's first frames before "subscribed"),
# held in all, whatever the number of sids; past that they are delivered unchecked.
UNKNOWN_SID_BUFFER = 10_000
BAD_SEQ: Any = object()  # out_of_order's answer for a seq that is not a seq
BOOK_TYPES = frozenset({"orderbook_delta", "orderbook_snapshot"})
#: Replies to update_subscription's list actions, which arrive as data frames.
LIST_REPLY_TYPES = frozenset({
    "cfbenchmarks_value_indexlist", "cfbenchmarks_value_5hz_indexlist",
    "pyth_value_underlying_list",
})


def incomplete_delta(msg: Any) -> bool:
    """A delta a book cannot be applied with: no price or no size, in either form."""
    return msg.__class__ is OrderbookDelta and (
        (msg.price_dollars is None and msg.price is None) or
        (msg.delta_fp is None and msg.delta is None))


def millis(value: Any) -> int | None:
    """A ``sending_ts_ms`` as an int (numeric strings and ISO 8601 read), else None."""
    if value is None or type(value) is int:
        return value
    try:
        return _wire.to_millis_or_none(value)
    except (TypeError, ValueError):
        return None


class Sequencer:
    """Sequence checks, book trust and the unknown-sid buffer of one protocol.

    Args:
        tables: The protocol's shared tables.
        receive: The protocol's ``receive``, to replay frames held for a sid.
    """

    def __init__(self, tables: Tables, receive: Callable[[Any], None]) -> None:
        self.tables = tables
        self.updates: UpdateCommands  # set by the protocol once it exists
        self._receive = receive
        #: The latest order-book snapshot accepted per market (see market_book_state).
        self.latest_snapshots: dict[str, OrderbookSnapshot] = {}
        self.unknown: dict[int, list[dict[str, Any]]] = {}
        self.unknown_held = 0  # frames in unknown, all sids together
        self.unknown_dropped = 0  # frames of unknown sids dropped, the buffer being full

    # ------------------------------------------------------------------ seq

    def out_of_order(self, sub: Sub, counters: Counters, seq: Any) -> Any:
        """A seq that is not the next one: a gap, a duplicate, a reset or not a seq.

        Returns:
            The seq (an int) when the frame is to be processed, None for a duplicate
            (dropped and counted), or ``BAD_SEQ`` when the value is not a seq.
        """
        if seq.__class__ is str and seq.isascii() and seq.isdigit() and \
                len(seq) <= MAX_SEQ_DIGITS:
            seq = int(seq)  # Kalshi has turned numbers into strings before
        if seq.__class__ is not int or seq < 1:
            return BAD_SEQ
        last = sub.last_seq
        if seq == last + 1:
            sub.last_seq = seq
        elif seq > last:
            self._gap(sub, counters, last + 1, seq)
            sub.jumped_from = last
            sub.last_seq = seq
        elif sub.jumped_from is not None and seq == sub.jumped_from + 1:
            # The sequence carries on from before the last jump: that number was a stray
            # (already reported as a gap). Follow the sequence again, losing nothing.
            logger.warning("seq on sid %d (%s) continues from %d after a jump to %d; "
                           "following it", sub.sid, sub.channel, sub.jumped_from, last)
            sub.jumped_from = None
            sub.last_seq = seq
        elif seq >= last - DUPLICATE_WINDOW:
            counters.duplicates += 1
            return None
        else:
            # Far behind: not a copy of a recent frame but a sequence that restarted
            # (or a previous seq was absurd). Report it and follow the new sequence.
            logger.warning("seq on sid %d (%s) went back from %d to %d; following it",
                           sub.sid, sub.channel, last, seq)
            self._gap(sub, counters, last + 1, seq)
            sub.last_seq = seq
        return seq

    def reply_seq(self, sub: Sub, seq: int) -> None:
        """A sid-scoped reply numbered ahead: it consumes its seq (never dropped: a
        reply must reach its command whatever its number)."""
        self.out_of_order(sub, self.tables.counter(sub.channel), seq)

    def bad_seq(self, sub: Sub, wire_type: str, frame: dict[str, Any]) -> None:
        """A frame whose seq cannot be read: malformed; a book can no longer be trusted."""
        error = f"'seq' is not a positive integer: {frame.get('seq')!r}"[:200]
        self.tables.warn_once(("seq", sub.channel), "malformed %s frame on sid %d: %s",
                               wire_type, sub.sid, error)
        if sub.is_book:
            payload = frame.get("msg")
            market = payload.get("market_ticker") if type(payload) is dict else None
            self.book_frame_malformed(sub, market if type(market) is str else None, error,
                                      wire_type == "orderbook_snapshot")
        self.tables.deliver(StreamUpdate(
            channel=sub.channel, type=wire_type, sid=sub.sid, seq=None,
            msg=MalformedMessage(type=wire_type, raw=frame, error=error)))

    def _gap(self, sub: Sub, counters: Counters, expected: int, received: int) -> None:
        counters.gaps += 1
        logger.warning("sequence gap on sid %d (%s): expected %d, received %d",
                       sub.sid, sub.channel, expected, received)
        self.tables.deliver(SequenceGap(sid=sub.sid, channel=sub.channel,
                                         expected=expected, received=received))
        if sub.is_book:
            # Every book of the sid is now untrusted: we cannot tell which market lost
            # the delta. Hold all deltas until fresh snapshots arrive.
            sub.snapshotted.clear()
            sub.awaiting = set(sub.markets or ())
            if self.tables.resync and sub.markets:
                self.updates.request_snapshots(sub, list(sub.markets))

    # ------------------------------------------------------------------ order books

    def book_frame(self, sub: Sub, counters: Counters, wire_type: str, market: Any,
                   msg: Any, frame: dict[str, Any]) -> Any:
        """An order-book sid's frame that is not a delta for a book in sync.

        Returns:
            The message to deliver (maybe now a MalformedMessage), or None when the
            frame is held back (a delta whose book awaits its snapshot).
        """
        if market.__class__ is not str or not market:
            market = None
        if msg.__class__ is not MalformedMessage and wire_type in BOOK_TYPES and (
                market is None or (wire_type == "orderbook_delta" and (
                    msg.price_dollars is None or msg.delta_fp is None)
                    and incomplete_delta(msg))):  # legacy int fields may stand in
            msg = MalformedMessage(type=wire_type, raw=frame, error=(
                "'market_ticker' is empty" if market is None else
                "an orderbook_delta needs its price and its size"))
        if msg.__class__ is MalformedMessage:
            self.book_frame_malformed(sub, market, msg.error, wire_type == "orderbook_snapshot")
        elif wire_type == "orderbook_delta" and market in sub.snapshotted:
            pass
        elif not self._accept_book_frame(sub, counters, wire_type, market):
            return None
        elif wire_type == "orderbook_snapshot" and market is not None:
            self.latest_snapshots[market] = msg  # what OrderBookSet compares with
        return msg

    def _accept_book_frame(self, sub: Sub, counters: Counters, wire_type: str,
                           market: str | None) -> bool:
        if wire_type == "orderbook_delta":
            if market in sub.snapshotted:
                return True
            counters.held_back += 1
            if market is not None and market not in sub.awaiting and self.tables.resync:
                # A delta for a book we never had a snapshot of: ask for one.
                logger.warning("orderbook_delta for %s on sid %d before any snapshot; "
                               "requesting one", market, sub.sid)
                self.updates.request_snapshots(sub, [market])
            return False
        if wire_type == "orderbook_snapshot" and market is not None:
            sub.snapshotted.add(market)
            sub.awaiting.discard(market)
            sub.reasked.discard(market)
            self.updates.snapshot_arrived(sub.sid, market)
        return True

    def book_frame_malformed(self, sub: Sub, market: str | None, error: str,
                             answer: bool = False) -> None:
        """An order-book frame that cannot be read: distrust its book and resync it.

        When the market cannot be read either, every book of the sid is affected.
        ``answer``: the frame was a snapshot, possibly the answer to a get_snapshot.
        """
        if market is not None:
            affected = [market] if market in (sub.markets or ()) else []
        else:
            affected = list(sub.markets or ())
        self.tables.warn_once(
            ("book", sub.sid), "unreadable order-book frame on sid %d (%s): %s; "
            "resynchronising %s", sub.sid, market or "market unknown", error,
            ", ".join(affected) or "nothing (not a market of this sid)")
        requested = {m for p in self.tables.of(self.updates, sub.sid)
                     if p.purpose is Purpose.RESYNC for m in p.markets}
        missing = []
        for name in affected:
            sub.snapshotted.discard(name)
            sub.awaiting.add(name)
            if name not in requested:
                missing.append(name)
            elif answer and name not in sub.reasked:
                # The bad frame answered our get_snapshot: ask again at once, as after a
                # gap, but once; if that answer is bad too, the request times out and
                # the subscription is re-created.
                sub.reasked.add(name)
                self.updates.snapshot_arrived(sub.sid, name)
                missing.append(name)
        if missing and self.tables.resync:
            self.updates.request_snapshots(sub, missing)

    # ------------------------------------------------------------------ unknown sids

    def subscribe_in_flight(self) -> bool:
        """Some subscribe may yet make an unknown sid ours (a replacement counts)."""
        return any(p.family.makes_subscriptions or p.purpose is Purpose.REPLACE
                   for p in self.tables.pending.values())

    def receive_orphan(self, sid: Any, wire_type: str, frame: dict[str, Any],
                       buffer: bool = True) -> None:
        """A data frame of a sid that is not a live subscription."""
        tables = self.tables
        if sid in tables.retired:
            return  # frames in flight when the subscription ended
        if wire_type in LIST_REPLY_TYPES and frame.get("id") is not None:
            self.updates.list_reply(frame, frame.get("msg"))
        if buffer and type(sid) is int and self.subscribe_in_flight():
            self._hold(sid, frame)  # Kalshi may send a sid's first frames before "subscribed"
            return
        tables.warn_once(tables.bounded_key(("orphan", sid), "orphan"),
                          "%s frame for sid %r, which is not a subscription of this "
                          "client; delivering it unchecked", wire_type, sid)
        sub = tables.subs.get(sid)
        channel = sub.channel if sub is not None else _wire.TYPE_CHANNELS.get(wire_type, "")
        tables.counter(channel).received += 1
        seq = frame.get("seq")
        tables.deliver(StreamUpdate(
            channel=channel, type=wire_type, sid=sid if type(sid) is int else None,
            seq=seq if type(seq) is int else None,
            msg=_wire.build_message(wire_type, frame.get("msg"), frame),
            sending_ts_ms=millis(frame.get("sending_ts_ms"))))

    def _hold(self, sid: int, frame: dict[str, Any]) -> None:
        if self.unknown_held < UNKNOWN_SID_BUFFER:
            self.unknown.setdefault(sid, []).append(frame)
            self.unknown_held += 1
            return
        # Held frames are full: drop this one rather than deliver it ahead of them.
        # If its sid turns out to be ours, the hole shows as a sequence gap.
        self.unknown_dropped += 1
        self.tables.warn_once("unknown-full", "%d frames of sids not subscribed (yet) "
                               "are held; further ones are dropped (a gap will show if "
                               "the sid is ours)", UNKNOWN_SID_BUFFER)

    def take_unknown(self, sid: int) -> list[dict[str, Any]]:
        """Remove and return the frames held for a sid not known when they came."""
        frames = self.unknown.pop(sid, None)
        if frames is None:
            return []
        self.unknown_held -= len(frames)
        return frames

    def flush_unknown(self, sid: int) -> None:
        """The sid became known: process the frames held for it, in order."""
        for frame in self.take_unknown(sid):
            self._receive(frame)

    def flush_all_unknown(self) -> None:
        """Once no subscribe is in flight, buffered frames of unknown sids go out unchecked."""
        if not self.unknown or self.subscribe_in_flight():
            return
        unknown, self.unknown = self.unknown, {}
        self.unknown_held = 0
        for sid, frames in unknown.items():
            for frame in frames:
                if sid in self.tables.subs:
                    self._receive(frame)
                else:
                    self.receive_orphan(sid, frame["type"], frame, buffer=False)

    def clear(self) -> None:
        """The connection is gone: held frames belong to sids that no longer exist."""
        self.unknown.clear()
        self.unknown_held = 0
