"""Staying connected: reconnect and restore, liveness, sequence gaps, backpressure, TLS.

Every fault is injected for real through the fake server (TCP resets, silence, close
codes, refused handshakes, skipped or repeated sequence numbers, terminal errors).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    AuthenticationError,
    Backoff,
    Channel,
    Closed,
    CommandTimeout,
    ConfigurationError,
    ConnectionClosed,
    ConnectionLost,
    HandshakeError,
    HealthConfig,
    KalshiConfig,
    KalshiStreamClient,
    Lagged,
    ProtocolError,
    Reconnected,
    ReconnectPolicy,
    Resubscribed,
    SequenceGap,
    SlowConsumerError,
    StreamUpdate,
    SubscriptionError,
)
from kalshi_ws.reconnect import backoff_ceiling
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector, SentCommands, Signal, poll_public_state
from tests.timing import MS, WAIT

Connect = Callable[..., KalshiStreamClient]

FAST = ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05), restore_timeout=5)
QUIET = HealthConfig(ping_interval=None, idle_timeout=None)


def ticker(market: str = "SIM-ALPHA", price: str = "0.5000") -> dict[str, Any]:
    return {"market_ticker": market, "price_dollars": price}


def trade(number: int, market: str = "SIM-ALPHA") -> dict[str, Any]:
    return {"trade_id": str(number), "market_ticker": market, "count_fp": "1.00"}


def final_item(collector: Collector) -> Any:
    return collector.final()


def reconnected(collector: Collector, count: int = 1) -> list[Reconnected]:
    return collector.wait_for(
        lambda items: len([i for i in items if isinstance(i, Reconnected)]) >= count
        and [i for i in items if isinstance(i, Reconnected)])


# ---------------------------------------------------------------- reconnect and restore


def test_abrupt_drop_reconnects_and_restores_every_subscription(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    book = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA"],
                            use_yes_price=True).successful[0]
    client.add_markets(book.sid, ["SIM-BRAVO", "SIM-CHARLIE"])
    client.remove_markets(book.sid, ["SIM-CHARLIE"])
    client.subscribe([Channel.TRADE])
    # Restored last, ticker's reply is followed at once by its initial snapshot: the
    # announcement must still come first.
    client.subscribe([Channel.TICKER], ["SIM-ALPHA"], send_initial_snapshot=True)
    server.step_market("SIM-ALPHA", count=3)
    before = {s.channel: s.sid for s in client.subscriptions()}
    server.start_simulation(interval=0.002, trades=0.5)  # data keeps flowing throughout

    with caplog.at_level(logging.INFO, logger="kalshi_ws"):
        server.drop_connections()
        (event,) = reconnected(collector)

    after = {s.channel: s.sid for s in client.subscriptions()}
    assert set(after) == set(before)
    assert dict(event.sid_map) == {before[c]: after[c] for c in before}
    assert event.attempt >= 1 and event.downtime > 0 and event.failed == ()
    # The restored subscriptions carry the current markets and the same options.
    (subs,) = server.subscriptions()
    restored = {s.channel: s for s in subs}
    assert restored["orderbook_delta"].markets == {"SIM-ALPHA", "SIM-BRAVO"}
    assert restored["orderbook_delta"].params["use_yes_price"] is True
    assert restored["ticker"].params["send_initial_snapshot"] is True
    assert client.subscriptions()[0].market_tickers in (("SIM-ALPHA", "SIM-BRAVO"),
                                                       ("SIM-BRAVO", "SIM-ALPHA"))
    # Lifecycle in order: the loss, nothing from the dead connection's successor
    # before the announcement, then fresh snapshots for every book.
    items = collector.items
    lost = next(i for i, item in enumerate(items) if isinstance(item, ConnectionLost))
    announced = items.index(event)
    assert items[lost].will_reconnect and not items[lost].final
    assert all(not isinstance(item, StreamUpdate) for item in items[lost + 1:announced])
    collector.wait_for(lambda items: len({u.msg.market_ticker for u in items[announced:]
                                          if isinstance(u, StreamUpdate)
                                          and u.type == "orderbook_delta"}) == 2)
    server.stop_simulation()
    for market in ("SIM-ALPHA", "SIM-BRAVO"):
        book_messages = [u.type for u in items[announced:] if isinstance(u, StreamUpdate)
                         and u.channel == Channel.ORDERBOOK_DELTA
                         and u.msg.market_ticker == market]
        assert book_messages[0] == "orderbook_snapshot", market  # never a stale delta first
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost" in m and r.levelno == logging.WARNING
               for m, r in zip(messages, caplog.records))
    assert any(m.startswith("reconnected") and r.levelno == logging.INFO
               for m, r in zip(messages, caplog.records))
    assert client.stats().reconnects == 1


def test_a_command_pending_at_the_drop_fails_and_the_next_one_works(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        sent_commands: SentCommands) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    server.stop_answering()
    errors: list[BaseException] = []

    def subscribe() -> None:
        try:
            client.subscribe(["trade"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    waiting = threading.Thread(target=subscribe)
    waiting.start()
    sent_commands.wait_for("subscribe")  # sent, so pending: the silent server never answers
    server.drop_connections()
    waiting.join(WAIT)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionLost)
    # Sent before the drop: its fate is unknown. Still being sent: it never left.
    assert "may or may not have taken effect" in str(errors[0]) or \
        "lost while sending" in str(errors[0])
    reconnected(collector)
    assert client.subscribe(["trade"]).ok


@pytest.mark.parametrize("code", [1000, 1001, 1011])
def test_any_server_close_is_followed_by_a_reconnect(server: FakeKalshiServer, connect: Connect,
                                                     collector: Collector, code: int) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.close_connections(code, "deploy")
    reconnected(collector)
    lost = collector.of_type(ConnectionLost)[0]
    assert lost.code == code and lost.will_reconnect
    server.publish("ticker", "ticker", ticker())
    collector.wait_for(lambda items: isinstance(items[-1], StreamUpdate))


def test_a_revoked_key_ends_the_client_instead_of_retrying(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        other_private_key: rsa.RSAPrivateKey) -> None:
    client = connect(reconnect=FAST, health=QUIET)
    client.add_callback(collector)
    server.set_public_key(other_private_key.public_key())
    server.drop_connections()
    final = final_item(collector)
    assert isinstance(final, ConnectionLost) and not final.will_reconnect
    assert isinstance(final.error, AuthenticationError)
    assert isinstance(client.close_reason, AuthenticationError)
    assert [status for _, status in server.handshakes] == [101, 401]
    with pytest.raises(ConnectionClosed):
        client.list_subscriptions()


def test_reconnect_gives_up_after_max_attempts(server: FakeKalshiServer, connect: Connect,
                                               collector: Collector) -> None:
    policy = ReconnectPolicy(backoff=Backoff(base=0.005, cap=0.01, max_attempts=3))
    client = connect(reconnect=policy, health=QUIET)
    client.add_callback(collector)
    server.reject_handshakes(503, count=None)
    server.drop_connections()
    final = final_item(collector)
    assert isinstance(final, ConnectionLost) and "gave up reconnecting after 3" in final.reason
    assert client.closed
    assert [s for _, s in server.handshakes] == [101, 503, 503, 503]


def test_fifty_failed_attempts_in_a_row_follow_the_backoff_policy(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff(base=0.002, cap=0.03, max_attempts=60)
    client = connect(reconnect=ReconnectPolicy(backoff=backoff), health=QUIET)
    client.add_callback(collector)
    server.drop_handshakes(25)
    server.reject_handshakes(503, count=25)
    with caplog.at_level(logging.INFO, logger="kalshi_ws.client"):
        server.drop_connections()
        reconnected(collector)
    delays = [float(m.group(2)) for m in (
        re.match(r"reconnect attempt (\d+) in ([\d.]+) s", r.getMessage())
        for r in caplog.records) if m]
    assert len(delays) == 51
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= backoff_ceiling(backoff, attempt)
    attempts = [t for t, _ in server.handshakes[1:]]
    assert [s for _, s in server.handshakes[1:]] == [0] * 25 + [503] * 25 + [101]
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for gap, delay in zip(gaps, delays[1:]):
        assert gap >= delay - 0.0015  # never earlier than the policy says (log rounding)
    assert collector.of_type(Reconnected)[0].attempt == 51


def test_a_reconnect_while_eight_threads_issue_commands(server: FakeKalshiServer,
                                                        connect: Connect,
                                                        collector: Collector) -> None:
    client = connect(reconnect=FAST, health=QUIET, command_timeout=5)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    stop = threading.Event()
    outcomes: dict[str, int] = {"ok": 0}
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    progress = Signal()  # called at each outcome

    def work(index: int) -> None:
        while not stop.is_set():
            try:
                if index % 2:
                    client.list_subscriptions()
                else:
                    client.subscribe(["trade"], [f"M-{index}"])
                name = "ok"
            except (ConnectionLost, CommandTimeout) as exc:
                name = type(exc).__name__
            except BaseException as exc:  # noqa: BLE001
                unexpected.append(exc)
                return
            with lock:
                outcomes[name] = outcomes.get(name, 0) + 1
            progress()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    progress.wait_until(lambda: outcomes["ok"] >= 16)
    server.drop_connections()
    reconnected(collector)
    done_before = outcomes["ok"]
    progress.wait_until(lambda: outcomes["ok"] >= done_before + 16)
    stop.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a command hung across the reconnect"
    assert not unexpected


def test_close_during_the_backoff_wait_ends_cleanly(server: FakeKalshiServer, connect: Connect,
                                                    collector: Collector) -> None:
    policy = ReconnectPolicy(backoff=Backoff(base=30, cap=30))
    client = connect(reconnect=policy, health=QUIET)
    client.add_callback(collector)
    server.drop_connections()
    collector.wait_for(lambda items: [i for i in items if isinstance(i, ConnectionLost)])
    started = time.monotonic()
    client.close(timeout=5_000 * MS)
    assert time.monotonic() - started < 5_000 * MS
    assert isinstance(final_item(collector), Closed)


# ---------------------------------------------------------------- liveness


def test_a_silent_server_is_detected_by_the_idle_timeout(server: FakeKalshiServer,
                                                         connect: Connect,
                                                         collector: Collector) -> None:
    health = HealthConfig(ping_interval=None, idle_timeout=1.0)
    client = connect(health=health)
    client.add_callback(collector)
    started = time.monotonic()
    server.stop_answering()
    final = final_item(collector)
    elapsed = time.monotonic() - started
    assert isinstance(final, ConnectionLost) and "idle timeout" in final.reason
    # Within idle_timeout + 1 s (+ slack for a loaded machine). No lower bound: the idle
    # clock starts at the last frame received, which can precede `started`.
    assert elapsed < 1.0 + 1.0 + 1_000 * MS
    assert client.closed


def test_a_silent_server_is_detected_by_the_pong_timeout(server: FakeKalshiServer,
                                                         connect: Connect,
                                                         collector: Collector) -> None:
    health = HealthConfig(ping_interval=0.2, pong_timeout=0.5, idle_timeout=30)
    client = connect(health=health)
    client.add_callback(collector)
    server.stop_answering()
    final = final_item(collector)
    assert isinstance(final, ConnectionLost) and "pong timeout" in final.reason


def test_a_server_that_never_pongs_is_dropped_even_while_data_flows(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    health = HealthConfig(ping_interval=0.2, pong_timeout=0.5, idle_timeout=30)
    client = connect(health=health, reconnect=FAST)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.mute_pongs()
    # A ticker every 50 ms (a trade, then a ticker, at each step), well within the pong
    # timeout: part of the scenario, not a bound on a wait.
    server.start_simulation(interval=0.05, trades=1.0)
    try:
        lost = collector.wait_for(lambda items: [i for i in items
                                                 if isinstance(i, ConnectionLost)])
        assert collector.updates("ticker"), "no data flowed before the drop"
    finally:
        server.stop_simulation()
    assert "pong timeout" in lost[0].reason
    reconnected(collector)  # and it recovers


# ---------------------------------------------------------------- sequence numbers


def test_a_gap_on_an_order_book_triggers_a_resync(server: FakeKalshiServer, client:
                                                  KalshiStreamClient,
                                                  collector: Collector) -> None:
    client.add_callback(collector)
    book = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA", "SIM-BRAVO"]).successful[0]
    server.step_market("SIM-ALPHA", count=2)
    server.skip_seq("orderbook_delta")
    server.step_market("SIM-ALPHA", count=1)  # arrives with a hole before it
    (gap,) = collector.wait_for(lambda items: [i for i in items if isinstance(i, SequenceGap)])
    assert (gap.sid, gap.expected, gap.received) == (book.sid, gap.expected, gap.expected + 1)
    server.wait_for_command("update_subscription")
    resync = next(c for c in server.commands if c["cmd"] == "update_subscription")
    assert resync["params"]["action"] == "get_snapshot"
    assert sorted(resync["params"]["market_tickers"]) == ["SIM-ALPHA", "SIM-BRAVO"]
    index = collector.items.index(gap)
    collector.wait_for(lambda items: len([u for u in items[index:] if isinstance(
        u, StreamUpdate) and u.type == "orderbook_snapshot"]) == 2)
    after = [u.type for u in collector.items[index + 1:] if isinstance(u, StreamUpdate)]
    assert after[:2] == ["orderbook_snapshot", "orderbook_snapshot"], after
    assert client.stats().channels["orderbook_delta"].gaps == 1


def test_a_gap_on_trades_is_reported_and_the_stream_goes_on(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    client.add_callback(collector)
    client.subscribe(["trade"])
    server.publish("trade", "trade", trade(1))
    server.skip_seq("trade", count=2)
    server.publish("trade", "trade", trade(2))
    collector.wait_for(lambda items: len(collector.updates()) == 2)
    (gap,) = collector.of_type(SequenceGap)
    assert gap.received - gap.expected == 2
    assert [c["cmd"] for c in server.commands] == ["subscribe"]  # nothing to resync


def test_a_duplicate_sequence_number_is_dropped(server: FakeKalshiServer,
                                                client: KalshiStreamClient,
                                                collector: Collector) -> None:
    client.add_callback(collector)
    client.subscribe(["trade"])
    server.publish("trade", "trade", trade(1))
    assert server.repeat_last("trade") == 1
    server.publish("trade", "trade", trade(2))
    collector.wait_for(lambda items: len(collector.updates()) == 2)
    assert [u.msg.trade_id for u in collector.updates()] == ["1", "2"]
    assert client.stats().channels["trade"].duplicates == 1
    assert not collector.of_type(SequenceGap)


def test_error_25_on_an_order_book_resubscribes_with_fresh_snapshots(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector) -> None:
    client.add_callback(collector)
    old = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA"]).successful[0]
    server.send_subscription_error("orderbook_delta", 25)
    (moved,) = collector.wait_for(lambda items: [i for i in items
                                                 if isinstance(i, Resubscribed)])
    (error,) = collector.of_type(SubscriptionError)
    assert (error.sid, error.code) == (old.sid, 25)
    assert moved.old_sid == old.sid and moved.new_sid != old.sid
    assert [s.sid for s in client.subscriptions()] == [moved.new_sid]
    index = collector.items.index(moved)
    collector.wait_for(lambda items: [u for u in items[index:] if isinstance(u, StreamUpdate)])
    first = next(u for u in collector.items[index:] if isinstance(u, StreamUpdate))
    assert (first.type, first.sid) == ("orderbook_snapshot", moved.new_sid)


# ---------------------------------------------------------------- backpressure


def test_a_slow_callback_on_ticker_drops_oldest_and_says_so(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(max_pending=10, queue=False)
    release = threading.Event()
    entered = threading.Event()

    def slow(item: Any) -> None:
        entered.set()
        release.wait(WAIT)  # stuck until released

    client.add_callback(slow)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker(price="0.0000"))
    assert entered.wait(5_000 * MS)
    for number in range(1, 51):
        server.publish("ticker", "ticker", ticker(price=f"0.{number:04d}"))
    client.list_subscriptions(timeout=WAIT)  # answered after the 50 tickers before it were read
    assert client.stats().channels["ticker"].received == 51
    release.set()
    lagged = collector.wait_for(lambda items: [i for i in items if isinstance(i, Lagged)])
    collector.wait_for(lambda items: items and isinstance(items[-1], StreamUpdate)
                       and items[-1].msg.price_dollars == Decimal("0.0050"))
    delivered = len(collector.updates())
    assert sum(i.dropped for i in lagged) + delivered == 51
    assert client.stats().channels["ticker"].dropped == sum(i.dropped for i in lagged)
    prices = [u.msg.price_dollars for u in collector.updates()]
    assert prices == sorted(prices)  # what is kept stays in order; the newest survives


def test_a_slow_callback_on_a_stateful_channel_ends_the_client_loudly(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(max_pending=10, queue=False, health=QUIET)
    release = threading.Event()
    client.add_callback(lambda item: release.wait(WAIT) if isinstance(item, StreamUpdate)
                        else None)
    client.add_callback(collector)
    client.subscribe(["trade"])
    for number in range(30):
        server.publish("trade", "trade", trade(number))
    server.wait_for_sessions(0, timeout=WAIT)  # the client gave up its connection: it died
    release.set()
    final = final_item(collector)
    assert isinstance(final, ConnectionLost)
    assert isinstance(final.error, SlowConsumerError)
    assert isinstance(client.close_reason, SlowConsumerError)
    assert client.stats().channels["trade"].dropped == 0  # lost loudly, never silently


def test_an_unread_queue_overflow_says_what_to_do(server: FakeKalshiServer, connect: Connect,
                                                  collector: Collector) -> None:
    client = connect(queue=True, queue_maxsize=5, health=QUIET)
    client.add_callback(collector)
    client.subscribe(["trade"])
    for number in range(10):
        server.publish("trade", "trade", trade(number))
    final = final_item(collector)
    assert isinstance(final.error, SlowConsumerError)
    assert "nothing has read client.updates" in str(final.error)


def test_a_slow_consumer_with_reconnect_resyncs(server: FakeKalshiServer, connect: Connect,
                                                collector: Collector) -> None:
    client = connect(max_pending=10, queue=False, reconnect=FAST, health=QUIET)
    release = threading.Event()
    client.add_callback(lambda item: release.wait(WAIT) if isinstance(item, StreamUpdate)
                        else None)
    client.add_callback(collector)
    client.subscribe(["trade"])
    for number in range(30):
        server.publish("trade", "trade", trade(number))
    # The client drops its connection, then waits for the callbacks before reconnecting.
    server.wait_for_sessions(0, timeout=WAIT)
    release.set()
    (event,) = reconnected(collector)
    (lost,) = collector.of_type(ConnectionLost)
    assert isinstance(lost.error, SlowConsumerError) and lost.will_reconnect
    assert event.sid_map
    server.publish("trade", "trade", trade(99))
    collector.wait_for(lambda items: isinstance(items[-1], StreamUpdate)
                       and items[-1].msg.trade_id == "99")


def test_stats_count_every_channel(server: FakeKalshiServer, client: KalshiStreamClient,
                                   collector: Collector) -> None:
    client.add_callback(collector)
    client.subscribe(["ticker", "trade"])
    server.publish("ticker", "ticker", ticker())
    server.publish("trade", "trade", trade(1))
    server.publish("trade", "trade", trade(2))
    collector.wait_for(lambda items: len(items) == 3)
    stats = client.stats()
    assert stats.channels["ticker"].received == 1 and stats.channels["trade"].received == 2
    assert stats.channels["trade"].delivered == 2
    assert stats.total().received == 3


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_ca() -> Any:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def tls_server(tls_ca: Any, private_key: rsa.RSAPrivateKey) -> Any:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost").configure_cert(context)  # not valid for "127.0.0.1"
    with FakeKalshiServer(public_key=private_key.public_key(), ssl_context=context) as server:
        yield server


def test_tls_with_the_ca_trusted_connects(tls_server: FakeKalshiServer, tls_ca: Any,
                                          private_key: rsa.RSAPrivateKey) -> None:
    assert tls_server.url.startswith("wss://localhost:")
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    config = KalshiConfig("k", private_key, ws_url=tls_server.url)
    with KalshiStreamClient.connect(config, ssl_context=context) as client:
        assert client.subscribe(["ticker"]).ok


def test_tls_without_the_ca_fails_with_a_clear_error(tls_server: FakeKalshiServer,
                                                     private_key: rsa.RSAPrivateKey) -> None:
    config = KalshiConfig("k", private_key, ws_url=tls_server.url)
    with pytest.raises(HandshakeError) as caught:
        KalshiStreamClient.connect(config)
    assert "certificate verification failed" in str(caught.value)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_tls_checks_the_host_name(tls_server: FakeKalshiServer, tls_ca: Any,
                                  private_key: rsa.RSAPrivateKey) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    wrong_host = tls_server.url.replace("localhost", "127.0.0.1")  # not in the certificate
    config = KalshiConfig("k", private_key, ws_url=wrong_host)
    with pytest.raises(HandshakeError, match="certificate verification failed"):
        KalshiStreamClient.connect(config, ssl_context=context, timeout=3)


def test_turning_verification_off_is_never_silent(tls_server: FakeKalshiServer,
                                                  private_key: rsa.RSAPrivateKey,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    config = KalshiConfig("k", private_key, ws_url=tls_server.url)
    with caplog.at_level(logging.WARNING, logger="kalshi_ws"), \
            KalshiStreamClient.connect(config, ssl_context=context) as client:
        assert client.state == "OPEN"
    assert "does not verify the server certificate" in caplog.text


# ---------------------------------------------------------------- review regressions


def test_dropping_under_load_never_kills_the_reader(server: FakeKalshiServer,
                                                    connect: Connect) -> None:
    # The drop path searches the callbacks' inbox while the dispatcher empties it.
    client = connect(max_pending=200, queue=False, health=QUIET)
    client.add_callback(lambda item: threading.Event().wait(0.1 * MS))  # a slow consumer
    client.subscribe(["ticker"])
    for _ in range(5):
        server.publish_many(("ticker", "ticker", ticker(f"M{n % 7}", "0.5000"))
                            for n in range(3_000))
    client.list_subscriptions(timeout=3 * WAIT)  # answered after every ticker was read
    assert client.stats().channels["ticker"].received == 15_000
    # No event says the callbacks' backlog is empty: a callback sees the last item
    # before the backlog counts it done.
    poll_public_state(lambda: client.stats().pending == 0, 3 * WAIT, "an empty backlog")
    stats = client.stats().channels["ticker"]
    assert client.state == "OPEN" and client.close_reason is None
    assert stats.dropped > 0 and stats.delivered + stats.dropped == stats.received


def test_close_during_a_reconnect_handshake_returns_at_once(
        private_key: rsa.RSAPrivateKey) -> None:
    import socket as socket_module

    server = FakeKalshiServer(public_key=private_key.public_key()).start()
    config = KalshiConfig("k", private_key, ws_url=server.url)
    client = KalshiStreamClient.connect(config, reconnect=FAST, health=QUIET, timeout=30)
    lost = Collector()
    client.add_callback(lost)
    port = server.port
    server.stop(abrupt=True)
    # A listener that accepts TCP but never answers the HTTP upgrade.
    silent = socket_module.socket()
    silent.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", port))
    silent.listen(16)
    try:
        lost.wait_for(lambda items: [i for i in items if isinstance(i, ConnectionLost)])
        silent.settimeout(WAIT)
        accepted, _ = silent.accept()  # a reconnect attempt is in its handshake
        started = time.monotonic()
        client.close(timeout=5_000 * MS)
        assert time.monotonic() - started < 2_000 * MS
        assert client.closed
        assert isinstance(final_item(lost), Closed)
        accepted.close()
    finally:
        silent.close()


def test_updates_read_before_a_failed_send_are_still_delivered(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(health=QUIET)
    client.add_callback(collector)
    book = client.subscribe([Channel.ORDERBOOK_DELTA], ["SIM-ALPHA"]).successful[0]
    client.subscribe(["trade"])
    transport = client._session.transport
    sent = transport.send_text

    def failing_send(text: str) -> None:  # a reset arriving right after the read
        if "get_snapshot" in text:
            from kalshi_ws import ConnectionLost as Lost
            raise Lost("send failed: connection reset")
        sent(text)

    transport.send_text = failing_send  # the transport seam: a fault sockets cannot time
    server.lose_next("orderbook_delta", 1)
    server.step_market("SIM-ALPHA", count=2)  # the gap asks for a get_snapshot
    final = final_item(collector)
    assert isinstance(final, ConnectionLost)
    kinds = [type(i).__name__ for i in collector.items]
    assert "SequenceGap" in kinds  # it was read before the send failed, and delivered
    assert book.sid in {i.sid for i in collector.items if isinstance(i, SequenceGap)}


def test_a_callback_calling_sys_exit_does_not_stop_delivery(
        server: FakeKalshiServer, client: KalshiStreamClient, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    def exits(item: Any) -> None:
        raise SystemExit(1)

    client.add_callback(exits)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", ticker())
    server.publish("ticker", "ticker", ticker())
    collector.wait_for(lambda items: len(items) == 2)
    assert "SystemExit" in caplog.text


def test_no_callback_starts_after_close_returns_on_a_client_that_died(
        server: FakeKalshiServer, connect: Connect) -> None:
    """Issue 10, defect 5: after a SlowConsumerError, close() used to return while the
    dispatcher went on calling the callback through the whole backlog."""
    client = connect(max_pending=200, queue=False, health=QUIET)
    release = threading.Event()
    calls: list[float] = []

    def slow(item: Any) -> None:
        calls.append(time.monotonic())
        release.wait(20 * MS)  # a slow consumer, not a stuck one: a pause, not a wait

    client.add_callback(slow)
    client.subscribe(["trade"])
    server.publish_many(("trade", "trade", trade(n)) for n in range(1_000))
    # Died (SlowConsumerError) with a backlog. The final item that announces it waits
    # behind that backlog, so nothing delivered can say so sooner: read the state.
    poll_public_state(lambda: client.closed, what="the client's end")
    assert isinstance(client.close_reason, SlowConsumerError)
    client.close(timeout=1_000 * MS)
    returned = len(calls)
    dispatchers = [t for t in threading.enumerate() if t.name.startswith("kalshi-ws-dispatch")]
    for thread in dispatchers:
        thread.join(WAIT)
    assert len(calls) == returned


def test_close_with_a_slow_callback_ends_the_dispatcher_within_its_timeout(
        server: FakeKalshiServer, connect: Connect,
        caplog: pytest.LogCaptureFixture) -> None:
    """close() keeps part of its timeout to end the threads: a slow (not stuck) callback
    no longer makes it wait the whole timeout and then abandon the dispatcher."""
    client = connect(queue=False, health=QUIET)
    started = threading.Event()
    pause = threading.Event()

    def slow(item: Any) -> None:
        started.set()
        pause.wait(50 * MS)  # a slow callback: a pause, not a wait

    client.add_callback(slow)
    client.subscribe(["ticker"])
    server.publish_many(("ticker", "ticker", ticker(price=f"0.{n:04d}")) for n in range(200))
    assert started.wait(WAIT)
    client.close(timeout=1_000 * MS)
    assert not [t for t in threading.enumerate() if t.name.startswith("kalshi-ws-dispatch")
                and t.is_alive()]
    assert "abandoning the dispatcher" not in caplog.text
    assert "were not delivered" in caplog.text  # the discarded rest is reported


def test_a_message_over_max_message_size_ends_the_connection_naming_its_size(
        server: FakeKalshiServer, connect: Connect, collector: Collector) -> None:
    client = connect(max_message_size=10_000, health=QUIET)
    client.add_callback(collector)
    server.send_raw(json.dumps({"type": "ticker", "sid": 1, "msg": {"pad": "x" * 20_000}}))
    final = final_item(collector)
    assert isinstance(final, ConnectionLost)
    assert isinstance(client.close_reason, ProtocolError)
    assert "over max_message_size (10000 bytes)" in str(client.close_reason)


@pytest.mark.parametrize("size", [0, -5, 1.5, "big", True])
def test_max_message_size_is_checked_at_connect(server: FakeKalshiServer, connect: Connect,
                                                size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_message_size"):
        connect(max_message_size=size)


def test_retry_after_is_honoured_on_reconnect(server: FakeKalshiServer, connect: Connect,
                                              collector: Collector) -> None:
    policy = ReconnectPolicy(backoff=Backoff(base=0.001, cap=5))
    client = connect(reconnect=policy, health=QUIET)
    client.add_callback(collector)
    server.reject_handshakes(503, count=1, retry_after="1")
    server.drop_connections()
    reconnected(collector)
    (_, first), (refused, status), (accepted, _) = server.handshakes
    assert (first, status) == (101, 503)
    assert accepted - refused >= 1.0


def test_the_backoff_does_not_reset_while_connections_keep_failing_at_once(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10, defect 7: a server that accepts, lets the client restore, then drops it
    at once used to get a reconnect from the smallest wait every time."""
    backoff = Backoff(base=0.001, cap=0.1)
    client = connect(reconnect=ReconnectPolicy(backoff=backoff, healthy_after=60),
                     health=QUIET)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    with caplog.at_level(logging.INFO, logger="kalshi_ws.client"):
        for flap in range(1, 6):
            _drop_and_await_reconnect(server, collector, flap)
    assert _logged_ceilings(caplog) == [backoff_ceiling(backoff, level) for level in range(5)]


