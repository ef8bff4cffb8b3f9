"""Soak: 200,000 messages through 20 random connection drops, nothing lost or repeated."""

from __future__ import annotations

import random
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kalshi_ws import (
    Backoff,
    HealthConfig,
    KalshiStreamClient,
    Reconnected,
    ReconnectPolicy,
    SequenceGap,
    StreamUpdate,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.timing import MS

TOTAL = 200_000
DROPS = 20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Tally:
    """The soak's callback: records (trade number, sid, seq) compactly and signals progress."""

    def __init__(self) -> None:
        self.numbers = array("q")
        self.sids = array("q")
        self.seqs = array("q")
        self.reconnects = 0
        self.gaps = 0
        self.other: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, item: Any) -> None:
        if type(item) is StreamUpdate:
            self.numbers.append(int(item.msg.trade_id))
            self.sids.append(item.sid)
            self.seqs.append(item.seq)
            if len(self.numbers) % 1000 and len(self.numbers) != self._target:
                return
        elif isinstance(item, Reconnected):
            self.reconnects += 1
        elif isinstance(item, SequenceGap):
            self.gaps += 1
        else:
            self.other.append(item)
        with self._changed:
            self._changed.notify_all()

    _target = -1

    def wait(self, condition: Callable[[], bool], timeout: float = 60_000 * MS) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                assert remaining > 0, (f"soak stalled: {len(self.numbers)} received, "
                                       f"{self.reconnects} reconnects")
                self._changed.wait(remaining)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_soak_200k_messages_through_20_drops(server: FakeKalshiServer,
                                             connect: Callable[..., KalshiStreamClient]) -> None:
    rng = random.Random(20261121)
    drop_points = sorted(rng.sample(range(1_000, TOTAL), DROPS))
    tally = Tally()
    client = connect(reconnect=ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05)),
                     health=HealthConfig(ping_interval=None, idle_timeout=None), queue=False)
    client.add_callback(tally)
    client.subscribe(["trade"])

    def publish(start: int, end: int) -> None:
        for first in range(start, end, 5_000):
            server.publish_many(("trade", "trade", {
                "trade_id": str(n), "market_ticker": "SIM-ALPHA", "yes_price_dollars": "0.5000",
                "count_fp": "1.00"}) for n in range(first, min(first + 5_000, end)))

    # Warm up, then take the baseline.
    publish(0, 1_000)
    tally._target = 1_000
    tally.wait(lambda: len(tally.numbers) >= 1_000)
    baseline_rss = rss_bytes()
    threads_during: set[int] = set()
    started = time.monotonic()

    published = 1_000
    for end in [*drop_points, TOTAL]:
        publish(published, end)
        published = end
        tally._target = end
        tally.wait(lambda end=end: len(tally.numbers) >= end)
        threads_during.add(len([t for t in threading.enumerate()
                                if t.name.startswith("kalshi-ws-")]))
        if end != TOTAL:
            reconnects = tally.reconnects
            server.drop_connections()
            tally.wait(lambda reconnects=reconnects: tally.reconnects > reconnects)
    elapsed = time.monotonic() - started
    growth = rss_bytes() - baseline_rss

    # Every message sent arrived exactly once, in order.
    assert len(tally.numbers) == TOTAL
    assert tally.numbers == array("q", range(TOTAL))
    # Per sid, seq numbers are consecutive within each connection.
    epochs = 0
    for index in range(1, TOTAL):
        if (tally.sids[index], tally.seqs[index]) != (tally.sids[index - 1],
                                                      tally.seqs[index - 1] + 1):
            epochs += 1
            assert tally.seqs[index] == 1, f"seq jumped at message {index}"
    assert epochs == DROPS
    assert tally.reconnects == DROPS and tally.gaps == 0
    stats = client.stats().channels["trade"]
    assert (stats.received, stats.delivered, stats.dropped, stats.duplicates) == (
        TOTAL, TOTAL, 0, 0)
    # Flat: the same two threads throughout, and no memory growth beyond our tally.
    assert threads_during == {2}
    tally_bytes = sum(a.itemsize * len(a) for a in (tally.numbers, tally.sids, tally.seqs))
    assert growth - tally_bytes < 20 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
    print(f"\nsoak: {TOTAL} messages, {DROPS} drops in {elapsed:.1f} s "
          f"({TOTAL / elapsed:,.0f} msg/s incl. reconnects); RSS growth "
          f"{growth / 1e6:.1f} MB ({tally_bytes / 1e6:.1f} MB of it the tally); "
          f"threads {sorted(threads_during)}")
