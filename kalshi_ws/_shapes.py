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

Where the optional C module is used (see :mod:`kalshi_ws._compiled`), each shape is
also described to its ``Shape`` type, which reads a frame's bytes by the same rules
(every string decoded strictly before any value is converted, the fields converted in
the Python parser's order, plain decimals made and cached as ``to_decimal`` does) and
is kept only if it passes the same check; a decoder then reads every shape in C, its
``parse`` being the C table's own method, and never compiles the Python parser (the
expression and the generated function are most of what learning costs, about a
millisecond of the reader's time; without them a shape is learned in about 0.3 ms). A
shape the C type cannot take (over 256 values) is then not learned: its frames take the
general path.

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
from decimal import Decimal
from typing import Any

from . import _compiled, _wire
from .models import NO_EXTRA

__all__ = ["SHAPES_PER_TYPE", "Parsed", "ShapeDecoder"]

logger = logging.getLogger("kalshi_ws.client")

#: Shapes remembered per message type.
SHAPES_PER_TYPE = 4

#: (wire type, sid, seq or None, message, sending_ts_ms or None)
Parsed = tuple[str, int, "int | None", Any, "int | None"]

_PREFIX = b'{"type":"'  # every learned frame starts so
_STRING = r'"([^"\\\x00-\x1f]*)"'
_INTEGER = r"(-?(?:0|[1-9][0-9]{0,17}))"
_LITERALS = {True: "true", False: "false", None: "null"}
_HEADER_INTS = ("sid", "seq", "sending_ts_ms")
_NOT_LEARNED = frozenset({"subscribed", "unsubscribed", "ok", "error"})
_DECIMAL_CONVERTERS = (_wire.to_decimal, _wire.to_decimal_or_none)
# The type check (in _wire._TYPE_CHECKS) that a value of each kind passes as it is.
_CHECK_OF = {str: "_str", int: "_int", bool: "_bool"}

# The C parser's codes (the same numbers as in _speedups.c; a test compares them).
_KINDS = {"string": 0, "integer": 1}
_TO_NOTHING, _TO_SID, _TO_SEQ, _TO_SENT, _TO_SLOT, _TO_EXTRA = range(6)
_HEADER_TARGETS = {"sid": _TO_SID, "seq": _TO_SEQ, "sending_ts_ms": _TO_SENT}
_CONV_NONE, _CONV_DECIMAL, _CONV_CALL = range(3)


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


def _value_pattern(kind: str, group: bool) -> str:
    pattern = _STRING if kind == "string" else _INTEGER
    return pattern if group else pattern.replace("(", "(?:", 1)


class _Value:
    """One value of a shape: its kind, its group, and (for the C parser) where it goes."""

    def __init__(self, kind: str, group: int, step: int) -> None:
        self.kind = kind
        self.group = group  # the expression's group
        self.step = step  # the C parser's step
        self.target = _TO_NOTHING
        self.conv = _CONV_NONE
        self.descr: Any = None
        self.convert: Any = None

    @property
    def source(self) -> str:
        """The Python parser's expression of the value as JSON reads it."""
        return f"_int(g[{self.group}])" if self.kind == "integer" else f"g[{self.group}]"


class _ShapeBuilder:
    """Generates one shape's parsers from a frame read by the general path.

    The shape is a run of literal texts and values (:attr:`tokens`); the expression and
    the C parser's steps are both made from it, so they match the same texts.
    """

    def __init__(self, frame: dict[str, Any], message: Any) -> None:
        self.frame = frame
        self.message = message
        self.cls = type(message)
        self.tokens: list[str | _Value] = []
        self.steps = 0  # values so far (each a step of the C parser)
        self.groups = 0  # values so far that the expression captures
        self.namespace: dict[str, Any] = {
            "_new": object.__new__, "_cls": self.cls, "_int": int, "_dget": _wire._decimals.get,
            "_wrap": _wire._wrap_extra, "_NO_EXTRA": NO_EXTRA,
            "_set_extra": self.cls.extra.__set__,
        }
        self.lines: list[str] = []
        self.constants: list[tuple[Any, Any]] = []  # (descriptor, value) of fixed fields
        self.extra_items: list[tuple[str, int, Any]] = []  # (key, step or -1, constant)
        self.order: list[int] = []  # the steps of varying fields, in the parser's order
        self.header: dict[str, str] = {}  # sid, seq, sending_ts_ms: their Python source

    def _literal(self, text: str) -> None:
        self.tokens.append(text)

    def _key(self, name: str) -> None:
        self._literal(_wire.encode({name: 0})[1:-2])  # '"name":' as compact JSON spells it

    def _value(self, kind: str, captured: bool) -> _Value:
        value = _Value(kind, self.groups if captured else -1, self.steps)
        self.groups += captured
        self.steps += 1
        self.tokens.append(value)
        return value

    def read(self) -> _ShapeBuilder:
        """Make the shape's tokens (and the Python parser's lines) from the frame.

        Returns:
            The builder, for :meth:`python_parser` and :meth:`description`.

        Raises:
            _Refused: the frame's shape cannot be learned.
        """
        self._literal("{")
        for position, (name, value) in enumerate(self.frame.items()):
            if position:
                self._literal(",")
            if name == "type":  # its value is part of the shape
                self._literal(_wire.encode({name: value})[1:-1])
                continue
            self._key(name)
            if name == "msg":
                self._payload(value)
                continue
            kind = _kind(value)
            if kind == "literal":
                self._literal(_LITERALS[value])
                continue
            wanted = name in _HEADER_INTS and kind == "integer"
            token = self._value(kind, wanted)
            if wanted:
                self.header[name] = token.source
                token.target = _HEADER_TARGETS[name]
        self._literal("}")
        return self

    def python_parser(self) -> Callable[[bytes], Parsed | None]:
        """The Python parser: the tokens as one regular expression, and a generated
        function that fills the message from its groups. Compiling both is most of
        what learning a shape costs (about a millisecond), so a decoder that reads
        its shapes in C never asks for it."""
        pattern = re.compile("".join(
            re.escape(t) if isinstance(t, str) else _value_pattern(t.kind, t.group >= 0)
            for t in self.tokens))
        header = self.header
        ending = (f"    return (_type, {header['sid']}, {header.get('seq', 'None')}, o, "
                  f"{header.get('sending_ts_ms', 'None')})")
        lines = ["def parse(data):", "    m = _match(data.decode())",
                 "    if m is None: return None", "    g = m.groups()",
                 "    o = _new(_cls)", *self.lines, ending]
        namespace = {**self.namespace, "_match": pattern.fullmatch,
                     "_type": self.frame["type"]}
        exec("\n".join(lines), namespace)  # noqa: S102 - from our own field rules
        parse: Callable[[bytes], Parsed | None] = namespace["parse"]
        return parse

    def description(self) -> tuple[Any, ...]:
        """The arguments of ``_speedups.Shape``: the tokens as steps (each value with the
        literal before it), then the literal after the last value; last, the order in
        which the Python parser converts the fields (a refusal or an emptied decimal
        cache would show another)."""
        steps, literal = [], ""
        for token in self.tokens:
            if isinstance(token, str):
                literal += token
                continue
            steps.append((literal.encode(), _KINDS[token.kind], token.target, token.conv,
                          token.descr, token.convert))
            literal = ""
        return (self.frame["type"], self.cls, tuple(steps), literal.encode(),
                tuple(self.constants), self.cls.extra, tuple(self.extra_items), NO_EXTRA,
                _wire._wrap_extra, (_wire._decimals, Decimal, _wire.DECIMAL_CACHE_SIZE,
                                    _wire.DECIMAL_CACHE_KEY_LENGTH), tuple(self.order))

    def _payload(self, payload: Any) -> None:
        """The ``msg`` object's tokens; generates the lines that fill the message."""
        if type(payload) is not dict:
            raise _Refused("msg is not an object")
        values: dict[str, str] = {}
        tokens: dict[str, _Value] = {}
        unknown: list[str] = []
        known = _wire._known_fields(self.cls)
        self._literal("{")
        for position, (name, value) in enumerate(payload.items()):
            if position:
                self._literal(",")
            self._key(name)
            kind = _kind(value)
            if kind == "literal":
                self._literal(_LITERALS[value])
                values[name] = repr(value)
            else:
                tokens[name] = token = self._value(kind, True)
                values[name] = token.source
            if name not in known:
                unknown.append(name)
        self._literal("}")
        for index, rule in enumerate(_wire._rules(self.cls)):
            present = rule.name in payload
            setter = f"_set{index}"
            self.namespace[setter] = getattr(self.cls, rule.name).__set__
            if not present or _kind(payload[rule.name]) == "literal":
                # The same in every frame of the shape: what the general path made of it.
                constant = getattr(self.message, rule.name)
                self.namespace[f"_const{index}"] = constant
                self.lines.append(f"    {setter}(o, _const{index})")
                self.constants.append((getattr(self.cls, rule.name), constant))
                continue
            token = tokens[rule.name]
            token.target, token.descr = _TO_SLOT, getattr(self.cls, rule.name)
            self.order.append(token.step)
            self.lines.extend(self._read(index, rule, token, payload[rule.name]))
        if unknown:
            items = ", ".join(f"{name!r}: {values[name]}" for name in unknown)
            self.lines.append(f"    _set_extra(o, _wrap({{{items}}}))")
            for name in unknown:
                if name in tokens:
                    tokens[name].target = _TO_EXTRA
                    self.extra_items.append((name, tokens[name].step, None))
                else:  # a literal: the same in every frame
                    self.extra_items.append((name, -1, payload[name]))
        else:
            self.lines.append("    _set_extra(o, _NO_EXTRA)")

    def _read(self, index: int, rule: Any, token: _Value, sample: Any) -> list[str]:
        """Lines reading one field whose value varies: its rule's converter, as always."""
        setter, convert, source = f"_set{index}", rule.convert, token.source
        self.namespace[f"_conv{index}"] = convert
        if convert is None or _wire._TYPE_CHECKS.get(convert) == _CHECK_OF.get(type(sample)):
            return [f"    {setter}(o, {source})"]  # the converter would return it as is
        token.convert = convert
        if convert in _DECIMAL_CONVERTERS and type(sample) is str:
            # The cache first (a zero, being falsy, takes the converter: the same value).
            token.conv = _CONV_DECIMAL
            return [f"    {setter}(o, _dget({source}) or _conv{index}({source}))"]
        token.conv = _CONV_CALL
        return [f"    {setter}(o, _conv{index}({source}))"]


def _first_of(parsers: tuple[Callable[[bytes], Parsed | None], ...]
              ) -> Callable[[bytes], Parsed | None]:
    """One parser trying several shapes, the newest first."""
    def parse(data: bytes) -> Parsed | None:
        for one in parsers:
            parsed = one(data)
            if parsed is not None:
                return parsed
        return None

    return parse


class ShapeDecoder:
    """The learned shapes of one client's frames (reader thread only).

    Args:
        compiled: Read learned shapes with the C parser (``kalshi_ws._speedups``).
            None (the default): wherever it is built and not turned off by
            ``KALSHI_WS_PURE_PYTHON`` (see :mod:`kalshi_ws._compiled`). Either way
            the results are the same.

    Raises:
        ImportError: ``compiled=True`` where the C parser is not built.
    """

    def __init__(self, compiled: bool | None = None) -> None:
        if compiled and _compiled.speedups is None:
            raise ImportError("kalshi_ws._speedups is not built (it needs a C compiler "
                              "at install time): learned shapes can be read in Python only")
        #: Whether learned shapes are read in C.
        self.compiled = _compiled.enabled() if compiled is None else compiled
        self._shapes: dict[bytes, list[Callable[[bytes], Parsed | None]]] = {}
        self._parsers: dict[bytes, Callable[[bytes], Parsed | None]] = {}  # per type, in one
        self._misses: dict[str, int] = {}
        table = _compiled.speedups.ShapeTable() if self.compiled else None
        self._table: Any = table
        #: Read a frame's bytes by a learned shape: (wire type, sid, seq, message,
        #: sending_ts_ms), or None when no learned shape matches, the frame is not
        #: UTF-8, or one of its converters refuses a value (the frame then needs the
        #: general path). In C, the table's own method: no Python call in between.
        self.parse: Callable[[bytes], Parsed | None] = \
            self._parse if table is None else table.parse

    def learned(self) -> dict[str, int]:
        """How many shapes are known, per message type."""
        return {wire_type.decode(): len(parsers) for wire_type, parsers in self._shapes.items()}

    def _parse(self, data: bytes) -> Parsed | None:
        """:attr:`parse` in Python."""
        # The type's parsers, by what follows '{"type":"' (each parser checks the whole
        # frame, that prefix included).
        parse = self._parsers.get(data[9:data.find(b'"', 9)])
        if parse is None:
            return None
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - a value its converter refuses: the general path
            return None

    def consider(self, data: bytes, frame: Any) -> None:
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
            parse = self.learn(data, frame, compiled=self.compiled)
        except Exception as why:  # noqa: BLE001 - _Refused, or a bug: the general path stays
            logger.debug("frame shape of %s not learned: %s", wire_type, why)
            return
        key = wire_type.encode()
        parsers = self._shapes.setdefault(key, [])
        parsers.insert(0, parse)
        del parsers[SHAPES_PER_TYPE:]
        if self._table is not None:
            self._table.set(key, tuple(p.__self__ for p in parsers))  # type: ignore[attr-defined]
        else:
            self._parsers[key] = parsers[0] if len(parsers) == 1 else _first_of(tuple(parsers))

    @staticmethod
    def learn(data: bytes, frame: dict[str, Any], *, compiled: bool = False
              ) -> Callable[[bytes], Parsed | None]:
        """The parser of ``frame``'s shape, checked against the general path on ``data``.

        Args:
            data: The frame's bytes.
            frame: What JSON made of them.
            compiled: Return the C parser (a bound ``parse`` of a
                ``_speedups.Shape``), checked as the Python parser is.

        Raises:
            _Refused: the shape cannot be learned.
        """
        wire_type = frame.get("type")
        if type(wire_type) is not str or next(iter(frame)) != "type" or \
                not data.startswith(_PREFIX):
            raise _Refused("'type' is not the first key")
        if wire_type in _NOT_LEARNED or "id" in frame or type(frame.get("sid")) is not int:
            raise _Refused("not a data frame")
        for name in ("seq", "sending_ts_ms"):
            if frame.get(name) is not None and type(frame.get(name)) is not int:
                raise _Refused(f"{name} is not an integer")
        message = _wire.build_message(wire_type, frame.get("msg"), frame)
        if type(message) is not _wire.MESSAGE_CLASSES[wire_type]:
            raise _Refused("the general path did not read it into its class")
        builder = _ShapeBuilder(frame, message).read()
        expected = (wire_type, frame["sid"], frame.get("seq"), message,
                    frame.get("sending_ts_ms"))
        if not compiled:
            parse = builder.python_parser()
            _check(parse, data, expected)
            return parse
        if _compiled.speedups is None:
            raise _Refused("the C parser is not built")
        try:
            shape = _compiled.speedups.Shape(*builder.description())
        except (TypeError, ValueError) as why:  # e.g. more values than it takes
            raise _Refused(f"the C parser cannot read this shape: {why}") from None
        _check(shape.parse, data, expected)
        return shape.parse  # type: ignore[no-any-return]


def _check(parse: Callable[[bytes], Parsed | None], data: bytes, expected: Parsed) -> None:
    """Raise _Refused unless ``parse`` reads ``data`` into ``expected``."""
    try:
        parsed = parse(data)
    except Exception as exc:  # noqa: BLE001
        raise _Refused(f"the parser failed on its own frame: {exc!r}") from None
    # repr as well: == takes Decimal('1.0') for Decimal('1.00'), and 1 for True.
    if parsed is None or parsed != expected or repr(parsed) != repr(expected):
        raise _Refused("the parser disagrees with the general path")
