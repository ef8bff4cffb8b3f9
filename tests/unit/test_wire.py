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


@pytest.mark.parametrize("wire_type, msg, field", [
    ("ticker", {"price_dollars": "0.5"}, "market_ticker"),
    ("ticker", {"market_ticker": 7}, "market_ticker"),
    ("ticker", {"market_ticker": None}, "market_ticker"),
    ("ticker", {"market_ticker": 1.5}, "market_ticker"),
    ("fill", {"market_ticker": "M", "order_id": 12.5}, "order_id"),
    ("orderbook_delta", {"market_ticker": "M", "side": "yes", "price_dollars": "abc",
                         "delta_fp": "1"}, "price_dollars"),
    ("orderbook_delta", {"market_ticker": "M", "side": "yes", "price_dollars": "",
                         "delta_fp": "1"}, "price_dollars"),
    ("orderbook_delta", {"market_ticker": "M", "side": "yes", "price_dollars": "0.5",
                         "delta_fp": [1]}, "delta_fp"),
    ("orderbook_snapshot", {"market_ticker": "M", "yes_dollars_fp": [["0.1", "x"]]},
     "yes_dollars_fp"),
    ("orderbook_snapshot", {"market_ticker": "M", "no_dollars_fp": None}, "no_dollars_fp"),
])
def test_an_essential_field_that_cannot_be_read_makes_the_message_malformed(
        wire_type: str, msg: dict, field: str) -> None:
    message = decode_frame({"type": wire_type, "sid": 1, "msg": msg})
    assert isinstance(message, MalformedMessage)
    assert message.type == wire_type
    assert field in message.error
    assert message.raw["msg"] == _wire.decode(json.dumps(msg))


def test_essential_fields_are_the_required_ones_and_a_books_prices_and_sizes() -> None:
    assert _wire.essential_fields(models.Ticker) == {"market_ticker"}
    assert _wire.essential_fields(models.Fill) == {"order_id", "market_ticker"}
    assert _wire.essential_fields(models.OrderbookDelta) == {
        "market_ticker", "side", "price_dollars", "delta_fp", "price", "delta"}
    assert _wire.essential_fields(models.OrderbookSnapshot) == {
        "market_ticker", "yes_dollars_fp", "no_dollars_fp", "yes", "no", "yes_dollars",
        "no_dollars"}
    assert _wire.essential_fields(models.UserOrder) == {"order_id", "ticker"}
    assert _wire.essential_fields(models.MarketLifecycle) == {"market_ticker", "event_type"}
    assert _wire.essential_fields(models.RfqCreated) == {"id"}
    assert _wire.essential_fields(models.QuoteCreated) == {"quote_id"}
    assert _wire.essential_fields(models.PriceRange) == {"start", "end", "step"}


@pytest.mark.parametrize("field, value", [
    ("price_dollars", "abc"), ("price_dollars", "NaN"), ("price_dollars", True),
    ("price_dollars", 1.5), ("dollar_volume", 1.5), ("dollar_volume", "12x"),
    ("ts", "yesterday"), ("time", 5), ("ts_ms", [1]),
])
def test_a_field_that_cannot_be_read_degrades_alone(
        field: str, value: Any, caplog: pytest.LogCaptureFixture) -> None:
    _wire._warned_fields.discard(("ticker", field))
    msg = {"market_ticker": "M", "yes_bid_dollars": "0.33", field: value}
    for _ in range(3):
        message = _wire.build_message("ticker", msg, {"type": "ticker", "msg": msg})
        assert isinstance(message, models.Ticker)
        assert getattr(message, field) is None
        assert message.extra == {field: value}  # the raw value, kept
        assert message.yes_bid_dollars == Decimal("0.33")  # the rest still reads
    warnings = [r for r in caplog.records if field in r.getMessage()]
    assert len(warnings) == 1  # once per type and field
    assert "ticker" in warnings[0].getMessage()


def test_a_float_never_becomes_a_decimal() -> None:
    with pytest.raises(ValueError):
        _wire.to_decimal(0.1)
    message = _wire.build_message("trade", {"market_ticker": "M", "count_fp": 0.1}, {})
    assert message.count_fp is None and message.extra == {"count_fp": 0.1}


