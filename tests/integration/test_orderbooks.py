"""Live order books against the fake server's market simulator: exact, or flagged."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Backoff,
    Channel,
    ConcurrencyError,
    HealthConfig,
    InvalidCommand,
    KalshiConfig,
    KalshiStreamClient,
    MalformedMessage,
    Reconnected,
    ReconnectPolicy,
    StreamUpdate,
)
from kalshi_ws.testing import FakeKalshiServer, MarketSimulator
from kalshi_ws.testing.server import book_fingerprint
from tests.conftest import Collector, Signal
from tests.timing import MS, WAIT

MARKETS = ["BOOK-A", "BOOK-B", "BOOK-C", "BOOK-D", "BOOK-E"]
FAST = ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05))
QUIET = HealthConfig(ping_interval=None, idle_timeout=None)


@pytest.fixture
def book_server(private_key: rsa.RSAPrivateKey) -> Iterator[FakeKalshiServer]:
    simulator = MarketSimulator(MARKETS, seed=404, levels=10, fractional=0.3)
    with FakeKalshiServer(public_key=private_key.public_key(), simulator=simulator,
                          track_books=True) as server:
        yield server


@pytest.fixture
def book_config(book_server: FakeKalshiServer, private_key: rsa.RSAPrivateKey) -> KalshiConfig:
    return KalshiConfig("k", private_key, ws_url=book_server.url)


def truth(server: FakeKalshiServer, market: str) -> int:
    book = server.call(lambda: server.simulator.book(market))
    return book_fingerprint(book["yes"].items(), book["no"].items())


def fingerprint(snapshot: Any) -> int:
    return book_fingerprint(snapshot.yes_bids, snapshot.no_bids)


class Auditor:
    """Records, at every book change, the book as the client had it and whether it said
    it was synced, with the connection it came from (counted in stream order)."""

    def __init__(self, books: Any) -> None:
        self.books = books
        self.connection = 1
        self.observations: list[tuple[int, str, int | None, int, bool]] = []
        self.lock = threading.Lock()
        self.reconnected = threading.Event()

    def on_item(self, item: Any) -> None:
        if isinstance(item, Reconnected):
            self.connection += 1
            self.reconnected.set()

    def on_change(self, market: str, top: Any) -> None:
        snapshot = self.books.get(market)
        synced = self.books.is_synced(market)
        with self.lock:
            self.observations.append((self.connection, market, snapshot.last_seq,
                                      fingerprint(snapshot), synced))


def wait_caught_up(server: FakeKalshiServer, books: Any, timeout: float = 3 * WAIT) -> None:
    """Wait until every book is synced at the last sequence number the server sent on its
    latest connection; checked again at each change of a book (an on_change listener)."""
    changed = Signal()
    books.on_change(changed)
    last: dict[tuple[int, str], int] = {}  # (connection, market): the last seq sent
    read = 0  # how much of the server's book log is in ``last``

    def caught_up() -> bool:
        nonlocal read
        log = server.book_log
        end = len(log)
        for connection, seq, market, _ in log[read:end]:
            last[connection, market] = max(seq, last.get((connection, market), seq))
        read = end
        if not all(books.is_synced(m) for m in MARKETS):
            return False
        latest = max(connection for connection, _ in last)
        return all(books.get(m).last_seq == last.get((latest, m)) for m in MARKETS)

    changed.wait_until(caught_up, timeout, "books caught up with the server")


@pytest.mark.timeout(120)
def test_books_stay_exact_through_gaps_duplicates_and_a_drop(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    server = book_server
    with KalshiStreamClient.connect(book_config, reconnect=FAST, health=QUIET,
                                    queue=False) as client:
        books = client.orderbooks(MARKETS)
        auditor = Auditor(books)
        client.add_callback(auditor.on_item)
        books.on_change(auditor.on_change)
        assert books.wait_synced(timeout=WAIT)

        faults: list[tuple[str, Callable[[], Any]]] = [
            ("loss", lambda: server.lose_next("orderbook_delta", 3)),
            ("duplicate", lambda: server.repeat_last("orderbook_delta")),
            ("hole with nothing lost", lambda: server.skip_seq("orderbook_delta", 2)),
            ("reset connection", server.drop_connections),
            ("loss", lambda: server.lose_next("orderbook_delta", 1)),
            ("duplicate", lambda: server.repeat_last("orderbook_delta")),
        ]
        sent = 0
        for name, fault in faults:
            server.step_market(count=2_500)
            sent += 2_500
            fault()
            if name == "reset connection":  # let it reconnect before going on
                assert auditor.reconnected.wait(WAIT)
                assert books.wait_synced(timeout=WAIT)
        server.step_market(count=20_000 - sent)
        wait_caught_up(server, books)

        # At the end, every book equals the server's true book exactly.
        for market in MARKETS:
            assert books.is_synced(market)
            assert fingerprint(books.get(market)) == truth(server, market), market
        # Whenever a book said it was synced, it equalled the truth at that seq.
        true_at = {(c, seq, m): f for c, seq, m, f in server.book_log}
        checked = set()
        for connection, market, seq, print_, synced in auditor.observations:
            if synced:
                assert print_ == true_at[(connection, seq, market)], (connection, market, seq)
                checked.add((connection, market))
        # The audit is not vacuous: every book was checked on both connections. (How
        # many changes fall inside resync windows depends on thread scheduling, so the
        # number of checked observations is not asserted.)
        assert checked == {(connection, market) for connection in (1, 2) for market in MARKETS}
        # ...and it did say "unsynced" while the lost deltas were missing.
        assert any(not synced for *_, synced in auditor.observations)
        stats = client.stats().channels["orderbook_delta"]
        assert stats.gaps >= 3 and stats.duplicates >= 2 and stats.held_back > 0
        assert books.resyncs >= 3 and client.stats().reconnects == 1


def test_books_read_the_same_in_both_price_conventions(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as plain, \
            KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as yes_terms:
        books_plain = plain.orderbooks(MARKETS[:2])
        books_yes = yes_terms.orderbooks(MARKETS[:2], use_yes_price=True)
        changed = Signal()  # called at every change of either set's books
        books_plain.on_change(changed)
        books_yes.on_change(changed)
        assert books_yes.use_yes_price and not books_plain.use_yes_price
        book_server.step_market(count=500)
        wait_caught_up_both = [books_plain, books_yes]
        for books in wait_caught_up_both:
            assert books.wait_synced(timeout=WAIT)
        for market in MARKETS[:2]:
            expected = truth(book_server, market)
            for books in wait_caught_up_both:
                changed.wait_until(lambda books=books, market=market, expected=expected:
                                   fingerprint(books.get(market)) == expected,
                                   what=f"{market}'s book equal to the server's")
                assert fingerprint(books.get(market)) == expected
            a, b = books_plain.get(market), books_yes.get(market)
            assert (a.best_yes_bid, a.best_yes_ask, a.spread, a.mid) == \
                (b.best_yes_bid, b.best_yes_ask, b.spread, b.mid)


def test_get_wait_and_change_callbacks(book_server: FakeKalshiServer,
                                       book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        changes = Collector()
        books = client.orderbooks(MARKETS[:2])
        books.on_change(lambda market, top: changes((market, top)))
        assert books.wait_synced(timeout=WAIT)
        book = books.get(MARKETS[0])
        assert book.best_yes_bid is not None and isinstance(book.best_yes_bid, Decimal)
        assert book.best_yes_ask == 1 - book.best_no_bid
        assert books.get(MARKETS[0]) is book  # unchanged: the same immutable snapshot
        book_server.step_market(MARKETS[0], count=5)
        changes.wait_for(lambda items: len([i for i in items if i[0] == MARKETS[0]]) >= 5)
        market, top = changes.items[-1]
        assert top.market_ticker == market and top.last_seq is not None
        with pytest.raises(KeyError):
            books.get("NOT-IN-THE-SET")


def test_markets_can_be_added_and_removed(book_server: FakeKalshiServer,
                                          book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks([MARKETS[0]])
        assert books.wait_synced(timeout=WAIT)
        books.add_markets([MARKETS[1]])
        assert books.markets == MARKETS[:2]
        assert books.wait_synced(timeout=WAIT)
        assert fingerprint(books.get(MARKETS[1])) == truth(book_server, MARKETS[1])
        books.remove_markets([MARKETS[0]])
        assert books.markets == [MARKETS[1]]
        assert client.subscriptions()[0].market_tickers == (MARKETS[1],)
        books.close()
        assert client.subscriptions() == []


def test_market_arguments_are_tickers_not_letters(book_server: FakeKalshiServer,
                                                  book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        for bad in (None, 5, [""], []):
            with pytest.raises(InvalidCommand, match="market"):
                client.orderbooks(bad)  # type: ignore[arg-type]
        assert client.subscriptions() == []
        books = client.orderbooks(MARKETS[0])
        books.add_markets(MARKETS[1])  # one ticker as a plain string
        assert books.markets == MARKETS[:2]
        books.remove_markets(MARKETS[0])
        assert books.markets == [MARKETS[1]]
        assert client.subscriptions()[0].market_tickers == (MARKETS[1],)
        with pytest.raises(InvalidCommand, match="markets"):
            books.add_markets(None)  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand, match="timeout"):
            books.wait_synced(timeout=-1)


def test_waiting_for_a_sync_inside_a_callback_fails_instead_of_hanging(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        outcome: list[Any] = []
        done = threading.Event()

        def on_change(market: str, top: Any) -> None:
            if not done.is_set():
                try:  # a market that never syncs: the book thread would wait for itself
                    outcome.append(books.wait_synced(timeout=5, markets=["NOT-IN-THE-SET"]))
                except ConcurrencyError as exc:
                    outcome.append(exc)
                done.set()

        books.on_change(on_change)
        assert books.wait_synced(timeout=WAIT)
        book_server.step_market(MARKETS[0], count=1)
        assert done.wait(WAIT)
        assert isinstance(outcome[0], ConcurrencyError)


class _Stall(threading.Event):
    """Set it to let a stalled dispatcher go on; ``stalled`` is set once it stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()


def _stall_dispatcher_at_next_update(client: KalshiStreamClient) -> _Stall:
    """Stop the dispatcher inside a callback at the next update, until released."""
    release = _Stall()

    def block_dispatcher(item: Any) -> None:
        if isinstance(item, StreamUpdate) and not release.stalled.is_set():
            release.stalled.set()
            release.wait(WAIT)  # stuck until released

    client.add_callback(block_dispatcher)
    return release


def test_a_gap_marks_books_unsynced_at_once(book_server: FakeKalshiServer,
                                           book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        release = _stall_dispatcher_at_next_update(client)
        book_server.step_market(MARKETS[0])  # the dispatcher stops in the callback
        assert release.stalled.wait(5_000 * MS)
        book_server.lose_next("orderbook_delta", 1)
        book_server.step_market(MARKETS[0], count=2)  # the reader sees the hole
        # The reader asks for a fresh snapshot once it has flagged the book; the
        # dispatcher is still blocked.
        book_server.wait_for_command("update_subscription", timeout=WAIT)
        assert not books.is_synced(MARKETS[0])
        release.set()
        assert books.wait_synced(timeout=WAIT)
        assert books.resyncs == 1


def _synced_book_and_tickers(client: KalshiStreamClient) -> tuple[Any, Any, Collector]:
    """One market's synced book set, its book, and a collector of its ticker messages."""
    books = client.orderbooks(MARKETS[:1])
    client.subscribe([Channel.TICKER], MARKETS[:1])
    assert books.wait_synced(timeout=WAIT)
    seen = Collector()
    client.add_callback(seen, channels=[Channel.TICKER])
    return books, books.get(MARKETS[0]), seen


def _publish_ticker(server: FakeKalshiServer, book: Any, yes_bid: str | None = None) -> None:
    """A ticker of the book's best prices; with ``yes_bid``, one that disagrees."""
    server.publish("ticker", "ticker", {
        "market_ticker": MARKETS[0], "yes_bid_dollars": yes_bid or str(book.best_yes_bid),
        "yes_ask_dollars": str(book.best_yes_ask)})


def test_cross_check_against_ticker(book_server: FakeKalshiServer,
                                    book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books, book, seen = _synced_book_and_tickers(client)
        _publish_ticker(book_server, book)
        _publish_ticker(book_server, book, yes_bid="0.0100")
        seen.wait_for(lambda items: len(items) == 2)
        check = books.cross_check()
        assert (check.checked, check.disagreements) == (2, 1)
        assert "yes bid book" in check.last_disagreement


def test_a_ticker_is_not_held_against_a_book_awaiting_its_fresh_snapshot(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books, book, seen = _synced_book_and_tickers(client)
        release = _stall_dispatcher_at_next_update(client)
        _publish_ticker(book_server, book)  # agrees; checked, then the stall
        assert release.stalled.wait(5_000 * MS)
        _publish_ticker(book_server, book, yes_bid="0.0100")  # disagrees
        client.list_subscriptions(timeout=WAIT)  # its reply follows the ticker: read
        client.resync_books(MARKETS[:1])  # the reader now holds the book's deltas back
        release.set()
        seen.wait_for(lambda items: len(items) == 2)
        check = books.cross_check()
        assert (check.checked, check.disagreements) == (1, 0)


def test_a_delta_the_book_refuses_triggers_a_resync(book_server: FakeKalshiServer,
                                                   book_config: KalshiConfig,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        book_server.publish("orderbook_delta", "orderbook_delta", {
            "market_ticker": MARKETS[0], "market_id": "x", "price_dollars": "1.5000",
            "delta_fp": "5.00", "side": "yes"})
        book_server.wait_for_command("update_subscription")
        assert books.wait_synced(timeout=WAIT)
        assert books.resyncs == 1
        assert fingerprint(books.get(MARKETS[0])) == truth(book_server, MARKETS[0])
        assert "refused a delta" in caplog.text


# ---------------------------------------------------------------- review regressions


def test_a_second_and_a_recreated_set_sync(book_server: FakeKalshiServer,
                                          book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        first = client.orderbooks(MARKETS[:2])
        assert first.wait_synced(timeout=WAIT)
        second = client.orderbooks(MARKETS[:1])  # overlaps a live set: merged by Kalshi
        assert second.wait_synced(timeout=WAIT)
        assert fingerprint(second.get(MARKETS[0])) == truth(book_server, MARKETS[0])
        second.close()
        # The first set still has both markets: closing the second kept them.
        assert client.subscriptions()[0].market_tickers == tuple(MARKETS[:2])
        assert first.is_synced(MARKETS[0])
        first.close()
        assert client.subscriptions() == []
        again = client.orderbooks(MARKETS[:1])
        assert again.wait_synced(timeout=WAIT)
        assert fingerprint(again.get(MARKETS[0])) == truth(book_server, MARKETS[0])


def test_a_failed_add_markets_leaves_the_set_as_it_was(book_server: FakeKalshiServer,
                                                      book_config: KalshiConfig) -> None:
    from kalshi_ws import CommandTimeout

    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        book_server.stop_answering()
        with pytest.raises(CommandTimeout):
            books.add_markets([MARKETS[1]], timeout=0.3)
        assert books.markets == MARKETS[:1]
        book_server.resume_answering()
        assert books.wait_synced(timeout=WAIT)


def test_books_on_drop_oldest_resync_instead_of_building_on_a_hole(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    from kalshi_ws import Lagged

    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET, max_pending=100,
                                    overflow={Channel.ORDERBOOK_DELTA: "drop_oldest"}) as client:
        books = client.orderbooks(MARKETS)
        auditor = Auditor(books)
        books.on_change(auditor.on_change)
        assert books.wait_synced(timeout=WAIT)
        lagged = Collector()
        slow = threading.Event()
        client.add_callback(lambda item: (lagged(item) if isinstance(item, Lagged)
                                          else slow.wait(0.2 * MS)))  # slow: a pause
        book_server.step_market(count=4_000)
        lagged.wait_for(lambda items: items)
        wait_caught_up(book_server, books)
        for market in MARKETS:
            assert fingerprint(books.get(market)) == truth(book_server, market), market
        true_at = {(c, seq, m): f for c, seq, m, f in book_server.book_log}
        for connection, market, seq, print_, synced in auditor.observations:
            if synced:  # never "synced" while built on a hole
                assert print_ == true_at[(connection, seq, market)], (market, seq)
        assert client.stats().channels["orderbook_delta"].dropped > 0
        assert books.resyncs > 0 and client.state == "OPEN"


def test_order_books_leave_an_unread_queue_on(book_server: FakeKalshiServer,
                                             book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        first = client.updates.get(timeout=5_000 * MS)  # the queue kept the snapshot
        assert isinstance(first, StreamUpdate) and first.type == "orderbook_snapshot"


# ---------------------------------------------------------------- hostile frames (issue 10)


@pytest.mark.parametrize("bad_field", ["price_dollars", "market_ticker"])
def test_a_malformed_delta_unsyncs_the_book_at_once_and_resyncs_it(
        book_server: FakeKalshiServer, book_config: KalshiConfig, bad_field: str,
        caplog: pytest.LogCaptureFixture) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:2])
        assert books.wait_synced(timeout=WAIT)
        seen = Collector()

        def look(item: Any) -> None:
            # When the bad delta reaches the callbacks, which books say they are synced?
            if isinstance(item, StreamUpdate) and isinstance(item.msg, MalformedMessage):
                seen([m for m in MARKETS[:2] if not books.is_synced(m)])

        client.add_callback(look, Channel.ORDERBOOK_DELTA)
        bad = {"market_ticker": MARKETS[0], "market_id": "x", "price_dollars": "0.5000",
               "delta_fp": "5.00", "side": "yes", bad_field: ["not", "a", "value"]}
        book_server.publish("orderbook_delta", "orderbook_delta", bad,
                            market_ticker=MARKETS[0])
        (unsynced,) = seen.wait_for(lambda items: items)
        # A bad market field hides which book it was: every book of the sid is unsynced.
        assert unsynced == (MARKETS[:1] if bad_field == "price_dollars" else MARKETS[:2])
        book_server.wait_for_command("update_subscription")
        assert books.wait_synced(timeout=WAIT)
        for market in MARKETS[:2]:
            assert fingerprint(books.get(market)) == truth(book_server, market)
        assert "raised" not in caplog.text  # the set's own callback did not fail


def test_a_malformed_snapshot_is_followed_by_a_fresh_one(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        seen = Collector()
        client.add_callback(
            lambda item: seen(books.is_synced(MARKETS[0])) if isinstance(item, StreamUpdate)
            and isinstance(item.msg, MalformedMessage) else None, Channel.ORDERBOOK_DELTA)
        book_server.publish("orderbook_delta", "orderbook_snapshot", {
            "market_ticker": MARKETS[0], "market_id": "x", "yes_dollars_fp": "garbage"})
        assert seen.wait_for(lambda items: items) == [False]
        book_server.wait_for_command("update_subscription")
        assert books.wait_synced(timeout=WAIT)
        assert books.resyncs == 1
        assert fingerprint(books.get(MARKETS[0])) == truth(book_server, MARKETS[0])


# ---------------------------------------------------------------- many markets (issue 13)


def test_a_market_listed_twice_is_one_book(book_server: FakeKalshiServer,
                                           book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks([MARKETS[0], MARKETS[1], MARKETS[0]])
        assert books.markets == MARKETS[:2]
        assert books.wait_synced(timeout=WAIT)
        books.add_markets([MARKETS[2], MARKETS[2], MARKETS[1]])
        assert books.markets == MARKETS[:3]
        assert books.wait_synced(timeout=WAIT)
        assert client.subscriptions()[0].market_tickers == tuple(MARKETS[:3])


def test_wait_synced_for_some_markets_wakes_when_they_sync(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        book_server.stop_answering()  # the new market's snapshot waits
        waited: list[bool] = []
        waiter = threading.Thread(
            target=lambda: waited.append(books.wait_synced(timeout=2 * WAIT,
                                                           markets=MARKETS[1:2])))
        adder = threading.Thread(target=lambda: books.add_markets([MARKETS[1]],
                                                                  timeout=2 * WAIT))
        adder.start()
        waiter.start()
        assert not books.is_synced(MARKETS[1]) and books.is_synced(MARKETS[0])
        assert books.wait_synced(timeout=WAIT, markets=MARKETS[:1])  # the synced one: at once
        book_server.resume_answering()
        adder.join(2 * WAIT)
        waiter.join(2 * WAIT)
        assert waited == [True]
        assert books.is_synced(MARKETS[1])


def test_wait_synced_notices_a_gap_the_dispatcher_has_not_reached(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        release = _stall_dispatcher_at_next_update(client)
        book_server.step_market(MARKETS[0])
        assert release.stalled.wait(5_000 * MS)
        book_server.lose_next("orderbook_delta", 1)
        book_server.step_market(MARKETS[0], count=2)
        # The reader flags the hole, then asks for a fresh snapshot; the dispatcher is
        # blocked.
        book_server.wait_for_command("update_subscription", timeout=WAIT)
        # The set itself has applied every snapshot it was given, but the reader knows
        # better: wait_synced must not say synced.
        assert not books.wait_synced(timeout=300 * MS)
        release.set()
        assert books.wait_synced(timeout=WAIT)


def test_wait_synced_returns_false_when_the_client_closes(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    client = KalshiStreamClient.connect(book_config, queue=False, health=QUIET)
    books = client.orderbooks(MARKETS[:1])
    assert books.wait_synced(timeout=WAIT)
    waited: list[bool] = []
    waiting = threading.Thread(target=lambda: waited.append(
        books.wait_synced(timeout=3 * WAIT, markets=["NOT-IN-THE-SET"])))
    waiting.start()
    client.close()
    waiting.join(WAIT)
    assert waited == [False]
    assert not books.wait_synced(timeout=5)  # every book went unsynced with the client


def test_a_change_listener_that_raises_is_shown_counted_and_passed_to_on_error(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    """Review of issue 14: exceptions in on_change listeners were silent."""
    seen: list[BaseException] = []
    failed = threading.Event()

    def on_error(exc: BaseException, item: Any) -> None:
        seen.append(exc)
        failed.set()

    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET,
                                    on_error=on_error) as client:
        books = client.orderbooks(MARKETS[:1])
        assert books.wait_synced(timeout=WAIT)
        books.on_change(lambda market, top: 1 / 0)
        book_server.step_market(MARKETS[0])
        assert failed.wait(WAIT)
        assert isinstance(seen[0], ZeroDivisionError)
        assert client.stats().callback_errors >= 1


def test_a_closed_client_whose_book_set_was_never_closed_is_freed(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    # The registry of live sets (bookset.py) must not keep a client alive: a program
    # that makes a client per session would otherwise keep every one it ever made.
    client = KalshiStreamClient.connect(book_config, queue=False, health=QUIET)
    books = client.orderbooks(MARKETS[:1])
    assert books.wait_synced(timeout=WAIT)
    client.close()
    freed = weakref.ref(client)
    del client, books
    gc.collect()
    assert freed() is None


def _book_markets(client: KalshiStreamClient) -> list[str]:
    return sorted(m for s in client.subscriptions() if s.channel == "orderbook_delta"
                  for m in s.market_tickers)


@pytest.mark.timeout(120)
def test_closing_a_set_leaves_the_markets_of_your_own_book_subscription(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    """Markets your own ``subscribe`` held before a set was made stay subscribed when
    the set closes (Kalshi merged them into the one order-book subscription)."""
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        client.subscribe(["orderbook_delta"], MARKETS[:1])
        books = client.orderbooks(MARKETS[:2])
        assert books.wait_synced(timeout=WAIT)
        books.close()
        assert _book_markets(client) == MARKETS[:1]


@pytest.mark.timeout(120)
def test_a_set_removing_a_market_leaves_it_to_another_set_that_uses_it(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        first = client.orderbooks(MARKETS[:2])
        second = client.orderbooks(MARKETS[:1])
        assert first.wait_synced(timeout=WAIT) and second.wait_synced(timeout=WAIT)
        first.remove_markets(MARKETS[:1])
        assert first.markets == MARKETS[1:2]
        assert _book_markets(client) == MARKETS[:2]  # the second set still uses BOOK-A
        assert second.is_synced(MARKETS[0])


@pytest.mark.timeout(120)
def test_a_set_adding_a_market_another_set_has_gets_its_book(
        book_server: FakeKalshiServer, book_config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(book_config, queue=False, health=QUIET) as client:
        first = client.orderbooks(MARKETS[:1])
        second = client.orderbooks(MARKETS[1:2])
        assert first.wait_synced(timeout=WAIT) and second.wait_synced(timeout=WAIT)
        second.add_markets(MARKETS[:1])
        assert second.wait_synced(timeout=WAIT)
        assert fingerprint(second.get(MARKETS[0])) == truth(book_server, MARKETS[0])
        second.close()
        assert _book_markets(client) == MARKETS[:1]
