"""Sans-I/O Kalshi WebSocket protocol: the rules, with no socket, thread or clock.

:class:`KalshiProtocol` turns commands into text and incoming frames (parsed JSON
objects) into three outputs the I/O layer drains under its lock:

* :meth:`~KalshiProtocol.take_deliveries`: :class:`StreamUpdate` and system messages for
  the user, in order;
* :meth:`~KalshiProtocol.take_completions`: ``(command_id, result, error)`` for user
  commands that finished;
* :meth:`~KalshiProtocol.take_outgoing`: command texts the protocol itself wants sent
  (resynchronisation, resubscription, restoring subscriptions after a reconnect).

Its parts, each in its own ``_protocol_*`` module, share one
:class:`~kalshi_ws._protocol_tables.Tables` (the subscription table, sid to channel,
markets, options, last seq; the pending commands, each with its
:class:`~kalshi_ws._protocol_tables.Purpose` and an ``abandoned`` flag; the ways out) and
are wired together once, in :class:`KalshiProtocol`'s constructor:

* a class per command family builds its command and handles its replies:
  :class:`~kalshi_ws._protocol_subscribe.SubscribeCommands` (one reply per channel; it
  also re-creates subscriptions Kalshi ended),
  :class:`~kalshi_ws._protocol_subscribe.UnsubscribeCommands` (one reply per sid),
  :class:`~kalshi_ws._protocol_update.UpdateCommands` (including the ``get_snapshot``
  requests that resynchronise books) and :class:`~kalshi_ws._protocol_update.ListCommands`;
  :class:`~kalshi_ws._protocol_replies.ReplyRouter` hands each reply to the family of
  the command it answers;
* :class:`~kalshi_ws._protocol_sequencing.Sequencer` handles what the hot path does not:
  per-sid sequence numbers out of order (gaps, duplicates, restarts, unreadable ones),
  which order books are trustworthy and when to ask for fresh snapshots, and frames of
  sids not known yet;
* :class:`~kalshi_ws._protocol_restore.RestorePlan` keeps the subscriptions to re-create
  after a reconnect and collects the restore's outcome;
* this module handles the common data frame inline (:meth:`KalshiProtocol.receive`) and
  owns the connection's :class:`State`, changed in one place, which decides whether
  deliveries go out or are held until the reconnection is announced.

Not thread-safe: the client serialises every call under one lock. Time enters only
through :meth:`KalshiProtocol.tick`, so every rule is testable with plain dicts and strings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from . import _wire
from ._protocol_params import (
    SUBSCRIBE_OPTIONS,
    UPDATE_ACTIONS,
    UPDATE_OPTIONS,
    string_list,
    unchecked_params,
)
from ._protocol_replies import ReplyRouter
from ._protocol_restore import RestoreDone, RestorePlan
from ._protocol_sequencing import (
    BAD_SEQ,
    DUPLICATE_WINDOW,
    LIST_REPLY_TYPES,
    Sequencer,
    incomplete_delta,
    millis,
)
from ._protocol_subscribe import SubscribeCommands, UnsubscribeCommands
from ._protocol_tables import (
    INTERNAL_COMMAND_TIMEOUT,
    Sub,
    Tables,
)
from ._protocol_update import ListCommands, UpdateCommands
from .models import (
    Channel,
    MalformedMessage,
    OrderbookSnapshot,
    StreamUpdate,
    Subscription,
    UnknownMessage,
)

__all__ = ["DUPLICATE_WINDOW", "INTERNAL_COMMAND_TIMEOUT", "SUBSCRIBE_OPTIONS", "UPDATE_ACTIONS",
           "UPDATE_OPTIONS", "KalshiProtocol", "RestoreDone", "State", "string_list",
           "unchecked_params"]

_REPLY_TYPES = frozenset({"subscribed", "unsubscribed", "ok", "error"})
_build_message = _wire.build_message


class State(enum.Enum):
    """Where the protocol stands with its connection.

    Transitions (all made by :meth:`KalshiProtocol._enter`)::

        OPEN ──connection_lost──▶ LOST ──begin_restore──▶ RESTORING ──last reply──▶ RESTORED
          ▲                        │                                                   │
          │                        └─ begin_restore, nothing to restore ─▶ OPEN         │
          └──────────────────────────────── finish_restore ◀──────────────────────────┘

    ``connection_lost`` leads to LOST from any state. Deliveries are held in RESTORING
    and RESTORED (and a ``begin_restore`` with nothing to restore while they are held
    leads to RESTORED), so that the reconnection is announced before any of them.
    """

    #: Commands and data flow; deliveries go out at once. The state of a new protocol.
    OPEN = "open"
    #: The connection is gone; its subscriptions wait as the restore plan.
    LOST = "lost"
    #: The restore's subscribes are sent; deliveries are held back.
    RESTORING = "restoring"
    #: Every restore reply is in (see :meth:`KalshiProtocol.restore_result`); deliveries
    #: are held until :meth:`KalshiProtocol.finish_restore` announces the reconnection.
    RESTORED = "restored"


class KalshiProtocol:
    """The Kalshi application protocol state machine for one client.

    Args:
        resync: Repair order books after sequence gaps (get_snapshot, then
            resubscribe) and re-create subscriptions Kalshi ends with errors 10/25.
            When False, gaps are only reported and ended subscriptions are reported
            with :class:`Unsubscribed`.
        lock: The client's lock (anything with ``.locked()``); the drain methods assert
            that it is held.

    Every method must be called under the client's lock (or, without a client, from one
    thread at a time), unless its docstring says otherwise. None of them raises but the
    command builders, which raise :class:`InvalidCommand`.
    """

    def __init__(self, *, resync: bool = True, lock: Any = None) -> None:
        self._lock = lock
        # Makes the updates (in C where the optional C code is used: the same objects).
        self._new_update = _wire.constructor(StreamUpdate)
        # The outputs: never rebound (the tables shares them), drained by copy and clear.
        self._deliveries: list[Any] = []
        self._completions: list[tuple[int, Any, BaseException | None]] = []
        self._outgoing: list[str] = []
        self._held: list[Any] = []  # deliveries held back during a restore
        self._state = State.OPEN
        self._holding = False  # deliveries go to _held (RESTORING, RESTORED)
        tables = self._tables = Tables(
            resync=resync, deliver=self._deliver, completions=self._completions,
            outgoing=self._outgoing)
        self._subs = tables.subs  # the same dict, for the hot path
        sequencer = self._sequencer = Sequencer(tables, self.receive)
        self._subscribes = SubscribeCommands(tables)
        self._unsubscribes = UnsubscribeCommands(tables)
        self._updates = UpdateCommands(tables)
        self._lists = ListCommands(tables)
        sequencer.updates = self._subscribes.updates = self._updates
        self._updates.subscribes = self._unsubscribes.subscribes = self._subscribes
        self._subscribes.sequencer = self._unsubscribes.sequencer = sequencer
        self._subscribes.unsubscribes = self._unsubscribes
        self._plan = RestorePlan(tables, self._subscribes)
        self._replies = ReplyRouter(tables, sequencer, self._subscribes, self._unsubscribes,
                                    self._updates)
        self._subscribes.on_restored = self._on_restored
        self._out_of_order = sequencer.out_of_order  # bound once: the hot path calls them
        self._book_frame = sequencer.book_frame

    @property
    def resync(self) -> bool:
        """Whether books are repaired and ended subscriptions re-created (read-only)."""
        return self._tables.resync

    @property
    def state(self) -> State:
        """Where the protocol stands with its connection (read-only; any thread may read)."""
        return self._state

    def _enter(self, state: State) -> None:
        """The one place the state changes; deliveries are held while restoring."""
        self._state = state
        self._holding = state is State.RESTORING or state is State.RESTORED

    # ------------------------------------------------------------------ drains

    def _assert_locked(self) -> None:
        assert self._lock is None or self._lock.locked(), "hold the client's lock"

    @staticmethod
    def _take(items: list[Any]) -> list[Any]:
        taken = items[:]
        items.clear()
        return taken

    def take_deliveries(self) -> list[Any]:
        """Remove and return the updates and system messages for the user, in order.

        Call holding the client's lock (asserted when the protocol was given it).
        """
        self._assert_locked()
        return self._take(self._deliveries)

    def take_completions(self) -> list[tuple[int, Any, BaseException | None]]:
        """Remove and return ``(command_id, result, error)`` of finished user commands.

        Call holding the client's lock.
        """
        self._assert_locked()
        return self._take(self._completions)

    def take_outgoing(self) -> list[str]:
        """Remove and return the command texts the protocol wants sent. Call holding the lock."""
        self._assert_locked()
        return self._take(self._outgoing)

    def has_output(self) -> bool:
        """Whether anything waits to be drained (a hint: may be read without the lock)."""
        return bool(self._deliveries or self._completions or self._outgoing)

    def wants_to_send(self) -> bool:
        """Whether command texts wait in :meth:`take_outgoing` (a hint, lock-free)."""
        return bool(self._outgoing)

    def restore_finished(self) -> bool:
        """Whether the restore under way has every reply in.

        Only the thread that feeds :meth:`receive` changes this, so that thread may read
        it without the lock.
        """
        return self._plan.result is not None

    def restore_result(self) -> RestoreDone | None:
        """The outcome of the restore under way once every reply is in, else None.

        Call holding the client's lock.
        """
        self._assert_locked()
        return self._plan.result

    def channel_counters(self) -> dict[str, tuple[int, int, int, int]]:
        """Per channel: (received, duplicates, gaps, held back). Call holding the lock."""
        self._assert_locked()
        return {str(k): (c.received, c.duplicates, c.gaps, c.held_back)
                for k, c in self._tables.counters.items()}

    # ------------------------------------------------------------------ queries

    def subscriptions(self) -> list[Subscription]:
        """The live subscriptions, by sid."""
        return [s.public() for s in sorted(self._subs.values(), key=lambda s: s.sid)]

    def subscription(self, sid: int) -> Subscription | None:
        """The live subscription with this sid, if any."""
        sub = self._subs.get(sid)
        return None if sub is None else sub.public()

    def subscription_options(self, sid: int) -> dict[str, Any]:
        """The options a live subscription was made with (e.g. ``use_yes_price``)."""
        sub = self._subs.get(sid)
        return dict(sub.params) if sub is not None else {}

    def channel_of_sid(self, sid: int) -> Channel | str | None:
        """The channel of the live subscription ``sid``, if any."""
        sub = self._subs.get(sid)
        return None if sub is None else sub.channel

    @property
    def pending_count(self) -> int:
        """How many user commands wait for their replies."""
        return sum(1 for p in self._tables.pending.values() if p.user)

    def book_synced(self, sid: int, market: str) -> bool:
        """Whether the order book of ``market`` on ``sid`` is trustworthy right now."""
        sub = self._subs.get(sid)
        return sub is not None and market in sub.snapshotted

    def resync_market(self, market: str) -> bool:
        """Distrust one market's book and ask for a fresh snapshot (get_snapshot).

        Its deltas are held back until the snapshot arrives. Returns False if no
        order-book subscription covers the market.
        """
        return bool(self.resync_markets([market]))

    def resync_markets(self, markets: Iterable[str]) -> list[str]:
        """:meth:`resync_market` for many books at once: one get_snapshot per subscription.

        Costs time in proportion to the markets given and the subscriptions' markets,
        so that resyncing every book of a large set is linear, not quadratic.

        Returns:
            The markets some order-book subscription covers.
        """
        return self._updates.resync_markets(markets)

    def market_book_state(self, market: str) -> tuple[bool, OrderbookSnapshot | None]:
        """(in sync on some order-book subscription now, the latest snapshot accepted).

        The snapshot is the message object delivered on the stream (the ``msg`` of its
        :class:`StreamUpdate`; None before any): a consumer that has applied that very
        object has caught up with the latest snapshot.
        """
        synced = any(sub.is_book and market in sub.snapshotted for sub in self._subs.values())
        return synced, self._sequencer.latest_snapshots.get(market)

    # ------------------------------------------------------------------ commands

    def subscribe(
        self,
        channels: Iterable[Channel | str] | Channel | str,
        market_tickers: Iterable[str] | str | None = None,
        options: Mapping[str, Any] | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Build a ``subscribe`` command.

        Args:
            extra_params: Parameters this library does not know, sent as given (and
                again when the subscription is restored); see :func:`unchecked_params`.

        Returns:
            (command id, JSON text to send).

        Raises:
            InvalidCommand: no channels, a bad channel name, a market-filtered channel
                without markets, or an unknown or ill-typed option.
        """
        return self._subscribes.build(channels, market_tickers, options, extra_params)

    def unsubscribe(self, sids: Iterable[int] | int) -> tuple[int, str]:
        """Build an ``unsubscribe`` command for one or more sids.

        Raises:
            InvalidCommand: no sids, or a sid that is not a positive int.
        """
        return self._unsubscribes.build(sids)

    def update_subscription(
        self,
        sid: int,
        action: str | None,
        market_tickers: Iterable[str] | str | None = None,
        params: Mapping[str, Any] | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Build an ``update_subscription`` command.

        Args:
            action: A known action, or None when ``extra_params`` names one this library
                does not know (``{"action": "new_action", ...}``).
            extra_params: Parameters (and an action) this library does not know, sent
                as given; see :func:`unchecked_params`.

        Raises:
            InvalidCommand: not exactly one valid sid, an unknown action or parameter,
                or an action without the list it needs.
        """
        return self._updates.build(sid, action, market_tickers, params, extra_params)

    def list_subscriptions(self) -> tuple[int, str]:
        """Build a ``list_subscriptions`` command."""
        return self._lists.build()

    def abandon(self, command_id: int, now: float | None = None) -> None:
        """Give up on a user command whose caller stopped waiting.

        Its late reply is still resolved (a late subscription is unsubscribed), but only
        for :data:`INTERNAL_COMMAND_TIMEOUT` more seconds: after that the command is
        forgotten, so that nothing waits for a reply that never comes.

        Args:
            command_id: The command.
            now: The time (as given to :meth:`tick`); default: the last tick's.
        """
        pending = self._tables.pending.get(command_id)
        if pending is not None and pending.user:
            pending.abandoned = True
            pending.deadline = (self._tables.now if now is None else now) + \
                INTERNAL_COMMAND_TIMEOUT

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Advance the protocol clock; internal commands that went unanswered are retried.

        A resynchronisation whose get_snapshot was never answered falls back to
        resubscribing.
        """
        self._tables.expire(now)
        self._sequencer.flush_all_unknown()  # a forgotten subscribe may have been the last

    # ------------------------------------------------------------------ connection lifecycle

    def connection_lost(self) -> list[int]:
        """The connection is gone: forget sids and in-flight commands (state LOST).

        Subscriptions are kept as the plan for :meth:`begin_restore`. Returns the ids
        of user commands that were waiting, which the caller must fail.
        """
        tables = self._tables
        failed = [p.id for p in tables.pending.values() if p.user]
        self._plan.keep()
        tables.pending.clear()
        self._subs.clear()
        tables.retired.clear()
        self._sequencer.clear()
        self._held.clear()
        self._enter(State.LOST)
        return failed

    def forget_subscriptions(self) -> None:
        """Drop the restore plan (the client will not reconnect)."""
        self._plan.forget()

    def begin_restore(self) -> int:
        """On a new connection, queue one subscribe per subscription to restore.

        Data that arrives before every reply is in is held back (state RESTORING), so
        that the caller can announce the reconnection before it. A subscription whose
        every market was removed is not re-sent (that would widen it to all markets)
        and is reported as failed. Returns how many subscribes were queued (with 0,
        :meth:`restore_result` is ready at once).
        """
        holding = self._holding
        self._enter(State.RESTORING)
        queued = self._plan.begin()
        if self._plan.result is None:
            self._check_restore_done()  # in case nothing could be queued
        elif not holding:
            self._enter(State.OPEN)  # nothing to restore: nothing to wait for or hold
        else:  # a restore already under way is done: still held until finish_restore
            self._enter(State.RESTORED)
        return queued

    def finish_restore(self, announcement: Any) -> None:
        """Deliver ``announcement`` (the Reconnected message), then the data held back.

        Data keeps being held from :meth:`begin_restore` until this call, so nothing
        from the new connection precedes the announcement (state OPEN again).
        """
        self._enter(State.OPEN)
        for sub in self._subs.values():
            sub.announced_sid = None  # the announcement tells the user the new sids
        self._deliveries.append(announcement)
        self._deliveries.extend(self._take(self._held))
        self._plan.result = None

    def _on_restored(self, template: Sub, new_sid: int | None, failure: str) -> None:
        """One restoring subscribe settled: with its new sid, or failed."""
        self._plan.settled(template, new_sid, failure)
        self._check_restore_done()

    def _check_restore_done(self) -> None:
        if self._state is State.RESTORING and self._plan.all_in():
            self._enter(State.RESTORED)

    # ------------------------------------------------------------------ receiving

    def _deliver(self, item: Any) -> None:
        if self._holding:
            self._held.append(item)
        else:
            self._deliveries.append(item)

    def receive(self, frame: Any) -> None:
        """Process one parsed frame from the server. Never raises, whatever the JSON value.

        Args:
            frame: The JSON value of one text frame (normally a dict).
        """
        # The hot path: one call per data frame. Anything unusual (not a dict, a reply,
        # an unknown sid, a seq out of order, a book not in sync) leaves it at one test.
        get = frame.get if frame.__class__ is dict else None
        if get is None:
            self._receive_other(frame, None)
            return
        wire_type = get("type")
        sid = get("sid")
        sub = self._subs.get(sid) if sid.__class__ is int else None
        if sub is None or wire_type.__class__ is not str or wire_type in _REPLY_TYPES:
            self._receive_other(frame, wire_type)
            return
        counters = sub.counters
        counters.received += 1  # type: ignore[union-attr]
        seq = get("seq")
        if seq.__class__ is int and seq == sub.last_seq + 1:
            sub.last_seq = seq
        elif seq is not None or sub.is_book:
            # Out of order, or not a number, or missing on an order-book sid (a book
            # cannot place an unnumbered frame): never taken on trust. Elsewhere a
            # missing seq is Kalshi's "optional": the frame is delivered, unchecked.
            seq = self._out_of_order(sub, counters, seq)  # type: ignore[arg-type]
            if seq is None:
                return  # a duplicate (counted)
            if seq is BAD_SEQ:
                self._sequencer.bad_seq(sub, wire_type, frame)
                return
        payload = get("msg")
        msg = _build_message(wire_type, payload, frame)
        if msg.__class__ is UnknownMessage or (
                msg.__class__ is MalformedMessage and not sub.is_book):  # books: below
            self._warn_unreadable(sub, msg)
        if sub.is_book:
            market = payload.get("market_ticker") if payload.__class__ is dict else None
            if wire_type != "orderbook_delta" or msg.__class__ is MalformedMessage or \
                    market.__class__ is not str or market not in sub.snapshotted or (
                        (msg.price_dollars is None or msg.delta_fp is None)
                        and incomplete_delta(msg)):  # legacy int fields may stand in
                msg = self._book_frame(sub, counters, wire_type,  # type: ignore[arg-type]
                                       market, msg, frame)
                if msg is None:
                    return  # held back until its book's snapshot
        elif wire_type in LIST_REPLY_TYPES and get("id") is not None:
            self._updates.list_reply(frame, payload)
        sent = get("sending_ts_ms")
        if sent is not None and sent.__class__ is not int:
            sent = millis(sent)
        update = self._new_update(sub.channel, wire_type, sub.sid, seq, msg, sent)
        if self._holding:
            self._held.append(update)
        else:
            self._deliveries.append(update)

    def receive_built(self, wire_type: str, sid: int, seq: int | None, msg: Any,
                      sent: int | None) -> bool:
        """Take a data frame already read into its message (by a learned shape).

        Only the plain case, the one :meth:`receive` handles without leaving its hot
        path: a known sid, the next seq (or none, except on an order-book sid), and,
        on an order-book sid, a complete delta of a snapshotted market.

        Args:
            wire_type: The frame's ``type`` (a data type, never a reply).
            sid: The frame's ``sid``.
            seq: The frame's ``seq``, or None if it had none.
            msg: The message built from ``msg`` (never a MalformedMessage).
            sent: The frame's ``sending_ts_ms``, or None.

        Returns:
            True when the frame was taken. False, having changed nothing, when it is not
            the plain case: the caller then gives the decoded frame to :meth:`receive`.
        """
        sub = self._subs.get(sid)
        if sub is None:
            return False
        if seq is not None:
            if seq != sub.last_seq + 1:
                return False
        elif sub.is_book:
            return False
        if sub.is_book and (wire_type != "orderbook_delta"
                            or msg.market_ticker not in sub.snapshotted
                            or ((msg.price_dollars is None or msg.delta_fp is None)
                                and incomplete_delta(msg))):
            return False
        sub.counters.received += 1  # type: ignore[union-attr]
        if seq is not None:
            sub.last_seq = seq
        update = self._new_update(sub.channel, wire_type, sid, seq, msg, sent)
        if self._holding:
            self._held.append(update)
        else:
            self._deliveries.append(update)
        return True

    def _receive_other(self, frame: Any, wire_type: Any) -> None:
        """Frames off the hot path: not an object, no type, replies, unknown sids."""
        if type(frame) is not dict:
            self._deliver_malformed("", frame, "frame is not a JSON object")
        elif type(wire_type) is not str:
            self._deliver_malformed("", frame, "frame has no 'type' string")
        elif wire_type in _REPLY_TYPES:
            self._replies.route(wire_type, frame)
        elif frame.get("sid") is not None and type(frame.get("sid")) is not int:
            self._deliver_malformed(wire_type, frame, "'sid' is not an integer")
        else:
            self._sequencer.receive_orphan(frame.get("sid"), wire_type, frame)

    def receive_invalid(self, data: bytes | str, error: str, *,
                        what: str = "invalid JSON") -> None:
        """Report a frame that cannot be processed (by default: not JSON, or not UTF-8)
        as a MalformedMessage whose error starts with ``what``."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        self._deliver_malformed("", {"text": text[:2000]}, f"{what}: {error}")

    def _warn_unreadable(self, sub: Sub, msg: MalformedMessage | UnknownMessage) -> None:
        """Log (WARNING once per sid's channel, type and kind, DEBUG after) a message of
        a subscription that is delivered as an UnknownMessage or a MalformedMessage."""
        tables = self._tables
        if isinstance(msg, UnknownMessage):
            tables.warn_once(tables.bounded_key(("unknown", sub.channel, msg.type), "unknown"),
                             "unknown message type %r on sid %d (%s): delivered as an "
                             "UnknownMessage", msg.type, sub.sid, sub.channel)
        else:
            error = msg.error
            tables.warn_once(tables.bounded_key(
                ("malformed", sub.channel, msg.type, error.split(":", 1)[0][:40]), "malformed"),
                "malformed %s message on sid %d (%s): %s", msg.type, sub.sid, sub.channel, error)

    def _deliver_malformed(self, wire_type: str, frame: Any, error: str) -> None:
        tables = self._tables
        tables.warn_once(tables.bounded_key(
            ("malformed", wire_type, error.split(":", 1)[0][:40]), "malformed"),
            "malformed frame from server: %s", error)
        raw = frame if isinstance(frame, dict) else {"value": frame}
        self._deliver(StreamUpdate(channel="", type=wire_type, sid=None, seq=None,
                                   msg=MalformedMessage(type=wire_type, raw=raw, error=error)))
