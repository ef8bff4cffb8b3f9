"""Kalshi's command and sequencing rules for one connection, as a pure object.

:class:`KalshiRules` is the fake server's model of what Kalshi answers: a command in,
the frames to send out, in order. It owns one connection's subscriptions (sid,
channel, markets, options) and their sequence numbers; it does no I/O, keeps no
clock and starts no task, so every rule is unit-testable with plain dicts
(tests/unit/test_fake_server_rules.py). That includes the sequencing faults a test
injects: skipped numbers, frames numbered but lost, the last frame to send again.
:class:`~kalshi_ws.testing.FakeKalshiServer` is the shell around it (sockets,
handshakes, sessions), with fault injection and publishing as thin layers over it.

The rules follow the protocol reference: a repeated subscribe merges into the live
subscription of its channel (answered ``ok`` with the merged market list), control
replies scoped to a sid consume its sequence numbers, lifecycle-style channels ignore
market filters, and every refusal carries Kalshi's error code and text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "ERROR_TEXT",
    "KNOWN_CHANNELS",
    "UNFILTERED",
    "UNSEQUENCED",
    "KalshiRules",
    "Outgoing",
    "ServerSubscription",
]

KNOWN_CHANNELS = frozenset({
    "orderbook_delta", "ticker", "trade", "fill", "market_positions", "user_orders",
    "order_group_updates", "communications", "market_lifecycle_v2",
    "multivariate_market_lifecycle", "cfbenchmarks_value", "cfbenchmarks_value_5hz",
    "pyth_value",
})
UNSEQUENCED = frozenset({"ticker", "fill", "market_positions", "user_orders"})
# Channels whose market filter Kalshi ignores (they always carry every market).
UNFILTERED = frozenset({"order_group_updates", "communications", "market_lifecycle_v2",
                        "multivariate_market_lifecycle"})
MARKET_ACTIONS = frozenset({"orderbook_delta", "ticker", "trade", "fill", "user_orders",
                            "market_positions"})
ERROR_TEXT = {
    1: "Unable to process message", 2: "Params required", 3: "Channels required",
    4: "Subscription IDs required", 5: "Unknown command", 7: "Unknown subscription ID",
    8: "Unknown channel name", 9: "Authentication required", 10: "Channel error",
    11: "Invalid parameter", 12: "Exactly one subscription ID is required",
    13: "Unsupported action", 14: "Market Ticker required", 15: "Action required",
    18: "Command timeout",
    19: "shard_factor must be > 0", 20: "shard_factor is required when shard_key is set",
    21: "shard_key must be >= 0 and < shard_factor", 22: "shard_factor must be <= 100",
    23: "Match IDs required", 24: "Index IDs required", 25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded", 27: "Too many requests",
    28: "Underlying tickers required",
}


class ServerSubscription:
    """One subscription of one connection, as the server sees it."""

    def __init__(self, sid: int, channel: str, markets: set[str] | None,
                 params: dict[str, Any]) -> None:
        self.sid = sid
        self.channel = channel
        self.markets = markets
        self.params = params
        self.seq = 0
        self.skip = 0
        self.lose = 0  # frames to number but not send (a real loss)
        self.last_frame: str | None = None
        #: The command that last added markets asked for their tickers at once
        #: (``send_initial_snapshot``: of the subscribe, or of the add_markets).
        self.initial_snapshot = params.get("send_initial_snapshot") is True

    @property
    def sequenced(self) -> bool:
        """Whether the channel's frames carry a ``seq``."""
        return self.channel not in UNSEQUENCED

    @property
    def use_yes_price(self) -> bool:
        """Whether the subscription asked for YES-price order books."""
        return bool(self.params.get("use_yes_price"))

    def next_seq(self) -> int:
        """The next sequence number (after any numbers skipped on purpose)."""
        self.seq += 1 + self.skip
        self.skip = 0
        return self.seq

    def wants(self, market: str | None) -> bool:
        """Whether a frame about ``market`` (None: no market) goes to this subscription."""
        return self.markets is None or market is None or market in self.markets

    def __repr__(self) -> str:
        markets = "all" if self.markets is None else len(self.markets)
        return (f"<ServerSubscription sid={self.sid} {self.channel} markets={markets} "
                f"seq={self.seq}>")


#: One frame to send: the frame, and the subscription it belongs to (None for replies
#: that belong to none), which the shell needs for its fault injection.
Outgoing = tuple[dict[str, Any], "ServerSubscription | None"]

#: Supplies the data that follows a subscription or a get_snapshot: called with the
#: rules, the subscription, its (new) markets and the command id to echo (get_snapshot
#: only); returns the frames, numbered with :meth:`KalshiRules.frame`.
InitialData = Callable[["KalshiRules", ServerSubscription, list[str], "int | None"],
                       list[Outgoing]]


