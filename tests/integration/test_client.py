"""The real client against the fake Kalshi server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    AuthenticationError,
    Channel,
    Closed,
    CommandError,
    CommandTimeout,
    ConcurrencyError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    ConnectStrategy,
    HandshakeError,
    InvalidCommand,
    KalshiConfig,
    KalshiStreamClient,
    MalformedMessage,
    SequenceGap,
    StreamUpdate,
    SubscriptionInfo,
    Ticker,
    UnknownMessage,
    Unsubscribed,
    _wire,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector, SentCommands, load_examples
from tests.timing import MS, WAIT

Connect = Callable[..., KalshiStreamClient]

EXAMPLE_CHANNELS = {
    "orderbook_snapshot": "orderbook_delta", "orderbook_delta": "orderbook_delta",
    "ticker": "ticker", "trade": "trade", "fill": "fill", "market_position": "market_positions",
    "user_order": "user_orders", "order_group_updates": "order_group_updates",
    "market_lifecycle_v2": "market_lifecycle_v2", "event_lifecycle": "market_lifecycle_v2",
    "event_fee_update": "market_lifecycle_v2",
    "multivariate_market_lifecycle": "multivariate_market_lifecycle",
    "rfq_created": "communications", "rfq_deleted": "communications",
    "quote_created": "communications", "quote_accepted": "communications",
    "quote_executed": "communications", "cfbenchmarks_value": "cfbenchmarks_value",
    "cfbenchmarks_value_indexlist": "cfbenchmarks_value",
    "cfbenchmarks_value_5hz": "cfbenchmarks_value_5hz",
    "cfbenchmarks_value_5hz_indexlist": "cfbenchmarks_value_5hz",
    "pyth_value": "pyth_value", "pyth_value_underlying_list": "pyth_value",
}


def ticker_msg(market: str = "SIM-ALPHA", price: str = "0.5600") -> dict[str, Any]:
    return {"market_ticker": market, "market_id": "m-1", "price_dollars": price,
            "yes_bid_dollars": "0.5500", "yes_ask_dollars": "0.5700"}


# ---------------------------------------------------------------- connecting


def test_connect_runs_named_daemon_threads_and_close_stops_them(config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(config) as client:
        names = {t.name: t for t in threading.enumerate() if t.name.startswith("kalshi-ws-")}
        assert any(n.startswith("kalshi-ws-reader-") for n in names)
        assert any(n.startswith("kalshi-ws-dispatch-") for n in names)
        assert all(t.daemon for t in names.values())
        assert client.state == "OPEN" and not client.closed
    assert client.closed and isinstance(client.close_reason, ConnectionClosedOK)
    assert not [t for t in names.values() if t.is_alive()]


def test_the_handshake_is_signed_and_sends_no_origin(server: FakeKalshiServer,
                                                     client: KalshiStreamClient) -> None:
    # The fake server answers 403 to an Origin header and 401 to a bad signature.
    assert [status for _, status in server.handshakes] == [101]


def test_a_refused_key_raises_authentication_error_at_once(
        server: FakeKalshiServer, other_private_key: rsa.RSAPrivateKey) -> None:
    wrong = KalshiConfig("test-key-id", other_private_key, ws_url=server.url)
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as caught:
        KalshiStreamClient.connect(wrong, strategy=ConnectStrategy.RETRY)
    assert time.monotonic() - started < 5_000 * MS
    assert caught.value.status_code == 401
    assert "INCORRECT_API_KEY_SIGNATURE" in caught.value.body
    assert len(server.handshakes) == 1, "an auth failure must not be retried"


def test_other_handshake_statuses_raise_handshake_error_with_status_and_body(
        server: FakeKalshiServer, config: KalshiConfig) -> None:
    server.reject_handshakes(503, body="maintenance")
    with pytest.raises(HandshakeError) as caught:
        KalshiStreamClient.connect(config)
    assert not isinstance(caught.value, AuthenticationError)
    assert caught.value.status_code == 503 and "maintenance" in caught.value.body


def test_retry_strategy_retries_failed_handshakes(server: FakeKalshiServer,
                                                  connect: Connect) -> None:
    server.reject_handshakes(503, count=2)
    client = connect(strategy=ConnectStrategy.retry(base=0.01, cap=0.05, max_attempts=5))
    assert client.state == "OPEN"
    assert [status for _, status in server.handshakes] == [503, 503, 101]


def test_connection_refused_is_a_handshake_error_without_status(
        private_key: rsa.RSAPrivateKey) -> None:
    with FakeKalshiServer(public_key=private_key.public_key()) as server:
        url = server.url
    config = KalshiConfig("k", private_key, ws_url=url)
    with pytest.raises(HandshakeError) as caught:
        KalshiStreamClient.connect(config, timeout=2)
    assert caught.value.status_code is None
    assert "could not connect" in str(caught.value)


# ---------------------------------------------------------------- commands


def test_subscribe_to_every_channel_in_one_command(client: KalshiStreamClient) -> None:
    channels = [c for c in Channel if c.value != "multivariate"]
    result = client.subscribe(channels, ["SIM-ALPHA"])
    assert result.ok
    assert sorted(s.channel for s in result.successful) == sorted(channels)
    assert len(set(result.sids)) == len(channels)
    listed = client.list_subscriptions()
    assert sorted(i.sid for i in listed) == sorted(result.sids)
    assert all(isinstance(i, SubscriptionInfo) for i in listed)


def test_partial_failure_reports_each_refused_channel(client: KalshiStreamClient) -> None:
    with pytest.warns(DeprecationWarning, match="MULTIVARIATE_MARKET_LIFECYCLE"):
        multivariate = Channel.MULTIVARIATE
    result = client.subscribe([Channel.TICKER, multivariate, "ticker_v2"])
    assert [s.channel for s in result.successful] == [Channel.TICKER]
    assert sorted((f.channel, f.code) for f in result.failed) == [
        ("multivariate", 8), ("ticker_v2", 8)]


def test_client_side_validation_raises_before_sending(server: FakeKalshiServer,
                                                      client: KalshiStreamClient) -> None:
    with pytest.raises(InvalidCommand, match="orderbook_delta"):
        client.subscribe([Channel.ORDERBOOK_DELTA])
    with pytest.raises(ValueError):  # InvalidCommand is also a ValueError
        client.subscribe(["ticker"], shard_key=1)
    assert server.commands == []


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", True])
def test_a_bad_command_timeout_is_refused_before_anything_is_sent(
        server: FakeKalshiServer, client: KalshiStreamClient, timeout: Any) -> None:
    with pytest.raises(InvalidCommand, match="timeout must be a positive number"):
        client.subscribe(["ticker"], timeout=timeout)
    with pytest.raises(InvalidCommand, match="timeout"):
        client.list_subscriptions(timeout=timeout)
    with pytest.raises(InvalidCommand, match="timeout"):
        client.close(timeout=timeout)
    assert server.commands == [] and not client.closed


@pytest.mark.parametrize("options", [{"timeout": float("nan")}, {"command_timeout": 0},
                                     {"close_timeout": float("inf")}, {"queue": 1}])
def test_bad_client_options_are_refused_at_connect(config: KalshiConfig,
                                                   options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        KalshiStreamClient.connect(config, **options)


def test_update_subscription_refuses_what_kalshi_would(server: FakeKalshiServer,
                                                       client: KalshiStreamClient) -> None:
    sid = client.subscribe(["ticker"], ["SIM-ALPHA"]).sids[0]
    sent = len(server.commands)
    with pytest.raises(InvalidCommand, match="unknown update_subscription action 'bogus'"):
        client.update_subscription(sid, "bogus", ["SIM-BRAVO"])
    with pytest.raises(InvalidCommand, match="exactly one sid"):
        client.update_subscription([sid, sid + 1], "add_markets", ["SIM-BRAVO"])  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand, match="unknown update_subscription parameter 'colour'"):
        client.add_markets(sid, ["SIM-BRAVO"], colour="red")
    with pytest.raises(InvalidCommand, match="send_initial_snapshot must be bool"):
        client.add_markets(sid, ["SIM-BRAVO"], send_initial_snapshot=object())
    assert len(server.commands) == sent
    assert client.add_markets(sid, "SIM-BRAVO", send_initial_snapshot=True) == [
        "SIM-ALPHA", "SIM-BRAVO"]


def test_unsubscribe_update_and_snapshot_round_trips(client: KalshiStreamClient,
                                                     collector: Collector) -> None:
    client.add_callback(collector)
    book = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA"]).successful[0]
    assert client.add_markets(book.sid, ["SIM-BRAVO"]) == ["SIM-ALPHA", "SIM-BRAVO"]
    assert client.get_snapshot(book.sid, ["SIM-BRAVO"]) == ["SIM-BRAVO"]
    assert client.remove_markets(book.sid, "SIM-ALPHA") == ["SIM-BRAVO"]
    assert client.subscriptions()[0].market_tickers == ("SIM-BRAVO",)
    assert client.unsubscribe(book.sid) == [book.sid]
    assert client.subscriptions() == []
    collector.wait_for(lambda items: any(isinstance(i, Unsubscribed) for i in items))
    snapshots = [u.msg.market_ticker for u in collector.updates("orderbook_snapshot")]
    assert snapshots == ["SIM-ALPHA", "SIM-BRAVO", "SIM-BRAVO"]


def test_server_errors_raise_command_error_with_code_and_id(client: KalshiStreamClient) -> None:
    with pytest.raises(CommandError) as caught:
        client.unsubscribe([42])
    assert caught.value.code == 7 and caught.value.command_id is not None
    trade = client.subscribe(["trade"]).successful[0]
    with pytest.raises(CommandError) as caught:
        client.get_snapshot(trade.sid, ["SIM-ALPHA"])
    assert caught.value.code == 13


def test_command_timeout_then_the_late_reply_is_ignored(server: FakeKalshiServer,
                                                        client: KalshiStreamClient) -> None:
    server.stop_answering()
    with pytest.raises(CommandTimeout) as caught:
        client.subscribe(["trade"], timeout=0.3)
    assert isinstance(caught.value, TimeoutError)
    server.resume_answering()
    assert client.subscribe(["ticker"]).ok  # the connection still works
    server.wait_for_command("subscribe", count=2)
    # The late "subscribed" for trade created a live subscription; it is tracked.
    assert client.list_subscriptions() and client.stats() is not None


def test_commands_from_eight_threads_at_once(client: KalshiStreamClient) -> None:
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        try:
            barrier.wait(5_000 * MS)
            market = f"M-{index}"
            sub = client.subscribe([Channel.ORDERBOOK_DELTA], [market]).successful[0]
            client.get_snapshot(sub.sid, [market])
            results[index] = (sub.sid, client.list_subscriptions())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * WAIT)
    assert not errors
    assert len(results) == 8
    # One orderbook subscription per connection: Kalshi merges repeated subscribes.
    assert {sid for sid, _ in results.values()} == {client.subscriptions()[0].sid}
    assert set(client.subscriptions()[0].market_tickers) == {f"M-{i}" for i in range(8)}


def test_a_command_from_inside_a_callback(server: FakeKalshiServer,
                                          client: KalshiStreamClient) -> None:
    answered = threading.Event()
    outcome: list[Any] = []

    def on_ticker(update: Any) -> None:
        if isinstance(update, StreamUpdate) and not outcome:
            outcome.append(client.subscribe(["trade"]))  # blocks this callback only
            answered.set()

    client.add_callback(on_ticker, channels=[Channel.TICKER])
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    assert answered.wait(WAIT)
    assert outcome[0].ok


def test_waiting_on_the_stream_from_a_callback_fails_instead_of_hanging(
        server: FakeKalshiServer, client: KalshiStreamClient) -> None:
    outcome: list[BaseException] = []
    done = threading.Event()

    def on_ticker(update: Any) -> None:
        if isinstance(update, StreamUpdate) and not done.is_set():
            try:
                next(client.iter_updates())  # the queue is filled by this very thread
            except ConcurrencyError as exc:
                outcome.append(exc)
            done.set()

    client.add_callback(on_ticker, channels=[Channel.TICKER])
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    assert done.wait(WAIT)
    assert outcome and "callback" in str(outcome[0])


# ---------------------------------------------------------------- messages


def test_every_kalshi_example_arrives_typed(server: FakeKalshiServer, client: KalshiStreamClient,
                                            collector: Collector) -> None:
    client.add_callback(collector)
    channels = sorted(set(EXAMPLE_CHANNELS.values()))
    markets = ["FED-23DEC-T3.00"]
    assert client.subscribe(channels, markets).ok
    collector.wait_for(lambda items: len(collector.updates("orderbook_snapshot")) == 1)
    examples = [e["payload"] for e in load_examples()
                if isinstance(e["payload"], dict) and e["payload"].get("type") in EXAMPLE_CHANNELS]
    for frame in examples:
        channel = EXAMPLE_CHANNELS[frame["type"]]
        sent = server.publish(channel, frame["type"], frame["msg"], market_ticker="FED-23DEC-T3.00")
        assert sent == 1
    collector.wait_for(lambda items: len(collector.updates()) == len(examples) + 1)
    received = collector.updates()[1:]
    for frame, update in zip(examples, received):
        expected = _wire.build_message(frame["type"], _wire.decode(json.dumps(frame["msg"])), {})
        assert update.type == frame["type"]
        assert update.channel == EXAMPLE_CHANNELS[frame["type"]]
        assert update.msg == expected
        assert not isinstance(update.msg, (UnknownMessage, MalformedMessage))


def test_decimal_values_arrive_exact(server: FakeKalshiServer, client: KalshiStreamClient) -> None:
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg(price="0.0001"))
    update = next(u for u in client.iter_updates(timeout=5_000 * MS) if isinstance(u, StreamUpdate))
    assert isinstance(update.msg, Ticker)
    assert update.msg.price_dollars == Decimal("0.0001")
    assert update.seq is None and update.sid == client.subscriptions()[0].sid


def test_bad_frames_never_stop_the_stream(server: FakeKalshiServer, client: KalshiStreamClient,
                                          collector: Collector,
                                          caplog: pytest.LogCaptureFixture) -> None:
    client.add_callback(collector)
    client.subscribe(["ticker"])
    with caplog.at_level(logging.WARNING, logger="kalshi_ws"):
        server.send_raw("{this is not json")
        server.send_raw(json.dumps({"type": "brand_new_type", "sid": 1, "msg": {}}))
        server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA",
                                            "price_dollars": "zero"})
        server.send_raw(b"\xff\xfe".decode("latin-1"))
        server.publish("ticker", "ticker", ticker_msg())
        collector.wait_for(lambda items: len(collector.updates()) == 5)
    kinds = [type(u.msg).__name__ for u in collector.updates()]
    # A field that cannot be read degrades alone (an essential one would be malformed).
    assert kinds == ["MalformedMessage", "UnknownMessage", "Ticker",
                     "MalformedMessage", "Ticker"]
    degraded = collector.updates()[2].msg
    assert degraded.price_dollars is None and degraded.extra == {"price_dollars": "zero"}
    assert any("malformed" in r.message.lower() for r in caplog.records)
    assert any("'price_dollars' could not be read" in r.message for r in caplog.records)


def test_hostile_frames_never_stop_the_stream(server: FakeKalshiServer,
                                             client: KalshiStreamClient,
                                             collector: Collector) -> None:
    client.add_callback(collector)
    book = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA"]).successful[0]
    collector.wait_for(lambda items: len(items) == 1)  # the snapshot
    hostile = [
        json.dumps({"type": "trade", "sid": [1], "seq": 1, "msg": {}}),  # unhashable sid
        json.dumps({"type": "orderbook_delta", "sid": book.sid,  # unhashable market
                    "msg": {"market_ticker": ["SIM-ALPHA"], "side": "yes"}}),
        "[" * 100_000,  # nesting deep enough to exhaust the JSON parser's recursion
        json.dumps({"type": "ok", "id": {"x": 1}}),
    ]
    for text in hostile:
        server.send_raw(text)
    server.step_market("SIM-ALPHA")
    collector.wait_for(lambda items: any(isinstance(i, StreamUpdate) and i.type ==
                                         "orderbook_delta" for i in items))
    assert client.state == "OPEN" and client.close_reason is None
    malformed = [i for i in collector.items if isinstance(i, StreamUpdate)
                 and isinstance(i.msg, MalformedMessage)]
    assert len(malformed) >= 2


def test_a_callback_that_raises_is_logged_and_delivery_goes_on(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken(update: Any) -> None:
        calls.append(update)
        raise RuntimeError("user bug")

    client.add_callback(broken)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    with caplog.at_level(logging.ERROR, logger="kalshi_ws"):
        server.publish("ticker", "ticker", ticker_msg(price="0.1000"))
        server.publish("ticker", "ticker", ticker_msg(price="0.2000"))
        collector.wait_for(lambda items: len(collector.updates()) == 2)
    assert len(calls) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and errors[0].exc_info is not None
    assert "user bug" in caplog.text


def test_callbacks_filter_by_channel_and_can_be_removed(server: FakeKalshiServer,
                                                        client: KalshiStreamClient) -> None:
    tickers, everything = Collector(), Collector()
    handle = client.add_callback(tickers, channels=Channel.TICKER)

    @client.on
    def all_items(item: Any) -> None:
        everything(item)

    client.subscribe(["ticker", "trade"])
    server.publish("trade", "trade", {"market_ticker": "SIM-ALPHA"})
    server.publish("ticker", "ticker", ticker_msg())
    everything.wait_for(lambda items: len(items) == 2)
    tickers.wait_for(lambda items: len(items) == 1)
    assert tickers.items[0].channel == Channel.TICKER
    assert client.remove_callback(handle) and not handle.remove()
    server.publish("ticker", "ticker", ticker_msg())
    everything.wait_for(lambda items: len(items) == 3)
    assert len(tickers.items) == 1


def test_callbacks_never_run_on_the_reader_thread(server: FakeKalshiServer,
                                                  client: KalshiStreamClient,
                                                  collector: Collector) -> None:
    names = []
    client.add_callback(lambda item: names.append(threading.current_thread().name))
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    collector.wait_for(lambda items: len(items) == 1)
    assert names and all(name.startswith("kalshi-ws-dispatch-") for name in names)


def test_registering_a_callback_first_turns_the_unread_queue_off(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect()
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    collector.wait_for(lambda items: len(items) == 1)
    assert client.stats().queued == 0
    updates = client.updates  # reading it turns it on
    server.publish("ticker", "ticker", ticker_msg())
    assert isinstance(updates.get(timeout=5_000 * MS), StreamUpdate)


def test_queue_and_callbacks_both_receive_when_asked(server: FakeKalshiServer, connect: Connect,
                                                     collector: Collector) -> None:
    client = connect(queue=True)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    collector.wait_for(lambda items: len(items) == 1)
    assert client.updates.get(timeout=5_000 * MS) == collector.items[0]


def test_queue_off_refuses_iteration(connect: Connect) -> None:
    client = connect(queue=False)
    with pytest.raises(InvalidCommand, match="queue=False"):
        _ = client.updates


# ---------------------------------------------------------------- closing


def test_close_twice_and_from_another_thread(client: KalshiStreamClient) -> None:
    closer = threading.Thread(target=client.close)
    closer.start()
    closer.join(WAIT)
    client.close()
    client.close(timeout=0.1)
    assert client.closed
    with pytest.raises(ConnectionClosedOK):
        client.subscribe(["ticker"])


def test_close_from_inside_a_callback(server: FakeKalshiServer, client: KalshiStreamClient,
                                      collector: Collector) -> None:
    closed = threading.Event()

    def close_on_first(update: Any) -> None:
        if isinstance(update, StreamUpdate):
            client.close()
            closed.set()

    client.add_callback(close_on_first)
    client.add_callback(collector)
    updates = client.updates  # the rest of the stream still reaches the queue
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    assert closed.wait(WAIT)
    assert client.closed
    items = list(client.iter_updates(timeout=WAIT))
    assert isinstance(items[-1], Closed) and updates.empty()
    # Once close() returned, no callback started: not the second callback of the same
    # update, and not Closed.
    assert collector.items == []


def test_the_stream_ends_with_closed_and_iteration_stops(server: FakeKalshiServer,
                                                         client: KalshiStreamClient) -> None:
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker_msg())
    closer = threading.Thread(target=client.close)
    items = []
    for item in client.iter_updates():
        items.append(item)
        if len(items) == 1:  # the update arrived: close from another thread while iterating
            closer.start()
    closer.join(WAIT)
    assert isinstance(items[0], StreamUpdate)
    assert isinstance(items[-1], Closed) and items[-1].final


def test_close_wakes_a_pending_command(server: FakeKalshiServer, client: KalshiStreamClient,
                                       sent_commands: SentCommands) -> None:
    server.stop_answering()
    errors: list[BaseException] = []
    waiting = threading.Thread(target=lambda: _capture(errors, client.subscribe, ["trade"]))
    waiting.start()
    sent_commands.wait_for("subscribe")  # sent, so pending: the silent server never answers
    client.close(timeout=2_000 * MS)
    waiting.join(5_000 * MS)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosedOK)


def _capture(errors: list[BaseException], fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def test_server_drop_during_a_command_wakes_it_with_connection_lost(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector,
        sent_commands: SentCommands) -> None:
    client.add_callback(collector)
    server.stop_answering()
    errors: list[BaseException] = []
    waiting = threading.Thread(target=lambda: _capture(errors, client.subscribe, ["trade"]))
    waiting.start()
    sent_commands.wait_for("subscribe")  # sent, so pending: the silent server never answers
    server.drop_connections()
    waiting.join(WAIT)
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectionClosed) and not isinstance(errors[0],
                                                                       ConnectionClosedOK)
    assert errors[0].__cause__ is not None
    final = collector.wait_for(lambda items: items and items[-1])
    assert isinstance(final, ConnectionLost) and final.final
    assert client.closed and isinstance(client.close_reason, ConnectionLost)


@pytest.mark.parametrize("code, clean", [(1000, True), (1001, True), (1011, False)])
def test_server_close_codes(server: FakeKalshiServer, client: KalshiStreamClient,
                            collector: Collector, code: int, clean: bool) -> None:
    client.add_callback(collector)
    server.close_connections(code, "bye")
    final = collector.wait_for(lambda items: items and items[-1])
    if clean:
        assert isinstance(final, Closed) and final.code == code
    else:
        assert isinstance(final, ConnectionLost) and final.code == code
    assert client.closed


def test_keys_and_signatures_never_reach_the_logs(
        server: FakeKalshiServer, private_key: rsa.RSAPrivateKey, private_key_pem: bytes,
        caplog: pytest.LogCaptureFixture) -> None:
    config = KalshiConfig("test-key-id", private_key_pem, ws_url=server.url)
    with caplog.at_level(logging.DEBUG), KalshiStreamClient.connect(config) as client:
        client.subscribe(["ticker"])
        server.publish("ticker", "ticker", ticker_msg())
    # Every record, the fake server's (websockets logs the handshake headers) included.
    ours = "\n".join(r.getMessage() for r in caplog.records)
    assert "connected to" in ours
    text = ours + repr(client) + repr(config)
    for line in private_key_pem.decode().splitlines()[1:-1]:
        assert line not in text
    der = private_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    assert der.hex()[:32] not in text
    headers = re.findall(r"KALSHI-ACCESS-SIGNATURE:\s*(\S*)", ours)
    assert headers and set(headers) == {"[redacted]"}


def test_max_attempts_counts_every_attempt_of_the_first_connect(
        server: FakeKalshiServer, config: KalshiConfig) -> None:
    """Issue 10, defect 11: max_attempts=3 used to make 4 handshakes."""
    server.reject_handshakes(503, count=None)
    with pytest.raises(HandshakeError):
        KalshiStreamClient.connect(
            config, strategy=ConnectStrategy.retry(base=0.001, cap=0.002, max_attempts=3))
    assert [status for _, status in server.handshakes] == [503, 503, 503]


def test_retry_after_is_honoured_on_the_first_connect(server: FakeKalshiServer,
                                                      connect: Connect) -> None:
    """Issue 10, defect 6: a 429 with Retry-After: 1 was retried within milliseconds."""
    server.reject_handshakes(429, count=1, retry_after="1")
    connect(strategy=ConnectStrategy.retry(base=0.001, cap=5, max_attempts=3))
    (refused, _), (accepted, _) = server.handshakes
    assert accepted - refused >= 1.0  # the server's request is a lower bound, not a speed


def test_retry_after_never_waits_past_the_backoff_cap(server: FakeKalshiServer,
                                                      connect: Connect,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    server.reject_handshakes(503, count=1, retry_after="3600")
    connect(strategy=ConnectStrategy.retry(base=0.001, cap=0.05, max_attempts=2))
    assert "retrying in 0.05 s" in caplog.text


def test_after_the_servers_clean_close_commands_raise_connection_closed_ok(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    client.add_callback(collector)
    server.close_connections(1000, "maintenance")
    collector.wait_for(lambda items: [i for i in items if isinstance(i, Closed)])
    with pytest.raises(ConnectionClosedOK, match="maintenance") as caught:
        client.list_subscriptions()
    assert not isinstance(caught.value, ConnectionClosedError)
    assert str(caught.value).count("close code 1000") == 1


def test_a_lost_connection_names_its_close_code_once(server: FakeKalshiServer,
                                                      client: KalshiStreamClient,
                                                      collector: Collector) -> None:
    client.add_callback(collector)
    server.close_connections(1011, "internal error")
    (lost,) = collector.wait_for(lambda items: [i for i in items
                                                if isinstance(i, ConnectionLost)])
    assert lost.code == 1011
    assert str(lost).count("close code") == 1


def test_a_subscribe_acknowledged_after_its_timeout_is_undone(
        server: FakeKalshiServer, client: KalshiStreamClient,
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10, defect 4: the late subscription used to stay, unannounced and unread."""
    server.stop_answering()
    with pytest.raises(CommandTimeout):
        client.subscribe(["trade"], timeout=0.2)
    server.resume_answering()  # the server now reads the subscribe and answers it
    server.wait_for_command("unsubscribe")
    assert client.subscriptions() == []
    assert "answered after its caller gave up" in caplog.text
    assert client.subscribe(["trade"]).successful  # a retry gets a clean subscription
    assert len(client.subscriptions()) == 1


