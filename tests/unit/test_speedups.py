"""The optional C parser of learned shapes (kalshi_ws._speedups) reads as the Python one.

Its results must be the Python parser's, byte for byte of input and type for type of
output: these tests compare the two on the same learned shape, on hostile bytes
(truncations, insertions, invalid UTF-8, huge integers), and check that it neither
leaks nor fails to build where it can be built.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import struct
import sys
import sysconfig
import tracemalloc
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kalshi_ws
from kalshi_ws import (
    MalformedMessage,
    ProtocolError,
    StreamUpdate,
    _compiled,
    _shapes,
    _wire,
)
from kalshi_ws._reader import feed_frames
from kalshi_ws._shapes import ShapeDecoder
from kalshi_ws._transport import Transport

from .test_shapes import EXAMPLES, _ready, exact, learned
from .test_transport_frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, frame

speedups = _compiled.speedups
needs_c = pytest.mark.skipif(speedups is None, reason="kalshi_ws._speedups is not built")
FUZZ = settings(max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "0")) or 300,
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compact(frame: Any) -> bytes:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()


def _pair(data: bytes) -> tuple[Any, Any]:
    """The Python and the C parser of ``data``'s shape."""
    frame = json.loads(data)
    return (ShapeDecoder.learn(data, frame, compiled=False),
            ShapeDecoder.learn(data, frame, compiled=True))


def _same(python: Any, c: Any, data: bytes, filled: int = 0) -> None:
    """Both parsers read ``data`` alike: both refuse it, or both read it exactly alike,
    and both leave the same decimal cache behind (from one of ``filled`` entries).

    The Python parser refuses by returning None or raising (ShapeDecoder.parse turns
    an Exception into None); the C parser only by returning None.
    """
    outcomes = []
    for parse in (python, c):
        _wire._decimals.clear()
        _wire._decimals.update((f"5.{i}", Decimal(i)) for i in range(filled))
        try:
            parsed = exact(parse(data))
        except Exception:  # noqa: BLE001
            parsed = exact(None)
        outcomes.append((parsed, [(text, repr(value)) for text, value in _wire._decimals.items()]))
    _wire._decimals.clear()
    assert outcomes[1] == outcomes[0], data


_LEARNABLE = [_compact(f) for f in EXAMPLES if learned(_compact(f).decode()) is not None]
DELTA = _compact({"type": "orderbook_delta", "sid": 1, "seq": 2,
                  "msg": {"market_ticker": "MKT-A", "market_id": "a", "price_dollars": "0.40",
                          "delta_fp": "1.00", "side": "yes", "ts_ms": 1764482400000}})


@needs_c
def test_its_codes_are_the_python_sides() -> None:
    assert speedups is not None
    assert (speedups.KIND_STRING, speedups.KIND_INTEGER) == \
        (_shapes._KINDS["string"], _shapes._KINDS["integer"])
    assert (speedups.TO_NOTHING, speedups.TO_SID, speedups.TO_SEQ, speedups.TO_SENT,
            speedups.TO_SLOT, speedups.TO_EXTRA) == (
        _shapes._TO_NOTHING, _shapes._TO_SID, _shapes._TO_SEQ, _shapes._TO_SENT,
        _shapes._TO_SLOT, _shapes._TO_EXTRA)
    assert (speedups.CONV_NONE, speedups.CONV_DECIMAL, speedups.CONV_CALL) == \
        (_shapes._CONV_NONE, _shapes._CONV_DECIMAL, _shapes._CONV_CALL)


@needs_c
@pytest.mark.parametrize("data", _LEARNABLE, ids=lambda d: json.loads(d)["type"])
def test_every_learnable_example_is_read_in_c(data: bytes) -> None:
    python, c = _pair(data)
    assert type(c.__self__).__name__ == "Shape"
    _same(python, c, data)


_BYTES = st.one_of(st.binary(max_size=4), st.sampled_from([
    b"\\", b'"', b"\x00", b"\x1f", b"\xff", b"\xc3", b"\xe9", b"\xed\xa0\x80", b"\xf0\x9f\x98",
    b"\xc3\xa9", b"0", b"9", b"-", b".", b"e", b",", b"}", b"{", b" ", b"null", b"true",
    b"12345678901234567890"]))


