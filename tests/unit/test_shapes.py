"""The learned frame shapes (kalshi_ws._shapes) give exactly what the general path gives.

The general path is the reference: ``decode`` then ``build_message``, and
``KalshiProtocol.receive``. Every test here compares the fast path with it, value by
value and type by type (``Decimal('1.0')`` and ``Decimal('1.00')`` differ; so do ``1``
and ``Decimal(1)``):

* each example frame of Kalshi's spec and of the legacy recordings, once its shape is
  learned, reads exactly as the general path reads it;
* frames mutated at random (values of every JSON kind, escapes, unicode, keys added and
  removed, spacing) are either refused by the learned shapes or read exactly alike;
* a protocol fed random scripts (gaps, duplicates, unknown sids, books not yet
  snapshotted, bad values) through ``feed_frames`` delivers, counts and asks for
  exactly what the same protocol fed through ``receive`` alone does;
* memory and learning are bounded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kalshi_ws import SequenceGap, StreamUpdate, _compiled, _shapes
from kalshi_ws._reader import feed_frames
from kalshi_ws._shapes import SHAPES_PER_TYPE, ShapeDecoder
from kalshi_ws._wire import MESSAGE_CLASSES, build_message, decode
from kalshi_ws.models import ExtraFields
from kalshi_ws.protocol import KalshiProtocol

DATA = Path(__file__).resolve().parents[1] / "data"
FUZZ = settings(max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # no explain


def _compact(value: Any, ensure_ascii: bool = False) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii)


def _examples() -> list[dict[str, Any]]:
    frames = []
    for line in (DATA / "kalshi-asyncapi-examples.jsonl").read_text().splitlines():
        payload = json.loads(line)["payload"]
        if isinstance(payload, dict) and payload.get("type") in MESSAGE_CLASSES:
            frames.append(payload)
    for line in (DATA / "legacy-frames.jsonl").read_text().splitlines():
        frames.append(json.loads(line))
    return frames


EXAMPLES = _examples()


def exact(value: Any) -> Any:
    """A value spelled out with every type in it, so that == compares types too."""
    if attrs.has(type(value)):
        return (type(value).__name__,
                tuple((f.name, exact(getattr(value, f.name))) for f in attrs.fields(type(value))))
    if isinstance(value, ExtraFields | dict):
        return (type(value).__name__, tuple(sorted((k, exact(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(exact(v) for v in value))
    return (type(value).__name__, repr(value))


def general(text: str) -> tuple[Any, ...]:
    """What the general path makes of a data frame, in ``ShapeDecoder.parse``'s form."""
    frame = decode(text)
    return (frame["type"], frame.get("sid"), frame.get("seq"),
            build_message(frame["type"], frame.get("msg"), frame), frame.get("sending_ts_ms"))


#: Both readers of learned shapes: Python, and C where ``kalshi_ws._speedups`` is built.
BACKENDS = [pytest.param(False, id="python"),
            pytest.param(True, id="C", marks=pytest.mark.skipif(
                _compiled.speedups is None, reason="kalshi_ws._speedups is not built"))]


def learned(text: str, compiled: bool = False) -> ShapeDecoder | None:
    """A decoder that has learned the shape of ``text``, or None if it cannot."""
    decoder = ShapeDecoder(compiled)
    decoder.consider(text.encode(), decode(text))
    return decoder if decoder.learned() else None


# ---------------------------------------------------------------------- example frames


@pytest.mark.parametrize("compiled", BACKENDS)
@pytest.mark.parametrize("frame", EXAMPLES, ids=lambda f: f"{f['type']}")
def test_an_example_frame_reads_alike_once_its_shape_is_learned(
        frame: dict[str, Any], compiled: bool) -> None:
    text = _compact(frame)
    decoder = learned(text, compiled)
    if decoder is None:  # refused: nested values, a reply, no sid... the general path stays
        return
    assert exact(decoder.parse(text.encode())) == exact(general(text))
    assert _in_c(decoder) == [compiled]  # never the other reader in silence


