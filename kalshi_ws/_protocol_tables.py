"""What the parts of one :class:`~kalshi_ws.protocol.KalshiProtocol` share (sans-I/O).

The subscription table (:class:`Sub` by sid), the commands waiting for replies
(:class:`Pending` by id, each naming its :class:`Purpose` and the command family that
handles its replies) and the ways out: deliveries to the user, completions of user
commands and command texts to send. No socket, thread or clock: time comes in through
:attr:`Tables.now`, set by the protocol's ``tick``.

Not thread-safe: every call comes from the protocol, which the client serialises.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

import attrs

from . import _wire
from .exceptions import CommandError
from .models import Channel, ErrorCode, SubscribeFailure, Subscription

# Every part of the protocol logs as the protocol did before it was split, so that a
# user's logging configuration for "kalshi_ws.protocol" keeps covering all of it.
logger = logging.getLogger("kalshi_ws.protocol")

#: An internal command not answered in this many seconds is given up (and retried).
INTERNAL_COMMAND_TIMEOUT = 15.0
#: Error codes that end the subscription they are scoped to (ErrorCode.terminal).
TERMINAL_ERRORS = frozenset(code.value for code in ErrorCode if code.terminal)
# Distinct warnings logged once each (then at DEBUG); past this many, one key for all,
# so that a server inventing new sids or errors cannot grow memory or flood the log.
MAX_WARNINGS = 1_000


class Counters:
    """Frame counters of one channel (the client reports them as ChannelStats)."""

    __slots__ = ("duplicates", "gaps", "held_back", "received")

    def __init__(self) -> None:
        self.received = 0
        self.duplicates = 0
        self.gaps = 0
        self.held_back = 0


@attrs.define(slots=True, eq=False)
class Sub:
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
    counters: Counters | None = None  # the channel's counters, set when it goes live
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
        """The ``subscribe`` parameters that re-create this subscription."""
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
        """The subscription as the user sees it."""
        return Subscription(channel=self.channel, sid=self.sid,
                            market_tickers=tuple(self.markets or ()))


class Purpose(enum.Enum):
    """Why a command was sent: who waits for its result, and what follows its reply."""

    #: The library's user sent it and waits for its result (until it is abandoned).
    USER = "user"
    #: Unsubscribe a subscription nobody asked for, or asked for by a caller who gave up.
    DISCARD = "discard"
    #: Subscribe again, after a reconnect, to a subscription of the previous connection.
    RESTORE = "restore"
    #: Subscribe again to a subscription Kalshi ended or that could not be resynchronised.
    RESUBSCRIBE = "resubscribe"
    #: Unsubscribe a subscription whose books could not be resynchronised, then
    #: :attr:`RESUBSCRIBE` it.
    REPLACE = "replace"
    #: Ask for fresh order-book snapshots (``get_snapshot``) after a gap or a bad frame.
    RESYNC = "resync"

    @property
    def recreates(self) -> bool:
        """The command re-creates its template subscription (its plan survives a loss)."""
        return self in _RECREATING


_RECREATING = frozenset({Purpose.RESTORE, Purpose.RESUBSCRIBE, Purpose.REPLACE})


@attrs.define(slots=True, eq=False)
class Pending:
    """A command waiting for replies."""

    id: int
    family: CommandFamily  # who builds it and handles its replies
    purpose: Purpose
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
    sid: int | None = None  # update / resync: the sid concerned
    markets: set[str] = attrs.Factory(set)  # get_snapshot: snapshots still expected
    template: Sub | None = None  # resubscribe / replace / restore: what to re-create
    deadline: float | None = None  # internal and abandoned commands only

    @property
    def user(self) -> bool:
        """A user waits for this command's result (it is not abandoned)."""
        return self.purpose is Purpose.USER and not self.abandoned


class CommandFamily:
    """Builds one command (``cmd``) and handles its replies; subclasses override.

    A reply of a type the command never gets (a ``subscribed`` answering an
    ``unsubscribe``, ...) is logged and otherwise ignored.
    """

    cmd = ""
    #: Its commands may create subscriptions (frames of unknown sids wait for them).
    makes_subscriptions = False

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def on_ok(self, pending: Pending, frame: dict[str, Any], sid: Any, payload: Any) -> None:
        """An ``ok`` reply to ``pending``."""
        logger.debug("'ok' reply to %s command %d ignored", self.cmd, pending.id)

    def on_error(self, pending: Pending, code: int, text: str, error: CommandError,
                 sid: Any) -> None:
        """An ``error`` reply to ``pending`` (``sid``: the reply's, maybe not an int)."""
        self.tables.pending.pop(pending.id, None)

    def on_timeout(self, pending: Pending) -> None:
        """``pending`` (already forgotten) went unanswered past its deadline."""