def _no_initial_data(rules: KalshiRules, sub: ServerSubscription, markets: list[str],
                     command_id: int | None) -> list[Outgoing]:
    return []


class KalshiRules:
    """One connection's state and Kalshi's answers to its commands.

    Args:
        initial_data: Frames that follow a new subscription (snapshots, initial
            tickers) and answer get_snapshot; the shell supplies them from its market
            simulator. Default: none.
        get_snapshot_ok: Also answer get_snapshot with an ``ok`` after the snapshots.

    Not thread-safe: the shell calls it from its event loop only.
    """

    def __init__(self, initial_data: InitialData = _no_initial_data, *,
                 get_snapshot_ok: bool = False) -> None:
        self.subscriptions: dict[int, ServerSubscription] = {}
        self.next_sid = 1
        self._initial_data = initial_data
        self.get_snapshot_ok = get_snapshot_ok

    # ------------------------------------------------------------------ queries

    def find(self, channel: str | None = None) -> list[ServerSubscription]:
        """The subscriptions of ``channel`` (None: all), oldest first."""
        return [s for s in self.subscriptions.values() if channel in (None, s.channel)]

    def frame(self, sub: ServerSubscription, wire_type: str, msg: Any,
              command_id: int | None = None) -> dict[str, Any]:
        """A data frame of ``sub``, taking its next seq if the channel is sequenced."""
        frame: dict[str, Any] = {"type": wire_type, "sid": sub.sid}
        if command_id:
            frame["id"] = command_id
        if sub.sequenced:
            frame["seq"] = sub.next_seq()
        frame["msg"] = msg
        return frame

    def error(self, command_id: Any, code: int, sub: ServerSubscription | None = None,
              message: str = "") -> dict[str, Any]:
        """Kalshi's ``error`` frame; scoped to ``sub`` when given (taking a seq if the
        channel is sequenced: Kalshi numbers no error of ticker, fill, ...)."""
        frame: dict[str, Any] = {"type": "error"}
        if command_id:  # Kalshi treats id 0 as no id
            frame["id"] = command_id
        if sub is not None:
            frame["sid"] = sub.sid
            if sub.sequenced:
                frame["seq"] = sub.next_seq()
        frame["msg"] = {"code": code, "msg": message or ERROR_TEXT.get(code, "Error")}
        return frame

    def receivers(self, channel: str | None, market: str | None = None
                  ) -> list[ServerSubscription]:
        """The subscriptions of ``channel`` (None: all) a frame about ``market`` goes to."""
        return [s for s in self.find(channel) if s.wants(market)]

    # ------------------------------------------------------------------ sequencing faults

    def skip_seq(self, channel: str | None = None, count: int = 1) -> None:
        """Make the next numbered frame of each subscription of ``channel`` skip ``count``
        sequence numbers (None: every subscription)."""
        for sub in self.find(channel):
            sub.skip += count

    def lose_next(self, channel: str | None = None, count: int = 1) -> None:
        """Number the next ``count`` frames of each subscription of ``channel`` but lose
        them (see :meth:`encode`): a real loss, a gap the client sees on the next frame."""
        for sub in self.find(channel):
            sub.lose += count

    def encode(self, frame: Mapping[str, Any], sub: ServerSubscription | None = None
               ) -> str | None:
        """The text to send for ``frame`` of ``sub``, or None when it is lost on purpose.

        A numbered frame of a subscription with losses pending is lost: it took its seq
        and is never sent. Any other frame of a subscription becomes its last frame, the
        one :meth:`repeats` sends again.
        """
        text = json.dumps(frame, separators=(",", ":"), default=str)
        if sub is not None:
            if sub.lose and "seq" in frame:
                sub.lose -= 1
                return None
            sub.last_frame = text
        return text

    def repeats(self, channel: str | None = None) -> list[str]:
        """The last frame sent of each subscription of ``channel`` (None: all), to send
        again as a duplicate seq; subscriptions that sent nothing yet have none."""
        return [s.last_frame for s in self.find(channel) if s.last_frame is not None]

    # ------------------------------------------------------------------ commands

    def parse(self, message: str | bytes) -> dict[str, Any] | None:
        """The command a text frame holds, or None when it is not a JSON object."""
        try:
            command = json.loads(message)
        except ValueError:
            return None
        return command if isinstance(command, dict) else None

    def handle(self, command: dict[str, Any] | None) -> list[Outgoing]:
        """Kalshi's answer to one command (None: a frame that was not a JSON object)."""
        if command is None:
            return [(self.error(None, 1), None)]
        command_id = command.get("id")
        cmd = command.get("cmd")
        params = command.get("params")
        if cmd == "list_subscriptions":
            return [(_reply(command_id, {"type": "ok", "msg": [
                {"channel": s.channel, "sid": s.sid} for s in self.subscriptions.values()]}),
                None)]
        if cmd not in ("subscribe", "unsubscribe", "update_subscription"):
            return [(self.error(command_id, 5), None)]
        if not isinstance(params, dict):
            return [(self.error(command_id, 2), None)]
        if cmd == "subscribe":
            return self.subscribe(command_id, params)
        if cmd == "unsubscribe":
            return self.unsubscribe(command_id, params)
        return self.update(command_id, params)

    def subscribe(self, command_id: Any, params: dict[str, Any]) -> list[Outgoing]:
        """One reply per channel (``subscribed``, a merge's ``ok``, or an error)."""
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            return [(self.error(command_id, 3), None)]
        markets = _markets(params)
        options = {k: v for k, v in params.items()
                   if k not in ("channels", "market_ticker", "market_tickers")}
        out: list[Outgoing] = []
        for channel in channels:
            code = self._subscribe_error(channel, markets, params)
            if code is not None:
                out.append((self.error(command_id, code), None))
                continue
            channel_markets = None if channel in UNFILTERED else markets
            existing = self.find(channel)
            if existing:
                existing[0].initial_snapshot = params.get("send_initial_snapshot") is True
                out += self._merge(existing[0], command_id, channel_markets)
                continue
            sub = ServerSubscription(self.next_sid, channel,
                                     set(channel_markets) if channel_markets else None,
                                     dict(options))
            self.next_sid += 1
            self.subscriptions[sub.sid] = sub
            out.append((_reply(command_id, {"type": "subscribed",
                         "msg": {"channel": channel, "sid": sub.sid}}), None))
            out += self._initial_data(self, sub, list(channel_markets or []), None)
        return out

    @staticmethod
    def _subscribe_error(channel: Any, markets: list[str],
                         params: Mapping[str, Any]) -> int | None:
        if channel not in KNOWN_CHANNELS:
            return 8
        if channel == "orderbook_delta" and not markets:
            return 14
        return _shard_error(params) if channel == "communications" else None

    def _merge(self, sub: ServerSubscription, command_id: Any,
               markets: list[str] | None) -> list[Outgoing]:
        """Since Oct 2025 a repeated subscribe merges into the live subscription."""
        new = [m for m in markets or () if sub.markets is not None and m not in sub.markets]
        if sub.markets is not None and markets:
            sub.markets.update(markets)
        frame = _reply(command_id, {"sid": sub.sid, "seq": sub.next_seq(), "type": "ok",
                                    "msg": {"market_tickers": sorted(sub.markets or ())}})
        return [(frame, sub), *self._initial_data(self, sub, new, None)]

    def unsubscribe(self, command_id: Any, params: dict[str, Any]) -> list[Outgoing]:
        """One ``unsubscribed`` (or error 7) per sid."""
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            return [(self.error(command_id, 4), None)]
        out: list[Outgoing] = []
        for sid in sids:
            sub = self.subscriptions.pop(sid, None) if isinstance(sid, int) else None
            if sub is None:
                out.append((self.error(command_id, 7), None))
                continue
            out.append((_reply(command_id, {"sid": sid, "seq": sub.next_seq(),
                         "type": "unsubscribed"}), None))
        return out

    def update(self, command_id: Any, params: dict[str, Any]) -> list[Outgoing]:
        """update_subscription: one sid, one action."""
        sids = params.get("sids")
        if "sid" in params:
            sids = [params["sid"]] if sids is None else None
        if not isinstance(sids, list) or len(sids) != 1:
            return [(self.error(command_id, 12), None)]
        sub = self.subscriptions.get(sids[0]) if isinstance(sids[0], int) else None
        if sub is None:
            return [(self.error(command_id, 7), None)]
        action = params.get("action")
        if not action:
            return [(self.error(command_id, 15), None)]
        if action in ("add_markets", "delete_markets"):
            return self._change_markets(sub, command_id, action, params)
        if action == "get_snapshot":
            return self._get_snapshot(sub, command_id, params)
        if action in ("subscribe_indices", "unsubscribe_indices", "subscribe_underlyings",
                      "unsubscribe_underlyings"):
            return self._change_list(sub, command_id, action, params)
        if action in ("indexlist", "underlying_list"):
            return self._send_list(sub, command_id, action)
        return [self._fail(sub, command_id, 13)]

    def _fail(self, sub: ServerSubscription, command_id: Any, code: int) -> Outgoing:
        return self.error(command_id, code, sub), sub

    def _change_markets(self, sub: ServerSubscription, command_id: Any, action: str,
                        params: Mapping[str, Any]) -> list[Outgoing]:
        markets = _markets(params)
        if sub.channel not in MARKET_ACTIONS:
            return [self._fail(sub, command_id, 13)]
        if not markets and not params.get("market_ids"):
            return [self._fail(sub, command_id, 14)]
        current = sub.markets if sub.markets is not None else set()
        added = [m for m in markets if m not in current]
        if action == "add_markets":
            current.update(markets)
        else:
            current.difference_update(markets)
        sub.markets = current
        msg = {} if sub.params.get("skip_ticker_ack") else {"market_tickers": sorted(current)}
        out: list[Outgoing] = [(_reply(command_id, {"sid": sub.sid, "seq": sub.next_seq(),
                                 "type": "ok", "msg": msg}), sub)]
        if action == "add_markets":
            # Kalshi's update_subscription takes its own send_initial_snapshot (ticker).
            sub.initial_snapshot = params.get("send_initial_snapshot") is True
            out += self._initial_data(self, sub, added, None)
        return out

    def _get_snapshot(self, sub: ServerSubscription, command_id: Any,
                      params: Mapping[str, Any]) -> list[Outgoing]:
        if sub.channel != "orderbook_delta":
            return [self._fail(sub, command_id, 13)]
        markets = _markets(params)
        if not params.get("market_tickers"):
            return [self._fail(sub, command_id, 14)]
        out = self._initial_data(self, sub, markets, command_id)
        if self.get_snapshot_ok:
            out.append((_reply(command_id, {"sid": sub.sid, "seq": sub.next_seq(),
                         "type": "ok", "msg": {"market_tickers": markets}}), sub))
        return out

    def _change_list(self, sub: ServerSubscription, command_id: Any, action: str,
                     params: Mapping[str, Any]) -> list[Outgoing]:
        key = "index_ids" if "indices" in action else "underlying_tickers"
        if not sub.channel.startswith("cfbenchmarks" if key == "index_ids" else "pyth"):
            return [self._fail(sub, command_id, 13)]
        values = params.get(key)
        if not isinstance(values, list) or not values:
            return [self._fail(sub, command_id, 24 if key == "index_ids" else 28)]
        current = list(sub.params.get(key, []))
        if action.startswith("subscribe"):
            current += [v for v in values if v not in current]
        else:
            current = [v for v in current if v not in values]
        sub.params[key] = current
        return [(_reply(command_id, {"sid": sub.sid, "seq": sub.next_seq(),
                  "type": "ok", "msg": {key: current}}), sub)]

    def _send_list(self, sub: ServerSubscription, command_id: Any,
                   action: str) -> list[Outgoing]:
        if action == "indexlist" and sub.channel.startswith("cfbenchmarks"):
            wire_type, key = f"{sub.channel}_indexlist", "index_ids"
        elif action == "underlying_list" and sub.channel == "pyth_value":
            wire_type, key = "pyth_value_underlying_list", "underlying_tickers"
        else:
            return [self._fail(sub, command_id, 13)]
        return [(self.frame(sub, wire_type, {key: sub.params.get(key, [])}, command_id), sub)]

    def end_subscription(self, sub: ServerSubscription, code: int,
                         message: str = "") -> Outgoing:
        """A sid-scoped error without a command id; 10 and 25 end the subscription."""
        frame = self.error(None, code, sub, message)
        if code in (10, 25):
            self.subscriptions.pop(sub.sid, None)
        return frame, sub

    def __repr__(self) -> str:
        return f"<KalshiRules {len(self.subscriptions)} subscription(s)>"


def _reply(command_id: Any, frame: dict[str, Any]) -> dict[str, Any]:
    """A reply to a command: its ``id`` echoed first, unless it had none (Kalshi treats
    id 0 as no id)."""
    return {"id": command_id, **frame} if command_id else frame


def _markets(params: Mapping[str, Any]) -> list[str]:
    markets = params.get("market_tickers")
    if isinstance(markets, list):
        return [m for m in markets if isinstance(m, str)]
    single = params.get("market_ticker")
    return [single] if isinstance(single, str) else []


def _shard_error(params: Mapping[str, Any]) -> int | None:
    """The error code Kalshi gives a communications subscribe's sharding, if any."""
    factor, key = params.get("shard_factor"), params.get("shard_key")
    if factor is None:
        return 20 if key is not None else None
    if type(factor) is not int or factor <= 0:
        return 19
    if factor > 100:
        return 22
    if key is not None and (type(key) is not int or not 0 <= key < factor):
        return 21
    return None