def test_the_backoff_starts_small_again_after_a_healthy_connection(
        server: FakeKalshiServer, connect: Connect, collector: Collector,
        caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff(base=0.001, cap=0.1)
    client = connect(reconnect=ReconnectPolicy(backoff=backoff, healthy_after=0.005),
                     health=QUIET)
    stay_up = threading.Event()
    client.add_callback(collector)
    client.subscribe(["ticker"])
    with caplog.at_level(logging.INFO, logger="kalshi_ws.client"):
        for flap in range(1, 4):
            _drop_and_await_reconnect(server, collector, flap)
            stay_up.wait(20 * MS)  # the rule under test is about time: let the connection age
    assert _logged_ceilings(caplog) == [backoff_ceiling(backoff, 0)] * 3


def _drop_and_await_reconnect(server: FakeKalshiServer, collector: Collector,
                              reconnects: int) -> None:
    """Drop the connection and wait for the client's ``reconnects``-th Reconnected."""
    server.drop_connections()
    collector.wait_for(lambda items: len(
        [i for i in items if isinstance(i, Reconnected)]) == reconnects)


def _logged_ceilings(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The backoff ceilings the client logged before each reconnect attempt, in order."""
    return [float(m.group(1)) for m in (
        re.search(r"backoff ceiling ([\d.]+) s", r.getMessage()) for r in caplog.records) if m]

