"""Sans-I/O Kalshi WebSocket protocol: the rules, with no socket, thread or clock.

:class:`KalshiProtocol` turns commands into text and incoming frames (parsed JSON
objects) into three output lists the I/O layer drains:

* ``deliveries``: :class:`StreamUpdate` and system messages for the user, in order;
* ``completions``: ``(command_id, result, error)`` for user commands that finished;
* ``outgoing``: command texts the protocol itself wants sent (resynchronisation,
  resubscription, restoring subscriptions after a reconnect).

It owns command ids and their pending replies (one reply per channel for
``subscribe``, one per sid for ``unsubscribe``), the subscription table (sid to
channel, markets, options, last seq), per-sid sequence checking, order-book
resynchronisation and the restore plan after a reconnect.

Not thread-safe: the client serialises every call under one lock. Time enters only
through :meth:`tick`, so every rule is testable with plain dicts and strings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from . import _wire
from .exceptions import CommandError, InvalidCommand
from .models import (
    Channel,
    ErrorCode,
    MalformedMessage,
    OrderbookDelta,
    Resubscribed,
    SequenceGap,
    StreamUpdate,
    SubscribeFailure,
    SubscribeResult,
    Subscription,
    SubscriptionError,
    SubscriptionInfo,
    Unsubscribed,
    channel_of,
)

__all__ = ["SUBSCRIBE_OPTIONS", "UPDATE_ACTIONS", "UPDATE_OPTIONS", "KalshiProtocol", "RestoreDone"]

logger = logging.getLogger(__name__)

#: Subscribe parameters accepted besides channels and market tickers, with their types.
SUBSCRIBE_OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "send_initial_snapshot": bool,
    "skip_ticker_ack": bool,
    "use_yes_price": bool,
    "market_ids": list,
    "shard_factor": int,
    "shard_key": int,
    "user_filter": str,
    "index_ids": list,
    "underlying_tickers": list,
}

#: update_subscription parameters besides the action and its list, with their types.
UPDATE_OPTIONS: Mapping[str, type] = {
    "market_ids": list,
    "index_ids": list,
    "underlying_tickers": list,
    "send_initial_snapshot": bool,
}

#: update_subscription actions and the list parameter each one needs (None: none).
UPDATE_ACTIONS: Mapping[str, str | None] = {
    "add_markets": "market_tickers",
    "delete_markets": "market_tickers",
    "get_snapshot": "market_tickers",
    "subscribe_indices": "index_ids",
    "unsubscribe_indices": "index_ids",
    "indexlist": None,
    "subscribe_underlyings": "underlying_tickers",
    "unsubscribe_underlyings": "underlying_tickers",
    "underlying_list": None,
}

# Errors that end the subscription they are scoped to: ErrorCode.terminal, as codes.
_TERMINAL_ERRORS = frozenset(code.value for code in ErrorCode if code.terminal)
# Errors that answer a whole command rather than one of its channels or sids.
_COMMAND_LEVEL_ERRORS = frozenset({1, 2, 3, 4, 5})
_UNKNOWN_CHANNEL = 8
_NO_MARKETS_LEFT = "no markets left: every market was removed from it"
_REPLY_TYPES = frozenset({"subscribed", "unsubscribed", "ok", "error"})
_LIST_REPLY_TYPES = frozenset({
    "cfbenchmarks_value_indexlist", "cfbenchmarks_value_5hz_indexlist",
    "pyth_value_underlying_list",
})
_SUBSCRIBE_KINDS = frozenset({"subscribe", "restore", "resubscribe", "unsub_resub"})
# Frames of sids not known yet (Kalshi may send a sid's first frames before "subscribed"),
# held in all, whatever the number of sids; past that they are delivered unchecked.
_UNKNOWN_SID_BUFFER = 10_000
# Distinct warnings logged once each (then at DEBUG); past this many, one key for all,
# so that a server inventing new sids or errors cannot grow memory or flood the log.
_MAX_WARNINGS = 1_000
# A seq this far behind the last one is not a duplicate but a sequence that went back.
DUPLICATE_WINDOW = 1024
# Longest digit string read as a seq (Python refuses to parse very long ones anyway).
_MAX_SEQ_DIGITS = 20
INTERNAL_COMMAND_TIMEOUT = 15.0

_BAD_SEQ: Any = object()  # _out_of_order's answer for a seq that is not a seq
_build_message = _wire.build_message
_new_update = _wire.constructor(StreamUpdate)


@attrs.define(slots=True, eq=False)
class _Sub:
    """One live subscription on the current connection (or one to restore)."""

    sid: int
    channel: Channel | str
    params: dict[str, Any]  # subscribe options to replay (no channels, no market filter)
    markets: list[str] | None = None  # market_tickers filter; None = no filter
    market_ids: list[str] | None = None
    last_seq: int = 0  # a sid's seq starts at 1: a lost first frame is a gap too
    jumped_from: int | None = None  # last_seq before the latest forward jump (a gap)
    reasked: set[str] = attrs.Factory(set)  # books re-requested after a bad snapshot
    # orderbook_delta only: markets whose book is trustworthy on this sid, and
    # markets for which a snapshot has been asked for (or is expected).
    snapshotted: set[str] = attrs.Factory(set)
    awaiting: set[str] = attrs.Factory(set)
    counters: _Counters | None = None  # the channel's counters, set by the protocol
    # While a restore is under way: the sid the user last heard of (Reconnected maps it).
    announced_sid: int | None = None
    is_book: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.is_book = self.channel == Channel.ORDERBOOK_DELTA

    @property
    def emptied(self) -> bool:
        """The user removed every market from the filter: re-sending it would widen it."""
        return (self.markets is not None or self.market_ids is not None) and \
            not self.markets and not self.market_ids

    def subscribe_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"channels": [str(self.channel)]}
        if self.markets:
            params["market_tickers"] = list(self.markets)
        if self.market_ids:
            params["market_ids"] = list(self.market_ids)
        params.update(self.params)
        return params

    @property
    def user_sid(self) -> int:
        """The sid the user knows this subscription by."""
        return self.sid if self.announced_sid is None else self.announced_sid

    def public(self) -> Subscription:
        return Subscription(channel=self.channel, sid=self.sid,
                            market_tickers=tuple(self.markets or ()))


@attrs.define(slots=True, eq=False)
class _Pending:
    """A command waiting for replies."""

    id: int
    kind: str  # subscribe | unsubscribe | update | list | resync | resubscribe | unsub_resub | restore
    user: bool
    params: dict[str, Any] = attrs.Factory(dict)
    channels: list[str] = attrs.Factory(list)  # subscribe: channels still unanswered
    answered: set[str] = attrs.Factory(set)  # subscribe: channels answered with success
    # subscribe: errors not yet pinned on a channel (Kalshi's errors do not name it)
    unplaced: list[tuple[int, str, CommandError]] = attrs.Factory(list)
    successes: list[Subscription] = attrs.Factory(list)
    failures: list[SubscribeFailure] = attrs.Factory(list)
    sids: list[int] = attrs.Factory(list)  # unsubscribe: sids still unanswered
    done_sids: list[int] = attrs.Factory(list)
    errors: list[CommandError] = attrs.Factory(list)
    # The user stopped waiting (timeout, lost send): a late reply is resolved, not returned.
    abandoned: bool = False
    sid: int | None = None  # update / resync / resubscribe: the sid concerned
    markets: set[str] = attrs.Factory(set)  # get_snapshot: snapshots still expected
    template: _Sub | None = None  # resubscribe / restore: what to re-create
    deadline: float | None = None  # internal commands only


@attrs.frozen
class RestoreDone:
    """Every subscription to restore after a reconnect has been answered."""

    sid_map: Mapping[int, int]
    failed: tuple[tuple[int, str], ...]


# Keys a command's own arguments fill: never taken from extra_params.
_SUBSCRIBE_KEYS = frozenset({"channels", "market_tickers"})
_UPDATE_KEYS = frozenset({"sids", "sid", "market_tickers"})


def unchecked_params(extra: Mapping[str, Any] | None, known: set[str] | frozenset[str],
                     ) -> dict[str, Any]:
    """The escape hatch: parameters this library does not know, to be sent as given.

    A new Kalshi option then works without a new release. Known parameters stay checked:
    they must be passed as the ordinary arguments, never here.

    Raises:
        InvalidCommand: ``extra`` is not a mapping of non-empty string keys, or names a
            parameter this library knows.
    """
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise InvalidCommand(f"extra_params must be a mapping, not {type(extra).__name__}")
    result: dict[str, Any] = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name:
            raise InvalidCommand(f"extra_params keys must be non-empty strings, not {name!r}")
        if name in known or name in _ALWAYS_KNOWN:
            raise InvalidCommand(f"{name!r} is a parameter this library knows and checks: "
                                 f"pass it as an argument, not in extra_params")
        try:  # JSON values only, copied: what is sent (and restored) is what was given
            result[name] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidCommand(f"extra_params[{name!r}] is not a JSON value: {exc}") from None
    return result


# Parameters of every command the client fills in itself (market filters, sids, ...).
_ALWAYS_KNOWN = frozenset({"market_ticker", "market_tickers", "market_id", "market_ids",
                           "channels", "sids", "sid"})


def string_list(name: str, value: Any) -> list[str]:
    """``value`` (one string or an iterable of them) as a list without duplicates.

    Raises:
        InvalidCommand: naming ``name``, for anything but non-empty strings.
    """
    if isinstance(value, str):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise InvalidCommand(f"{name} must be a string or a list of strings, not "
                             f"{type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidCommand(f"{name} must hold non-empty strings, got {item!r}")
    return list(dict.fromkeys(items))


class _Counters:
    __slots__ = ("duplicates", "gaps", "held_back", "received")

    def __init__(self) -> None:
        self.received = 0
        self.duplicates = 0
        self.gaps = 0
        self.held_back = 0


class KalshiProtocol:
    """The Kalshi application protocol state machine for one client.

    Args:
        resync: Repair order books after sequence gaps (get_snapshot, then
            resubscribe) and re-create subscriptions Kalshi ends with errors 10/25.
            When False, gaps are only reported and ended subscriptions are reported
            with :class:`Unsubscribed`.
    """

    def __init__(self, *, resync: bool = True, lock: Any = None) -> None:
        self.resync = resync
        # The client's lock (anything with .locked()); the drain methods assert it is held.
        self._lock = lock
        self.deliveries: list[Any] = []
        self.completions: list[tuple[int, Any, BaseException | None]] = []
        self.outgoing: list[str] = []
        self.restored: RestoreDone | None = None
        self.counters: dict[str, _Counters] = {}
        #: The latest order-book snapshot accepted per market (see market_book_state).
        self.latest_snapshots: dict[str, Any] = {}
        self._next_id = 1
        self._now = 0.0
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[int, _Sub] = {}
        self._retired: set[int] = set()
        self._unknown: dict[int, list[dict[str, Any]]] = {}
        self._unknown_held = 0  # frames in _unknown, all sids together
        self._unknown_dropped = 0  # frames of unknown sids dropped, the buffer being full
        self._warned_types: set[Any] = set()
        self._to_restore: list[_Sub] = []
        self._restoring = False
        self._held: list[Any] = []
        self._sid_map: dict[int, int] = {}
        self._restore_failed: list[tuple[int, str]] = []

    # ------------------------------------------------------------------ drains

    def _assert_locked(self) -> None:
        assert self._lock is None or self._lock.locked(), "hold the client's lock"

    def take_deliveries(self) -> list[Any]:
        """Remove and return the updates and system messages for the user, in order.

        Call holding the client's lock (asserted when the protocol was given it).
        """
        self._assert_locked()
        deliveries, self.deliveries = self.deliveries, []
        return deliveries

    def take_completions(self) -> list[tuple[int, Any, BaseException | None]]:
        """Remove and return ``(command_id, result, error)`` of finished user commands.

        Call holding the client's lock.
        """
        self._assert_locked()
        completions, self.completions = self.completions, []
        return completions

    def take_outgoing(self) -> list[str]:
        """Remove and return the command texts the protocol wants sent. Call holding the lock."""
        self._assert_locked()
        outgoing, self.outgoing = self.outgoing, []
        return outgoing

    def has_output(self) -> bool:
        """Whether anything waits to be drained (a hint: may be read without the lock)."""
        return bool(self.deliveries or self.completions or self.outgoing)

    def wants_to_send(self) -> bool:
        """Whether command texts wait in :meth:`take_outgoing` (a hint, lock-free)."""
        return bool(self.outgoing)

    def restore_finished(self) -> bool:
        """Whether the restore under way has every reply in.

        Only the thread that feeds :meth:`receive` changes this, so that thread may read
        it without the lock.
        """
        return self.restored is not None

    def restore_result(self) -> RestoreDone | None:
        """The outcome of the restore under way once every reply is in, else None.

        Call holding the client's lock.
        """
        self._assert_locked()
        return self.restored

    def channel_counters(self) -> dict[str, tuple[int, int, int, int]]:
        """Per channel: (received, duplicates, gaps, held back). Call holding the lock."""
        self._assert_locked()
        return {str(k): (c.received, c.duplicates, c.gaps, c.held_back)
                for k, c in self.counters.items()}

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
        sub = self._subs.get(sid)
        return None if sub is None else sub.channel

    @property
    def pending_count(self) -> int:
        return sum(1 for p in self._pending.values() if p.user)

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
        wanted = set(markets)
        found: list[str] = []
        for sub in list(self._subs.values()):
            if not sub.is_book or not sub.markets:
                continue
            covered = [m for m in sub.markets if m in wanted]
            for market in covered:
                sub.snapshotted.discard(market)
            missing = [m for m in covered if m not in sub.awaiting]
            if missing:
                self._request_snapshots(sub, missing)
            found += covered
        return found

    def market_book_state(self, market: str) -> tuple[bool, Any]:
        """(in sync on some order-book subscription now, the latest snapshot accepted).

        The snapshot is the message object delivered on the stream: a consumer that has
        applied that very object has caught up with the latest snapshot.
        """
        synced = any(sub.is_book and market in sub.snapshotted for sub in self._subs.values())
        return synced, self.latest_snapshots.get(market)

    # ------------------------------------------------------------------ commands

    def _new_id(self) -> int:
        command_id = self._next_id
        self._next_id += 1
        return command_id

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
        names = self._check_channels(channels)
        params: dict[str, Any] = {"channels": names}
        if market_tickers is not None:
            markets = string_list("market_tickers", market_tickers)
            if not markets:
                raise InvalidCommand("market_tickers is empty; pass None for all markets")
            params["market_tickers"] = markets
        params.update(self._check_options(options or {}))
        params.update(unchecked_params(extra_params, set(SUBSCRIBE_OPTIONS) | _SUBSCRIBE_KEYS))
        for name in names:
            if channel_of(name) == Channel.ORDERBOOK_DELTA:
                if "market_tickers" not in params:
                    raise InvalidCommand(
                        "channel 'orderbook_delta' requires market_tickers (Kalshi answers "
                        "error 14 without them)")
                # Always say which price convention we want, and remember it.
                params.setdefault("use_yes_price", False)
        pending = _Pending(id=self._new_id(), kind="subscribe", user=True,
                           params=params, channels=list(names))
        return self._register(pending, "subscribe", params)

    def _check_channels(self, channels: Any) -> list[str]:
        if isinstance(channels, (str, Channel)):
            channels = [channels]
        try:
            items = list(channels)
        except TypeError:
            raise InvalidCommand(
                f"channels must be a Channel, a channel name or a list of them, not "
                f"{type(channels).__name__}") from None
        if not items:
            raise InvalidCommand("subscribe needs at least one channel")
        names = []
        for item in items:
            if isinstance(item, Channel):
                names.append(item.value)
            elif isinstance(item, str) and item.strip():
                names.append(item.strip())
            else:
                raise InvalidCommand(f"not a channel: {item!r}")
        return list(dict.fromkeys(names))

    @staticmethod
    def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for name, value in options.items():
            if value is None:
                continue
            expected = SUBSCRIBE_OPTIONS.get(name)
            if expected is None:
                raise InvalidCommand(
                    f"unknown subscribe option {name!r}; known: {', '.join(SUBSCRIBE_OPTIONS)}")
            if expected is list:
                checked[name] = string_list(name, value)
                continue
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidCommand(f"{name} must be an int, not {value!r}")
            if not isinstance(value, expected):
                raise InvalidCommand(f"{name} must be {_type_name(expected)}, not {value!r}")
            checked[name] = value
        if "shard_factor" in checked and not 1 <= checked["shard_factor"] <= 100:
            raise InvalidCommand("shard_factor must be between 1 and 100")
        if "shard_key" in checked:
            if "shard_factor" not in checked:
                raise InvalidCommand("shard_key requires shard_factor")
            if not 0 <= checked["shard_key"] < checked["shard_factor"]:
                raise InvalidCommand("shard_key must be >= 0 and < shard_factor")
        if checked.get("user_filter") not in (None, "", "self"):
            raise InvalidCommand("user_filter must be '' or 'self'")
        return checked

    def unsubscribe(self, sids: Iterable[int] | int) -> tuple[int, str]:
        """Build an ``unsubscribe`` command for one or more sids.

        Raises:
            InvalidCommand: no sids, or a sid that is not a positive int.
        """
        sid_list = self._check_sids(sids)
        pending = _Pending(id=self._new_id(), kind="unsubscribe", user=True,
                           sids=list(sid_list))
        return self._register(pending, "unsubscribe", {"sids": sid_list})

    @staticmethod
    def _check_sids(sids: Any) -> list[int]:
        candidates: Any = [sids] if isinstance(sids, int) and not isinstance(sids, bool) \
            else sids
        try:
            items = list(candidates)
        except TypeError:
            raise InvalidCommand(f"sids must be an int or a list of ints, not {sids!r}") from None
        if not items:
            raise InvalidCommand("unsubscribe needs at least one sid")
        for sid in items:
            if isinstance(sid, bool) or not isinstance(sid, int) or sid < 1:
                raise InvalidCommand(f"not a subscription id: {sid!r}")
        return list(dict.fromkeys(items))

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
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise InvalidCommand(f"update_subscription takes exactly one sid (an int), not "
                                 f"{sid!r}; Kalshi answers error 12 otherwise")
        (sid,) = self._check_sids(sid)
        extra = unchecked_params(extra_params, set(UPDATE_OPTIONS) | _UPDATE_KEYS)
        if action is None and "action" in extra:
            action = extra.pop("action")
            if not isinstance(action, str) or not action or action in UPDATE_ACTIONS:
                raise InvalidCommand(
                    f"extra_params action must be a non-empty string this library does not "
                    f"know, not {action!r}; pass a known action as the action argument")
            known_action = False
        elif "action" in extra:
            raise InvalidCommand("give the action either as the action argument or in "
                                 "extra_params, not both")
        elif action not in UPDATE_ACTIONS:
            raise InvalidCommand(f"unknown update_subscription action {action!r}; known: "
                                 f"{', '.join(UPDATE_ACTIONS)} (send another one with "
                                 "extra_params={'action': ...})")
        else:
            known_action = True
        wire: dict[str, Any] = {"sids": [sid], "action": action}
        if market_tickers is not None:
            wire["market_tickers"] = string_list("market_tickers", market_tickers)
        for name, value in (params or {}).items():
            expected = UPDATE_OPTIONS.get(name)
            if expected is None:
                raise InvalidCommand(f"unknown update_subscription parameter {name!r}; "
                                     f"known: market_tickers, {', '.join(UPDATE_OPTIONS)}")
            if value is None:
                continue
            if expected is list:
                wire[name] = string_list(name, value)
            elif not isinstance(value, expected):
                raise InvalidCommand(f"{name} must be {_type_name(expected)}, not {value!r}")
            else:
                wire[name] = value
        wire.update(extra)
        needed = UPDATE_ACTIONS.get(action) if known_action and action is not None else None
        if action in ("add_markets", "delete_markets"):
            if not wire.get("market_tickers") and not wire.get("market_ids"):
                raise InvalidCommand(f"{action} needs market_tickers (or market_ids)")
        elif needed is not None and not wire.get(needed):
            raise InvalidCommand(f"{action} needs {needed}")
        pending = _Pending(id=self._new_id(), kind="update", user=True, params=wire, sid=sid)
        sub = self._subs.get(sid)
        if action == "get_snapshot":
            pending.markets = set(wire["market_tickers"])
        elif action == "add_markets" and sub is not None and sub.is_book:
            # Deltas of the new markets wait for their first snapshot.
            known = set(sub.markets or ())
            sub.awaiting.update(m for m in wire.get("market_tickers", ()) if m not in known)
        return self._register(pending, "update_subscription", wire)

    def list_subscriptions(self) -> tuple[int, str]:
        """Build a ``list_subscriptions`` command."""
        pending = _Pending(id=self._new_id(), kind="list", user=True)
        self._pending[pending.id] = pending
        return pending.id, _wire.encode({"id": pending.id, "cmd": "list_subscriptions"})

    def _register(self, pending: _Pending, cmd: str, params: dict[str, Any]) -> tuple[int, str]:
        self._pending[pending.id] = pending
        return pending.id, _wire.encode({"id": pending.id, "cmd": cmd, "params": params})

    def abandon(self, command_id: int, now: float | None = None) -> None:
        """Give up on a user command whose caller stopped waiting.

        Its late reply is still resolved (see :meth:`_discard_late_subscription`), but only
        for :data:`INTERNAL_COMMAND_TIMEOUT` more seconds: after that the command is
        forgotten, so that nothing waits for a reply that never comes.

        Args:
            command_id: The command.
            now: The time (as given to :meth:`tick`); default: the last tick's.
        """
        pending = self._pending.get(command_id)
        if pending is not None and pending.user:
            pending.user = False
            pending.abandoned = True
            pending.deadline = (self._now if now is None else now) + INTERNAL_COMMAND_TIMEOUT

    def _send_internal(self, pending: _Pending, cmd: str, params: dict[str, Any]) -> None:
        if pending.kind != "restore":  # the client times out a restore as a whole
            pending.deadline = self._now + INTERNAL_COMMAND_TIMEOUT
        self._pending[pending.id] = pending
        self.outgoing.append(_wire.encode({"id": pending.id, "cmd": cmd, "params": params}))

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Advance the protocol clock; internal commands that went unanswered are retried.

        A resynchronisation whose get_snapshot was never answered falls back to
        resubscribing.
        """
        self._now = now
        for pending in list(self._pending.values()):
            if pending.deadline is None or pending.deadline > now:
                continue
            del self._pending[pending.id]
            if pending.abandoned:
                logger.info("%s command %d, abandoned by its caller, was never answered; "
                            "forgotten", pending.kind, pending.id)
                continue
            logger.warning("internal %s command %d was not answered in %.0f s",
                           pending.kind, pending.id, INTERNAL_COMMAND_TIMEOUT)
            if pending.kind == "resync" and pending.sid in self._subs:
                self._resubscribe(self._subs[pending.sid], "resync timed out", unsubscribe=True)
            elif pending.kind in ("resubscribe", "unsub_resub") and pending.template is not None:
                self._start_resubscribe(pending.template, "retry after timeout")
        self._flush_all_unknown()  # a forgotten subscribe may have been the last in flight

    # ------------------------------------------------------------------ connection lifecycle

    def connection_lost(self) -> list[int]:
        """The connection is gone: forget sids and in-flight commands.

        Subscriptions are kept as the plan for :meth:`begin_restore`. Returns the ids
        of user commands that were waiting, which the caller must fail.
        """
        failed = [p.id for p in self._pending.values() if p.user]
        keep = {id(s): s for s in self._to_restore}
        for sub in self._subs.values():
            keep[id(sub)] = sub
        for pending in self._pending.values():
            if pending.template is not None and pending.kind in (
                    "resubscribe", "unsub_resub", "restore"):
                keep[id(pending.template)] = pending.template
        self._to_restore = sorted(keep.values(), key=lambda s: s.sid)
        self._pending.clear()
        self._subs.clear()
        self._retired.clear()
        self._unknown.clear()
        self._unknown_held = 0
        self._held.clear()
        self._restoring = False
        return failed

    def forget_subscriptions(self) -> None:
        """Drop the restore plan (the client will not reconnect)."""
        self._to_restore = []

    def begin_restore(self) -> int:
        """On a new connection, queue one subscribe per subscription to restore.

        Data that arrives before every reply is in is held back, so that the caller
        can announce the reconnection before it. A subscription whose every market was
        removed is not re-sent (that would widen it to all markets) and is reported as
        failed. Returns how many subscribes were queued (with 0, :attr:`restored` is
        set at once).
        """
        plan, self._to_restore = self._to_restore, []
        self._sid_map = {}
        self._restore_failed = []
        self.restored = None
        if not plan:
            self.restored = RestoreDone(sid_map={}, failed=())
            return 0
        self._restoring = True  # hold deliveries until finish_restore()
        queued = 0
        for template in plan:
            if template.emptied:
                # Without markets it cannot be subscribed again as it was: a ticker
                # subscription would widen to every market, a book one is refused.
                logger.warning("not restoring %s subscription (old sid %d): no markets left",
                               template.channel, template.user_sid)
                self._restore_failed.append((template.user_sid, _NO_MARKETS_LEFT))
                continue
            pending = _Pending(id=self._new_id(), kind="restore", user=False,
                               channels=[str(template.channel)], template=template)
            self._send_internal(pending, "subscribe", template.subscribe_params())
            queued += 1
        self._check_restore_done()  # in case nothing could be queued
        return queued

    def finish_restore(self, announcement: Any) -> None:
        """Deliver ``announcement`` (the Reconnected message), then the data held back.

        Data keeps being held from :meth:`begin_restore` until this call, so nothing
        from the new connection precedes the announcement.
        """
        self._restoring = False
        for sub in self._subs.values():
            sub.announced_sid = None  # the announcement tells the user the new sids
        self.deliveries.append(announcement)
        self.deliveries.extend(self._held)
        self._held = []
        self.restored = None

    def _check_restore_done(self) -> None:
        if self._restoring and self.restored is None and \
                not any(p.kind == "restore" for p in self._pending.values()):
            self.restored = RestoreDone(sid_map=dict(self._sid_map),
                                        failed=tuple(self._restore_failed))

    # ------------------------------------------------------------------ receiving

    def _deliver(self, item: Any) -> None:
        if self._restoring:
            self._held.append(item)
        else:
            self.deliveries.append(item)

    def _counter(self, channel: Any) -> _Counters:
        counters = self.counters.get(channel)
        if counters is None:
            counters = self.counters[channel] = _Counters()
        return counters

    def receive(self, frame: Any) -> None:
        """Process one parsed frame from the server. Never raises, whatever the JSON value.

        Args:
            frame: The JSON value of one text frame (normally a dict).
        """
        # This is the hot path: one call per data frame. Anything unusual (not a dict,
        # a reply, an unknown sid, a seq out of order) leaves it at the first test.
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
        elif seq is not None or sub.last_seq or sub.is_book:
            # Out of order, or not a number, or missing on a sid that has numbered its
            # frames (order books always do): never taken on trust.
            seq = self._out_of_order(sub, counters, seq)  # type: ignore[arg-type]
            if seq is None:
                return  # a duplicate (counted)
            if seq is _BAD_SEQ:
                self._bad_seq(sub, wire_type, frame)
                return
        payload = get("msg")
        msg = _build_message(wire_type, payload, frame)
        if sub.is_book:
            market = payload.get("market_ticker") if payload.__class__ is dict else None
            if market.__class__ is not str or not market:
                market = None
            if msg.__class__ is not MalformedMessage and wire_type in _BOOK_TYPES and (
                    market is None or (wire_type == "orderbook_delta" and (
                        msg.price_dollars is None or msg.delta_fp is None)
                        and _incomplete_delta(msg))):  # legacy int fields may stand in
                msg = MalformedMessage(type=wire_type, raw=frame, error=(
                    "'market_ticker' is empty" if market is None else
                    "an orderbook_delta needs its price and its size"))
            if msg.__class__ is MalformedMessage:
                self._book_frame_malformed(sub, market, msg.error,
                                           wire_type == "orderbook_snapshot")
            elif wire_type == "orderbook_delta" and market in sub.snapshotted:
                pass  # the common case: a delta for a book in sync
            elif not self._accept_book_frame(sub, counters, wire_type,  # type: ignore[arg-type]
                                             market, frame):
                return
            elif wire_type == "orderbook_snapshot" and market is not None:
                self.latest_snapshots[market] = msg  # what OrderBookSet compares with
        elif wire_type in _LIST_REPLY_TYPES and get("id") is not None:
            self._complete_list_reply(frame, payload)
        sent = get("sending_ts_ms")
        if sent is not None and sent.__class__ is not int:
            sent = _millis(sent)
        update = _new_update(sub.channel, wire_type, sub.sid, seq, msg, sent)
        if self._restoring:
            self._held.append(update)
        else:
            self.deliveries.append(update)

    def _out_of_order(self, sub: _Sub, counters: _Counters, seq: Any) -> Any:
        """A seq that is not the next one: a gap, a duplicate, a reset or not a seq.

        Returns:
            The seq (an int) when the frame is to be processed, None for a duplicate
            (dropped and counted), or ``_BAD_SEQ`` when the value is not a seq.
        """
        if seq.__class__ is str and seq.isascii() and seq.isdigit() and \
                len(seq) <= _MAX_SEQ_DIGITS:
            seq = int(seq)  # Kalshi has turned numbers into strings before
        if seq.__class__ is not int or seq < 1:
            return _BAD_SEQ
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

    def _bad_seq(self, sub: _Sub, wire_type: str, frame: dict[str, Any]) -> None:
        """A frame whose seq cannot be read: malformed; a book can no longer be trusted."""
        error = f"'seq' is not a positive integer: {frame.get('seq')!r}"[:200]
        self._warn_once(("seq", sub.channel), "malformed %s frame on sid %d: %s",
                        wire_type, sub.sid, error)
        if sub.is_book:
            payload = frame.get("msg")
            market = payload.get("market_ticker") if type(payload) is dict else None
            self._book_frame_malformed(sub, market if type(market) is str else None, error,
                                       wire_type == "orderbook_snapshot")
        self._deliver(StreamUpdate(channel=sub.channel, type=wire_type, sid=sub.sid, seq=None,
                                   msg=MalformedMessage(type=wire_type, raw=frame, error=error)))

    def _book_frame_malformed(self, sub: _Sub, market: str | None, error: str,
                              answer: bool = False) -> None:
        """An order-book frame that cannot be read: distrust its book and resync it.

        When the market cannot be read either, every book of the sid is affected.
        ``answer``: the frame was a snapshot, possibly the answer to a get_snapshot.
        """
        if market is not None:
            affected = [market] if market in (sub.markets or ()) else []
        else:
            affected = list(sub.markets or ())
        self._warn_once(("book", sub.sid),
                        "unreadable order-book frame on sid %d (%s): %s; resynchronising %s",
                        sub.sid, market or "market unknown", error,
                        ", ".join(affected) or "nothing (not a market of this sid)")
        requested = {m for p in self._pending.values()
                     if p.kind == "resync" and p.sid == sub.sid for m in p.markets}
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
                self._snapshot_arrived(sub.sid, name)
                missing.append(name)
        if missing and self.resync:
            self._request_snapshots(sub, missing)

    def _warn_once(self, key: Any, message: str, *args: Any) -> None:
        """Log a warning the first time for ``key``, and at DEBUG after that."""
        if key in self._warned_types:
            logger.debug(message, *args)
        else:
            self._warned_types.add(key)
            logger.warning(message, *args)

    def _receive_other(self, frame: Any, wire_type: Any) -> None:
        """Frames off the hot path: not an object, no type, replies, unknown sids."""
        if type(frame) is not dict:
            self._deliver_malformed("", frame, "frame is not a JSON object")
        elif type(wire_type) is not str:
            self._deliver_malformed("", frame, "frame has no 'type' string")
        elif wire_type in _REPLY_TYPES:
            self._receive_reply(wire_type, frame)
        elif frame.get("sid") is not None and type(frame.get("sid")) is not int:
            self._deliver_malformed(wire_type, frame, "'sid' is not an integer")
        else:
            self._receive_orphan(frame.get("sid"), wire_type, frame)

    def receive_invalid(self, data: bytes | str, error: str, *,
                        what: str = "invalid JSON") -> None:
        """Report a frame that cannot be processed (by default: not JSON, or not UTF-8)
        as a MalformedMessage whose error starts with ``what``."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        self._deliver_malformed("", {"text": text[:2000]}, f"{what}: {error}")

    def _deliver_malformed(self, wire_type: str, frame: Any, error: str) -> None:
        self._warn_once(("malformed", wire_type, error.split(":", 1)[0][:40])
                        if len(self._warned_types) < _MAX_WARNINGS else "malformed",
                        "malformed frame from server: %s", error)
        raw = frame if isinstance(frame, dict) else {"value": frame}
        self._deliver(StreamUpdate(channel="", type=wire_type, sid=None, seq=None,
                                   msg=MalformedMessage(type=wire_type, raw=raw, error=error)))

    def _accept_book_frame(self, sub: _Sub, counters: _Counters, wire_type: str,
                           market: str | None, frame: dict[str, Any]) -> bool:
        if wire_type == "orderbook_delta":
            if market in sub.snapshotted:
                return True
            counters.held_back += 1
            if market is not None and market not in sub.awaiting and self.resync:
                # A delta for a book we never had a snapshot of: ask for one.
                logger.warning("orderbook_delta for %s on sid %d before any snapshot; "
                               "requesting one", market, sub.sid)
                self._request_snapshots(sub, [market])
            return False
        if wire_type == "orderbook_snapshot" and market is not None:
            sub.snapshotted.add(market)
            sub.awaiting.discard(market)
            sub.reasked.discard(market)
            self._snapshot_arrived(sub.sid, market)
        return True

    def _snapshot_arrived(self, sid: int, market: str) -> None:
        """A snapshot of ``market`` came: it answers the get_snapshot commands asking it."""
        for pending in list(self._pending.values()):
            if pending.kind in ("update", "resync") and pending.sid == sid and pending.markets:
                pending.markets.discard(market)
                if not pending.markets:
                    self._finish_update(pending, list(pending.params["market_tickers"]))

    def _gap(self, sub: _Sub, counters: _Counters, expected: int, received: int) -> None:
        counters.gaps += 1
        logger.warning("sequence gap on sid %d (%s): expected %d, received %d",
                       sub.sid, sub.channel, expected, received)
        self._deliver(SequenceGap(sid=sub.sid, channel=sub.channel,
                                  expected=expected, received=received))
        if sub.is_book:
            # Every book of the sid is now untrusted: we cannot tell which market lost
            # the delta. Hold all deltas until fresh snapshots arrive.
            sub.snapshotted.clear()
            sub.awaiting = set(sub.markets or ())
            if self.resync and sub.markets:
                self._request_snapshots(sub, list(sub.markets))

    def _request_snapshots(self, sub: _Sub, markets: list[str]) -> None:
        sub.awaiting.update(markets)
        pending = _Pending(id=self._new_id(), kind="resync", user=False, sid=sub.sid,
                           markets=set(markets),
                           params={"action": "get_snapshot", "market_tickers": markets})
        self._send_internal(pending, "update_subscription",
                            {"sids": [sub.sid], "action": "get_snapshot",
                             "market_tickers": markets})

    def _subscribe_in_flight(self) -> bool:
        return any(p.kind in _SUBSCRIBE_KINDS for p in self._pending.values())

    def _receive_orphan(self, sid: Any, wire_type: str, frame: dict[str, Any],
                        buffer: bool = True) -> None:
        if sid in self._retired:
            return  # frames in flight when the subscription ended
        if wire_type in _LIST_REPLY_TYPES and frame.get("id") is not None:
            self._complete_list_reply(frame, frame.get("msg"))
        if buffer and type(sid) is int and self._subscribe_in_flight():
            # Kalshi may send a sid's first frames before its "subscribed" reply.
            if self._unknown_held < _UNKNOWN_SID_BUFFER:
                self._unknown.setdefault(sid, []).append(frame)
                self._unknown_held += 1
                return
            # Held frames are full: drop this one rather than deliver it ahead of them.
            # If its sid turns out to be ours, the hole shows as a sequence gap.
            self._unknown_dropped += 1
            self._warn_once("unknown-full", "%d frames of sids not subscribed (yet) are "
                            "held; further ones are dropped (a gap will show if the sid "
                            "is ours)", _UNKNOWN_SID_BUFFER)
            return
        self._warn_once(("orphan", sid) if len(self._warned_types) < _MAX_WARNINGS
                        else "orphan", "%s frame for sid %r, which is not a subscription of "
                        "this client; delivering it unchecked", wire_type, sid)
        channel = self.channel_of_sid(sid) or _wire.TYPE_CHANNELS.get(wire_type, "")
        self._counter(channel).received += 1
        seq = frame.get("seq")
        self._deliver(StreamUpdate(
            channel=channel, type=wire_type, sid=sid if type(sid) is int else None,
            seq=seq if type(seq) is int else None,
            msg=_wire.build_message(wire_type, frame.get("msg"), frame),
            sending_ts_ms=_millis(frame.get("sending_ts_ms"))))

    def _take_unknown(self, sid: int) -> list[dict[str, Any]]:
        """Remove and return the frames held for a sid not known when they came."""
        frames = self._unknown.pop(sid, None)
        if frames is None:
            return []
        self._unknown_held -= len(frames)
        return frames

    def _flush_unknown(self, sid: int) -> None:
        for frame in self._take_unknown(sid):
            self.receive(frame)

    def _flush_all_unknown(self) -> None:
        """Once no subscribe is in flight, buffered frames of unknown sids go out unchecked."""
        if not self._unknown or self._subscribe_in_flight():
            return
        unknown, self._unknown = self._unknown, {}
        self._unknown_held = 0
        for sid, frames in unknown.items():
            for frame in frames:
                if sid in self._subs:
                    self.receive(frame)
                else:
                    self._receive_orphan(sid, frame["type"], frame, buffer=False)

    # ------------------------------------------------------------------ replies

    def _receive_reply(self, wire_type: str, frame: dict[str, Any]) -> None:
        command_id = frame.get("id")
        sid = frame.get("sid")
        seq = frame.get("seq")
        payload = frame.get("msg")
        sub = self._subs.get(sid) if type(sid) is int else None
        if sub is not None and type(seq) is int and seq > sub.last_seq:
            # Sid-scoped replies consume sequence numbers too (never dropped: a reply
            # must reach its command whatever its number).
            self._out_of_order(sub, self._counter(sub.channel), seq)
        pending = self._pending.get(command_id) if type(command_id) is int else None
        if wire_type == "subscribed":
            self._on_subscribed(pending, payload, frame.get("sending_ts_ms"))
        elif wire_type == "unsubscribed":
            self._on_unsubscribed(pending, sid)
        elif wire_type == "ok":
            self._on_ok(pending, frame, sid, payload)
        else:
            self._on_error(pending, frame, sid, payload)

    def _on_subscribed(self, pending: _Pending | None, payload: Any, sent: Any = None) -> None:
        if type(payload) is not dict or type(payload.get("sid")) is not int:
            logger.warning("ignoring a 'subscribed' reply without msg.sid: %r", payload)
            return
        sid = payload["sid"]
        channel = channel_of(str(payload.get("channel", "")))
        if pending is None:
            if sid not in self._subs:
                self._discard_late_subscription(
                    None, _Sub(sid=sid, channel=channel, params={}))
            return
        merged = sid in self._subs
        sub = self._add_sub(pending, sid, channel)
        if pending.abandoned and not merged:  # before answering: that may flush frames
            self._discard_late_subscription(pending.id, sub)
        self._answer_channel(pending, str(channel), _replied(sub.public(), sent))
        if pending.abandoned and merged:
            logger.warning("subscribe command %d was answered after its caller gave up: "
                           "its markets joined subscription %d, where they stay",
                           pending.id, sid)
        self._flush_unknown(sid)

    def _discard_late_subscription(self, command_id: int | None, sub: _Sub) -> None:
        """A subscription acknowledged after its caller gave up (or that no command of
        ours asked for): undo it (unsubscribe). Its frames are discarded.

        The caller was told the command failed and may well retry; keeping the late
        subscription would deliver the same data twice.
        """
        self._subs.pop(sub.sid, None)
        self._retired.add(sub.sid)
        held = len(self._take_unknown(sub.sid))
        why = (f"subscribe command {command_id} was answered after its caller gave up"
               if command_id is not None else "no pending command asked for it")
        logger.warning("subscription %d (%s) is unwanted: %s; unsubscribing it; its "
                       "frames are discarded%s", sub.sid, sub.channel, why,
                       f" ({held} already received)" if held else "")
        discard = _Pending(id=self._new_id(), kind="unsubscribe", user=False, sids=[sub.sid])
        self._send_internal(discard, "unsubscribe", {"sids": [sub.sid]})

    def _add_sub(self, pending: _Pending, sid: int, channel: Channel | str) -> _Sub:
        existing = self._subs.get(sid)
        if pending.template is not None:
            template = pending.template
            sub = _Sub(sid=sid, channel=channel or template.channel, params=dict(template.params),
                       markets=list(template.markets) if template.markets else None,
                       market_ids=template.market_ids,
                       announced_sid=template.user_sid if pending.kind == "restore" else None)
        else:
            params = {k: v for k, v in pending.params.items()
                      if k not in ("channels", "market_tickers", "market_ids")}
            markets = pending.params.get("market_tickers")
            sub = _Sub(sid=sid, channel=channel, params=params,
                       markets=list(markets) if markets else None,
                       market_ids=pending.params.get("market_ids"))
        if existing is not None:
            # Kalshi merged this subscribe into an existing subscription.
            if channel and existing.channel != channel:
                logger.warning("Kalshi answered a subscribe to %s with sid %d, which is the "
                               "%s subscription; treating it as that one", channel, sid,
                               existing.channel)
            if existing.markets is not None and sub.markets:
                new = [m for m in sub.markets if m not in existing.markets]
                existing.markets.extend(new)
                if existing.is_book:
                    existing.awaiting.update(new)
            return existing
        if sub.is_book:
            sub.awaiting = set(sub.markets or ())
        sub.counters = self._counter(sub.channel)
        self._subs[sid] = sub
        self._retired.discard(sid)
        return sub

    def _answer_channel(self, pending: _Pending, channel: str,
                        success: Subscription) -> None:
        """One channel of a subscribe succeeded (a ``subscribed``, or an ``ok`` merge)."""
        if channel in pending.channels:
            pending.channels.remove(channel)
        elif channel in pending.answered:
            return  # a merge may be answered twice (subscribed and ok): count it once
        elif pending.channels:
            channel = pending.channels.pop(0)  # a reply naming a channel we did not ask for
        pending.answered.add(channel)
        pending.successes.append(success)
        self._settle_subscribe(pending)

    def _settle_subscribe(self, pending: _Pending) -> None:
        """Complete a subscribe once every channel has a success or an error.

        An ``error`` reply does not say which channel it is about, so errors are
        pinned on channels only when every other channel has succeeded: whatever the
        order of the replies, a channel never both succeeds and fails.
        """
        if len(pending.unplaced) < len(pending.channels):
            return
        left = list(pending.channels)
        for code, text, error in pending.unplaced:
            if not left:
                break
            # "unknown channel" most likely names a channel we do not know either
            channel = next((c for c in left if code == _UNKNOWN_CHANNEL and
                            not isinstance(channel_of(c), Channel)), left[0])
            left.remove(channel)
            pending.failures.append(SubscribeFailure(
                channel=channel_of(channel), code=code, message=text, markets=error.markets,
                sending_ts_ms=error.sending_ts_ms))
        pending.channels = []
        del self._pending[pending.id]
        self._finish_subscribe(pending)

    def _finish_subscribe(self, pending: _Pending) -> None:
        kind = pending.kind
        if kind == "subscribe" and pending.user:
            self.completions.append((pending.id, SubscribeResult(
                successful=tuple(pending.successes), failed=tuple(pending.failures)), None))

        elif kind in ("restore", "resubscribe", "unsub_resub"):
            template = pending.template
            assert template is not None
            if pending.successes:
                new_sid = pending.successes[0].sid
                if kind == "restore":
                    self._sid_map[template.user_sid] = new_sid
                else:
                    self._deliver(Resubscribed(channel=template.channel, old_sid=template.sid,
                                               new_sid=new_sid,
                                               reason=str(pending.params.get("reason", ""))))
            else:
                failure = pending.failures[0] if pending.failures else None
                text = f"error {failure.code}: {failure.message}" if failure else "no reply"
                logger.warning("could not re-create %s subscription (old sid %d): %s",
                               template.channel, template.sid, text)
                if kind == "restore":
                    self._restore_failed.append((template.user_sid, text))
                else:
                    self._deliver(Unsubscribed(sid=template.sid, channel=template.channel,
                                               reason=f"resubscribe failed: {text}"))
            if kind == "restore":
                self._check_restore_done()
        self._flush_all_unknown()

    def _on_unsubscribed(self, pending: _Pending | None, sid: Any) -> None:
        if type(sid) is not int:
            logger.warning("ignoring an 'unsubscribed' reply without sid")
            return
        if pending is None:
            pending = next((p for p in self._pending.values()
                            if p.kind in ("unsubscribe", "unsub_resub")
                            and sid in p.sids), None)
        sub = self._subs.pop(sid, None)
        self._retired.add(sid)
        self._take_unknown(sid)
        if pending is not None and pending.kind == "unsub_resub":
            self._resubscribe_after_unsubscribe(pending)
            return
        if sub is not None:
            self._deliver(Unsubscribed(sid=sid, channel=sub.channel))
        if pending is not None:
            self._answer_sid(pending, sid)

    def _answer_sid(self, pending: _Pending, sid: int | None,
                    error: CommandError | None = None) -> None:
        if sid in pending.sids:
            pending.sids.remove(sid)
        elif pending.sids:
            pending.sids.pop(0)
        if error is None and sid is not None:
            pending.done_sids.append(sid)
        if error is not None:
            pending.errors.append(error)
        if pending.sids:
            return
        del self._pending[pending.id]
        if pending.kind != "unsubscribe" or not pending.user:
            return
        if pending.errors:
            error = pending.errors[0]
            if pending.done_sids:
                error.args = (f"{error.args[0]}; unsubscribed {pending.done_sids}",)
            self.completions.append((pending.id, None, error))
        else:
            self.completions.append((pending.id, list(pending.done_sids), None))

    def _on_ok(self, pending: _Pending | None, frame: dict[str, Any], sid: Any,
               payload: Any) -> None:
        if pending is None and frame.get("id") is None and type(sid) is int:
            # Older servers answered update_subscription without the id.
            pending = self._pending_update_for(sid)
        if pending is None:
            logger.debug("'ok' reply %r matches no pending command", frame.get("id"))
            return
        kind = pending.kind
        if kind == "list":
            del self._pending[pending.id]
            entries = payload if isinstance(payload, list) else frame.get("subscriptions", [])
            infos = [SubscriptionInfo(channel=channel_of(str(e.get("channel", ""))),
                                      sid=e["sid"])
                     for e in entries or () if isinstance(e, dict) and type(e.get("sid")) is int]
            if pending.user:
                self.completions.append((pending.id, infos, None))
            return
        if kind in _SUBSCRIBE_KINDS:
            # The merge case: a repeated subscribe answered with an ok for the existing sid.
            existing = self._subs.get(sid) if type(sid) is int else None
            if existing is None:
                logger.warning("'ok' reply to subscribe %d without a known sid", pending.id)
                return
            if existing.markets is not None:
                reported = _reported_list(frame, payload)
                requested = pending.params.get("market_tickers") or (
                    pending.template.markets if pending.template is not None else None) or []
                merged = list(reported) if reported is not None else list(dict.fromkeys(
                    existing.markets + list(requested)))
                if existing.is_book:
                    existing.awaiting.update(m for m in merged if m not in existing.markets)
                existing.markets = merged
            self._answer_channel(pending, str(existing.channel),
                                 _replied(existing.public(), frame.get("sending_ts_ms")))
            return
        if kind in ("update", "resync"):
            reported = _reported_list(frame, payload)
            self._apply_update(pending, reported)
            self._finish_update(pending, self._update_result(pending, reported))

    def _update_result(self, pending: _Pending, reported: list[str] | None) -> list[str]:
        """What update_subscription returns: the server's list, else our own view."""
        if reported is not None:
            return reported
        action = pending.params.get("action")
        if action == "get_snapshot":
            return list(pending.params.get("market_tickers", []))
        sub = self._subs.get(pending.sid)  # type: ignore[arg-type]
        if action in ("add_markets", "delete_markets") and sub is not None:
            return list(sub.markets or sub.market_ids or [])
        for key in ("index_ids", "underlying_tickers"):
            if key in pending.params and sub is not None:
                return list(sub.params.get(key, []))
        return []

    def _pending_update_for(self, sid: int) -> _Pending | None:
        return next((p for p in self._pending.values()
                     if p.kind in ("update", "resync") and p.sid == sid),
                    None)

    def _apply_update(self, pending: _Pending, reported: list[str] | None) -> None:
        sub = self._subs.get(pending.sid)  # type: ignore[arg-type]
        action = pending.params.get("action")
        if sub is None:
            return
        if action == "add_markets":
            requested = pending.params.get("market_tickers") or []
            if reported is not None and pending.params.get("market_tickers"):
                sub.markets = list(reported)
            elif requested:
                sub.markets = list(dict.fromkeys((sub.markets or []) + requested))
            if pending.params.get("market_ids"):
                sub.market_ids = list(dict.fromkeys((sub.market_ids or []) +
                                                    pending.params["market_ids"]))
        elif action == "delete_markets":
            requested = set(pending.params.get("market_tickers") or [])
            if reported is not None and pending.params.get("market_tickers"):
                sub.markets = list(reported)
            elif sub.markets is not None:
                sub.markets = [m for m in sub.markets if m not in requested]
            sub.snapshotted.difference_update(requested)
            sub.awaiting.difference_update(requested)
            if pending.params.get("market_ids") and sub.market_ids:
                gone = set(pending.params["market_ids"])
                sub.market_ids = [m for m in sub.market_ids if m not in gone]
        elif action in ("subscribe_indices", "unsubscribe_indices", "subscribe_underlyings",
                        "unsubscribe_underlyings"):
            key = "index_ids" if "indices" in action else "underlying_tickers"
            if reported is not None:
                sub.params[key] = list(reported)
            else:
                current = list(sub.params.get(key, []))
                changed = pending.params.get(key, [])
                if action.startswith("subscribe"):
                    current = list(dict.fromkeys(current + changed))
                else:
                    current = [c for c in current if c not in changed]
                sub.params[key] = current

    def _finish_update(self, pending: _Pending, result: list[str]) -> None:
        if self._pending.pop(pending.id, None) is None:
            return
        if pending.kind == "update" and pending.user:
            self.completions.append((pending.id, list(result), None))

    def _complete_list_reply(self, frame: dict[str, Any], payload: Any) -> None:
        command_id = frame.get("id")
        pending = self._pending.get(command_id) if type(command_id) is int else None
        if pending is None or pending.kind != "update":
            return
        values = None
        if type(payload) is dict:
            values = payload.get("index_ids", payload.get("underlying_tickers"))
        self._finish_update(pending, [str(v) for v in values] if type(values) is list else [])

    def _on_error(self, pending: _Pending | None, frame: dict[str, Any], sid: Any,
                  payload: Any) -> None:
        code = payload.get("code") if type(payload) is dict else None
        text = payload.get("msg") if type(payload) is dict else None
        code = _error_code(code)
        text = text if isinstance(text, str) else "(no message)"
        command_id = frame.get("id") if type(frame.get("id")) is int else None
        markets, sent = error_markets(payload), _millis(frame.get("sending_ts_ms"))
        error = CommandError(code, text, command_id=command_id,
                             sid=sid if type(sid) is int else None, markets=markets,
                             sending_ts_ms=sent)
        sub = self._subs.get(sid) if type(sid) is int else None
        if pending is None and command_id is None and type(sid) is int:
            pending = self._pending_update_for(sid)
        if pending is not None:
            self._fail_pending(pending, code, text, error, sid)
        if sub is not None and (pending is None or code in _TERMINAL_ERRORS):
            # A terminal error ends the subscription whatever command it answers.
            self._subscription_error(sub, code, text, error)
        elif pending is None:
            logger.warning("Kalshi error %d (%s) for command %r matches nothing pending",
                           code, text, command_id)

    def _fail_pending(self, pending: _Pending, code: int, text: str, error: CommandError,
                      sid: Any) -> None:
        kind = pending.kind
        if kind in _SUBSCRIBE_KINDS:
            if kind == "unsub_resub" and not pending.channels:
                # The unsubscribe half failed (e.g. unknown sid): subscribe anyway.
                self._resubscribe_after_unsubscribe(pending)
                return
            if code in _COMMAND_LEVEL_ERRORS:  # the whole command failed
                pending.unplaced.extend([(code, text, error)] * len(pending.channels))
            else:
                pending.unplaced.append((code, text, error))
            self._settle_subscribe(pending)
            return
        if kind == "unsubscribe":
            if code in _COMMAND_LEVEL_ERRORS:
                pending.sids = pending.sids[-1:]
            self._answer_sid(pending, sid if type(sid) is int else None, error)
            return
        if kind == "resync":
            del self._pending[pending.id]
            sub = self._subs.get(pending.sid)  # type: ignore[arg-type]
            if sub is not None and code not in _TERMINAL_ERRORS:
                logger.warning("get_snapshot on sid %d failed (error %d: %s); resubscribing",
                               sub.sid, code, text)
                self._resubscribe(sub, f"get_snapshot failed: error {code}", unsubscribe=True)
            return
        self._pending.pop(pending.id, None)
        if kind in ("update", "list"):
            sub = self._subs.get(pending.sid) if pending.sid is not None else None
            if sub is not None and pending.params.get("action") == "add_markets":
                sub.awaiting.difference_update(pending.params.get("market_tickers") or [])
            if pending.user:
                self.completions.append((pending.id, None, error))

    def _subscription_error(self, sub: _Sub, code: int, text: str,
                            error: CommandError | None = None) -> None:
        self._deliver(SubscriptionError(
            sid=sub.sid, channel=sub.channel, code=code, message=text,
            markets=error.markets if error is not None else (),
            sending_ts_ms=error.sending_ts_ms if error is not None else None))
        if code not in _TERMINAL_ERRORS:
            logger.warning("Kalshi error %d on sid %d (%s): %s", code, sub.sid, sub.channel, text)
            return
        name = ErrorCode(code).name.lower().replace("_", " ")
        logger.warning("Kalshi ended subscription %d (%s): error %d (%s)", sub.sid,
                       sub.channel, code, name)
        if self.resync:
            self._resubscribe(sub, f"error {code}", unsubscribe=False)
        else:
            self._subs.pop(sub.sid, None)
            self._retired.add(sub.sid)
            self._deliver(Unsubscribed(sid=sub.sid, channel=sub.channel, reason=f"error {code}"))

    # ------------------------------------------------------------------ resubscription

    def _resubscribe(self, sub: _Sub, reason: str, *, unsubscribe: bool) -> None:
        """Re-create ``sub`` under a new sid; its old frames are dropped from now on."""
        self._subs.pop(sub.sid, None)
        self._retired.add(sub.sid)
        for pending in list(self._pending.values()):
            if pending.sid == sub.sid and pending.kind == "resync":
                del self._pending[pending.id]
        if unsubscribe:
            pending = _Pending(id=self._new_id(), kind="unsub_resub", user=False,
                               sids=[sub.sid], template=sub, params={"reason": reason})
            self._send_internal(pending, "unsubscribe", {"sids": [sub.sid]})
        else:
            self._start_resubscribe(sub, reason)

    def _resubscribe_after_unsubscribe(self, pending: _Pending) -> None:
        self._pending.pop(pending.id, None)
        assert pending.template is not None
        self._start_resubscribe(pending.template, str(pending.params.get("reason", "")))

    def _start_resubscribe(self, template: _Sub, reason: str) -> None:
        if template.emptied:
            logger.warning("not re-creating %s subscription (old sid %d): no markets left",
                           template.channel, template.sid)
            self._deliver(Unsubscribed(sid=template.sid, channel=template.channel,
                                       reason=f"{reason}; {_NO_MARKETS_LEFT}"))
            return
        pending = _Pending(id=self._new_id(), kind="resubscribe", user=False,
                           channels=[str(template.channel)], template=template,
                           params={"reason": reason})
        self._send_internal(pending, "subscribe", template.subscribe_params())


