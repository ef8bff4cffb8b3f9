"""Wire format: JSON text to typed messages, commands to JSON text.

Two ways from a payload dict to a message class, with the same leaf rules:

* the **fast path**, a structure function generated once per class from its attrs
  fields, used for every message on the hot path. It fills the slots directly and
  calls the leaf converters only where a value needs converting;
* the private **cattrs converter** (leaf hooks registered first, as cattrs requires),
  used when the fast path raises, to say precisely which field was wrong. Its result
  becomes a :class:`MalformedMessage`.

A test checks that both paths build equal objects for every example Kalshi publishes.
JSON numbers with a fraction are parsed straight to Decimal (``parse_float``), so no
float is ever created from a message.
"""

from __future__ import annotations

import collections.abc
import datetime
import json
import logging
import re
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import attrs
import cattrs
import cattrs.gen

from . import _compiled, models
from .models import NO_EXTRA, Channel, ExtraFields, MalformedMessage, UnknownMessage

__all__ = [
    "MESSAGE_CLASSES",
    "TYPE_CHANNELS",
    "build_message",
    "constructor",
    "decode",
    "encode",
    "essential_fields",
    "structure_strict",
]

logger = logging.getLogger(__name__)

#: Wire ``type`` to message class.
MESSAGE_CLASSES: dict[str, type] = {
    "orderbook_snapshot": models.OrderbookSnapshot,
    "orderbook_delta": models.OrderbookDelta,
    "ticker": models.Ticker,
    "ticker_v2": models.TickerV2,
    "trade": models.Trade,
    "fill": models.Fill,
    "market_position": models.MarketPosition,
    "user_order": models.UserOrder,
    "order_group_updates": models.OrderGroupUpdate,
    "market_lifecycle_v2": models.MarketLifecycle,
    "multivariate_market_lifecycle": models.MultivariateMarketLifecycle,
    "event_lifecycle": models.EventLifecycle,
    "event_fee_update": models.EventFeeUpdate,
    "rfq_created": models.RfqCreated,
    "rfq_deleted": models.RfqDeleted,
    "quote_created": models.QuoteCreated,
    "quote_accepted": models.QuoteAccepted,
    "quote_executed": models.QuoteExecuted,
    "cfbenchmarks_value": models.CfbenchmarksValue,
    "cfbenchmarks_value_5hz": models.CfbenchmarksValue5hz,
    "cfbenchmarks_value_indexlist": models.IndexList,
    "cfbenchmarks_value_5hz_indexlist": models.IndexList,
    "pyth_value": models.PythValue,
    "pyth_value_underlying_list": models.UnderlyingList,
    "multivariate_lookup": models.MultivariateLookup,
}

#: Wire ``type`` to the channel that carries it, for frames whose sid we do not know.
#: (``event_lifecycle`` also travels on multivariate_market_lifecycle; the sid decides.)
TYPE_CHANNELS: dict[str, Channel | str] = {
    "orderbook_snapshot": Channel.ORDERBOOK_DELTA,
    "orderbook_delta": Channel.ORDERBOOK_DELTA,
    "ticker": Channel.TICKER,
    "ticker_v2": "ticker_v2",
    "trade": Channel.TRADE,
    "fill": Channel.FILL,
    "market_position": Channel.MARKET_POSITIONS,
    "user_order": Channel.USER_ORDERS,
    "order_group_updates": Channel.ORDER_GROUP_UPDATES,
    "market_lifecycle_v2": Channel.MARKET_LIFECYCLE_V2,
    "event_lifecycle": Channel.MARKET_LIFECYCLE_V2,
    "event_fee_update": Channel.MARKET_LIFECYCLE_V2,
    "multivariate_market_lifecycle": Channel.MULTIVARIATE_MARKET_LIFECYCLE,
    "rfq_created": Channel.COMMUNICATIONS,
    "rfq_deleted": Channel.COMMUNICATIONS,
    "quote_created": Channel.COMMUNICATIONS,
    "quote_accepted": Channel.COMMUNICATIONS,
    "quote_executed": Channel.COMMUNICATIONS,
    "cfbenchmarks_value": Channel.CFBENCHMARKS_VALUE,
    "cfbenchmarks_value_indexlist": Channel.CFBENCHMARKS_VALUE,
    "cfbenchmarks_value_5hz": Channel.CFBENCHMARKS_VALUE_5HZ,
    "cfbenchmarks_value_5hz_indexlist": Channel.CFBENCHMARKS_VALUE_5HZ,
    "pyth_value": Channel.PYTH_VALUE,
    "pyth_value_underlying_list": Channel.PYTH_VALUE,
    "multivariate_lookup": Channel("multivariate"),
}


