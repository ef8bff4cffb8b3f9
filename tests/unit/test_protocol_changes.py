"""When Kalshi changes the protocol: escape hatches for new options and actions, errors
that name their markets, the deprecated multivariate channel (pure, no sockets)."""

from __future__ import annotations

import json
import pickle
import warnings
from typing import Any

import pytest

from kalshi_ws import (
    Channel,
    CommandError,
    InvalidCommand,
    MalformedMessage,
    SubscribeResult,
    SubscriptionError,
)
from tests.unit.test_protocol import Peer

# ---------------------------------------------------------------- escape hatches


def test_subscribe_sends_unknown_options_as_given_through_extra_params() -> None:
    peer = Peer()
    _, text = peer.p.subscribe(["ticker"], ["M"], {"skip_ticker_ack": True},
                                        {"brand_new_option": {"depth": 3}, "flag": None})
    params = json.loads(text)["params"]
    assert params == {"channels": ["ticker"], "market_tickers": ["M"], "skip_ticker_ack": True,
                      "brand_new_option": {"depth": 3}, "flag": None}


def test_unknown_options_are_replayed_when_the_subscription_is_restored() -> None:
    peer = Peer()
    command_id, _ = peer.p.subscribe(["ticker"], None, {}, {"brand_new_option": 7})
    peer.subscribed(command_id, ("ticker", 1))
    peer.p.connection_lost()
    peer.p.begin_restore()
    (restore,) = peer.sent()
    assert restore["params"]["brand_new_option"] == 7


def test_unknown_options_outside_extra_params_are_still_refused() -> None:
    with pytest.raises(InvalidCommand, match="unknown subscribe option 'brand_new_option'"):
        Peer().p.subscribe(["ticker"], None, {"brand_new_option": 1})


@pytest.mark.parametrize("extra, message", [
    ({"use_yes_price": "yes"}, "knows and checks"),  # a known option stays checked
    ({"channels": ["trade"]}, "knows and checks"),
    ({"market_tickers": ["X"]}, "knows and checks"),
    ({"": 1}, "non-empty strings"),
    ({1: 1}, "non-empty strings"),
    (["a"], "mapping"),
])
def test_extra_params_never_bypass_a_known_parameter(extra: Any, message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        Peer().p.subscribe(["ticker"], None, {}, extra)


def test_update_subscription_sends_an_unknown_action_as_given() -> None:
    peer = Peer()
    command_id, text = peer.p.update_subscription(
        3, None, ["M"], {}, {"action": "set_update_interval", "interval_ms": 250})
    assert json.loads(text)["params"] == {"sids": [3], "action": "set_update_interval",
                                          "market_tickers": ["M"], "interval_ms": 250}
    peer.feed({"id": command_id, "sid": 3, "type": "ok", "msg": {}})
    assert peer.completions() == {command_id: ([], None)}


def test_update_subscription_refuses_an_unknown_action_given_the_ordinary_way() -> None:
    with pytest.raises(InvalidCommand, match="extra_params"):
        Peer().p.update_subscription(3, "set_update_interval")


@pytest.mark.parametrize("action, extra", [
    (None, {"action": "add_markets"}),  # known actions are checked: pass them as action
    ("add_markets", {"action": "other"}),
    (None, {"action": ""}),
    (None, {"action": 5}),
    ("get_snapshot", {"sids": [4]}),
    ("get_snapshot", {"send_initial_snapshot": "x"}),
])
def test_update_subscription_extra_params_never_bypass_known_ones(action: Any,
                                                                  extra: Any) -> None:
    with pytest.raises(InvalidCommand):
        Peer().p.update_subscription(3, action, ["M"], {}, extra)


def test_known_update_actions_with_extra_params_keep_their_checks() -> None:
    with pytest.raises(InvalidCommand, match="get_snapshot needs market_tickers"):
        Peer().p.update_subscription(3, "get_snapshot", None, {}, {"new": 1})
    _, text = Peer().p.update_subscription(3, "add_markets", ["M"], {}, {"new": 1})
    assert json.loads(text)["params"]["new"] == 1


# ---------------------------------------------------------------- errors name their markets


def test_a_command_error_carries_the_markets_and_sending_time_of_the_error() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.completions()
    command_id, _ = peer.p.update_subscription(1, "add_markets", ["A", "B", "C"])
    peer.feed({"id": command_id, "type": "error", "sending_ts_ms": 1795273337418,
               "msg": {"code": 26, "msg": "Subscription market limit exceeded",
                       "market_ticker": "A", "market_tickers": ["B", "C", "A"]}})
    (_, error), = peer.completions().values()
    assert isinstance(error, CommandError) and error.code == 26
    assert error.markets == ("A", "B", "C")
    assert error.sending_ts_ms == 1795273337418
    assert "markets: A, B, C" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.markets, copy.sending_ts_ms, copy.code) == (error.markets, 1795273337418, 26)