def _in_c(decoder: ShapeDecoder) -> list[bool]:
    """Whether each learned shape is read by the C parser."""
    return [type(getattr(parse, "__self__", None)).__name__ == "Shape"
            for parsers in decoder._shapes.values() for parse in parsers]


@pytest.mark.parametrize("compiled", BACKENDS)
def test_the_flat_data_frames_of_the_spec_are_learned(compiled: bool) -> None:
    kinds = {f["type"] for f in EXAMPLES if learned(_compact(f), compiled) is not None}
    assert {"orderbook_delta", "ticker", "trade", "fill"} <= kinds
    assert "orderbook_snapshot" not in kinds  # its sides are arrays: never a shape


@pytest.mark.parametrize("compiled", BACKENDS)
def test_a_decoder_that_reads_in_c_builds_no_python_parser(
        compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Compiling the expression and the generated function is most of what learning
    # costs (about a millisecond on the reader thread, a stall every stream sees at its
    # first frames): the C reader does not need either.
    built = []
    python_parser = _shapes._ShapeBuilder.python_parser

    def counting(builder: Any) -> Any:
        built.append(builder.frame["type"])
        return python_parser(builder)

    monkeypatch.setattr(_shapes._ShapeBuilder, "python_parser", counting)
    kinds = {f["type"] for f in EXAMPLES if learned(_compact(f), compiled) is not None}
    assert {"orderbook_delta", "ticker", "trade", "fill"} <= kinds
    if compiled:
        assert built == []
    else:
        assert {"orderbook_delta", "ticker", "trade", "fill"} <= set(built)


def test_frames_the_general_path_does_not_read_cleanly_are_never_learned() -> None:
    delta = {"type": "orderbook_delta", "sid": 1, "seq": 2,
             "msg": {"market_ticker": "M", "price_dollars": "abc", "delta_fp": "1.00",
                     "side": "yes"}}
    assert learned(_compact(delta)) is None  # a malformed message
    for change in ({"id": 5}, {"sid": "1"}, {"seq": "2"}, {"seq": True},
                   {"sending_ts_ms": "5"}, {"type": "subscribed"}, {"msg": "x"}):
        frame = {**delta, "msg": {**delta["msg"], "price_dollars": "0.50"}, **change}
        assert learned(_compact(frame)) is None, change
    spaced = json.dumps({**delta, "msg": {**delta["msg"], "price_dollars": "0.50"}})
    assert learned(spaced) is None  # not compact: the expression is learned from the text
    first = {"sid": 1, **delta, "msg": {**delta["msg"], "price_dollars": "0.50"}}
    assert learned(_compact(first)) is None  # 'type' not first


# ---------------------------------------------------------------------- mutated frames

_STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0.5", "0.5000", "-1.00", "1e3", "NaN", "Infinity", "1E+40", "12",
                     "2026-11-30T06:00:00Z", "yes", "no", "a\"b", "a\\b", "\u00e9", "\x01",
                     "\ud83d\ude00", "KX-1"]))
_SCALARS = st.one_of(
    st.none(), st.booleans(), _STRINGS,
    st.integers(min_value=-10**20, max_value=10**20), st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f))))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2),
                    st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2))


_LEARNABLE = [f for f in EXAMPLES if learned(_compact(f)) is not None]


def _template(data: st.DataObject) -> dict[str, Any]:
    return json.loads(json.dumps(data.draw(st.sampled_from(_LEARNABLE))))


def _like(data: st.DataObject, value: Any) -> Any:
    """Another value of the same JSON kind (the shape then usually still matches)."""
    if isinstance(value, bool) or value is None:
        return data.draw(st.sampled_from([True, False, None]))
    if isinstance(value, int):
        return data.draw(st.one_of(st.integers(-3, 3), st.integers(-10**20, 10**20)))
    return data.draw(_STRINGS)


