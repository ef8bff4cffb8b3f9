"""The wire layer: JSON to typed messages, with Decimal money and no float anywhere."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_ws import _wire, models
from kalshi_ws.models import MalformedMessage, UnknownMessage
from tests.conftest import DATA, load_examples, load_legacy_frames

REPLY_TYPES = {"subscribed", "unsubscribed", "ok", "error"}

# AsyncAPI message name -> wire type, for the spec-drift test.
SPEC_TYPES = {
    "orderbookSnapshot": "orderbook_snapshot", "orderbookDelta": "orderbook_delta",
    "cfbenchmarksValue": "cfbenchmarks_value", "cfbenchmarksIndexList":
    "cfbenchmarks_value_indexlist", "cfbenchmarksValue5Hz": "cfbenchmarks_value_5hz",
    "cfbenchmarks5HzIndexList": "cfbenchmarks_value_5hz_indexlist", "pythValue": "pyth_value",
    "pythUnderlyingList": "pyth_value_underlying_list", "ticker": "ticker", "trade": "trade",
    "fill": "fill", "marketLifecycleV2": "market_lifecycle_v2",
    "marketMetadataUpdated": "market_lifecycle_v2",
    "multivariateMarketLifecycle": "multivariate_market_lifecycle",
    "eventLifecycle": "event_lifecycle", "eventFeeUpdate": "event_fee_update",
    "marketPosition": "market_position", "orderGroupUpdates": "order_group_updates",
    "userOrder": "user_order", "rfqCreated": "rfq_created", "rfqDeleted": "rfq_deleted",
    "quoteCreated": "quote_created", "quoteAccepted": "quote_accepted",
    "quoteExecuted": "quote_executed",
}


def data_examples() -> list[dict[str, Any]]:
    return [e["payload"] for e in load_examples()
            if isinstance(e["payload"], dict) and e["payload"].get("type") not in
            (None, *REPLY_TYPES)]


def decode_frame(frame: dict[str, Any]) -> Any:
    parsed = _wire.decode(json.dumps(frame))
    return _wire.build_message(parsed["type"], parsed.get("msg"), parsed)


def assert_no_float(value: Any, path: str = "msg") -> None:
    """Walk a decoded message and fail on any float."""
    assert not isinstance(value, float), f"float at {path}: {value!r}"
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            assert_no_float(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            assert_no_float(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_no_float(item, f"{path}.{key}")


@pytest.mark.parametrize("frame", data_examples(), ids=lambda f: f["type"])
def test_every_kalshi_example_decodes_to_its_class(frame: dict[str, Any]) -> None:
    message = decode_frame(frame)
    assert isinstance(message, _wire.MESSAGE_CLASSES[frame["type"]])
    assert not isinstance(message, (UnknownMessage, MalformedMessage))
    assert_no_float(message)


@pytest.mark.parametrize("frame", data_examples(), ids=lambda f: f["type"])
def test_fast_path_equals_the_cattrs_converter(frame: dict[str, Any]) -> None:
    parsed = _wire.decode(json.dumps(frame))
    cls = _wire.MESSAGE_CLASSES[frame["type"]]
    assert _wire.build_message(frame["type"], parsed["msg"], parsed) == \
        _wire.structure_strict(parsed["msg"], cls)


def test_every_documented_field_exists_on_the_model() -> None:
    spec = json.loads((DATA / "asyncapi-message-fields.json").read_text())
    nested_classes = {
        "additional_metadata": models.MarketMetadata, "price_ranges": models.PriceRange,
        "avg_60s_data": models.CfbenchmarksWindow,
        "last_60s_windowed_average_15min": models.CfbenchmarksWindow,
        "mve_selected_legs": models.MveSelectedLeg,
    }
    checked = 0
    for name, wire_type in SPEC_TYPES.items():
        cls = _wire.MESSAGE_CLASSES[wire_type]
        names = {f.name for f in attrs.fields(cls)}
        missing = set(spec[name]["fields"]) - names
        assert not missing, f"{cls.__name__} lacks documented fields {missing}"
        for field, nested in spec[name]["nested"].items():
            inner = {f.name for f in attrs.fields(nested_classes[field])}
            assert not set(nested) - inner, f"{field} lacks {set(nested) - inner}"
        checked += 1
    assert checked == len(SPEC_TYPES)


def test_decimal_keeps_every_digit() -> None:
    frame = {"type": "ticker", "sid": 1, "msg": {"market_ticker": "M", "price_dollars": "0.5600",
                                                 "volume_fp": "33896.00", "fee": 1}}
    message = decode_frame(frame)
    assert str(message.price_dollars) == "0.5600"
    assert str(message.volume_fp) == "33896.00"


def test_json_numbers_with_fractions_become_decimal_not_float() -> None:
    parsed = _wire.decode('{"type": "event_fee_update", "msg": {"event_ticker": "E", '
                          '"fee_type_override": "flat", "fee_multiplier_override": 0.1}}')
    message = _wire.build_message(parsed["type"], parsed["msg"], parsed)
    assert message.fee_multiplier_override == Decimal("0.1")
    assert_no_float(parsed)


def test_integer_json_numbers_become_exact_decimals() -> None:
    message = decode_frame({"type": "ticker", "msg": {"market_ticker": "M",
                                                      "price_dollars": 1}})
    assert message.price_dollars == Decimal(1) and isinstance(message.price_dollars, Decimal)


def test_unknown_type_becomes_unknown_message_with_the_raw_frame() -> None:
    frame = {"type": "rfq_batch_created", "sid": 3, "seq": 1, "msg": {"x": 1}}
    message = decode_frame(frame)
    assert isinstance(message, UnknownMessage)
    assert message.type == "rfq_batch_created"
    assert message.raw["msg"] == {"x": 1}


@pytest.mark.parametrize("msg, field", [
    ({"price_dollars": "0.5"}, "market_ticker"),
    ({"market_ticker": "M", "price_dollars": "abc"}, "price_dollars"),
    ({"market_ticker": "M", "price_dollars": "NaN"}, "price_dollars"),
    ({"market_ticker": "M", "price_dollars": True}, "price_dollars"),
    ({"market_ticker": "M", "dollar_volume": "12"}, "dollar_volume"),
    ({"market_ticker": "M", "dollar_volume": 1.5}, "dollar_volume"),
    ({"market_ticker": 7}, "market_ticker"),
    ({"market_ticker": None}, "market_ticker"),
])
def test_bad_payload_becomes_malformed_message_naming_the_field(msg: dict, field: str) -> None:
    message = decode_frame({"type": "ticker", "sid": 1, "msg": msg})
    assert isinstance(message, MalformedMessage)
    assert message.type == "ticker"
    assert field in message.error
    assert message.raw["msg"] == _wire.decode(json.dumps(msg))


def test_payload_that_is_not_an_object_is_malformed() -> None:
    message = _wire.build_message("trade", ["x"], {"type": "trade", "msg": ["x"]})
    assert isinstance(message, MalformedMessage)
    assert "object" in message.error


def test_bad_orderbook_level_is_malformed() -> None:
    message = decode_frame({"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": {
        "market_ticker": "M", "yes_dollars_fp": [["0.10"]]}})
    assert isinstance(message, MalformedMessage)
    assert "yes_dollars_fp" in message.error


def test_absent_orderbook_side_is_an_empty_side() -> None:
    message = decode_frame({"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                            "msg": {"market_ticker": "M", "market_id": "x"}})
    assert message.yes_dollars_fp == () and message.no_dollars_fp == ()
    assert message.yes_levels() == () and message.no_levels() == ()


def test_unknown_fields_are_ignored() -> None:
    message = decode_frame({"type": "trade", "sid": 1, "seq": 1,
                            "msg": {"market_ticker": "M", "brand_new_field": {"a": 1}}})
    assert isinstance(message, models.Trade)


@pytest.mark.parametrize("frame", load_legacy_frames(), ids=lambda f: f["type"])
def test_frames_of_older_servers_still_read(frame: dict[str, Any]) -> None:
    message = decode_frame(frame)
    assert isinstance(message, _wire.MESSAGE_CLASSES[frame["type"]]), message
    assert_no_float(message)


def test_legacy_book_fields_convert_to_dollars_and_contracts() -> None:
    frames = load_legacy_frames()
    cents = decode_frame(frames[0])
    assert cents.yes_levels() == ((Decimal("0.31"), Decimal(120)), (Decimal("0.33"), Decimal(45)))
    assert cents.no_levels() == ((Decimal("0.62"), Decimal(80)),)
    dollars = decode_frame(frames[1])
    assert dollars.yes_levels() == ((Decimal("0.3100"), Decimal(120)),)
    delta = decode_frame(frames[2])
    assert delta.level_price() == Decimal("0.33") and delta.size_change() == Decimal(-5)
    ticker = decode_frame(frames[3])
    assert ticker.yes_bid == 33 and ticker.yes_bid_dollars is None


@pytest.mark.parametrize("value", [True, None, [], {}, "1e999999", "Infinity", "-inf", "sNaN"])
def test_to_decimal_refuses_what_is_not_a_finite_number(value: Any) -> None:
    with pytest.raises(ValueError):
        _wire.to_decimal(value)


def test_encode_is_compact_json_with_decimals_as_strings() -> None:
    text = _wire.encode({"id": 1, "cmd": "subscribe", "params": {"x": Decimal("0.10")}})
    assert text == '{"id":1,"cmd":"subscribe","params":{"x":"0.10"}}'


decimal_strings = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                              min_value=-10**6, max_value=10**6).map(str)
optional = st.one_of(st.none(), decimal_strings, st.integers(-10**9, 10**9))


@given(price=optional, bid=optional, size=optional, ts=st.one_of(st.none(), st.integers(0)),
       ticker=st.text(min_size=1, max_size=20))
def test_fast_path_matches_converter_on_random_tickers(price: Any, bid: Any, size: Any,
                                                       ts: Any, ticker: str) -> None:
    msg = {"market_ticker": ticker, "price_dollars": price, "yes_bid_dollars": bid,
           "yes_bid_size_fp": size, "ts_ms": ts}
    msg = {k: v for k, v in msg.items() if v is not None or k == "ts_ms"}
    fast = _wire.build_message("ticker", msg, {"msg": msg})
    assert fast == _wire.structure_strict(msg, models.Ticker)
    assert_no_float(fast)


@pytest.mark.parametrize("text, value", [
    ('{"a": 1}', {"a": 1}), (' {"a": 1}\n', {"a": 1}), ('[1, 2.5]', [1, Decimal("2.5")]),
    ('"x"', "x"), ("7", 7)])
def test_decode_reads_any_json_value(text: str, value: object) -> None:
    assert _wire.decode(text) == value
    assert _wire.decode(text.encode()) == value


@pytest.mark.parametrize("text", ['{"a": 1} x', '{"a": 1}{"b": 2}', "", "   ", '{"a":'])
def test_decode_refuses_junk_around_or_inside_a_value(text: str) -> None:
    with pytest.raises(ValueError):
        _wire.decode(text)


def test_decode_rejects_invalid_utf8_and_json() -> None:
    with pytest.raises(ValueError):
        _wire.decode(b'{"type": "\xff"}')
    with pytest.raises(ValueError):
        _wire.decode("{not json")


def test_data_files_are_where_the_tests_expect() -> None:
    assert Path(DATA / "kalshi-asyncapi-examples.jsonl").stat().st_size > 1000