@needs_c
@FUZZ
@given(st.sampled_from(_LEARNABLE + [DELTA]), st.data())
def test_hostile_bytes_are_read_by_both_parsers_alike(template: bytes, data: st.DataObject
                                                      ) -> None:
    """Bytes replaced, inserted, deleted and cut anywhere in a learned frame: the C
    parser refuses or reads exactly what the Python parser does (which the shape tests
    hold to the general path)."""
    python, c = _pair(template)
    raw = bytearray(template)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "replace", "delete", "cut"]))
        if action == "cut":
            del raw[at:]
        elif action == "delete":
            del raw[at:at + data.draw(st.integers(1, 3))]
        else:
            chunk = data.draw(_BYTES)
            raw[at:at + (len(chunk) if action == "replace" else 0)] = chunk
    _same(python, c, bytes(raw))


@needs_c
@settings(FUZZ, max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "0")) or 100)
@given(st.sampled_from(_LEARNABLE + [DELTA]), st.randoms(use_true_random=False), st.data())
def test_payloads_in_any_key_order_are_read_and_cached_alike(
        template: bytes, random: Any, data: st.DataObject) -> None:
    """The payload's keys in any order (a shape is learned from whatever order a server
    sends), values replaced by other spellings, the decimal cache empty or about to be
    emptied: both parsers read alike and leave the same cache behind."""
    frame = json.loads(template)
    items = list(frame["msg"].items())
    random.shuffle(items)
    frame["msg"] = dict(items)
    learned_from = _compact(frame)
    python, c = _pair(learned_from)
    for name, value in items:
        if type(value) is str and data.draw(st.booleans()):
            frame["msg"][name] = data.draw(st.one_of(
                st.sampled_from(_DECIMAL_SPELLINGS), st.decimals(allow_nan=False).map(str)))
    filled = data.draw(st.sampled_from([0, _wire.DECIMAL_CACHE_SIZE - 2,
                                        _wire.DECIMAL_CACHE_SIZE - 1]))
    _same(python, c, _compact(frame), filled)


@needs_c
@pytest.mark.parametrize("value", [
    b"0", b"-0", b"7", b"-7", b"999999999999999999", b"-999999999999999999",
    b"1000000000000000000", b"00", b"01", b"-", b"--1", b"1.0", b"1e2", b"+1", b"",
    b'"5"', b"true", b"null"])
def test_integers_at_every_edge_are_read_alike(value: bytes) -> None:
    python, c = _pair(DELTA)
    for field in (b'"seq":2', b'"ts_ms":1764482400000', b'"sid":1'):
        name = field.split(b":")[0]
        data = DELTA.replace(field, name + b":" + value)
        _same(python, c, data)


@needs_c
@pytest.mark.parametrize("value", [
    "0.40", "", "\u00e9", "\U0001f600", "\x7f", "a\x1fb", 'a\\"b', "a\\\\b", "a\\u0041",
    "\u2028", "x" * 5000])
def test_strings_at_every_edge_are_read_alike(value: str) -> None:
    python, c = _pair(DELTA)
    for field in (b'"market_ticker":"MKT-A"', b'"price_dollars":"0.40"'):
        name = field.split(b":")[0]
        _same(python, c, DELTA.replace(field, name + b':"' + value.encode() + b'"'))


@needs_c
@pytest.mark.parametrize("compiled", [False, True])
def test_invalid_utf8_in_a_value_is_reported_as_before(compiled: bool) -> None:
    """A learned shape's frame whose string is not UTF-8 is still MalformedMessage
    (invalid), never a message with replaced characters."""
    protocol, decoder = _ready(), ShapeDecoder(compiled)
    good = DELTA.replace(b'"seq":2', b'"seq":%d')
    feed_frames(protocol, decoder, [good % 2, good % 3])
    bad = good.replace(b"MKT-A", b"MKT-\xff") % 4
    feed_frames(protocol, decoder, [bad])
    delivered = protocol.take_deliveries()
    assert [u.seq for u in delivered if not isinstance(u.msg, MalformedMessage)] == [2, 3]
    malformed = delivered[-1]
    assert isinstance(malformed, StreamUpdate) and isinstance(malformed.msg, MalformedMessage)
    assert malformed.msg.error.startswith("invalid JSON")