@pytest.mark.parametrize("field", ["price_dollars", "volume_fp", "dollar_volume", "ts_ms", "ts"])
def test_an_empty_string_reads_as_absent(field: str) -> None:
    # Production tickers of Oct 2025 sent "price_dollars": "" for a market without trades.
    message = decode_frame({"type": "ticker", "msg": {"market_ticker": "M", field: ""}})
    assert isinstance(message, models.Ticker)
    assert getattr(message, field) is None
    assert message.extra == {}


def test_an_empty_string_in_a_text_field_stays_a_string() -> None:
    message = decode_frame({"type": "rfq_created", "msg": {"id": "r", "creator_id": ""}})
    assert message.creator_id == ""


@pytest.mark.parametrize("value, expected", [
    (12, 12), ("12", 12), ("-3", -3), ("+7", 7), (Decimal(4), 4), (Decimal("4.0"), 4)])
def test_integers_accept_numeric_strings(value: Any, expected: int) -> None:
    assert _wire.to_int(value) == expected
    message = _wire.build_message("ticker", {"market_ticker": "M", "dollar_volume": value}, {})
    assert message.dollar_volume == expected and type(message.dollar_volume) is int


@pytest.mark.parametrize("value", ["", "1.5", "1e3", "0x10", " 1", "1_000", True, None, 1.0,
                                   Decimal("1.5"), "9" * 41])
def test_to_int_refuses_what_is_not_an_integer(value: Any) -> None:
    with pytest.raises(ValueError):
        _wire.to_int(value)


@pytest.mark.parametrize("text, millis", [
    ("2026-04-22T18:31:59.043421Z", 1776882719043),
    ("2026-04-22T18:31:59Z", 1776882719000),
    ("2026-04-22T18:31:59.5+00:00", 1776882719500),
    ("2026-04-22T20:31:59.043+02:00", 1776882719043),
    ("2026-04-22T18:31:59.043421123Z", 1776882719043),
    ("2026-04-22 18:31:59.043", 1776882719043),
    ("1969-12-31T23:59:59.5Z", -500),
])
def test_iso_8601_timestamps_read_as_unix_milliseconds(text: str, millis: int) -> None:
    assert _wire.iso_to_millis(text) == millis


@pytest.mark.parametrize("text", ["2026-04-22", "18:31:59", "2026-13-01T00:00:00Z", "now", ""])
def test_iso_parsing_refuses_what_is_not_a_date_time(text: str) -> None:
    with pytest.raises(ValueError):
        _wire.iso_to_millis(text)


@pytest.mark.parametrize("wire_type", ["ticker", "trade", "fill"])
@pytest.mark.parametrize("ts, seconds", [
    (1776882719, 1776882719), ("1776882719", 1776882719),
    ("2026-04-22T18:31:59.043421Z", 1776882719), ("2026-04-22T18:31:59+00:00", 1776882719)])
def test_ts_in_seconds_reads_from_every_accepted_form(wire_type: str, ts: Any,
                                                      seconds: int) -> None:
    msg = {"market_ticker": "M", "ts": ts, "ts_ms": ts}
    if wire_type == "fill":
        msg["order_id"] = "o"
    message = _wire.build_message(wire_type, msg, {})
    assert isinstance(message, _wire.MESSAGE_CLASSES[wire_type]), message
    assert message.ts == seconds
    assert message.ts_ms == (seconds if isinstance(ts, int) or ts.isdigit()
                             else _wire.iso_to_millis(ts))
    assert message.extra == {}


def test_unix_timestamp_fields_are_named_by_unit() -> None:
    assert _wire.timestamp_unit("ts_ms") == "ms"
    assert _wire.timestamp_unit("created_ts_ms") == "ms"
    assert _wire.timestamp_unit("ts") == "s"
    assert _wire.timestamp_unit("settled_ts") == "s"
    assert _wire.timestamp_unit("time") is None and _wire.timestamp_unit("status") is None


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


def test_unknown_fields_are_kept_in_extra() -> None:
    message = decode_frame({"type": "trade", "sid": 1, "seq": 1,
                            "msg": {"market_ticker": "M", "brand_new_field": {"a": 1}}})
    assert isinstance(message, models.Trade)
    assert message.extra == {"brand_new_field": {"a": 1}}
    assert message.extra["brand_new_field"] == {"a": 1}


def test_a_production_ticker_keeps_its_undocumented_clock() -> None:
    # Production tickers of Feb 2026 carry "Clock", a global counter the spec lacks.
    message = decode_frame({"type": "ticker", "sid": 1, "msg": {
        "market_ticker": "M", "price_dollars": "0.5000", "Clock": 8123456}})
    assert message.extra == {"Clock": 8123456}
    assert message.price_dollars == Decimal("0.5000")