def _mutate(data: st.DataObject, frame: dict[str, Any]) -> dict[str, Any]:
    """Mostly new values of the same kinds; now and then another structure."""
    msg = {key: _like(data, value) if data.draw(st.booleans()) else value
           for key, value in frame["msg"].items()}
    out = {**frame, "msg": msg}
    if data.draw(st.integers(0, 3)) == 0:
        for key in list(msg):
            action = data.draw(st.sampled_from(["keep", "keep", "keep", "value", "drop"]))
            if action == "value":
                msg[key] = data.draw(_VALUES)
            elif action == "drop":
                del msg[key]
        if data.draw(st.booleans()):
            msg[data.draw(st.sampled_from(["extra_key", "Clock", "market_ticker"]))] = \
                data.draw(_VALUES)
        for key in ("sid", "seq", "sending_ts_ms"):
            if data.draw(st.integers(0, 3)) == 0:
                out[key] = data.draw(_SCALARS)
    return out


def _dumps(data: st.DataObject, frame: dict[str, Any]) -> str:
    text = json.dumps(frame, separators=(",", ":"), default=str,
                      ensure_ascii=data.draw(st.booleans()))
    # Decimals were written as strings by default=str; write some as JSON numbers.
    if data.draw(st.booleans()):
        text = json.dumps(_numbers(frame), separators=(",", ":"))
    return text


