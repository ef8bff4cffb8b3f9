"""Spec drift: every key of every example message Kalshi publishes (tests/data) stays
reachable after decoding, typed or kept in ``extra``, nothing lost; the same with invented
fields added at every level, and with ``ts`` in each form Kalshi has sent."""

from __future__ import annotations

import copy
import datetime
import json
from decimal import Decimal
from typing import Any

import attrs
import pytest

from kalshi_ws import MalformedMessage, UnknownMessage, _wire
from tests.conftest import load_examples, load_legacy_frames

REPLY_TYPES = {"subscribed", "unsubscribed", "ok", "error"}
INVENTED = {"zz_added_by_kalshi": {"nested": [1, "two", None], "n": 3}}


def data_frames() -> list[dict[str, Any]]:
    frames = [e["payload"] for e in load_examples()
              if isinstance(e["payload"], dict) and e["payload"].get("type") not in
              (None, *REPLY_TYPES)]
    return frames + load_legacy_frames()


def decode(frame: dict[str, Any]) -> Any:
    parsed = _wire.decode(json.dumps(frame))
    message = _wire.build_message(parsed["type"], parsed.get("msg"), parsed)
    assert not isinstance(message, (UnknownMessage, MalformedMessage)), message
    return message


def assert_nothing_lost(raw: dict[str, Any], message: Any, path: str = "msg") -> int:
    """Every key of ``raw`` is a typed attribute holding the same value, or in ``extra``
    with its raw value; ``extra`` holds nothing else. Returns how many keys were checked."""
    assert attrs.has(type(message)), f"{path}: {message!r} is not a message class"
    fields = {f.name for f in attrs.fields(type(message))} - {"extra"}
    extra = message.extra
    assert set(extra) <= set(raw), f"{path}: extra has keys the payload lacks"
    checked = 0
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key in extra:
            assert extra[key] == value, where
        else:
            assert key in fields, f"{where} is neither typed nor kept in extra"
            checked += assert_same(value, getattr(message, key), where, key)
        checked += 1
    return checked


def assert_same(raw: Any, typed: Any, path: str, name: str) -> int:
    """The typed value says what the raw value said."""
    if raw is None:
        assert typed in (None, ()), path
        return 0
    if attrs.has(type(typed)):
        return assert_nothing_lost(raw, typed, path)
    if isinstance(typed, tuple):
        assert isinstance(raw, list) and len(raw) == len(typed), path
        return sum(assert_same(r, t, f"{path}[{i}]", name)
                   for i, (r, t) in enumerate(zip(raw, typed)))
    if raw == "" and typed is None:
        return 0  # an empty string reads as absent
    if isinstance(typed, bool) or isinstance(raw, bool):
        assert raw is typed, path
    elif isinstance(typed, Decimal):
        assert not isinstance(raw, float) and Decimal(str(raw)) == typed, path
        assert str(typed) == str(raw), f"{path}: digits changed"
    elif isinstance(typed, int):
        if isinstance(raw, str) and not raw.lstrip("+-").isdigit():
            unit = 1000 if _wire.timestamp_unit(name) == "s" else 1
            assert _wire.iso_to_millis(raw) // unit == typed, path
        else:
            assert int(raw) == typed, path
    else:
        assert raw == typed, path
    return 0


@pytest.mark.parametrize("frame", data_frames(), ids=lambda f: f["type"])
def test_every_key_of_every_example_is_reachable(frame: dict[str, Any]) -> None:
    message = decode(frame)
    assert assert_nothing_lost(_wire.decode(json.dumps(frame["msg"])), message) >= 1
    assert message.extra == {}  # the spec's own fields are all typed


def add_invented_fields(value: Any) -> Any:
    """The payload with an invented field in every object, at every depth."""
    if isinstance(value, dict):
        return {**{k: add_invented_fields(v) for k, v in value.items()}, **INVENTED}
    if isinstance(value, list):
        return [add_invented_fields(v) for v in value]
    return value


@pytest.mark.parametrize("frame", data_frames(), ids=lambda f: f["type"])
def test_invented_fields_at_every_depth_are_kept(frame: dict[str, Any]) -> None:
    changed = copy.deepcopy(frame)
    changed["msg"] = add_invented_fields(frame["msg"])
    message = decode(changed)
    raw = _wire.decode(json.dumps(changed["msg"]))
    assert_nothing_lost(raw, message)
    assert message.extra == INVENTED
    # The typed fields read exactly as without the invention.
    assert without_extras(message) == without_extras(decode(frame))
    # And both ways from a dict (generated builder, cattrs converter) agree.
    cls = _wire.MESSAGE_CLASSES[frame["type"]]
    assert message == _wire.structure_strict(raw, cls)


def without_extras(value: Any) -> Any:
    """``value`` with every ``extra``, at every depth, emptied."""
    if attrs.has(type(value)):
        changes = {f.name: without_extras(getattr(value, f.name))
                   for f in attrs.fields(type(value)) if f.name != "extra"}
        return attrs.evolve(value, **changes, extra={})
    if isinstance(value, tuple):
        return tuple(without_extras(v) for v in value)
    return value


ISO_FORMS = ["2026-04-22T18:31:59.043421Z", "2026-04-22T18:31:59Z",
             "2026-04-22T20:31:59.043+02:00", "2026-04-22 18:31:59"]
TS_FRAMES = [f for f in data_frames() if "ts" in (f.get("msg") or {})]


def ts_forms(frame: dict[str, Any]) -> list[Any]:
    """Every form of ``ts`` the class accepts: for an integer field its unit as an int
    and a numeric string, and ISO 8601; for a text field any ISO 8601 string."""
    cls = _wire.MESSAGE_CLASSES[frame["type"]]
    typed = {f.name: f.type for f in attrs.fields(cls)}
    if "int" in str(typed["ts"]):
        return [1776882719, "1776882719", "", *ISO_FORMS]
    return list(ISO_FORMS)


@pytest.mark.parametrize("frame, ts", [(f, ts) for f in TS_FRAMES for ts in ts_forms(f)],
                         ids=lambda v: v["type"] if isinstance(v, dict) else repr(v))
def test_ts_in_each_accepted_form_reads_without_loss(frame: dict[str, Any], ts: Any) -> None:
    changed = copy.deepcopy(frame)
    changed["msg"]["ts"] = ts
    message = decode(changed)
    assert message.extra == {}, "ts must be typed, not degraded"
    assert_nothing_lost(_wire.decode(json.dumps(changed["msg"])), message)
    if isinstance(message.ts, int):
        moment = datetime.datetime(2026, 4, 22, 18, 31, 59,
                                   tzinfo=datetime.timezone.utc)  # noqa: UP017 - 3.10
        assert message.ts == int(moment.timestamp())


def test_the_drift_corpus_covers_every_message_class() -> None:
    covered = {type(decode(f)) for f in data_frames()}
    assert covered == set(_wire.MESSAGE_CLASSES.values())
    assert {f["type"] for f in TS_FRAMES} >= {"ticker", "trade", "fill", "orderbook_delta"}