def test_unknown_fields_are_found_whatever_came_before() -> None:
    # The fast path first tries the unknown keys of the previous frame of the type.
    base = {"market_ticker": "M", "side": "yes", "price_dollars": "0.5", "delta_fp": "1"}
    sequence = [({"Clock": 1}, {"Clock": 1}), ({"Clock": 2}, {"Clock": 2}),
                ({"Other": 3}, {"Other": 3}), ({"Clock": 4, "ts": None}, {"Clock": 4}),
                ({"ts": None}, {}), ({"Other": 3, "Clock": 1}, {"Other": 3, "Clock": 1}),
                ({"Clock": 2, "Other": 5}, {"Other": 5, "Clock": 2}),
                ({"Clock": 2, "ts": None}, {"Clock": 2}), ({}, {}), ({"Clock": 7}, {"Clock": 7})]
    for added, expected in sequence:
        message = _wire.build_message("orderbook_delta", {**base, **added}, {})
        assert isinstance(message, models.OrderbookDelta)
        assert message.extra == expected, added


@given(st.lists(st.dictionaries(st.sampled_from(["Clock", "Other", "subaccount", "ts_ms", "delta",
                                                 "zz"]), st.one_of(st.none(), st.integers(0, 9))),
                max_size=8))
def test_the_fast_path_keeps_exactly_the_unknown_keys(frames: list[dict[str, Any]]) -> None:
    known = {f.name for f in attrs.fields(models.OrderbookDelta)}
    for added in frames:
        payload = {"market_ticker": "M", "side": "yes", **added}
        message = _wire.build_message("orderbook_delta", payload, {})
        assert message.extra == {k: v for k, v in payload.items() if k not in known}


def test_messages_stay_frozen_and_slotted_with_extra() -> None:
    message = decode_frame({"type": "ticker", "msg": {"market_ticker": "M", "new": 1}})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.extra = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        message.extra["new"] = 2  # type: ignore[index]
    assert not hasattr(message, "__dict__")
    assert "new=" not in repr(message) and "'new': 1" in repr(message)
    plain = decode_frame({"type": "ticker", "msg": {"market_ticker": "M"}})
    assert plain.extra == {} and plain.extra is models.NO_EXTRA  # nothing allocated
    assert hash(plain) == hash(models.Ticker(market_ticker="M"))


def test_extra_survives_pickling() -> None:
    import pickle

    message = decode_frame({"type": "ticker", "msg": {"market_ticker": "M", "new": [1, 2]}})
    assert pickle.loads(pickle.dumps(message)) == message
    plain = decode_frame({"type": "ticker", "msg": {"market_ticker": "M"}})
    copy = pickle.loads(pickle.dumps(plain))
    assert copy == plain and copy.extra == {}
    assert attrs.asdict(plain)["extra"] == {} and attrs.evolve(plain).extra == {}
    with pytest.raises(AttributeError, match="no_such_field"):
        plain.no_such_field  # type: ignore[attr-defined]  # noqa: B018


def test_a_wire_field_named_extra_is_kept_not_confused_with_the_attribute() -> None:
    message = decode_frame({"type": "ticker", "msg": {"market_ticker": "M", "extra": 5}})
    assert message.extra == {"extra": 5}
    assert message == _wire.structure_strict({"market_ticker": "M", "extra": 5}, models.Ticker)


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


wire_values = st.one_of(st.none(), st.just(""), decimal_strings, st.integers(-10**12, 10**12),
                        st.integers(0, 10**12).map(str), st.booleans(),
                        st.datetimes(timezones=st.just(__import__("datetime").timezone.utc))
                        .map(lambda d: d.isoformat().replace("+00:00", "Z")))


@given(values=st.dictionaries(st.sampled_from(
    ["price_dollars", "volume_fp", "dollar_volume", "ts", "ts_ms", "time", "Clock", "new_field",
     "yes_bid"]), wire_values), ticker=st.text(min_size=1, max_size=20))
