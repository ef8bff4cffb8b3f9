"""The drop-oldest policy (DropOldestBuffer), shared by the dispatcher inbox and the queue.

Work per message must not grow with the backlog (issue 10, defect 2): the tests count
how often the policy looks at an item, which does not depend on the machine's speed.
"""

from __future__ import annotations

import random
import threading
from queue import Empty
from typing import Any

import pytest

from kalshi_ws import Lagged, StreamUpdate, Ticker
from kalshi_ws._dispatch import Dispatcher, DropOldestBuffer, UpdatesQueue
from tests.conftest import poll_public_state
from tests.timing import WAIT


def update(channel: str, n: int) -> StreamUpdate:
    return StreamUpdate(channel=channel, type=channel, sid=1, seq=n,
                        msg=Ticker(market_ticker=f"M{n}"))  # type: ignore[call-arg]


class CountingPolicy:
    """``is_lossy`` that counts its calls: ticker drops, trade does not."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, channel: Any) -> bool:
        self.calls += 1
        return channel == "ticker"


def test_dropping_costs_the_same_whatever_the_backlog_of_undroppable_items() -> None:
    policy = CountingPolicy()
    queue = UpdatesQueue(10_000, policy)
    for n in range(9_000):  # undroppable items in front
        assert queue.offer(update("trade", n), lossy=False)
    for n in range(1_000):
        assert queue.offer(update("ticker", n), lossy=True)
    policy.calls = 0
    for n in range(20_000):
        assert queue.offer(update("ticker", 10_000 + n), lossy=True)
    # One scan of the backlog, then a constant amount per message (the old code looked
    # at all 9,000 trades again on every put: 180 million calls).
    assert policy.calls <= 10_000 + 2 * 20_000
    assert queue.qsize() == 10_000 + 1  # + the Lagged marker
    items = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [i.seq for i in items[:9_000]] == list(range(9_000))  # nothing undroppable lost
    tickers = [i.seq for i in items if isinstance(i, StreamUpdate) and i.channel == "ticker"]
    assert tickers == list(range(20_000, 30_000))[-len(tickers):]  # the newest kept, in order
    (lagged,) = [i for i in items if isinstance(i, Lagged)]
    assert lagged.dropped == 20_000 - (len(tickers) - 1_000) and lagged.channel == "ticker"


def test_a_full_queue_of_undroppable_items_refuses_the_next_one() -> None:
    queue = UpdatesQueue(3, CountingPolicy())
    for n in range(3):
        assert queue.offer(update("trade", n), lossy=False)
    assert not queue.offer(update("trade", 3), lossy=False)
    assert queue.offer(update("ticker", 4), lossy=True)  # dropped itself, reported
    assert queue.qsize() == 4 and queue.dropped["ticker"] == 1


@pytest.mark.parametrize("seed", range(20))
def test_the_buffer_matches_a_plain_list_model(seed: int) -> None:
    """Random appends, drops and takes against a brute-force model of the same policy."""
    rng = random.Random(seed)
    limit = rng.choice([4, 16, 100])
    buffer = DropOldestBuffer(limit, lambda channel: channel == "ticker")
    model: list[Any] = []
    n = 0
    for _ in range(3_000):
        action = rng.random()
        if action < 0.6:
            n += 1
            item = update(rng.choice(["ticker", "ticker", "trade"]), n)
            buffer.append(item)
            model.append(item)
        elif action < 0.8:
            victim = buffer.drop_oldest_lossy()
            expected = next((i for i in model if i.channel == "ticker"), None)
            assert victim is expected
            if expected is not None:
                model.remove(expected)
        elif action < 0.95:
            if model:
                assert buffer.popleft() is model.pop(0)
            else:
                assert len(buffer) == 0
        else:
            count = rng.randint(1, 50)
            assert list(buffer.take(count)) == model[:count]
            del model[:count]
        assert len(buffer) == len(model)
        assert len(buffer.items) <= 2 * max(len(model), 64) + 1  # dead items are compacted


def test_take_hands_over_the_oldest_items_whether_or_not_some_were_dropped() -> None:
    """take() has a fast path while nothing was dropped (no dead items, no index) and a
    slow one after a drop; both give the oldest live items, in order."""
    buffer = DropOldestBuffer(1_000, lambda channel: channel == "ticker")
    items = [update("ticker" if n % 3 else "trade", n) for n in range(1_200)]
    buffer.extend(items)
    first = buffer.take(512)  # fast path: more waiting than taken
    assert list(first) == items[:512] and len(buffer) == 688
    buffer.extend(update("ticker", n) for n in range(1_200, 1_400))
    victims = [buffer.drop_oldest_lossy() for _ in range(100)]  # now the slow path
    assert victims == [i for i in items[512:] if i.channel == "ticker"][:100]
    kept = [i for i in items[512:] if i not in victims] + list(buffer.items)[-200:]
    assert list(buffer.take(512)) == kept[:512]
    assert list(buffer.take(10_000)) == kept[512:] and len(buffer) == 0
    assert buffer._index is None and not buffer._dead  # low again: back to the fast path
    buffer.extend(items[:3])
    whole = buffer.take(512)
    assert list(whole) == items[:3] and len(buffer) == 0


@pytest.mark.parametrize("seed", range(12))
def test_bursts_of_posts_drops_and_batch_takes_match_a_plain_list_model(seed: int) -> None:
    """As the dispatcher uses the inbox: bursts of appends, drops when over the limit,
    takes of up to 512 items; every take equals the model's oldest items."""
    rng = random.Random(seed)
    limit = rng.choice([0, 64, 700])
    buffer = DropOldestBuffer(limit, lambda channel: channel == "ticker")
    model: list[Any] = []
    n = 0
    for _ in range(300):
        for _ in range(rng.choice([0, 1, 50, 400])):
            n += 1
            item = update(rng.choice(["ticker", "ticker", "ticker", "trade"]), n)
            if limit and len(model) >= limit:
                victim = buffer.drop_oldest_lossy()
                expected = next((i for i in model if i.channel == "ticker"), None)
                assert victim is expected
                if expected is not None:
                    model.remove(expected)
                    dead = len(buffer._dead)  # compacted once dead items are half of it
                    assert dead <= 64 or 2 * dead <= len(buffer.items)
            buffer.append(item)
            model.append(item)
        count = rng.choice([1, 100, 512])
        taken = buffer.take(count)
        assert list(taken) == model[:count]
        del model[:count]
        assert len(buffer) == len(model)


