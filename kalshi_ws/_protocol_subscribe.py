"""The ``subscribe`` and ``unsubscribe`` commands (sans-I/O).

:class:`SubscribeCommands` builds subscribe commands (the user's, and the protocol's own
that restore subscriptions after a reconnect or re-create one Kalshi ended) and turns
their replies into the subscription table: one ``subscribed`` (or, for a merge, ``ok``)
per channel, or ``error`` replies pinned on channels. :class:`UnsubscribeCommands` does
the same for unsubscribe: one ``unsubscribed`` per sid.

Not thread-safe: only the protocol calls them, serialised by the client's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._protocol_params import (
    SUBSCRIBE_KEYS,
    SUBSCRIBE_OPTIONS,
    check_sids,
    string_list,
    type_name,
    unchecked_params,
)
from ._protocol_sequencing import millis
from ._protocol_tables import (
    TERMINAL_ERRORS,
    CommandFamily,
    Pending,
    Purpose,
    Sub,
    logger,
)
from ._protocol_update import reported_list
from .exceptions import CommandError, InvalidCommand
from .models import (
    Channel,
    ErrorCode,
    Resubscribed,
    SubscribeFailure,
    SubscribeResult,
    Subscription,
    SubscriptionError,
    Unsubscribed,
    channel_of,
)

if TYPE_CHECKING:
    from ._protocol_sequencing import Sequencer
    from ._protocol_update import UpdateCommands

# Errors that answer a whole command rather than one of its channels or sids.
_COMMAND_LEVEL_ERRORS = frozenset({1, 2, 3, 4, 5})
_UNKNOWN_CHANNEL = 8
NO_MARKETS_LEFT = "no markets left: every market was removed from it"


def _replied(subscription: Subscription, sent: Any) -> Subscription:
    """The subscription as a command result: with the reply's ``sending_ts_ms``, if any."""
    sent = millis(sent)
    if sent is None:
        return subscription
    return Subscription(channel=subscription.channel, sid=subscription.sid,
                        market_tickers=subscription.market_tickers, sending_ts_ms=sent)