def test_fast_path_matches_converter_whenever_it_accepts(values: dict[str, Any],
                                                         ticker: str) -> None:
    msg = {"market_ticker": ticker, **values}
    try:
        fast = _wire._BUILDERS["ticker"](msg)
    except Exception:  # noqa: BLE001 - refused: both slow paths then decide
        message = _wire.build_message("ticker", msg, {"msg": msg})
        assert isinstance(message, models.Ticker)  # only essential fields are fatal
        assert set(message.extra) >= set(msg) - {f.name for f in attrs.fields(models.Ticker)}
        return
    assert fast == _wire.structure_strict(msg, models.Ticker)


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


# --------------------------------------------------------------------------- the Decimal cache


def test_cached_decimals_keep_their_spelling_and_are_shared() -> None:
    first, again = _wire.to_decimal("0.30"), _wire.to_decimal("0.30")
    assert first is again  # one immutable object for one string: exact
    assert str(first) == "0.30" and str(_wire.to_decimal("0.3")) == "0.3"
    assert str(_wire.to_decimal("0.3000")) == "0.3000"
    assert _wire.to_decimal_or_none("") is None
    assert _wire.to_decimal_or_none("12.00") is _wire.to_decimal("12.00")


def test_the_decimal_cache_stays_bounded_whatever_the_server_sends() -> None:
    """A hostile server sending ever new numbers (or huge ones) cannot grow the cache."""
    limit = _wire.DECIMAL_CACHE_SIZE
    for n in range(3 * limit + 7):
        value = _wire.to_decimal(f"{n}.25")
        assert value == Decimal(n) + Decimal("0.25")
        assert len(_wire._decimals) <= limit
    huge = "0." + "7" * 5000  # a valid, exact, absurdly long number: converted, not kept
    assert _wire.to_decimal(huge) == Decimal(huge)
    assert huge not in _wire._decimals
    assert all(len(text) <= _wire.DECIMAL_CACHE_KEY_LENGTH for text in _wire._decimals)


def test_a_cached_string_is_checked_like_any_other() -> None:
    for _ in range(2):  # the second time, a cached value would be returned
        with pytest.raises(ValueError, match="not a finite number"):
            _wire.to_decimal("NaN")
        with pytest.raises(ValueError, match="not a finite number"):
            _wire.to_decimal("1e99")
        with pytest.raises(ValueError, match="not a decimal number"):
            _wire.to_decimal("0.3x")


def test_decimal_strings_are_ascii_numbers_only() -> None:
    """Decimal() reads "1_000", " 0.5 " and Arabic-Indic digits; money does not (review
    of issue 13)."""
    for text in ("1_000", " 0.5", "0.5 ", "\u0661\u0662", "0.\uff15", "1 000", "--1"):
        for _ in range(2):  # never cached either
            with pytest.raises(ValueError, match="not a decimal number"):
                _wire.to_decimal(text)
    for text, value in (("12", "12"), ("-0.50", "-0.50"), ("+1.5", "1.5"), (".5", "0.5"),
                        ("5.", "5"), ("1E+2", "1E+2"), ("0.0100", "0.0100")):
        assert _wire.to_decimal(text) == Decimal(value)


JSON_LEAVES = st.one_of(
    st.sampled_from(["0.30", "0.3000", "12.00", "-5.00", "", "x", "NaN", "1e99", "0.01"]),
    st.integers(-5, 5), st.none(), st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4))
JSON_PAIRS = st.one_of(
    st.lists(JSON_LEAVES, min_size=2, max_size=2),
    st.lists(JSON_LEAVES, max_size=3), JSON_LEAVES,
    st.tuples(JSON_LEAVES, JSON_LEAVES),
    st.lists(st.lists(JSON_LEAVES, max_size=2), min_size=2, max_size=2))


@given(value=st.one_of(st.lists(JSON_PAIRS, max_size=6), JSON_LEAVES,
                       st.tuples(JSON_PAIRS, JSON_PAIRS)))
def test_a_book_side_reads_as_each_of_its_levels_would(value: Any) -> None:
    """The fast reader of snapshot sides agrees with reading each [price, size] alone."""
    def one_by_one() -> Any:
        if type(value) not in (list, tuple):
            raise ValueError("not an array")
        return tuple(_wire._level(pair) for pair in value)

    try:
        expected: Any = one_by_one()
    except ValueError:
        expected = ValueError
    try:
        got: Any = _wire._ladder(value)
    except ValueError:
        got = ValueError
    assert got == expected
    if got is not ValueError:
        assert all(type(x) is Decimal for level in got for x in level)
        assert [[str(x) for x in level] for level in got] == \
            [[str(x) for x in level] for level in expected]