@needs_c
def test_unknown_keys_go_to_extra_in_both() -> None:
    data = _compact({"type": "ticker", "sid": 2, "seq": 1,
                     "msg": {"market_ticker": "M", "Clock": 7, "new_flag": True,
                             "note": "n\u00e9", "price_dollars": "0.41"}})
    python, c = _pair(data)
    _same(python, c, data)
    parsed = c(data)
    assert dict(parsed[3].extra) == {"Clock": 7, "new_flag": True, "note": "n\u00e9"}
    _same(python, c, data.replace(b'"Clock":7', b'"Clock":8'))


@needs_c
def test_a_converter_refusal_takes_the_general_path() -> None:
    python, c = _pair(DELTA)
    bad = DELTA.replace(b'"0.40"', b'"abc"')
    assert c(bad) is None
    _same(python, c, bad)
    protocol, decoder = _ready(), ShapeDecoder(True)
    feed_frames(protocol, decoder, [DELTA, DELTA.replace(b'"seq":2', b'"seq":3')
                                    .replace(b'"0.40"', b'"abc"')])
    last = protocol.take_deliveries()[-1]
    assert isinstance(last.msg, MalformedMessage) or last.msg.price_dollars is None


@needs_c
def test_parsing_does_not_leak() -> None:
    """Many parses, read and refused, with extras and converters: memory stays flat
    (one object leaked per parse would be hundreds of kilobytes here)."""
    plain = DELTA
    extra = _compact({"type": "ticker", "sid": 2, "seq": 1,
                      "msg": {"market_ticker": "M", "Clock": 7, "price_dollars": "0.41"}})
    refused = DELTA.replace(b'"0.40"', b'"abc"')
    not_utf8 = DELTA.replace(b"MKT-A", b"MKT-\xff")
    parsers = [(_pair(plain)[1], plain), (_pair(extra)[1], extra),
               (_pair(plain)[1], refused), (_pair(plain)[1], not_utf8)]
    for parse, data in parsers:
        parse(data)  # warm caches
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            for parse, data in parsers:
                parse(data)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown


@needs_c
def test_a_shape_is_checked_when_made() -> None:
    assert speedups is not None
    shape = speedups.Shape
    cls = _wire.MESSAGE_CLASSES["ticker"]
    good: list[Any] = ["ticker", cls, (), b"{}", (), cls.extra, (), None, dict,
                       ({}, Decimal, 10, 24)]
    shape(*good)
    for at, bad in [(1, 5), (2, [1]), (2, ((b"x", 7, 0, 0, None, None),)),
                    (2, ((b"x", 0, 4, 0, None, None),)),
                    (2, ((b"x", 0, 1, 0, None, None),)),
                    (2, ((b"x", 0, 4, 1, cls.extra, None),)),
                    (2, (b"x",) * 300), (3, "}"), (4, ((1,),)), (5, 3),
                    (6, (("k", 5, None),)), (8, 3), (9, {}), (9, ({}, 5, 10, 24)),
                    (9, ({}, Decimal, 0, 24)), (9, ([], Decimal, 10, 24)), (9, ({},)),
                    (1, dict), (1, int), (1, ValueError), (1, type)]:  # not object.__new__'s
        args = list(good)
        args[at] = bad
        with pytest.raises((TypeError, ValueError)):
            shape(*args)
    made = shape(*good)
    with pytest.raises(TypeError):
        made.__init__(*good)  # once only
    assert made.parse(b"{}") is None  # a shape without a sid reads nothing
    assert made.parse("{}") is None  # not bytes
    with_sid = list(good)
    with_sid[2] = ((b'{"sid":', speedups.KIND_INTEGER, speedups.TO_SID, 0, None, None),)
    with_sid[3] = b"}"
    parsed = shape(*with_sid).parse(b'{"sid":5}')
    assert parsed[:3] == ("ticker", 5, None) and type(parsed[3]) is cls
    slot = (b",", speedups.KIND_STRING, speedups.TO_SLOT, 0, cls.market_ticker, None)
    with_sid[2] += (slot,)
    assert shape(*with_sid, order=(1,)).parse(b'{"sid":5,"M"}')[3].market_ticker == "M"
    for order in [(), (0,), (1, 1), (2,), (-1,), ("1",), (2**70,), [1]]:
        with pytest.raises((TypeError, ValueError, OverflowError)):
            shape(*with_sid, order=order)
    with pytest.raises(TypeError):
        speedups.Shape.__new__(speedups.Shape).parse(b"{}")  # not initialised


