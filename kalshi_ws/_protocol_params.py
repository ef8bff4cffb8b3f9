"""Checking command arguments before anything is sent (sans-I/O, no state).

Every check raises :class:`~kalshi_ws.exceptions.InvalidCommand` naming the argument,
so that a bad command fails in the caller's thread and never reaches Kalshi.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidCommand

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

# Keys a command's own arguments fill: never taken from extra_params.
SUBSCRIBE_KEYS = frozenset({"channels", "market_tickers"})
UPDATE_KEYS = frozenset({"sids", "sid", "market_tickers"})
# Parameters of every command the client fills in itself (market filters, sids, ...).
_ALWAYS_KNOWN = frozenset({"market_ticker", "market_tickers", "market_id", "market_ids",
                           "channels", "sids", "sid"})


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


def check_sids(sids: Any) -> list[int]:
    """One sid or an iterable of them, as a list without duplicates.

    Raises:
        InvalidCommand: no sids, or a sid that is not a positive int.
    """
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


def type_name(expected: Any) -> str:
    """``int``, or ``int or str`` for a tuple of types."""
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return str(expected.__name__)