# --------------------------------------------------------------------------- leaf rules
#
# Lenient where Kalshi has changed types under live clients, strict where a wrong value
# would be worse than none: Decimal from strings and ints (never floats); ints also from
# numeric strings; timestamps also from ISO 8601 strings; and, in fields that are not
# essential (see ``essential_fields``), an empty string reads as absent (None).


def to_decimal(value: Any) -> Decimal:
    """Convert a wire value to a finite Decimal: from a string, an int, or a Decimal.

    Strings are read through a small cache (see :data:`DECIMAL_CACHE_SIZE`): the same
    few hundred price and size strings recur millions of times, and a Decimal is
    immutable, so handing out one object for equal strings is exact.

    Raises:
        ValueError: for anything else (float, bool, None, objects), or a non-finite value.
    """
    if type(value) is str:
        result = _decimals.get(value)
        if result is not None:
            return result
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    elif type(value) is Decimal:
        result = value
    elif type(value) is int:
        return Decimal(value)
    else:
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    if not result.is_finite() or not -_MAX_EXPONENT <= result.adjusted() <= _MAX_EXPONENT:
        raise ValueError(f"not a finite number in range: {value!r}")
    if type(value) is str and _DECIMAL_TEXT.fullmatch(value) is None:
        # Decimal() also reads "1_000", " 0.5 " and non-ASCII digits: not money here.
        raise ValueError(f"not a decimal number: {value!r}")
    # A new string is remembered (any thread: a lost race only costs a miss).
    if type(value) is str and len(value) <= DECIMAL_CACHE_KEY_LENGTH:
        if len(_decimals) >= DECIMAL_CACHE_SIZE:
            _decimals.clear()
        _decimals[value] = result
    return result


def to_decimal_or_none(value: Any) -> Decimal | None:
    """:func:`to_decimal`, except that an empty string reads as absent (None)."""
    if type(value) is str and not value:
        return None
    return to_decimal(value)


#: At most this many distinct decimal strings are remembered; when the cache is full it
#: is emptied and fills again with what recurs, so whatever a server sends, it holds at
#: most this many entries of at most :data:`DECIMAL_CACHE_KEY_LENGTH` characters each
#: (about 2 MB at worst). Kalshi's prices and sizes are short strings.
DECIMAL_CACHE_SIZE = 8192
DECIMAL_CACHE_KEY_LENGTH = 24
_decimals: dict[str, Decimal] = {}


# No Kalshi price or count is anywhere near 10**30; refusing absurd exponents keeps a
# hostile frame from turning later arithmetic into a memory bomb.
_MAX_EXPONENT = 30
#: How a decimal string may be spelled: ASCII digits, an optional sign, fraction and
#: exponent (no spaces, underscores or other scripts' digits, which Decimal() accepts).
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_DIGITS = 40  # a numeric string for an int field: refuse absurd lengths


def to_int(value: Any) -> int:
    """Accept an int (not a bool), an integral Decimal parsed from JSON, or a string of
    ASCII digits with an optional sign."""
    if type(value) is int:
        return value
    if type(value) is Decimal and value.is_finite() and value == value.to_integral_value() \
            and value.adjusted() <= _MAX_DIGITS:
        return int(value)
    if type(value) is str and 0 < len(value) <= _MAX_DIGITS and value.isascii():
        digits = value[1:] if value[0] in "+-" else value
        if digits.isdigit():
            return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def to_int_or_none(value: Any) -> int | None:
    """:func:`to_int`, except that an empty string reads as absent (None)."""
    if value == "":
        return None
    return to_int(value)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)  # noqa: UP017 - 3.10
# ISO 8601 date-times as Kalshi sends them: a date, T or a space, a time with an optional
# fraction (any number of digits), and Z, an offset, or nothing (UTC).
_ISO = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?"
                  r"(Z|z|[+-]\d\d:?\d\d)?")


def iso_to_millis(text: str) -> int:
    """Unix milliseconds of an ISO 8601 date-time (UTC unless it carries an offset).

    Raises:
        ValueError: when ``text`` is not such a date-time.
    """
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    base, fraction, zone = match.groups()
    if zone in (None, "Z", "z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    moment = datetime.datetime.fromisoformat(base.replace(" ", "T") + zone)
    delta = moment - _EPOCH
    millis = (delta.days * 86_400 + delta.seconds) * 1000
    return millis + int((fraction or "0")[:3].ljust(3, "0"))


def _timestamp_rule(unit_ms: int, empty_is_none: bool) -> Callable[[Any], int | None]:
    """A timestamp leaf: an int in its documented unit, a numeric string, or ISO 8601."""

    def to_timestamp(value: Any) -> int | None:
        if type(value) is str and value:
            digits = value[1:] if value[0] in "+-" else value
            if not digits.isdigit():
                return iso_to_millis(value) // unit_ms  # floor, also before 1970
        elif value == "" and empty_is_none:
            return None
        return to_int(value)

    to_timestamp.__name__ = f"to_timestamp_{'ms' if unit_ms == 1 else 's'}"
    return to_timestamp


to_millis = _timestamp_rule(1, empty_is_none=False)
to_millis_or_none = _timestamp_rule(1, empty_is_none=True)
to_seconds = _timestamp_rule(1000, empty_is_none=False)
to_seconds_or_none = _timestamp_rule(1000, empty_is_none=True)


def timestamp_unit(name: str) -> str | None:
    """``"ms"`` or ``"s"`` for a field that holds a unix timestamp, by its wire name.

    Kalshi names them consistently: ``ts_ms`` and ``*_ts_ms`` are milliseconds, ``ts``
    and ``*_ts`` are seconds.
    """
    if name == "ts_ms" or name.endswith("_ts_ms"):
        return "ms"
    if name == "ts" or name.endswith("_ts"):
        return "s"
    return None


def to_str(value: Any) -> str:
    """Accept a string only."""
    if type(value) is str:
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def to_bool(value: Any) -> bool:
    """Accept a JSON boolean only."""
    if type(value) is bool:
        return value
    raise ValueError(f"expected a boolean, got {value!r}")


def to_mapping(value: Any) -> Mapping[str, Any]:
    """Accept a JSON object (kept as a dict)."""
    if type(value) is dict:
        return value
    raise ValueError(f"expected an object, got {type(value).__name__}")


_LEAVES: dict[Any, Callable[[Any], Any]] = {
    Decimal: to_decimal,
    int: to_int,
    str: to_str,
    bool: to_bool,
}
# The lenient variant of a leaf, for optional fields that are not essential.
_OR_NONE: dict[Any, Callable[[Any], Any]] = {
    to_decimal: to_decimal_or_none,
    to_int: to_int_or_none,
    to_millis: to_millis_or_none,
    to_seconds: to_seconds_or_none,
}


def essential_fields(cls: type) -> frozenset[str]:
    """The fields of ``cls`` without which its message is :class:`MalformedMessage`.

    Every field the class requires (the market ticker, an order's id, an event type, ...)
    and those its ``ESSENTIAL`` names (an order book's prices and sizes). Any other field
    whose value cannot be read degrades alone: it reads None (or its default) and its raw
    value is kept in ``extra``.
    """
    names = {f.name for f in attrs.fields(cls)
             if f.default is attrs.NOTHING and f.name != _EXTRA}
    return frozenset(names | set(getattr(cls, "ESSENTIAL", ())))


_EXTRA = "extra"


def _known_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(cls) if f.name != _EXTRA)


def _extra_of(payload: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The payload's keys outside ``known``, as ExtraFields (NO_EXTRA if none)."""
    extra = {key: value for key, value in payload.items() if key not in known}
    return _wrap_extra(extra) if extra else NO_EXTRA


_new_object = object.__new__
_set_extra_data = ExtraFields._data.__set__  # type: ignore[attr-defined,misc]


def _wrap_extra(data: dict[str, Any]) -> ExtraFields:
    extra = _new_object(ExtraFields)
    _set_extra_data(extra, data)
    return extra


def _extra_finder(known: frozenset[str]) -> Callable[[dict[str, Any], int], Mapping[str, Any]]:
    """The fast path's ``extra`` for a payload with ``len(payload) != counted`` known keys.

    Frames of one type usually carry the same unknown keys (every production ticker has
    ``Clock``), so the keys found last time are tried first: when the payload holds them
    all and the count leaves room for no other, they are exactly its unknown keys (each
    of them is unknown, and every other key was counted as known).
    """
    hint: list[tuple[str, ...]] = [()]

    def extra_of(payload: dict[str, Any], counted: int) -> Mapping[str, Any]:
        keys = hint[0]
        if keys and len(payload) - counted == len(keys):
            if len(keys) == 1:
                key = keys[0]
                if key in payload:
                    return _wrap_extra({key: payload[key]})
            elif all(key in payload for key in keys):
                return _wrap_extra({key: payload[key] for key in keys})
        extra = _extra_of(payload, known)
        if extra:
            hint[0] = tuple(extra)
        return extra

    return extra_of


# --------------------------------------------------------------------------- cattrs path


def _value_hook(fn: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    """A cattrs structure hook (value, type) calling ``fn(value)``."""
    def hook(value: Any, _type: Any) -> Any:
        return fn(value)
    return hook


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    # Leaf hooks first: cattrs builds class hooks eagerly from what is registered.
    for leaf, fn in _LEAVES.items():
        converter.register_structure_hook(leaf, _value_hook(fn))
    converter.register_structure_hook_func(
        lambda t: t == Mapping[str, Any], lambda v, _t: to_mapping(v))
    converter.register_structure_hook_func(
        lambda t: t == tuple[Decimal, Decimal], lambda v, _t: _level(v))
    converter.register_structure_hook(UnknownMessage, lambda v, _t: UnknownMessage(
        type=str(v.get("type", "")), raw=v))
    converter.register_structure_hook_factory(
        lambda t: attrs.has(t) and any(f.name == _EXTRA for f in attrs.fields(t)),
        _class_hook)
    return converter


def _class_hook(cls: type, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """The cattrs hook of a message class: the same per-field rules as the fast path
    (nested classes by type, so errors name the nested field), plus ``extra``."""
    overrides: dict[str, Any] = {_EXTRA: cattrs.gen.override(omit=True)}
    for rule in _rules(cls):
        if not rule.nested:
            overrides[rule.name] = cattrs.gen.override(struct_hook=partial(_leaf_hook, rule))
    structure_fields: Callable[[Any, Any], Any] = cattrs.gen.make_dict_structure_fn(cls, converter, **overrides)
    known = _known_fields(cls)

    def structure(value: Any, _type: Any) -> Any:
        if type(value) is not dict:
            raise ValueError(f"expected an object, got {type(value).__name__}")
        message = structure_fields(value, cls)
        if not known.issuperset(value):
            message = attrs.evolve(message, extra=_extra_of(value, known))
        return message

    return structure


def _leaf_hook(rule: _Rule, value: Any, _type: Any) -> Any:
    return _apply(rule, value)


def _level(value: Any) -> tuple[Decimal, Decimal]:
    if type(value) not in (list, tuple) or len(value) != 2:
        raise ValueError(f"expected a [price, size] pair, got {value!r}")
    return (to_decimal(value[0]), to_decimal(value[1]))


def _ladder(value: Any) -> tuple[tuple[Decimal, Decimal], ...]:
    """An array of [price, size] pairs (an order-book side): :func:`_level` for each,
    with the cached strings looked up inline (a snapshot holds dozens of levels).

    A list is read by the C module's ``ladder`` where it is used (the same results: it
    only reads the cache, and hands every other pair to :func:`_level`)."""
    if type(value) is not list:
        return _tuple_of(_level, value)
    if _ladder_in_c is not None:
        return _ladder_in_c(value, _decimals, _level)  # type: ignore[no-any-return]
    return _ladder_in_python(value)


def _ladder_in_python(value: list[Any]) -> tuple[tuple[Decimal, Decimal], ...]:
    """:func:`_ladder` of a list, in Python."""
    cached = _decimals.get
    levels: list[tuple[Decimal, Decimal]] = []
    append = levels.append
    for pair in value:
        if type(pair) is list and len(pair) == 2:
            price, size = pair
            price = cached(price) if type(price) is str else None
            size = cached(size) if type(size) is str else None
            if price is not None and size is not None:
                append((price, size))
                continue
        append(_level(pair))
    return tuple(levels)


#: The C module's ladder reader, where it is used. The general path is shared by every
#: client of a process, so :data:`kalshi_ws._compiled.PURE_PYTHON_VARIABLE` is read for
#: it once, when kalshi_ws is imported.
_ladder_in_c: Callable[..., Any] | None = \
    _compiled.speedups.ladder if _compiled.enabled() else None


_converter = _make_converter()


def structure_strict(payload: Any, cls: type) -> Any:
    """Structure ``payload`` into ``cls`` with the cattrs converter (detailed errors).

    Raises:
        cattrs.BaseValidationError: naming each bad field.
    """
    return _converter.structure(payload, cls)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- fast path

_MISSING = object()


def _converter_for(tp: Any) -> tuple[Callable[[Any], Any] | None, bool]:
    """Return (convert, optional) for a field type; convert None means "no conversion"."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, _UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, tp
        convert, _ = _converter_for(inner[0])
        return convert, True
    if tp in _LEAVES:
        return _LEAVES[tp], False
    if tp == tuple[Decimal, Decimal]:
        return _level, False
    if tp == tuple[tuple[Decimal, Decimal], ...]:
        return _ladder, False
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item, _ = _converter_for(args[0])
        return partial(_tuple_of, item), False
    if origin is tuple:
        items = [_converter_for(a)[0] for a in args]
        return partial(_fixed_tuple, items), False
    if origin in (collections.abc.Mapping, dict) or tp in (dict, Mapping):
        return to_mapping, False
    if attrs.has(tp):
        builder = _build_fast_structure(tp)
        return partial(_nested, builder), False
    raise TypeError(f"no wire rule for {tp!r}")


try:  # Python >= 3.10: ``X | None`` is a types.UnionType
    from types import UnionType as _UnionType
except ImportError:  # pragma: no cover
    _UnionType = typing.Union  # type: ignore[assignment,misc]


def _tuple_of(item: Callable[[Any], Any] | None, value: Any) -> tuple[Any, ...]:
    if type(value) not in (list, tuple):
        raise ValueError(f"expected an array, got {type(value).__name__}")
    if item is None:
        return tuple(value)
    return tuple([item(v) for v in value])


def _fixed_tuple(items: list[Any], value: Any) -> tuple[Any, ...]:
    if type(value) not in (list, tuple) or len(value) != len(items):
        raise ValueError(f"expected an array of {len(items)} items, got {value!r}")
    return tuple(fn(v) if fn else v for fn, v in zip(items, value))


def _nested(builder: Callable[[dict[str, Any]], Any], value: Any) -> Any:
    if type(value) is not dict:
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return builder(value)


@attrs.frozen
class _Rule:
    """How one field of a message class is read (shared by all three paths)."""

    name: str
    convert: Callable[[Any], Any] | None
    optional: bool  # null (or an empty string, if convert allows) reads as None
    required: bool  # the class has no default for it
    default: Any
    essential: bool  # a bad value makes the whole message malformed
    nested: bool  # the type holds a message class (cattrs structures it by type)


_RULES: dict[type, tuple[_Rule, ...]] = {}
_TIMESTAMPS = {"ms": to_millis, "s": to_seconds}


def _rules(cls: type) -> tuple[_Rule, ...]:
    rules = _RULES.get(cls)
    if rules is not None:
        return rules
    hints = typing.get_type_hints(cls)
    essential = essential_fields(cls)
    result = []
    for field in attrs.fields(cls):
        if field.name == _EXTRA:
            continue
        convert, optional = _converter_for(hints[field.name])
        unit = timestamp_unit(field.name)
        if convert is to_int and unit is not None:
            convert = _TIMESTAMPS[unit]
        if optional and field.name not in essential:
            convert = _OR_NONE.get(convert, convert)
        result.append(_Rule(
            name=field.name, convert=convert, optional=optional,
            required=field.default is attrs.NOTHING, default=field.default,
            essential=field.name in essential, nested=_holds_class(hints[field.name])))
    _RULES[cls] = rules = tuple(result)
    return rules


def _holds_class(tp: Any) -> bool:
    return attrs.has(tp) or any(_holds_class(a) for a in typing.get_args(tp))


def _apply(rule: _Rule, value: Any) -> Any:
    """Read one field's wire value by its rule (the slow paths' version of the fast code).

    Raises:
        ValueError: the value cannot be read.
    """
    if value is None:
        if rule.optional:
            return None
        raise ValueError("required field is null")
    return rule.convert(value) if rule.convert is not None else value


_FAST: dict[type, Callable[[dict[str, Any]], Any]] = {}


def _build_fast_structure(cls: type) -> Callable[[dict[str, Any]], Any]:
    """Generate ``build(payload_dict) -> cls`` that fills the slots directly.

    Skipping ``__init__`` is safe here: these classes have no validators, converters or
    post-init hooks, and the generated code sets every field exactly once.
    """
    if cls in _FAST:
        return _FAST[cls]
    known = _known_fields(cls)
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": _MISSING,
                                 "_str": str, "_int": int, "_bool": bool,
                                 "_len": len, "_NO_EXTRA": NO_EXTRA,
                                 "_extra_of": _extra_finder(known),
                                 "_set_extra": getattr(cls, _EXTRA).__set__}
    rules = _rules(cls)
    lines = ["def build(m):", "    g = m.get", "    o = _new(_cls)",
             f"    n = {sum(rule.required for rule in rules)}"]
    for index, rule in enumerate(rules):
        namespace[f"_set{index}"] = getattr(cls, rule.name).__set__
        namespace[f"_conv{index}"] = rule.convert
        namespace[f"_default{index}"] = rule.default
        lines.extend(_field_lines(index, repr(rule.name), rule.convert, rule.optional,
                                  required=rule.required, none_default=rule.default is None))
    # Keys the class does not know: when every key was counted as known there are none.
    # A key present with null is not counted: _extra_of then finds nothing (NO_EXTRA).
    # The slot is always set: a class with a __getattr__ for an unset slot would make
    # every attribute read slower (about 30 ns instead of 6).
    lines.append("    _set_extra(o, _extra_of(m, n) if _len(m) != n else _NO_EXTRA)")
    lines.append("    return o")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from our own class fields
    builder: Callable[[dict[str, Any]], Any] = namespace["build"]
    _FAST[cls] = builder
    return builder


def constructor(cls: type, compiled: bool | None = None) -> Callable[..., Any]:
    """A positional constructor for a frozen slotted attrs class that skips ``__init__``.

    For classes built on the hot path, whose ``__init__`` would only assign (no
    validators, converters or defaults to compute): about half the cost of a frozen
    ``__init__`` in Python, a fifth in C. Arguments follow the field order, positional
    only.

    Args:
        cls: The class.
        compiled: Use the optional C module's ``Constructor`` (the same objects); None:
            where it is used (see :mod:`kalshi_ws._compiled`).
    """
    in_c = _compiled.enabled() if compiled is None else compiled
    made = _CONSTRUCTORS.get((cls, in_c))
    if made is None:
        made = _CONSTRUCTORS[cls, in_c] = _constructor(cls, in_c)
    return made


_CONSTRUCTORS: dict[tuple[type, bool], Callable[..., Any]] = {}  # made once each (immutable)


def _constructor(cls: type, in_c: bool) -> Callable[..., Any]:
    names = [field.name for field in attrs.fields(cls)]
    if in_c:
        return _compiled.speedups.Constructor(  # type: ignore[no-any-return]
            cls, tuple(getattr(cls, name) for name in names))
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def new({', '.join(names)}, /):", "    o = _new(_cls)"]
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = getattr(cls, name).__set__
        lines.append(f"    _set{index}(o, {name})")
    lines.append("    return o")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from our own class fields
    new: Callable[..., Any] = namespace["new"]
    return new


# Leaf converters whose happy path is a type check: the generated code tests the type
# itself and calls the converter only to raise (or convert) otherwise.
_TYPE_CHECKS: dict[Any, str] = {
    to_str: "_str", to_bool: "_bool", to_int: "_int", to_int_or_none: "_int",
    to_millis: "_int", to_millis_or_none: "_int", to_seconds: "_int", to_seconds_or_none: "_int",
}


def _field_lines(index: int, name: str, convert: Callable[[Any], Any] | None, optional: bool,
                 *, required: bool, none_default: bool) -> list[str]:
    """Generated code for one field: read it, check or convert it, set the slot.

    ``n`` counts the payload's known keys (required ones are counted in advance), so
    that one ``len`` tells whether the payload holds keys the class does not know.
    """
    conv, setter = f"_conv{index}", f"_set{index}"
    check = _TYPE_CHECKS.get(convert)
    convert_line: str | None
    if check is not None:
        fix = f"v.__class__ is not {check}"
        convert_line = f"v = {conv}(v)"
    else:
        fix = None
        convert_line = f"v = {conv}(v)" if convert is not None else None
    lines = []
    if required:
        lines.append(f"    v = m[{name}]")
        if not optional and convert is None:
            lines.append("    if v is None: raise ValueError('required field is null')")
        if convert_line is not None:
            lines.append(_guarded("    ", optional, fix, convert_line))
    elif none_default:
        lines.append(f"    v = g({name})")  # absent and null both mean None
        lines.append("    if v is not None:")
        lines.append("        n += 1")
        if convert_line is not None:
            lines.append(_guarded("        ", False, fix, convert_line))
    else:
        lines.append(f"    v = g({name}, _MISSING)")
        lines.append("    if v is _MISSING:")
        lines.append(f"        v = _default{index}")
        lines.append("    else:")
        lines.append("        n += 1")
        if convert_line is not None:
            lines.append(_guarded("        ", optional, fix, convert_line))
    lines.append(f"    {setter}(o, v)")
    return lines


def _guarded(indent: str, optional: bool, fix: str | None, convert_line: str) -> str:
    """The conversion line, under the conditions that apply (not None, needs fixing)."""
    condition = " and ".join(c for c in ("v is not None" if optional else None, fix) if c)
    return f"{indent}if {condition}: {convert_line}" if condition else f"{indent}{convert_line}"


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    wire_type: _build_fast_structure(cls) for wire_type, cls in MESSAGE_CLASSES.items()
}


def build_message(wire_type: str, payload: Any, frame: Mapping[str, Any]) -> Any:
    """Turn the ``msg`` payload of a frame of type ``wire_type`` into its message class.

    Never raises: an unknown type gives :class:`UnknownMessage`, a payload that does
    not fit its class gives :class:`MalformedMessage` naming the bad field.

    Args:
        wire_type: The frame's ``type``.
        payload: The frame's ``msg`` value.
        frame: The whole frame, kept in the fallback messages.
    """
    builder = _BUILDERS.get(wire_type)
    if builder is None:
        return UnknownMessage(type=wire_type, raw=frame)
    try:
        return builder(payload)
    except Exception as fast_error:  # noqa: BLE001 - any bad payload must not escape
        return _malformed(wire_type, payload, frame, fast_error)


def _malformed(wire_type: str, payload: Any, frame: Mapping[str, Any],
               fast_error: BaseException) -> Any:
    """The fast path refused ``payload``: degrade the fields that cannot be read, or,
    if an essential one cannot, describe what was wrong in a MalformedMessage."""
    cls = MESSAGE_CLASSES[wire_type]
    if type(payload) is not dict:
        error = f"msg must be an object, got {type(payload).__name__}"
        return MalformedMessage(type=wire_type, raw=frame, error=error)
    try:
        message, degraded = _build_lenient(cls, payload)
    except Exception:  # noqa: BLE001 - an essential field: say which, precisely
        try:
            structure_strict(payload, cls)
        except Exception as exc:  # noqa: BLE001
            return MalformedMessage(type=wire_type, raw=frame, error=_describe_error(exc))
        # The converter accepted what the fast path refused: report the fast path's reason.
        logger.debug("fast path refused a %s payload the converter accepted", wire_type)
        return MalformedMessage(type=wire_type, raw=frame, error=_describe_error(fast_error))
    for name, reason in degraded:
        if (wire_type, name) not in _warned_fields:
            _warned_fields.add((wire_type, name))
            logger.warning("%s field %r could not be read (%s); it reads as absent and its "
                           "raw value is kept in .extra (warned once per type and field)",
                           wire_type, name, reason)
    return message


_warned_fields: set[tuple[str, str]] = set()


def _build_lenient(cls: type, payload: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    """Build ``cls`` field by field; a non-essential field that cannot be read keeps its
    default and its raw value goes to ``extra``.

    Returns:
        The message and the (field, reason) pairs that were degraded.

    Raises:
        ValueError: an essential field is missing or cannot be read.
    """
    values: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    degraded: list[tuple[str, str]] = []
    for rule in _rules(cls):
        if rule.name not in payload:
            if rule.required:
                raise ValueError(f"required field {rule.name!r} is missing")
            continue
        raw = payload[rule.name]
        try:
            values[rule.name] = _apply(rule, raw)
        except Exception as exc:
            if rule.essential:
                raise ValueError(f"essential field {rule.name!r}: {exc}") from exc
            kept[rule.name] = raw
            degraded.append((rule.name, str(exc) or type(exc).__name__))
    known = _known_fields(cls)
    extra = {k: v for k, v in payload.items() if k not in known}
    extra.update(kept)
    values[_EXTRA] = ExtraFields(extra) if extra else NO_EXTRA
    return cls(**values), degraded


# --------------------------------------------------------------------------- JSON


_decoder = json.JSONDecoder(parse_float=Decimal)
_scan = _decoder.scan_once  # type: ignore[attr-defined]
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def decode(data: str | bytes) -> Any:
    """Parse one JSON frame; numbers with a fraction become Decimal.

    Raises:
        ValueError: when the text is not valid JSON or not valid UTF-8.
    """
    if type(data) is not str:
        data = data.decode("utf-8")  # type: ignore[union-attr]
    # The C scanner directly: JSONDecoder.decode would run two whitespace regexes per
    # frame. Anything unusual (leading or trailing whitespace, junk) goes the long way,
    # which also produces the proper error.
    try:
        value, end = _scan(data, 0)
    except StopIteration:
        return _decoder.decode(data)
    if end != len(data):
        return _decoder.decode(data)
    return value


def encode(command: Mapping[str, Any]) -> str:
    """Serialise a command dict to compact JSON (Decimals as strings)."""
    return _encoder.encode(command)