def test_the_pure_python_variable_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, "1")
    assert not _compiled.enabled() and not ShapeDecoder().compiled
    assert not kalshi_ws.speedups()
    monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, "0")
    assert ShapeDecoder().compiled == (speedups is not None)


@pytest.mark.parametrize("version", [None, -1])
def test_a_c_module_left_from_another_release_is_not_used(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        version: int | None) -> None:
    # An editable install updated without a rebuild keeps the old module: it may lack
    # a function the Python code now asks for, so it must not be used at all.
    stale = ModuleType("kalshi_ws._speedups")
    stale.split_data = lambda *args: 0  # type: ignore[attr-defined]
    if version is not None:
        stale.API_VERSION = version  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kalshi_ws._speedups", stale)
    with caplog.at_level(logging.WARNING, logger="kalshi_ws"):
        assert _compiled._import() is None
    assert "built from another version" in caplog.text and "Python alone" in caplog.text


@needs_c
def test_the_c_module_built_with_this_release_is_used() -> None:
    assert speedups.API_VERSION == _compiled.API_VERSION
    assert _compiled._import() is speedups


def test_asking_for_it_where_it_is_not_built_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiled, "speedups", None)
    with pytest.raises(ImportError, match="not built"):
        ShapeDecoder(compiled=True)
    assert not ShapeDecoder().compiled


def _can_build() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(compiler) is not None and headers.exists()


@pytest.mark.skipif(not _can_build() or os.environ.get("KALSHI_WS_NO_EXTENSIONS", "")
                    not in ("", "0"), reason="no C compiler or Python headers here")
def test_it_is_built_where_it_can_be() -> None:
    """Here a C compiler and Python's headers are found, so an install (README's
    ``pip install -e``) builds the C parser; without this test, a broken build would
    leave the C tests skipped in silence."""
    assert speedups is not None, (
        "kalshi_ws._speedups is not built: run `python -m pip install -e .` (or "
        "`python setup.py build_ext --inplace`) and see its compiler output")
    assert ShapeDecoder().compiled or os.environ.get(_compiled.PURE_PYTHON_VARIABLE)
    assert isinstance(ShapeDecoder.learn(DELTA, json.loads(DELTA), compiled=True).__self__,
                      speedups.Shape)


def test_with_or_without_it_a_protocol_ends_alike() -> None:
    """The same frames through a C decoder and a Python one (when built) and through
    receive() alone: identical deliveries."""
    texts = [DELTA.replace(b'"seq":2', b'"seq":%d' % seq) for seq in range(2, 40)]
    texts[10] = texts[10].replace(b'"0.40"', b'"0.41"')
    texts[20] = texts[20].replace(b'"seq":22', b'"seq":23')  # a gap
    results = []
    for compiled in ([False, True] if speedups is not None else [False]):
        protocol = _ready()
        feed_frames(protocol, ShapeDecoder(compiled), texts)
        results.append(exact(protocol.take_deliveries()))
    reference = _ready()
    for text in texts:
        reference.receive(_wire.decode(text))
    assert results == [exact(reference.take_deliveries())] * len(results)