class SubscribeCommands(CommandFamily):
    """subscribe: the user's (:attr:`Purpose.USER`), a reconnect's
    (:attr:`Purpose.RESTORE`) and re-creations (:attr:`Purpose.RESUBSCRIBE`)."""

    cmd = "subscribe"
    makes_subscriptions = True
    # Set by the protocol once every part exists.
    sequencer: Sequencer
    unsubscribes: UnsubscribeCommands
    updates: UpdateCommands
    #: Called with (template, new sid or None, failure text) as each restore settles.
    on_restored: Callable[[Sub, int | None, str], None]

    # ------------------------------------------------------------------ building

    def build(self, channels: Iterable[Channel | str] | Channel | str,
              market_tickers: Iterable[str] | str | None, options: Mapping[str, Any] | None,
              extra_params: Mapping[str, Any] | None) -> tuple[int, str]:
        """Check the arguments and register the user's command; (id, text).

        Raises:
            InvalidCommand: see :meth:`KalshiProtocol.subscribe`.
        """
        names = self._check_channels(channels)
        params: dict[str, Any] = {"channels": names}
        if market_tickers is not None:
            markets = string_list("market_tickers", market_tickers)
            if not markets:
                raise InvalidCommand("market_tickers is empty; pass None for all markets")
            params["market_tickers"] = markets
        params.update(self._check_options(options or {}))
        params.update(unchecked_params(extra_params, set(SUBSCRIBE_OPTIONS) | SUBSCRIBE_KEYS))
        for name in names:
            if channel_of(name) == Channel.ORDERBOOK_DELTA:
                if "market_tickers" not in params:
                    raise InvalidCommand(
                        "channel 'orderbook_delta' requires market_tickers (Kalshi answers "
                        "error 14 without them)")
                # Always say which price convention we want, and remember it.
                params.setdefault("use_yes_price", False)
        pending = Pending(id=self.tables.new_id(), family=self, purpose=Purpose.USER,
                          params=params, channels=list(names))
        return self.tables.register(pending, params)

    @staticmethod
    def _check_channels(channels: Any) -> list[str]:
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
                if not checked[name]:  # as for market_tickers: a filter of nothing
                    raise InvalidCommand(f"{name} is empty; leave it out (None) instead")
                continue
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidCommand(f"{name} must be an int, not {value!r}")
            if not isinstance(value, expected):
                raise InvalidCommand(f"{name} must be {type_name(expected)}, not {value!r}")
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

    def recreate(self, template: Sub, purpose: Purpose, reason: str = "") -> None:
        """Send a subscribe that re-creates ``template`` (RESTORE or RESUBSCRIBE)."""
        params = {"reason": reason} if purpose is Purpose.RESUBSCRIBE else {}
        pending = Pending(id=self.tables.new_id(), family=self, purpose=purpose,
                          channels=[str(template.channel)], template=template, params=params)
        self.tables.send_internal(pending, template.subscribe_params())

    # ------------------------------------------------------------------ replies

    def on_subscribed(self, pending: Pending | None, payload: Any, sent: Any = None) -> None:
        """A ``subscribed`` reply (``pending``: the command its id names, if any)."""
        if type(payload) is not dict or type(payload.get("sid")) is not int:
            logger.warning("ignoring a 'subscribed' reply without msg.sid: %r", payload)
            return
        if pending is not None and pending.family is not self:
            logger.warning("'subscribed' reply to %s command %d: treated as unasked for",
                           pending.family.cmd, pending.id)
            pending = None
        sid = payload["sid"]
        channel = channel_of(str(payload.get("channel", "")))
        if pending is None:
            if sid not in self.tables.subs:
                self._discard_late(None, Sub(sid=sid, channel=channel, params={}))
            return
        merged = sid in self.tables.subs
        sub = self._add_sub(pending, sid, channel)
        if pending.abandoned and not merged:  # before answering: that may flush frames
            self._discard_late(pending.id, sub)
        self._answer_channel(pending, str(channel), _replied(sub.public(), sent))
        if pending.abandoned and merged:
            logger.warning("subscribe command %d was answered after its caller gave up: "
                           "its markets joined subscription %d, where they stay",
                           pending.id, sid)
        self.sequencer.flush_unknown(sid)

    def _discard_late(self, command_id: int | None, sub: Sub) -> None:
        """A subscription acknowledged after its caller gave up (or that no command of
        ours asked for): undo it (unsubscribe). Its frames are discarded.

        The caller was told the command failed and may well retry; keeping the late
        subscription would deliver the same data twice.
        """
        self.tables.retire(sub.sid)
        held = len(self.sequencer.take_unknown(sub.sid))
        why = (f"subscribe command {command_id} was answered after its caller gave up"
               if command_id is not None else "no pending command asked for it")
        logger.warning("subscription %d (%s) is unwanted: %s; unsubscribing it; its "
                       "frames are discarded%s", sub.sid, sub.channel, why,
                       f" ({held} already received)" if held else "")
        self.unsubscribes.send_internal(sub, Purpose.DISCARD)

    def _add_sub(self, pending: Pending, sid: int, channel: Channel | str) -> Sub:
        tables = self.tables
        existing = tables.subs.get(sid)
        template = pending.template
        if template is not None:
            restoring = pending.purpose is Purpose.RESTORE
            sub = Sub(sid=sid, channel=channel or template.channel, params=dict(template.params),
                      markets=list(template.markets) if template.markets else None,
                      market_ids=template.market_ids,
                      announced_sid=template.user_sid if restoring else None)
        else:
            params = {k: v for k, v in pending.params.items()
                      if k not in ("channels", "market_tickers", "market_ids")}
            markets = pending.params.get("market_tickers")
            sub = Sub(sid=sid, channel=channel, params=params,
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
        sub.counters = tables.counter(sub.channel)
        tables.subs[sid] = sub
        tables.retired.discard(sid)
        return sub

    def on_ok(self, pending: Pending, frame: dict[str, Any], sid: Any, payload: Any) -> None:
        # The merge case: a repeated subscribe answered with an ok for the existing sid.
        existing = self.tables.subs.get(sid) if type(sid) is int else None
        if existing is None:
            logger.warning("'ok' reply to subscribe %d without a known sid", pending.id)
            return
        if existing.markets is not None:
            reported = reported_list(frame, payload)
            requested = pending.params.get("market_tickers") or (
                pending.template.markets if pending.template is not None else None) or []
            merged = list(reported) if reported is not None else list(dict.fromkeys(
                existing.markets + list(requested)))
            if existing.is_book:
                existing.awaiting.update(m for m in merged if m not in existing.markets)
            existing.markets = merged
        self._answer_channel(pending, str(existing.channel),
                             _replied(existing.public(), frame.get("sending_ts_ms")))

    def on_error(self, pending: Pending, code: int, text: str, error: CommandError,
                 sid: Any) -> None:
        if code in _COMMAND_LEVEL_ERRORS:  # the whole command failed
            pending.unplaced.extend([(code, text, error)] * len(pending.channels))
        else:
            pending.unplaced.append((code, text, error))
        self._settle(pending)

    def on_timeout(self, pending: Pending) -> None:
        if pending.purpose is Purpose.RESUBSCRIBE and pending.template is not None:
            self.start_resubscribe(pending.template, "retry after timeout")

    def _answer_channel(self, pending: Pending, channel: str, success: Subscription) -> None:
        """One channel of a subscribe succeeded (a ``subscribed``, or an ``ok`` merge)."""
        if channel in pending.channels:
            pending.channels.remove(channel)
        elif channel in pending.answered:
            return  # a merge may be answered twice (subscribed and ok): count it once
        elif pending.channels:
            channel = pending.channels.pop(0)  # a reply naming a channel we did not ask for
        pending.answered.add(channel)
        pending.successes.append(success)
        self._settle(pending)

    def _settle(self, pending: Pending) -> None:
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
        del self.tables.pending[pending.id]
        self._finish(pending)

    def _finish(self, pending: Pending) -> None:
        template = pending.template
        if pending.purpose is Purpose.USER:
            self.tables.complete(pending, SubscribeResult(
                successful=tuple(pending.successes), failed=tuple(pending.failures)), None)
        elif template is not None:
            new_sid, text = None, ""
            if pending.successes:
                new_sid = pending.successes[0].sid
            else:
                failure = pending.failures[0] if pending.failures else None
                text = f"error {failure.code}: {failure.message}" if failure else "no reply"
                logger.warning("could not re-create %s subscription (old sid %d): %s",
                               template.channel, template.sid, text)
            if pending.purpose is Purpose.RESTORE:
                self.on_restored(template, new_sid, text)
            elif new_sid is not None:
                self.tables.deliver(Resubscribed(
                    channel=template.channel, old_sid=template.sid, new_sid=new_sid,
                    reason=str(pending.params.get("reason", ""))))
            else:
                self.tables.deliver(Unsubscribed(sid=template.sid, channel=template.channel,
                                                  reason=f"resubscribe failed: {text}"))
        self.sequencer.flush_all_unknown()

    # ------------------------------------------------------------------ re-creation

    def subscription_error(self, sub: Sub, code: int, text: str,
                           error: CommandError | None = None) -> None:
        """Kalshi reported an error on ``sub``; a terminal one ends (or re-creates) it."""
        self.tables.deliver(SubscriptionError(
            sid=sub.sid, channel=sub.channel, code=code, message=text,
            markets=error.markets if error is not None else (),
            sending_ts_ms=error.sending_ts_ms if error is not None else None))
        if code not in TERMINAL_ERRORS:
            logger.warning("Kalshi error %d on sid %d (%s): %s", code, sub.sid, sub.channel, text)
            return
        name = ErrorCode(code).name.lower().replace("_", " ")
        logger.warning("Kalshi ended subscription %d (%s): error %d (%s)", sub.sid,
                       sub.channel, code, name)
        if self.tables.resync:
            self.resubscribe(sub, f"error {code}", unsubscribe=False)
        else:
            self.tables.retire(sub.sid)
            self.tables.deliver(Unsubscribed(sid=sub.sid, channel=sub.channel,
                                              reason=f"error {code}"))

    def resubscribe(self, sub: Sub, reason: str, *, unsubscribe: bool) -> None:
        """Re-create ``sub`` under a new sid; its old frames are dropped from now on.

        With ``unsubscribe``, the old sid is unsubscribed first (:attr:`Purpose.REPLACE`).
        """
        tables = self.tables
        tables.retire(sub.sid)
        for pending in tables.of(self.updates, sub.sid):
            if pending.purpose is Purpose.RESYNC:
                del tables.pending[pending.id]
        if unsubscribe:
            self.unsubscribes.send_internal(sub, Purpose.REPLACE, reason)
        else:
            self.start_resubscribe(sub, reason)

    def start_resubscribe(self, template: Sub, reason: str) -> None:
        """Subscribe again as ``template`` was, unless no market is left in it."""
        if template.emptied:
            logger.warning("not re-creating %s subscription (old sid %d): no markets left",
                           template.channel, template.sid)
            self.tables.deliver(Unsubscribed(sid=template.sid, channel=template.channel,
                                              reason=f"{reason}; {NO_MARKETS_LEFT}"))
            return
        self.recreate(template, Purpose.RESUBSCRIBE, reason)


class UnsubscribeCommands(CommandFamily):
    """unsubscribe: the user's (:attr:`Purpose.USER`), of an unwanted subscription
    (:attr:`Purpose.DISCARD`) and of one to re-create (:attr:`Purpose.REPLACE`)."""

    cmd = "unsubscribe"
    # Set by the protocol once every part exists.
    sequencer: Sequencer
    subscribes: SubscribeCommands

    def build(self, sids: Iterable[int] | int) -> tuple[int, str]:
        """Check the sids and register the user's command; (id, text).

        Raises:
            InvalidCommand: no sids, or a sid that is not a positive int.
        """
        sid_list = check_sids(sids)
        pending = Pending(id=self.tables.new_id(), family=self, purpose=Purpose.USER,
                          sids=list(sid_list))
        return self.tables.register(pending, {"sids": sid_list})

    def send_internal(self, sub: Sub, purpose: Purpose, reason: str = "") -> None:
        """Unsubscribe ``sub`` (DISCARD), or unsubscribe it to re-create it (REPLACE)."""
        replace = purpose is Purpose.REPLACE
        pending = Pending(id=self.tables.new_id(), family=self, purpose=purpose,
                          sids=[sub.sid], template=sub if replace else None,
                          params={"reason": reason} if replace else {})
        self.tables.send_internal(pending, {"sids": [sub.sid]})

    def on_unsubscribed(self, pending: Pending | None, sid: Any) -> None:
        """An ``unsubscribed`` reply (``pending``: the command its id names, if any)."""
        if type(sid) is not int:
            logger.warning("ignoring an 'unsubscribed' reply without sid")
            return
        if pending is not None and pending.family is not self:
            logger.warning("'unsubscribed' reply to %s command %d: matched by its sid",
                           pending.family.cmd, pending.id)
            pending = None
        if pending is None:
            pending = next((p for p in self.tables.of(self) if sid in p.sids), None)
        sub = self.tables.retire(sid)
        self.sequencer.take_unknown(sid)
        if pending is not None and pending.purpose is Purpose.REPLACE:
            self._resubscribe(pending)
            return
        if sub is not None:
            self.tables.deliver(Unsubscribed(sid=sid, channel=sub.channel))
        if pending is not None:
            self._answer_sid(pending, sid)

    def on_error(self, pending: Pending, code: int, text: str, error: CommandError,
                 sid: Any) -> None:
        if pending.purpose is Purpose.REPLACE:
            # The unsubscribe half failed (e.g. unknown sid): subscribe anyway.
            self._resubscribe(pending)
            return
        if code in _COMMAND_LEVEL_ERRORS:
            pending.sids = pending.sids[-1:]
        self._answer_sid(pending, sid if type(sid) is int else None, error)

    def on_timeout(self, pending: Pending) -> None:
        if pending.purpose is Purpose.REPLACE and pending.template is not None:
            self.subscribes.start_resubscribe(pending.template, "retry after timeout")

    def _resubscribe(self, pending: Pending) -> None:
        self.tables.pending.pop(pending.id, None)
        assert pending.template is not None
        self.subscribes.start_resubscribe(pending.template,
                                          str(pending.params.get("reason", "")))

    def _answer_sid(self, pending: Pending, sid: int | None,
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
        del self.tables.pending[pending.id]
        if not pending.user:
            return
        if pending.errors:
            error = pending.errors[0]
            if pending.done_sids:
                error.args = (f"{error.args[0]}; unsubscribed {pending.done_sids}",)
            self.tables.complete(pending, None, error)
        else:
            self.tables.complete(pending, list(pending.done_sids), None)