class Tables:
    """The tables and outputs a protocol's parts share.

    Args:
        resync: The protocol's ``resync`` option (repair books, re-create subscriptions).
        deliver: Hands one item to the user, in order (held during a restore).
        completions: Where ``(command_id, result, error)`` of user commands go.
        outgoing: Where command texts the protocol itself sends go.
    """

    def __init__(self, *, resync: bool, deliver: Callable[[Any], None],
                 completions: list[tuple[int, Any, BaseException | None]],
                 outgoing: list[str]) -> None:
        self.resync = resync
        self.deliver = deliver
        self.completions = completions
        self.outgoing = outgoing
        self.subs: dict[int, Sub] = {}
        self.pending: dict[int, Pending] = {}
        self.retired: set[int] = set()  # sids that ended: their late frames are dropped
        self.counters: dict[Any, Counters] = {}
        self.warned: set[Any] = set()
        self.now = 0.0
        self._next_id = 1

    def new_id(self) -> int:
        """A command id not used before on this protocol."""
        command_id = self._next_id
        self._next_id += 1
        return command_id

    def register(self, pending: Pending, params: dict[str, Any] | None) -> tuple[int, str]:
        """Wait for ``pending``'s replies; returns (its id, its command text)."""
        self.pending[pending.id] = pending
        command: dict[str, Any] = {"id": pending.id, "cmd": pending.family.cmd}
        if params is not None:
            command["params"] = params
        return pending.id, _wire.encode(command)

    def send_internal(self, pending: Pending, params: dict[str, Any]) -> None:
        """Queue a command of the protocol's own, with a deadline (a restore has none:
        the client times it out as a whole)."""
        if pending.purpose is not Purpose.RESTORE:
            pending.deadline = self.now + INTERNAL_COMMAND_TIMEOUT
        self.outgoing.append(self.register(pending, params)[1])

    def complete(self, pending: Pending, result: Any, error: BaseException | None) -> None:
        """Report ``pending``'s outcome if a user still waits for it."""
        if pending.user:
            self.completions.append((pending.id, result, error))

    def counter(self, channel: Any) -> Counters:
        """The counters of ``channel``, created on first use."""
        counters = self.counters.get(channel)
        if counters is None:
            counters = self.counters[channel] = Counters()
        return counters

    def retire(self, sid: int) -> Sub | None:
        """End the subscription ``sid``: its frames still in flight are dropped."""
        self.retired.add(sid)
        return self.subs.pop(sid, None)

    def warn_once(self, key: Any, message: str, *args: Any) -> None:
        """Log a warning the first time for ``key``, and at DEBUG after that."""
        if key in self.warned:
            logger.debug(message, *args)
        else:
            self.warned.add(key)
            logger.warning(message, *args)

    def bounded_key(self, key: Any, shared: str) -> Any:
        """``key`` while fewer than :data:`MAX_WARNINGS` are known, else ``shared``."""
        return key if len(self.warned) < MAX_WARNINGS else shared

    def of(self, family: CommandFamily, sid: int | None = None) -> list[Pending]:
        """The pending commands of ``family`` (about ``sid``, if given)."""
        return [p for p in self.pending.values()
                if p.family is family and (sid is None or p.sid == sid)]

    def expire(self, now: float) -> None:
        """Advance the clock: commands past their deadline are forgotten, and internal
        ones handed to their family's ``on_timeout`` (which may retry them)."""
        self.now = now
        for pending in list(self.pending.values()):
            if pending.deadline is None or pending.deadline > now:
                continue
            if self.pending.pop(pending.id, None) is None:
                continue  # an earlier one's on_timeout settled it (a resubscription)
            if pending.abandoned:
                logger.info("%s command %d, abandoned by its caller, was never answered; "
                            "forgotten", pending.family.cmd, pending.id)
                continue
            logger.warning("internal %s command %d (%s) was not answered in %.0f s",
                           pending.family.cmd, pending.id, pending.purpose.value,
                           INTERNAL_COMMAND_TIMEOUT)
            pending.family.on_timeout(pending)