@needs_c
def test_a_shape_too_long_for_c_ends_alike_through_the_general_path() -> None:
    """More values than a C shape takes: the C decoder does not learn the shape (the
    Python one does), and the frames still end in the same deliveries and decimal cache,
    the cache emptied in the middle of a frame or a value refused."""
    assert speedups is not None
    msg = json.loads(DELTA)["msg"]
    msg.update({f"k{i}": i for i in range(speedups.MAX_STEPS)})
    texts = [_compact({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": dict(
        msg, delta_fp=delta, price_dollars=price)}) for seq, delta, price in
        [(2, "1.00", "0.40"), (3, "1.00", "0.40"), (4, "8.88", "0.99"), (5, "7.77", "abc")]]
    results = []
    for compiled in (False, True):
        protocol, decoder = _ready(), ShapeDecoder(compiled)
        feed_frames(protocol, decoder, texts[:2])
        learned = decoder.learned()
        _wire._decimals.clear()
        _wire._decimals.update((f"5.{i}", Decimal(i)) for i in range(_wire.DECIMAL_CACHE_SIZE - 1))
        feed_frames(protocol, decoder, texts[2:])
        results.append((exact(protocol.take_deliveries()), list(_wire._decimals.items())))
        assert learned == ({} if compiled else {"orderbook_delta": 1})
    _wire._decimals.clear()
    assert results[1] == results[0]


@needs_c
def test_the_table_finds_each_type_exactly() -> None:
    """Types that are prefixes of one another, frames too short, not bytes, another
    prefix: the table reads only a frame of a type it holds, by that type's shapes."""
    assert speedups is not None
    table = speedups.ShapeTable()
    trade = _compact({"type": "trade", "sid": 3, "msg": {"market_ticker": "M"}})
    ticker = _compact({"type": "ticker", "sid": 2, "msg": {"market_ticker": "M"}})
    _, trade_shape = _pair(trade)
    _, ticker_shape = _pair(ticker)
    table.set(b"trade", (trade_shape.__self__,))
    assert table.parse(trade)[0] == "trade"
    assert table.parse(ticker) is None  # no shapes of its type yet
    table.set(b"ticker", (ticker_shape.__self__,))
    assert table.parse(ticker)[0] == "ticker" and table.parse(trade)[0] == "trade"
    for data in (b"", b'{"type":"', b'{"type":"trade', b'{"type":"trade"', b'{"type":"trades"',
                 b'{"type":"trad"', b' {"type":"trade"}', trade[:-1], trade + b" "):
        assert table.parse(data) is None, data
    assert table.parse(trade.decode()) is None  # type: ignore[arg-type]
    table.set(b"trade", ())  # forgotten
    assert table.parse(trade) is None
    for bad in ((b"x",), ("trade", ()), (b"trade", [trade_shape.__self__]), (b"trade", (1,)),
                (b'tr"ade', ()), (b"trade", (speedups.Shape.__new__(speedups.Shape),))):
        with pytest.raises((TypeError, ValueError)):
            table.set(*bad)
    with pytest.raises(TypeError):
        speedups.ShapeTable(1)


_DECIMAL_SPELLINGS = [
    "0.40", "0", "-0", "-0.0", "00.10", "1.", ".5", "1e3", "1E-2", "+1", "1_0", "\u0663",
    " 1", "1 ", "-", "0.", "--1", "NaN", "Infinity", "1" * 24, "1" * 25, "0." + "0" * 22 + "1",
    "9" * 23 + ".5", "123456789012345678901234", "", "1e40", "-12.3400"]


@needs_c
def test_decimals_and_the_cache_end_alike() -> None:
    """Every spelling in a decimal field reads alike in C and Python, and leaves the
    decimal cache as to_decimal leaves it (plain decimals are read and cached in C)."""
    python, c = _pair(DELTA)
    frames = [DELTA.replace(b'"0.40"', json.dumps(text).encode())
              .replace(b'"1.00"', json.dumps(text[::-1]).encode())
              for text in _DECIMAL_SPELLINGS]
    for data in frames:
        _same(python, c, data)
    caches = []
    for parse in (python, c):
        _wire._decimals.clear()  # a cache: emptying it changes no result
        for data in frames:
            try:
                parse(data)
            except ValueError:
                pass  # the Python parser raises where the C parser returns None
        caches.append({text: repr(value) for text, value in _wire._decimals.items()})
    assert caches[0] == caches[1]