def test_an_error_without_markets_has_none() -> None:
    peer = Peer()
    command_id, _ = peer.p.unsubscribe(9)
    peer.feed({"id": command_id, "type": "error", "msg": {"code": 7, "msg": "Unknown sid",
                                                          "market_tickers": "not-a-list"}})
    (_, error), = peer.completions().values()
    assert error.markets == () and error.sending_ts_ms is None


def test_a_subscribe_failure_carries_the_markets_of_its_error() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["ticker", "orderbook_delta"], ["A", "B"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.feed({"id": command_id, "type": "error", "sending_ts_ms": 1795273337000,
               "msg": {"code": 26, "msg": "Subscription market limit exceeded",
                       "market_tickers": ["B"]}})
    (result, error), = peer.completions().values()
    assert isinstance(result, SubscribeResult) and error is None
    (failure,) = result.failed
    assert failure.channel == Channel.ORDERBOOK_DELTA and failure.code == 26
    assert failure.markets == ("B",) and failure.sending_ts_ms == 1795273337000


def test_a_subscription_error_carries_markets_and_sending_time() -> None:
    peer = Peer(resync=False)
    command_id, _ = peer.subscribe(["ticker"])
    peer.subscribed(command_id, ("ticker", 1))
    peer.deliveries()
    peer.feed({"type": "error", "sid": 1, "sending_ts_ms": 5,
               "msg": {"code": 18, "msg": "Command timeout", "market_ticker": "A"}})
    (error,) = [d for d in peer.deliveries() if isinstance(d, SubscriptionError)]
    assert error.markets == ("A",) and error.sending_ts_ms == 5


# ---------------------------------------------------------------- removed channel


def test_naming_channel_multivariate_warns_and_names_the_replacement() -> None:
    with pytest.warns(DeprecationWarning, match="MULTIVARIATE_MARKET_LIFECYCLE") as caught:
        member = Channel.MULTIVARIATE
    assert caught[0].filename == __file__  # points at the caller's line
    assert member == "multivariate" and member is Channel("multivariate")


def test_other_channels_and_lookups_by_value_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Channel.TICKER == "ticker"
        assert Channel("multivariate").value == "multivariate"
        assert "multivariate" in [c.value for c in Channel]
        with pytest.raises(AttributeError):
            Channel.NOT_A_CHANNEL  # noqa: B018


# ---------------------------------------------------------------- seq is essential


@pytest.mark.parametrize("seq", ["two", 2.5, True, [2]])  # "2" reads as 2 (README)
def test_a_frame_whose_seq_is_not_an_integer_is_malformed(seq: Any) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.deliveries()
    frame = {"type": "trade", "sid": 1, "seq": 1, "msg": {"market_ticker": "M"}}
    peer.feed(frame, {**frame, "seq": seq}, {**frame, "seq": 2})
    first, bad, last = peer.deliveries()
    assert first.seq == 1 and last.seq == 2  # the bad frame consumed no number
    assert isinstance(bad.msg, MalformedMessage) and "seq" in bad.msg.error
    assert bad.sid == 1 and bad.channel == Channel.TRADE and bad.seq is None


def test_a_subscribe_result_keeps_the_replys_sending_time() -> None:
    """Issue 12: replies keep sending_ts_ms (here: on the Subscription a subscribe returns)."""
    peer = Peer()
    command_id, _ = peer.subscribe(["trade", "ticker"], ["A"])
    peer.feed({"id": command_id, "type": "subscribed", "sending_ts_ms": 1_795_273_200_123,
               "msg": {"channel": "trade", "sid": 1}})
    peer.feed({"id": command_id, "type": "subscribed", "msg": {"channel": "ticker", "sid": 2}})
    ((result, error),) = peer.completions().values()
    assert error is None
    assert [s.sending_ts_ms for s in result.successful] == [1_795_273_200_123, None]
    merge_id, _ = peer.subscribe(["trade"], ["B"])
    peer.feed({"id": merge_id, "type": "ok", "sid": 1, "seq": 1, "sending_ts_ms": 7,
               "msg": {"market_tickers": ["A", "B"]}})
    ((merged, _),) = peer.completions().values()
    assert merged.successful[0].sending_ts_ms == 7


# ---------------------------------------------------------------- review of issue 12


@pytest.mark.parametrize("code", ["25", 25])
def test_an_error_code_sent_as_a_numeric_string_is_read_as_the_number(code: Any) -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    peer.deliveries()
    peer.feed({"type": "error", "sid": 1, "seq": 1, "msg": {"code": code, "msg": "overflow"}})
    kinds = [type(i).__name__ for i in peer.deliveries()]
    assert kinds == ["SubscriptionError"]
    assert [c["cmd"] for c in peer.sent()] == ["subscribe"]  # error 25: subscribed again


def test_sending_ts_ms_is_read_as_milliseconds_or_absent() -> None:
    peer = Peer()
    command_id, _ = peer.subscribe(["trade"])
    peer.subscribed(command_id, ("trade", 1))
    frame = {"type": "trade", "sid": 1, "msg": {"market_ticker": "M"}}
    peer.feed({**frame, "seq": 1, "sending_ts_ms": "1795273337418"},
              {**frame, "seq": 2, "sending_ts_ms": "2026-11-21T12:00:00Z"},
              {**frame, "seq": 3, "sending_ts_ms": "soon"},
              {**frame, "seq": 4, "sending_ts_ms": True})
    sent = [u.sending_ts_ms for u in peer.deliveries()]
    assert sent[0] == 1_795_273_337_418 and isinstance(sent[1], int) and sent[2:] == [None, None]


@pytest.mark.parametrize("value", [object(), {1, 2}, b"x", float("nan")])
def test_extra_params_must_be_json_values(value: Any) -> None:
    peer = Peer()
    with pytest.raises(InvalidCommand, match="not a JSON value"):
        peer.p.subscribe(["ticker"], None, None, {"x": value})


@pytest.mark.parametrize("name", ["market_ticker", "market_id"])
def test_market_filters_never_slip_through_extra_params(name: str) -> None:
    peer = Peer()
    with pytest.raises(InvalidCommand, match="knows"):
        peer.p.subscribe(["ticker"], None, None, {name: "SIM-BRAVO"})


def test_extra_params_are_copied_when_given() -> None:
    peer = Peer()
    value = {"a": [1]}
    _, text = peer.p.subscribe(["ticker"], None, None, {"x": value})
    value["a"].append(2)
    assert json.loads(text)["params"]["x"] == {"a": [1]}


@pytest.mark.parametrize("msg", [
    {"market_ticker": "", "market_id": "i", "price_dollars": "0.40", "delta_fp": "1",
     "side": "yes"},
    {"market_ticker": "A", "market_id": "i", "delta_fp": "1", "side": "yes"},
    {"market_ticker": "A", "market_id": "i", "price_dollars": "0.40", "side": "yes"},
])
def test_an_incomplete_book_delta_is_malformed_and_resyncs(msg: dict[str, Any]) -> None:
    peer = Peer()
    sid = peer.book(["A"])
    peer.feed({"type": "orderbook_delta", "sid": sid, "seq": 2, "msg": msg})
    (update,) = peer.deliveries()
    assert type(update.msg).__name__ == "MalformedMessage"
    assert not peer.p.book_synced(sid, "A")