class _HandlerThatAsksTheClient(logging.Handler):
    """A user's logging handler that reads the client's stats at each warning (a
    dashboard, say): it takes the client's lock, so it must never run under it."""

    def __init__(self, client: KalshiStreamClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.client.stats()
        self.seen.append(record.getMessage())


@pytest.mark.timeout(60)
def test_a_logging_handler_that_calls_the_client_runs_outside_its_lock(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    """Log records made under the client's lock (a sequence gap's warning, made by the
    reader) reach handlers only once the lock is released: a handler calling the client
    does not deadlock the reader."""
    handler = _HandlerThatAsksTheClient(client)
    package = logging.getLogger("kalshi_ws")
    package.addHandler(handler)
    try:
        client.add_callback(collector)
        client.subscribe(["trade"])
        server.publish("trade", "trade", {"trade_id": "1", "market_ticker": "SIM-ALPHA",
                                          "count_fp": "1.00"})
        server.skip_seq("trade")
        server.publish("trade", "trade", {"trade_id": "2", "market_ticker": "SIM-ALPHA",
                                          "count_fp": "1.00"})
        collector.wait_for(lambda items: len(collector.updates()) == 2)
        assert collector.of_type(SequenceGap)
        assert any("gap" in text for text in handler.seen), handler.seen
        assert client.list_subscriptions(timeout=WAIT)  # the reader is alive
    finally:
        package.removeHandler(handler)