@needs_c
def test_a_frame_that_is_not_utf8_caches_no_decimal_in_either() -> None:
    """The Python parser decodes the whole frame before it converts a value: a string
    that is not UTF-8 after a decimal leaves the decimal cache as it was in C too."""
    python, c = _pair(DELTA)
    bad = DELTA.replace(b'"0.40"', b'"0.47"').replace(b'"1.00"', b'"1.23"') \
        .replace(b'"yes"', b'"ye\xff"')
    _same(python, c, bad)


@needs_c
def test_decimals_are_converted_in_the_python_parsers_order() -> None:
    """A shape whose decimals come in another order than the class's fields: the C
    parser converts them in the Python parser's order, so a converter's refusal and an
    emptying of the full cache leave the same cache behind."""
    swapped = DELTA.replace(b'"price_dollars":"0.40","delta_fp":"1.00"',
                            b'"delta_fp":"1.00","price_dollars":"0.40"')
    assert swapped != DELTA
    python, c = _pair(swapped)
    two_new = swapped.replace(b'"1.00"', b'"8.88"').replace(b'"0.40"', b'"0.99"')
    refused = swapped.replace(b'"1.00"', b'"7.77"').replace(b'"0.40"', b'"abc"')
    for data, filled in ((two_new, _wire.DECIMAL_CACHE_SIZE - 1), (refused, 0)):
        _same(python, c, data, filled)


@needs_c
def test_a_full_decimal_cache_is_emptied_as_to_decimal_empties_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert speedups is not None
    frame = json.loads(DELTA)
    args = list(_shapes._ShapeBuilder(frame, _wire.build_message(
        "orderbook_delta", frame["msg"], frame)).read().description())
    prices = ["0.11", "0.12", "0.13", "0.14"]
    in_c: dict[str, Decimal] = {}
    args[9] = (in_c, Decimal, 3, 24)
    shape = speedups.Shape(*args)
    for price in prices:
        shape.parse(DELTA.replace(b'"0.40"', b'"%s"' % price.encode()))
    in_python: dict[str, Decimal] = {}
    monkeypatch.setattr(_wire, "_decimals", in_python)
    monkeypatch.setattr(_wire, "DECIMAL_CACHE_SIZE", 3)
    for price in prices:  # the order in which the C parser reads a delta's two decimals
        _wire.to_decimal(price)
        _wire.to_decimal("1.00")
    # 0.11 and 1.00, then 0.12: full; 0.13 empties it; then 1.00 and 0.14.
    assert list(in_c) == list(in_python) == ["0.13", "1.00", "0.14"]


_PIECES = st.one_of(
    st.builds(frame, st.binary(max_size=300), st.sampled_from([OP_TEXT, OP_BINARY])),
    st.builds(frame, st.binary(max_size=130), st.sampled_from([OP_PING, OP_PONG, 0x3, 0xB])),
    st.builds(frame, st.binary(max_size=20), st.sampled_from([OP_TEXT, 0x0]),
              st.booleans()),  # fragments and continuations, in any order
    st.builds(frame, st.binary(max_size=20), st.just(OP_TEXT), st.just(True),
              st.sampled_from([0x10, 0x40])),  # reserved bits
    st.builds(frame, st.binary(max_size=20), st.just(OP_TEXT), st.just(True), st.just(0),
              st.just(b"abcd")),  # masked
    st.builds(frame, st.binary(min_size=126, max_size=70000).map(lambda b: b[:70000])),
    st.builds(lambda n: bytes([0x81, 127]) + struct.pack("!Q", n), st.sampled_from(
        [2**63, 2**64 - 1, 10**9])),  # absurd lengths
    st.builds(frame, st.just(b"{}"), st.just(OP_CLOSE)),
    st.binary(max_size=3))


