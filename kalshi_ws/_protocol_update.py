"""The ``update_subscription`` and ``list_subscriptions`` commands (sans-I/O).

:class:`UpdateCommands` builds update_subscription (the user's, and the protocol's own
``get_snapshot`` requests that resynchronise order books) and applies its replies to the
subscription table: an ``ok``, the snapshots a get_snapshot asked for, a list reply to
``indexlist`` / ``underlying_list``, or an ``error``. :class:`ListCommands` does the same
for list_subscriptions.

Not thread-safe: only the protocol calls them, serialised by the client's lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._protocol_params import (
    UPDATE_ACTIONS,
    UPDATE_KEYS,
    UPDATE_OPTIONS,
    check_sids,
    string_list,
    type_name,
    unchecked_params,
)
from ._protocol_tables import (
    TERMINAL_ERRORS,
    CommandFamily,
    Pending,
    Purpose,
    Sub,
    logger,
)
from .exceptions import CommandError, InvalidCommand
from .models import SubscriptionInfo, channel_of

if TYPE_CHECKING:
    from ._protocol_subscribe import SubscribeCommands

_INDEX_ACTIONS = frozenset({"subscribe_indices", "unsubscribe_indices",
                            "subscribe_underlyings", "unsubscribe_underlyings"})


def reported_list(frame: Mapping[str, Any], payload: Any) -> list[str] | None:
    """The list an ``ok`` reply reports (markets, market ids, indices or underlyings)."""
    source = payload if type(payload) is dict else frame
    for key in ("market_tickers", "market_ids", "index_ids", "underlying_tickers"):
        value = source.get(key)
        if isinstance(value, list):
            return [str(v) for v in value]
    if type(payload) is dict and isinstance(frame.get("market_tickers"), list):
        return [str(v) for v in frame["market_tickers"]]
    return None


class UpdateCommands(CommandFamily):
    """update_subscription: built for the user (:attr:`Purpose.USER`) or to ask for
    fresh order-book snapshots (:attr:`Purpose.RESYNC`)."""

    cmd = "update_subscription"
    subscribes: SubscribeCommands  # set by the protocol: a failed resync resubscribes

    # ------------------------------------------------------------------ building

    def build(self, sid: int, action: str | None, market_tickers: Iterable[str] | str | None,
              params: Mapping[str, Any] | None, extra_params: Mapping[str, Any] | None,
              ) -> tuple[int, str]:
        """Check the arguments and register the user's command; (id, text).

        Raises:
            InvalidCommand: see :meth:`KalshiProtocol.update_subscription`.
        """
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise InvalidCommand(f"update_subscription takes exactly one sid (an int), not "
                                 f"{sid!r}; Kalshi answers error 12 otherwise")
        (sid,) = check_sids(sid)
        extra = unchecked_params(extra_params, set(UPDATE_OPTIONS) | UPDATE_KEYS)
        action, known_action = self._check_action(action, extra)
        wire: dict[str, Any] = {"sids": [sid], "action": action}
        if market_tickers is not None:
            wire["market_tickers"] = string_list("market_tickers", market_tickers)
        self._check_params(wire, params or {})
        wire.update(extra)
        needed = UPDATE_ACTIONS.get(action) if known_action else None
        if action in ("add_markets", "delete_markets"):
            if not wire.get("market_tickers") and not wire.get("market_ids"):
                raise InvalidCommand(f"{action} needs market_tickers (or market_ids)")
        elif needed is not None and not wire.get(needed):
            raise InvalidCommand(f"{action} needs {needed}")
        pending = Pending(id=self.tables.new_id(), family=self, purpose=Purpose.USER,
                          params=wire, sid=sid)
        sub = self.tables.subs.get(sid)
        if action == "get_snapshot":
            pending.markets = set(wire["market_tickers"])
        elif action == "add_markets" and sub is not None and sub.is_book:
            # Deltas of the new markets wait for their first snapshot.
            known = set(sub.markets or ())
            sub.awaiting.update(m for m in wire.get("market_tickers", ()) if m not in known)
        return self.tables.register(pending, wire)

    @staticmethod
    def _check_action(action: str | None, extra: dict[str, Any]) -> tuple[str, bool]:
        """The action to send (maybe popped from ``extra``), and whether it is known."""
        if action is None and "action" in extra:
            action = extra.pop("action")
            if not isinstance(action, str) or not action or action in UPDATE_ACTIONS:
                raise InvalidCommand(
                    f"extra_params action must be a non-empty string this library does not "
                    f"know, not {action!r}; pass a known action as the action argument")
            return action, False
        if "action" in extra:
            raise InvalidCommand("give the action either as the action argument or in "
                                 "extra_params, not both")
        if action not in UPDATE_ACTIONS:
            raise InvalidCommand(f"unknown update_subscription action {action!r}; known: "
                                 f"{', '.join(UPDATE_ACTIONS)} (send another one with "
                                 "extra_params={'action': ...})")
        assert action is not None
        return action, True

    @staticmethod
    def _check_params(wire: dict[str, Any], params: Mapping[str, Any]) -> None:
        for name, value in params.items():
            expected = UPDATE_OPTIONS.get(name)
            if expected is None:
                raise InvalidCommand(f"unknown update_subscription parameter {name!r}; "
                                     f"known: market_tickers, {', '.join(UPDATE_OPTIONS)}")
            if value is None:
                continue
            if expected is list:
                wire[name] = string_list(name, value)
            elif not isinstance(value, expected):
                raise InvalidCommand(f"{name} must be {type_name(expected)}, not {value!r}")
            else:
                wire[name] = value

    def resync_markets(self, markets: Iterable[str]) -> list[str]:
        """Distrust these markets' books and ask for snapshots: one get_snapshot per
        order-book subscription, in time linear in the markets and the subscriptions'.

        Returns:
            The markets some order-book subscription covers.
        """
        wanted = set(markets)
        found: list[str] = []
        for sub in list(self.tables.subs.values()):
            if not sub.is_book or not sub.markets:
                continue
            covered = [m for m in sub.markets if m in wanted]
            for market in covered:
                sub.snapshotted.discard(market)
            missing = [m for m in covered if m not in sub.awaiting]
            if missing:
                self.request_snapshots(sub, missing)
            found += covered
        return found

    def request_snapshots(self, sub: Sub, markets: list[str]) -> None:
        """Distrust ``markets`` on ``sub`` and send a get_snapshot for them."""
        sub.awaiting.update(markets)
        params = {"action": "get_snapshot", "market_tickers": markets}
        pending = Pending(id=self.tables.new_id(), family=self, purpose=Purpose.RESYNC,
                          sid=sub.sid, markets=set(markets), params=params)
        self.tables.send_internal(pending, {"sids": [sub.sid], "action": "get_snapshot",
                                             "market_tickers": markets})

    # ------------------------------------------------------------------ replies

    def pending_for(self, sid: int) -> Pending | None:
        """The first update_subscription waiting on ``sid`` (for replies without an id)."""
        return next((p for p in self.tables.pending.values()
                     if p.family is self and p.sid == sid), None)

    def on_ok(self, pending: Pending, frame: dict[str, Any], sid: Any, payload: Any) -> None:
        reported = reported_list(frame, payload)
        self._apply(pending, reported)
        self._finish(pending, self._result(pending, reported))

    def on_error(self, pending: Pending, code: int, text: str, error: CommandError,
                 sid: Any) -> None:
        tables = self.tables
        tables.pending.pop(pending.id, None)
        sub = tables.subs.get(pending.sid) if pending.sid is not None else None
        if pending.purpose is Purpose.RESYNC:
            if sub is not None and code not in TERMINAL_ERRORS:
                logger.warning("get_snapshot on sid %d failed (error %d: %s); resubscribing",
                               sub.sid, code, text)
                self.subscribes.resubscribe(sub, f"get_snapshot failed: error {code}",
                                            unsubscribe=True)
            return
        if sub is not None and pending.params.get("action") == "add_markets":
            sub.awaiting.difference_update(pending.params.get("market_tickers") or [])
        tables.complete(pending, None, error)

    def on_timeout(self, pending: Pending) -> None:
        sub = self.tables.subs.get(pending.sid) if pending.sid is not None else None
        if pending.purpose is Purpose.RESYNC and sub is not None:
            self.subscribes.resubscribe(sub, "resync timed out", unsubscribe=True)

    def snapshot_arrived(self, sid: int, market: str) -> None:
        """A snapshot of ``market`` came: it answers the get_snapshot commands asking it."""
        for pending in self.tables.of(self, sid):
            if pending.markets:
                pending.markets.discard(market)
                if not pending.markets:
                    self._finish(pending, list(pending.params["market_tickers"]))

    def list_reply(self, frame: dict[str, Any], payload: Any) -> None:
        """A list reply (``indexlist``, ``underlying_list``) to a user's command."""
        command_id = frame.get("id")
        pending = self.tables.pending.get(command_id) if type(command_id) is int else None
        if pending is None or pending.family is not self or pending.purpose is not Purpose.USER:
            return
        values = None
        if type(payload) is dict:
            values = payload.get("index_ids", payload.get("underlying_tickers"))
        self._finish(pending, [str(v) for v in values] if type(values) is list else [])

    def _result(self, pending: Pending, reported: list[str] | None) -> list[str]:
        """What update_subscription returns: the server's list, else our own view."""
        if reported is not None:
            return reported
        action = pending.params.get("action")
        if action == "get_snapshot":
            return list(pending.params.get("market_tickers", []))
        sub = self.tables.subs.get(pending.sid)  # type: ignore[arg-type]
        if action in ("add_markets", "delete_markets") and sub is not None:
            return list(sub.markets or sub.market_ids or [])
        for key in ("index_ids", "underlying_tickers"):
            if key in pending.params and sub is not None:
                return list(sub.params.get(key, []))
        return []

    def _apply(self, pending: Pending, reported: list[str] | None) -> None:
        sub = self.tables.subs.get(pending.sid)  # type: ignore[arg-type]
        action = pending.params.get("action")
        if sub is None:
            return
        asked = pending.params
        if action == "add_markets":
            requested = asked.get("market_tickers") or []
            if reported is not None and asked.get("market_tickers"):
                sub.markets = list(reported)
            elif requested:
                sub.markets = list(dict.fromkeys((sub.markets or []) + requested))
            if asked.get("market_ids"):
                sub.market_ids = list(dict.fromkeys((sub.market_ids or []) +
                                                    asked["market_ids"]))
        elif action == "delete_markets":
            gone = set(asked.get("market_tickers") or [])
            if reported is not None and asked.get("market_tickers"):
                sub.markets = list(reported)
            elif sub.markets is not None:
                sub.markets = [m for m in sub.markets if m not in gone]
            sub.snapshotted.difference_update(gone)
            sub.awaiting.difference_update(gone)
            if asked.get("market_ids") and sub.market_ids:
                gone_ids = set(asked["market_ids"])
                sub.market_ids = [m for m in sub.market_ids if m not in gone_ids]
        elif action in _INDEX_ACTIONS:
            key = "index_ids" if "indices" in action else "underlying_tickers"
            sub.params[key] = _changed(list(sub.params.get(key, [])), asked.get(key, []),
                                       reported, adding=action.startswith("subscribe"))

    def _finish(self, pending: Pending, result: list[str]) -> None:
        if self.tables.pending.pop(pending.id, None) is not None:
            self.tables.complete(pending, list(result), None)


