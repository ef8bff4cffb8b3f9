"""The public seam features are built on (README: Building on the client), used from
outside exactly as OrderBookSet uses it, against the fake server's market simulator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    BookState,
    Channel,
    HealthConfig,
    InvalidCommand,
    KalshiConfig,
    KalshiStreamClient,
    OrderbookSnapshot,
    StreamUpdate,
)
from kalshi_ws.testing import FakeKalshiServer, MarketSimulator
from tests.conftest import Collector

MARKETS = ["SEAM-A", "SEAM-B"]
QUIET = HealthConfig(ping_interval=None, idle_timeout=None)


@pytest.fixture
def book_client(private_key: rsa.RSAPrivateKey) -> Iterator[tuple[FakeKalshiServer,
                                                                   KalshiStreamClient]]:
    simulator = MarketSimulator(MARKETS, seed=7, levels=5)
    with FakeKalshiServer(public_key=private_key.public_key(), simulator=simulator) as server:
        client = KalshiStreamClient.connect(KalshiConfig("k", private_key, ws_url=server.url),
                                            health=QUIET)
        try:
            yield server, client
        finally:
            client.close()


class Snapshots:
    """A listener keeping the last snapshot object seen per market."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}
        self.changed = threading.Condition()

    def __call__(self, item: Any) -> None:
        if isinstance(item, StreamUpdate) and isinstance(item.msg, OrderbookSnapshot):
            with self.changed:
                self.latest[item.msg.market_ticker] = item.msg
                self.changed.notify_all()

    def wait_for_new(self, market: str, old: Any, timeout: float = 10) -> Any:
        with self.changed:
            assert self.changed.wait_for(  # a new object, though its book may be equal
                lambda: self.latest.get(market) is not None and
                self.latest[market] is not old, timeout)
            return self.latest[market]


@pytest.mark.timeout(60)
def test_book_state_names_the_snapshot_delivered_and_resync_books_distrusts_it(
        book_client: tuple[FakeKalshiServer, KalshiStreamClient]) -> None:
    _, client = book_client
    assert client.book_state("SEAM-A") == BookState(synced=False, snapshot=None)
    snapshots = Snapshots()
    client.add_listener(snapshots, [Channel.ORDERBOOK_DELTA])
    client.subscribe([Channel.ORDERBOOK_DELTA], MARKETS)
    first = snapshots.wait_for_new("SEAM-A", None)
    snapshots.wait_for_new("SEAM-B", None)
    state = client.book_state("SEAM-A")
    assert state.synced and state.snapshot is first  # the very object delivered

    assert client.resync_books(["SEAM-A", "NOT-SUBSCRIBED"]) == ["SEAM-A"]
    assert not client.book_state("SEAM-A").synced  # at once, before any reply
    assert client.book_state("SEAM-B").synced  # the other book is untouched
    second = snapshots.wait_for_new("SEAM-A", first)
    state = client.book_state("SEAM-A")
    assert state.snapshot is second
    with snapshots.changed:  # synced again once the fresh snapshot was accepted
        assert state.synced or snapshots.changed.wait_for(
            lambda: client.book_state("SEAM-A").synced, 10)


@pytest.mark.timeout(30)
def test_add_listener_leaves_the_queue_on_where_add_callback_turns_it_off(
        client: KalshiStreamClient, server: FakeKalshiServer) -> None:
    def tick(n: int) -> None:
        server.publish("ticker", "ticker", {"market_ticker": f"SEAM-{n}", "price_dollars": "0.5"})

    def seen(collector: Collector, n: int) -> None:
        collector.wait_for(lambda items: any(
            getattr(getattr(i, "msg", None), "market_ticker", None) == f"SEAM-{n}"
            for i in items))

    listener = Collector()
    client.add_listener(listener)
    client.subscribe(["ticker"])
    tick(1)
    tick(2)
    seen(listener, 2)  # the dispatcher has finished with ticker 1: called back, queued
    assert client.stats().queued >= 1  # the queue stayed on
    with pytest.raises(InvalidCommand, match="listener must be callable"):
        client.add_listener("not a function")  # type: ignore[arg-type]
    user = Collector()
    client.add_callback(user)  # the user's first callback turns the unread queue off
    tick(3)
    tick(4)
    seen(user, 4)
    assert client.stats().queued == 0


@pytest.mark.timeout(30)
def test_on_dispatcher_thread_and_report_callback_error(connect: Any,
                                                       server: FakeKalshiServer) -> None:
    errors: list[tuple[BaseException, Any]] = []
    client = connect(on_error=lambda exc, item: errors.append((exc, item)))
    seen: list[bool] = []
    done = threading.Event()

    def feature(item: Any) -> None:
        if isinstance(item, StreamUpdate):
            seen.append(client.on_dispatcher_thread())
            client.report_callback_error(feature, item, ValueError("the feature failed"))
            done.set()

    client.add_listener(feature, ["ticker"])
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", {"market_ticker": "SEAM-A", "price_dollars": "0.5"})
    assert done.wait(10)
    assert seen[0] is True and client.on_dispatcher_thread() is False
    assert str(errors[0][0]) == "the feature failed"
    assert client.stats().callback_errors == 1


@pytest.mark.timeout(30)
def test_subscription_options_are_those_subscribed_with(client: KalshiStreamClient) -> None:
    result = client.subscribe([Channel.ORDERBOOK_DELTA], ["SEAM-A"], use_yes_price=True)
    sid = result.successful[0].sid
    assert client.subscription_options(sid)["use_yes_price"] is True
    assert client.subscription_options(sid + 1000) == {}