_BOOK_TYPES = frozenset({"orderbook_delta", "orderbook_snapshot"})


def _incomplete_delta(msg: Any) -> bool:
    """A delta a book cannot be applied with: no price or no size, in either form."""
    return msg.__class__ is OrderbookDelta and (
        (msg.price_dollars is None and msg.price is None) or
        (msg.delta_fp is None and msg.delta is None))


def _error_code(value: Any) -> int:
    """Kalshi's error code, read as integers are read elsewhere ("25" is 25); 0 if none."""
    if type(value) is int:
        return value
    try:
        return _wire.to_int(value)
    except (TypeError, ValueError):
        logger.warning("an error reply's code cannot be read: %r", value)
        return 0


def _millis(value: Any) -> int | None:
    """A ``sending_ts_ms`` as an int (numeric strings and ISO 8601 read), else None."""
    if value is None or type(value) is int:
        return value
    try:
        return _wire.to_millis_or_none(value)
    except (TypeError, ValueError):
        return None


def _replied(subscription: Subscription, sent: Any) -> Subscription:
    """The subscription as a command result: with the reply's ``sending_ts_ms``, if any."""
    sent = _millis(sent)
    if sent is None:
        return subscription
    return Subscription(channel=subscription.channel, sid=subscription.sid,
                        market_tickers=subscription.market_tickers, sending_ts_ms=sent)


def _type_name(expected: Any) -> str:
    """``int``, or ``int or str`` for a tuple of types."""
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return str(expected.__name__)


def error_markets(payload: Any) -> tuple[str, ...]:
    """The markets an ``error`` reply names (``msg.market_ticker`` / ``msg.market_tickers``)."""
    if type(payload) is not dict:
        return ()
    names: list[str] = []
    single = payload.get("market_ticker")
    if isinstance(single, str) and single:
        names.append(single)
    several = payload.get("market_tickers")
    if isinstance(several, list):
        names.extend(m for m in several if isinstance(m, str) and m)
    return tuple(dict.fromkeys(names))


def _reported_list(frame: Mapping[str, Any], payload: Any) -> list[str] | None:
    """The list an ``ok`` reply reports (markets, market ids, indices or underlyings)."""
    source = payload if type(payload) is dict else frame
    for key in ("market_tickers", "market_ids", "index_ids", "underlying_tickers"):
        value = source.get(key)
        if isinstance(value, list):
            return [str(v) for v in value]
    if type(payload) is dict and isinstance(frame.get("market_tickers"), list):
        return [str(v) for v in frame["market_tickers"]]
    return None