def _changed(current: list[str], changed: list[str], reported: list[str] | None, *,
             adding: bool) -> list[str]:
    """An index or underlying list after an update: the server's, else ours changed."""
    if reported is not None:
        return list(reported)
    if adding:
        return list(dict.fromkeys(current + changed))
    return [c for c in current if c not in changed]


class ListCommands(CommandFamily):
    """list_subscriptions: the user's only."""

    cmd = "list_subscriptions"

    def build(self) -> tuple[int, str]:
        """Register the user's command; (id, text)."""
        pending = Pending(id=self.tables.new_id(), family=self, purpose=Purpose.USER)
        return self.tables.register(pending, None)

    def on_ok(self, pending: Pending, frame: dict[str, Any], sid: Any, payload: Any) -> None:
        del self.tables.pending[pending.id]
        entries = payload if isinstance(payload, list) else frame.get("subscriptions", [])
        infos = [SubscriptionInfo(channel=channel_of(str(e.get("channel", ""))), sid=e["sid"])
                 for e in entries or () if isinstance(e, dict) and type(e.get("sid")) is int]
        self.tables.complete(pending, infos, None)

    def on_error(self, pending: Pending, code: int, text: str, error: CommandError,
                 sid: Any) -> None:
        self.tables.pending.pop(pending.id, None)
        self.tables.complete(pending, None, error)