def test_offer_wakes_a_reader_blocked_in_get() -> None:
    """offer() skips notify() while no thread waits in get(); one that waits is woken
    (it waits without a timeout here, so only the notify can wake it)."""
    queue = UpdatesQueue(10, CountingPolicy())
    assert queue.offer(update("ticker", 0), lossy=True)  # nobody waiting
    assert queue.get_nowait().seq == 0
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(queue.get()), daemon=True)
    reader.start()
    try:
        # Nothing announces that a thread waits in Queue.get(): look at the Condition.
        poll_public_state(lambda: queue._getters, what="the reader waiting in get()")
        assert queue.offer(update("ticker", 1), lossy=True)
        reader.join(WAIT)
        assert not reader.is_alive()
        assert [item.seq for item in got] == [1]
    finally:
        if reader.is_alive():
            queue.put(update("ticker", 2))  # put() always notifies: let the thread end
            reader.join(WAIT)


def test_get_takes_items_in_order_and_wakes_a_put_blocked_on_a_full_queue() -> None:
    """get() takes a waiting item holding only the mutex; a thread blocked in put() on a
    full queue (not the dispatcher: it never blocks) is still woken by it."""
    queue = UpdatesQueue(1, CountingPolicy())
    assert queue.offer(update("ticker", 0), lossy=False)
    putter = threading.Thread(target=lambda: queue.put(update("ticker", 1)), daemon=True)
    putter.start()
    try:
        poll_public_state(lambda: queue._putters, what="the putter waiting in put()")
        assert queue.get().seq == 0  # the notify is the only thing that wakes the putter
        putter.join(WAIT)
        assert not putter.is_alive()
        assert queue.get(timeout=WAIT).seq == 1
        with pytest.raises(Empty):
            queue.get_nowait()
        with pytest.raises(Empty):
            queue.get(timeout=0.01)
    finally:
        if putter.is_alive():
            queue.get_nowait()
            putter.join(WAIT)


def test_a_stuck_callback_never_slows_the_poster_or_loses_undroppable_items() -> None:
    policy = CountingPolicy()
    stuck = threading.Event()
    entered = threading.Event()
    seen: list[Any] = []

    def callback(item: Any) -> None:
        entered.set()
        stuck.wait(3 * WAIT)
        seen.append(item)

    dispatcher = Dispatcher(name="kalshi-ws-test-dispatch", inbox_limit=1_000,
                            policy=lambda c: "drop_oldest" if policy(c) else "error",
                            on_overflow=lambda text: None)
    dispatcher.queue_enabled = False
    dispatcher.add_callback(callback, None)
    try:
        assert dispatcher.post([update("trade", 0)])
        assert entered.wait(WAIT)  # the dispatcher is now stuck in the callback
        assert dispatcher.post([update("trade", n) for n in range(1, 900)])
        for start in range(0, 20_000, 100):
            assert dispatcher.post([update("ticker", n) for n in range(start, start + 100)])
        assert policy.calls <= 3 * 1_000  # once per channel (cached) and one scan
        assert dispatcher.backlog <= 1_000 + 2  # + the Lagged marker, + the item in hand
    finally:
        stuck.set()
        from kalshi_ws import Closed
        dispatcher.post_final(Closed(reason="test"), None)
        assert dispatcher.join(WAIT)
    trades = [i.seq for i in seen if isinstance(i, StreamUpdate) and i.channel == "trade"]
    assert trades == list(range(900))
    lagged = [i for i in seen if isinstance(i, Lagged)]
    assert sum(i.dropped for i in lagged) == dispatcher.dropped["ticker"] > 0
