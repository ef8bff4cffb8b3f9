"""Learned frame shapes: the reader's fast path from a frame's text to its typed message.

Kalshi sends the frames of one type with the same keys, in the same order, with values
of the same JSON kinds; only the values change. Once the general path (JSON decoding,
then :func:`kalshi_ws._wire.build_message`) has read a frame, :class:`ShapeDecoder`
can learn its *shape*: one regular expression that matches exactly the compact texts
with those keys, in that order, with values of those kinds, and a generated function
that builds the typed message straight from the expression's groups. The next frame of
that shape costs one match in C and one call, instead of a JSON decode into dicts and
a build from the dicts.

Rules that make the fast path give exactly what the general path gives:

- A shape is learned only from a frame that the general path read into a message of
  its class (never a malformed or degraded one), whose ``msg`` is an object of scalar
  values (strings, integers, booleans, null), whose ``type`` is its first key, which
  carries no ``id`` and is not a command reply, and whose ``sid``, ``seq`` and
  ``sending_ts_ms`` are integers (the last two may be absent or null).
- Strings match only without escapes or control characters, so a group *is* the
  decoded string; integers match only as JSON integers of at most 18 digits, followed
  by a delimiter, so no fraction or exponent can follow; ``true``, ``false`` and
  ``null`` are literals. Whitespace, another key order, another kind, an escape: no
  match, and the frame takes the general path.
- Each field is read by the same converter as in the general path. A value the
  converter refuses makes the parser raise, and the frame takes the general path,
  which reports it as it always has. Fields whose value is the same in every frame of
  the shape (absent ones, booleans, nulls) take the value the general path gave the
  learned frame.
- A shape is kept only if it reads the frame it was learned from into a message equal
  to the general path's.

Memory is bounded: at most :data:`SHAPES_PER_TYPE` shapes per message type (the oldest
is forgotten), and only the types of :data:`kalshi_ws._wire.MESSAGE_CLASSES`. Learning
is rare: the first frame of a type that no shape matches, then the 2nd, 4th, 8th...
and, past 1,024, every 1,024th.

Used by the reader thread only (under the session lock); nothing here is shared.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from . import _wire
from .models import NO_EXTRA

__all__ = ["SHAPES_PER_TYPE", "Parsed", "ShapeDecoder"]

logger = logging.getLogger("kalshi_ws.client")

#: Shapes remembered per message type.
SHAPES_PER_TYPE = 4

#: (wire type, sid, seq or None, message, sending_ts_ms or None)
Parsed = tuple[str, int, "int | None", Any, "int | None"]

_PREFIX = '{"type":"'  # every learned frame starts so
_STRING = r'"([^"\\\x00-\x1f]*)"'
_INTEGER = r"(-?(?:0|[1-9][0-9]{0,17}))"
_LITERALS = {True: "true", False: "false", None: "null"}
_HEADER_INTS = ("sid", "seq", "sending_ts_ms")
_NOT_LEARNED = frozenset({"subscribed", "unsubscribed", "ok", "error"})
_DECIMAL_CONVERTERS = (_wire.to_decimal, _wire.to_decimal_or_none)
# The type check (in _wire._TYPE_CHECKS) that a value of each kind passes as it is.
_CHECK_OF = {str: "_str", int: "_int", bool: "_bool"}


class _Refused(Exception):
    """This frame's shape cannot be learned (the reason is the message)."""


def _kind(value: Any) -> str:
    """The JSON kind of a scalar value; raises _Refused for anything else."""
    if value is None or value is True or value is False:
        return "literal"
    if type(value) is str:
        return "string"
    if type(value) is int and -10**18 < value < 10**18:
        return "integer"
    raise _Refused(f"a {type(value).__name__} value")


def _value_pattern(kind: str, value: Any, group: bool) -> str:
    if kind == "literal":
        return _LITERALS[value]
    pattern = _STRING if kind == "string" else _INTEGER
    return pattern if group else pattern.replace("(", "(?:", 1)


def _key(name: str) -> str:
    return re.escape(_wire.encode({name: 0})[1:-3])  # the key as compact JSON spells it