def _cut(buffer: bytes, max_size: int | None, use_c: bool) -> Any:
    """What Transport._split makes of ``buffer``: frames, rest or error, and state after."""
    transport = Transport.__new__(Transport)
    Transport.__init__(transport, SimpleNamespace(  # type: ignore[arg-type]
        sock=socket.socket(), pong=lambda payload: None,
        send_close=lambda code, reason: None), tick=0.05, max_message_size=max_size)
    transport._sock.close()
    if not use_c:
        transport._split_data = None
    frames: list[tuple[int, bytes]] = []
    try:
        rest: Any = transport._split(buffer, frames)
    except ProtocolError as exc:
        rest = ("raised", str(exc))
    return (frames, rest, transport._fragments, transport._fragment_size,
            transport._fragment_opcode)


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=8), st.sampled_from([None, 0, 100, 1000, -1, 2**63, 2**64]),
       st.integers(0, 40))
def test_the_c_loop_cuts_frames_exactly_as_the_python_loop(
        pieces: list[bytes], max_size: int | None, cut: int) -> None:
    """Any bytes, cut anywhere: the frames, the rest, the error and the state after
    are the same with the C loop as with the Python loop alone."""
    buffer = b"".join(pieces)
    buffer = buffer[:len(buffer) - cut] if cut < len(buffer) else buffer
    assert _cut(buffer, max_size, True) == _cut(buffer, max_size, False)


@needs_c
@pytest.mark.parametrize("max_size", [2**63 - 1, 2**63, 2**64, 10**30, -1, -2**70])
def test_any_int_limit_cuts_frames_alike(max_size: int) -> None:
    """A limit past 64 bits (Python's ints have none), or below zero (the transport
    refuses every data frame), is the Python loop's limit in C too."""
    buffer = frame(b"{}") + frame(b"x" * 200) + frame(b"", OP_BINARY)
    python = _cut(buffer, max_size, False)
    assert _cut(buffer, max_size, True) == python
    assert python[0] == ([(OP_TEXT, b"{}"), (OP_TEXT, b"x" * 200), (OP_BINARY, b"")]
                         if max_size > 0 else [])


@needs_c
def test_the_c_constructor_makes_what_the_python_one_makes() -> None:
    """StreamUpdate (and any frozen slotted class) made in C equals, in repr too, what
    the generated Python constructor makes; both take positional arguments only."""
    in_python = _wire.constructor(StreamUpdate, compiled=False)
    in_c = _wire.constructor(StreamUpdate, compiled=True)
    assert type(in_c).__name__ == "Constructor" and in_c is _wire.constructor(StreamUpdate, True)
    ticker = _pair(_LEARNABLE[0])[1](_LEARNABLE[0])[3]
    for args in [("ticker", "ticker", 2, None, ticker, None),
                 ("orderbook_delta", "orderbook_delta", 1, 7, ticker, 1764482400123)]:
        made = in_c(*args)
        assert exact(made) == exact(in_python(*args)) and repr(made) == repr(in_python(*args))
        names = ("channel", "type", "sid", "seq", "msg", "sending_ts_ms")
        assert made == StreamUpdate(**dict(zip(names, args)))  # its keyword-only __init__
    for bad in [(), ("ticker",) * 5, ("ticker",) * 7]:
        for constructor in (in_python, in_c):
            with pytest.raises(TypeError):
                constructor(*bad)
    for constructor in (in_python, in_c):
        with pytest.raises(TypeError):
            constructor("ticker", "ticker", 2, None, ticker, sending_ts_ms=None)
    assert speedups is not None
    with pytest.raises(TypeError):
        speedups.Constructor(dict, ())  # object.__new__ does not make a dict
    with pytest.raises(TypeError):
        speedups.Constructor(StreamUpdate, (1,))  # not a descriptor
    make = speedups.Constructor(StreamUpdate, tuple(getattr(StreamUpdate, f) for f in (
        "channel", "type", "sid", "seq", "msg", "sending_ts_ms")))
    tracemalloc.start()
    try:
        make(*args)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            make(*args)
            try:
                make()
            except TypeError:
                pass
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown
