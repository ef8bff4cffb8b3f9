"""Review s20-04: races between order-book sets of one client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import HealthConfig, KalshiConfig, KalshiStreamClient
from kalshi_ws.bookset import _live_sets, _live_sets_lock
from kalshi_ws.testing import FakeKalshiServer, MarketSimulator
from tests.conftest import poll_public_state
from tests.timing import WAIT

MARKETS = ["BOOK-A", "BOOK-B"]
QUIET = HealthConfig(ping_interval=None, idle_timeout=None)


@pytest.fixture
def book_server(private_key: rsa.RSAPrivateKey) -> Iterator[FakeKalshiServer]:
    simulator = MarketSimulator(MARKETS, seed=404, levels=3)
    with FakeKalshiServer(public_key=private_key.public_key(), simulator=simulator) as server:
        yield server


@pytest.mark.timeout(120)
def test_two_sets_of_the_same_markets_closing_at_once_both_close_cleanly(
        book_server: FakeKalshiServer, private_key: rsa.RSAPrivateKey) -> None:
    """Both sets leave the live list before either decides what to release: each then
    sees no other set, both release every market and the second unsubscribe of the one
    order-book sid is refused by Kalshi (close() raised CommandError)."""
    config = KalshiConfig("k", private_key, ws_url=book_server.url)
    with KalshiStreamClient.connect(config, queue=False, health=QUIET) as client:
        first = client.orderbooks(MARKETS)
        second = client.orderbooks(MARKETS)
        assert first.wait_synced(timeout=WAIT) and second.wait_synced(timeout=WAIT)
        errors: list[BaseException] = []

        def close(books: object) -> None:
            try:
                books.close(timeout=WAIT)  # type: ignore[attr-defined]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def live() -> int:
            with _live_sets_lock:
                return len(_live_sets.get(client, ()))

        # Each close() reads its markets under its set's lock: hold both so that
        # neither decides before both have left the live list (the interleaving).
        with first._lock, second._lock:
            threads = [threading.Thread(target=close, args=(b,)) for b in (first, second)]
            for thread in threads:
                thread.start()
            poll_public_state(lambda: live() == 0, what="both sets out of the live list")
        for thread in threads:
            thread.join(WAIT)
        assert errors == []
        assert [s for s in client.subscriptions() if s.channel == "orderbook_delta"] == []