class _ShapeBuilder:
    """Generates one shape's expression and parser from a frame read by the general path."""

    def __init__(self, frame: dict[str, Any], message: Any) -> None:
        self.frame = frame
        self.message = message
        self.cls = type(message)
        self.groups = 0
        self.namespace: dict[str, Any] = {
            "_new": object.__new__, "_cls": self.cls, "_int": int, "_dget": _wire._decimals.get,
            "_wrap": _wire._wrap_extra, "_NO_EXTRA": NO_EXTRA,
            "_set_extra": self.cls.extra.__set__,
        }
        self.lines: list[str] = []

    def _group(self) -> str:
        self.groups += 1
        return f"g[{self.groups - 1}]"

    def build(self) -> Callable[[str], Parsed | None]:
        """The parser (its expression inside it).

        Raises:
            _Refused: the frame's shape cannot be learned.
        """
        header: dict[str, str] = {}
        parts = []
        for name, value in self.frame.items():
            if name == "msg":
                parts.append(_key(name) + ":" + self._payload(value))
                continue
            if name == "type":  # its value is part of the shape
                parts.append(re.escape(_wire.encode({name: value})[1:-1]))
                continue
            kind = _kind(value)
            wanted = name in _HEADER_INTS and kind == "integer"
            if wanted:
                header[name] = f"_int({self._group()})"
            parts.append(_key(name) + ":" + _value_pattern(kind, value, wanted))
        pattern = re.compile("{" + ",".join(parts) + "}")
        self.lines[:0] = ["def parse(text):", "    m = _match(text)",
                          "    if m is None: return None", "    g = m.groups()",
                          "    o = _new(_cls)"]
        self.lines.append(f"    return (_type, {header['sid']}, {header.get('seq', 'None')}, "
                          f"o, {header.get('sending_ts_ms', 'None')})")
        self.namespace["_match"] = pattern.fullmatch
        self.namespace["_type"] = self.frame["type"]
        exec("\n".join(self.lines), self.namespace)  # noqa: S102 - from our own field rules
        parse: Callable[[str], Parsed | None] = self.namespace["parse"]
        return parse

    def _payload(self, payload: Any) -> str:
        """The ``msg`` object's pattern; generates the lines that fill the message."""
        if type(payload) is not dict:
            raise _Refused("msg is not an object")
        parts = []
        values: dict[str, str] = {}
        unknown: list[str] = []
        known = _wire._known_fields(self.cls)
        for name, value in payload.items():
            kind = _kind(value)
            variable = kind != "literal"
            if variable:
                group = self._group()
                values[name] = f"_int({group})" if kind == "integer" else group
            else:
                values[name] = repr(value)
            parts.append(_key(name) + ":" + _value_pattern(kind, value, variable))
            if name not in known:
                unknown.append(name)
        for index, rule in enumerate(_wire._rules(self.cls)):
            present = rule.name in payload
            setter = f"_set{index}"
            self.namespace[setter] = getattr(self.cls, rule.name).__set__
            if not present or _kind(payload[rule.name]) == "literal":
                # The same in every frame of the shape: what the general path made of it.
                self.namespace[f"_const{index}"] = getattr(self.message, rule.name)
                self.lines.append(f"    {setter}(o, _const{index})")
                continue
            self.lines.extend(self._read(index, rule, values[rule.name], payload[rule.name]))
        if unknown:
            items = ", ".join(f"{name!r}: {values[name]}" for name in unknown)
            self.lines.append(f"    _set_extra(o, _wrap({{{items}}}))")
        else:
            self.lines.append("    _set_extra(o, _NO_EXTRA)")
        return r"\{" + ",".join(parts) + r"\}"

    def _read(self, index: int, rule: Any, source: str, sample: Any) -> list[str]:
        """Lines reading one field whose value varies: its rule's converter, as always."""
        setter, convert = f"_set{index}", rule.convert
        self.namespace[f"_conv{index}"] = convert
        if convert is None or _wire._TYPE_CHECKS.get(convert) == _CHECK_OF.get(type(sample)):
            return [f"    {setter}(o, {source})"]  # the converter would return it as is
        if convert in _DECIMAL_CONVERTERS and type(sample) is str:
            # The cache first (a zero, being falsy, takes the converter: the same value).
            return [f"    {setter}(o, _dget({source}) or _conv{index}({source}))"]
        return [f"    {setter}(o, _conv{index}({source}))"]