def _numbers(value: Any) -> Any:
    """Decimals as JSON numbers (json writes a float's repr; the text has the digits)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


@pytest.mark.parametrize("compiled", BACKENDS)
@FUZZ
@given(st.data())
def test_mutated_frames_are_refused_or_read_exactly_alike(
        compiled: bool, data: st.DataObject) -> None:
    template = _template(data)
    decoder = ShapeDecoder(compiled)
    decoder.consider(_compact(template).encode(), template)
    for _ in range(6):
        frame = _mutate(data, template)
        text = _dumps(data, frame)
        raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate: not UTF-8
        try:
            reference = general(raw.decode())  # UnicodeDecodeError is a ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            reference = None  # not a data frame the general path reads: must be refused
        parsed = decoder.parse(raw)
        if parsed is not None:
            assert reference is not None, text
            assert type(reference[3]) is MESSAGE_CLASSES[reference[0]], text
            assert exact(parsed) == exact(reference), text
        try:
            decoder.consider(raw, decode(raw.decode()))  # learn the mutated shapes too
        except ValueError:
            pass
        if decoder.parse(raw) is not None:  # a shape just learned reads its own frame
            assert exact(decoder.parse(raw)) == exact(reference), text


_TOKEN = re.compile(r':("(?:[^"\\]|\\.)*"|-?[0-9]+|true|false|null)(?=[,}])')
_EDITS: list[Callable[[str], str]] = [
    lambda v: "0" + v, lambda v: "-" + v, lambda v: "-0" + v, lambda v: v + ".0",
    lambda v: v + "e1", lambda v: v + "E+1", lambda v: " " + v, lambda v: v + " ",
    lambda v: '"' + v + '"', lambda v: v[1:-1], lambda v: v[:-1] + '\\""',
    lambda v: v[:1] + "\\u0041" + v[1:], lambda v: v[:1] + "\\/" + v[1:],
    lambda v: v[:1] + "\x01" + v[1:], lambda v: v[:1] + "\u00e9" + v[1:],
    lambda v: "1" + "0" * 20, lambda v: "00", lambda v: "-0", lambda v: "1.5",
    lambda v: "true", lambda v: "null", lambda v: '""', lambda v: '"0.5"', lambda v: "[]",
]
EDITS = settings(FUZZ, max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "0")) or 300)


@pytest.mark.parametrize("compiled", BACKENDS)
@EDITS
@given(st.data())
def test_edited_texts_are_refused_or_read_exactly_alike(
        compiled: bool, data: st.DataObject) -> None:
    """Edits of the values in a learned frame's text (leading zeros, fractions, exponents,
    escapes, spaces, other kinds, broken JSON): a shape reads a text only as the
    general path does."""
    template = _template(data)
    text = _compact(template)
    decoder = ShapeDecoder(compiled)
    decoder.consider(text.encode(), template)
    for _ in range(data.draw(st.integers(1, 2))):
        tokens = list(_TOKEN.finditer(text))
        token = data.draw(st.sampled_from(tokens))
        value = data.draw(st.sampled_from(_EDITS))(token.group(1))
        text = text[:token.start(1)] + value + text[token.end(1):]
    parsed = decoder.parse(text.encode())
    if parsed is None:
        return
    reference = general(text)  # a text the shape reads is valid JSON of its data frame
    assert type(reference[3]) is MESSAGE_CLASSES[reference[0]], text
    assert exact(parsed) == exact(reference), text


# ---------------------------------------------------------------------- the protocol

MARKETS = ["MKT-A", "MKT-B"]
SIDS = {"orderbook_delta": 1, "ticker": 2, "trade": 3}


def _ready() -> KalshiProtocol:
    protocol = KalshiProtocol()
    for channel, sid in SIDS.items():
        command_id, _ = protocol.subscribe([channel], MARKETS, {})
        protocol.receive({"id": command_id, "type": "subscribed",
                          "msg": {"channel": channel, "sid": sid}})
    protocol.receive({"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                      "msg": {"market_ticker": "MKT-A", "market_id": "a",
                              "yes_dollars_fp": [["0.40", "10.00"]],
                              "no_dollars_fp": [["0.55", "3.00"]]}})
    protocol.take_deliveries()
    protocol.take_completions()
    protocol.take_outgoing()
    return protocol


def _frame(data: st.DataObject, seqs: dict[int, int]) -> str:
    kind = data.draw(st.sampled_from(["delta", "delta", "delta", "ticker", "trade",
                                      "snapshot", "unknown_sid"]))
    market = data.draw(st.sampled_from(MARKETS))
    if kind == "delta":
        wire_type, msg = "orderbook_delta", {
            "market_ticker": market, "market_id": "a",
            "price_dollars": data.draw(st.sampled_from(["0.4000", "0.4100", "0.5500", "x"])),
            "delta_fp": data.draw(st.sampled_from(["1.00", "-10.00", "2.50", ""])),
            "side": data.draw(st.sampled_from(["yes", "no"])), "ts_ms": 1764482400000}
    elif kind == "snapshot":
        wire_type, msg = "orderbook_snapshot", {
            "market_ticker": market, "market_id": "b", "yes_dollars_fp": [["0.30", "5.00"]]}
    elif kind == "ticker":
        wire_type, msg = "ticker", {
            "market_ticker": market, "market_id": "a",
            "price_dollars": data.draw(st.sampled_from(["0.4100", "0.42", "bad"])),
            "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4200", "ts": 1764482400}
    else:
        wire_type, msg = "trade", {
            "trade_id": "t", "market_ticker": market, "yes_price_dollars": "0.41",
            "no_price_dollars": "0.59", "count_fp": "3.00", "taker_side": "yes",
            "ts": 1764482400}
    sid = 9 if kind == "unknown_sid" else SIDS.get(wire_type, 1)
    frame: dict[str, Any] = {"type": wire_type, "sid": sid}
    step = data.draw(st.sampled_from(["next", "next", "next", "next", "gap", "repeat", "none"]))
    last = seqs.get(sid, 0 if sid != 1 else 1)
    if step != "none" and (sid in (1, 3, 9) or data.draw(st.booleans())):
        seq = {"next": last + 1, "gap": last + 2, "repeat": last}[step]
        seqs[sid] = max(last, seq)
        frame["seq"] = seq
    frame["msg"] = msg
    if data.draw(st.integers(0, 4)) == 0:
        frame["sending_ts_ms"] = 1764482400123
    return _compact(frame)


@pytest.mark.parametrize("compiled", BACKENDS)
@FUZZ
@given(st.data())
def test_the_fast_path_delivers_counts_and_asks_exactly_as_the_general_path(
        compiled: bool, data: st.DataObject) -> None:
    seqs: dict[int, int] = {}
    texts = [_frame(data, seqs).encode() for _ in range(data.draw(st.integers(1, 60)))]
    reference, fast = _ready(), _ready()
    decoder = ShapeDecoder(compiled)
    for text in texts:
        reference.receive(decode(text))
    for start in range(0, len(texts), 7):
        feed_frames(fast, decoder, texts[start:start + 7])
    assert exact(fast.take_deliveries()) == exact(reference.take_deliveries())
    assert fast.take_outgoing() == reference.take_outgoing()  # resync requests
    assert fast.channel_counters() == reference.channel_counters()
    assert fast.subscriptions() == reference.subscriptions()


@pytest.mark.parametrize("compiled", BACKENDS)
def test_the_fast_path_is_taken_for_plain_frames(compiled: bool) -> None:
    protocol, decoder = _ready(), ShapeDecoder(compiled)
    texts = [_compact({"type": "ticker", "sid": 2, "seq": seq,
                       "msg": {"market_ticker": "MKT-A", "price_dollars": "0.41",
                               "ts": 1764482400}}).encode() for seq in range(1, 101)]
    general_reads = 0
    real_decode = _shapes._wire.decode

    def counting_decode(text: Any) -> Any:
        nonlocal general_reads
        general_reads += 1
        return real_decode(text)

    import kalshi_ws._reader as reader
    original, reader._wire.decode = reader._wire.decode, counting_decode  # type: ignore[assignment]
    try:
        feed_frames(protocol, decoder, texts)
    finally:
        reader._wire.decode = original  # type: ignore[assignment]
    delivered = protocol.take_deliveries()
    assert [u.seq for u in delivered] == list(range(1, 101))
    assert general_reads == 1  # the first frame, which taught the shape
    assert decoder.learned() == {"ticker": 1}


@pytest.mark.parametrize("compiled", BACKENDS)
def test_a_gap_on_the_fast_path_is_still_seen_and_resynced(compiled: bool) -> None:
    protocol, decoder = _ready(), ShapeDecoder(compiled)

    def delta(seq: int) -> bytes:
        return _compact({"type": "orderbook_delta", "sid": 1, "seq": seq,
                         "msg": {"market_ticker": "MKT-A", "price_dollars": "0.40",
                                 "delta_fp": "1.00", "side": "yes"}}).encode()

    feed_frames(protocol, decoder, [delta(2), delta(3), delta(5)])
    assert decoder.learned() == {"orderbook_delta": 1}
    delivered = protocol.take_deliveries()
    assert [u.seq for u in delivered if isinstance(u, StreamUpdate)][:2] == [2, 3]
    assert any(isinstance(u, SequenceGap) for u in delivered)
    assert any("get_snapshot" in json.dumps(c) for c in protocol.take_outgoing())


# ---------------------------------------------------------------------- bounds


@pytest.mark.parametrize("compiled", BACKENDS)
def test_at_most_a_few_shapes_per_type_are_kept(compiled: bool) -> None:
    decoder = ShapeDecoder(compiled)
    for i in range(40):
        frame = {"type": "ticker", "sid": 2, "seq": i + 1,
                 "msg": {"market_ticker": "M", f"new_field_{i}": i}}
        for _ in range(1100):  # enough misses to reach a learning turn again
            decoder.consider(_compact(frame).encode(), frame)
    assert decoder.learned() == {"ticker": SHAPES_PER_TYPE}


def test_learning_is_tried_rarely_for_frames_that_cannot_be_learned() -> None:
    attempts = 0

    class Counting(ShapeDecoder):
        @staticmethod
        def learn(data: bytes, frame: dict[str, Any], *, compiled: bool = False) -> Any:
            nonlocal attempts
            attempts += 1
            return ShapeDecoder.learn(data, frame, compiled=compiled)

    decoder = Counting()
    snapshot = {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                "msg": {"market_ticker": "M", "yes_dollars_fp": [["0.30", "5.00"]]}}
    for _ in range(5000):
        decoder.consider(_compact(snapshot).encode(), snapshot)
    # 1, 2, 4, ..., 1024 (11 turns), then 2048, 3072, 4096 (every 1,024th past 1,024)
    assert attempts == 14
    assert decoder.learned() == {}