def _first_of(parsers: tuple[Callable[[str], Parsed | None], ...]
              ) -> Callable[[str], Parsed | None]:
    """One parser trying several shapes, the newest first."""
    def parse(text: str) -> Parsed | None:
        for one in parsers:
            parsed = one(text)
            if parsed is not None:
                return parsed
        return None

    return parse


class ShapeDecoder:
    """The learned shapes of one client's frames (reader thread only)."""

    def __init__(self) -> None:
        self._shapes: dict[str, list[Callable[[str], Parsed | None]]] = {}
        self._parsers: dict[str, Callable[[str], Parsed | None]] = {}  # per type, all in one
        self._misses: dict[str, int] = {}

    def learned(self) -> dict[str, int]:
        """How many shapes are known, per message type."""
        return {wire_type: len(parsers) for wire_type, parsers in self._shapes.items()}

    def parse(self, text: str) -> Parsed | None:
        """Read a frame by a learned shape.

        Returns:
            (wire type, sid, seq, message, sending_ts_ms), or None when no learned shape
            matches or one of its converters refuses a value: the frame then needs the
            general path.
        """
        # The type's parsers, by what follows '{"type":"' (each expression checks the
        # whole text, that prefix included).
        parse = self._parsers.get(text[9:text.find('"', 9)])
        if parse is None:
            return None
        try:
            return parse(text)
        except Exception:  # noqa: BLE001 - a value its converter refuses: the general path
            return None

    def consider(self, text: str, frame: Any) -> None:
        """Called with each frame the general path read: learn its shape now and then."""
        if type(frame) is not dict:
            return
        wire_type = frame.get("type")
        if type(wire_type) is not str or wire_type not in _wire.MESSAGE_CLASSES:
            return
        misses = self._misses.get(wire_type, 0) + 1
        self._misses[wire_type] = misses
        if misses & (misses - 1) and (misses <= 1024 or misses % 1024):
            return  # learn at the 1st, 2nd, 4th... miss, then every 1,024th
        try:
            parse = self.learn(text, frame)
        except Exception as why:  # noqa: BLE001 - _Refused, or a bug: the general path stays
            logger.debug("frame shape of %s not learned: %s", wire_type, why)
            return
        parsers = self._shapes.setdefault(wire_type, [])
        parsers.insert(0, parse)
        del parsers[SHAPES_PER_TYPE:]
        self._parsers[wire_type] = parsers[0] if len(parsers) == 1 else _first_of(tuple(parsers))

    @staticmethod
    def learn(text: str, frame: dict[str, Any]) -> Callable[[str], Parsed | None]:
        """The parser of ``frame``'s shape, checked against the general path on ``text``.

        Raises:
            _Refused: the shape cannot be learned.
        """
        wire_type = frame.get("type")
        if type(wire_type) is not str or next(iter(frame)) != "type" or \
                not text.startswith(_PREFIX):
            raise _Refused("'type' is not the first key")
        if wire_type in _NOT_LEARNED or "id" in frame or type(frame.get("sid")) is not int:
            raise _Refused("not a data frame")
        for name in ("seq", "sending_ts_ms"):
            if frame.get(name) is not None and type(frame.get(name)) is not int:
                raise _Refused(f"{name} is not an integer")
        message = _wire.build_message(wire_type, frame.get("msg"), frame)
        if type(message) is not _wire.MESSAGE_CLASSES[wire_type]:
            raise _Refused("the general path did not read it into its class")
        parse = _ShapeBuilder(frame, message).build()
        try:
            parsed = parse(text)
        except Exception as exc:  # noqa: BLE001
            raise _Refused(f"the parser failed on its own frame: {exc!r}") from None
        expected = (wire_type, frame["sid"], frame.get("seq"), message,
                    frame.get("sending_ts_ms"))
        # repr as well: == takes Decimal('1.0') for Decimal('1.00'), and 1 for True.
        if parsed is None or parsed != expected or repr(parsed) != repr(expected):
            raise _Refused("the parser disagrees with the general path")
        return parse
