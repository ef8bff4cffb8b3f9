"""PerProcessClient: one lazily created client per process, its factory run without locks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from kalshi_ws import ConcurrencyError, ConfigurationError, KalshiStreamClient
from kalshi_ws.per_process import PerProcessClient
from tests.timing import WAIT

Connect = Callable[..., KalshiStreamClient]


def test_the_client_is_created_once_and_recreated_after_it_ended(connect: Connect) -> None:
    made: list[KalshiStreamClient] = []
    holder = PerProcessClient(lambda: made.append(connect()) or made[-1])
    assert not holder.created
    first = holder.get()
    assert holder.get() is first and holder.created and len(made) == 1
    first.close()
    second = holder.get()
    assert second is not first and not second.closed
    holder.close()
    holder.close()
    assert second.closed


def test_a_caller_waits_for_the_factory_another_thread_is_running(connect: Connect) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_factory() -> KalshiStreamClient:
        calls.append(1)
        entered.set()
        assert release.wait(WAIT)
        return connect()

    holder = PerProcessClient(slow_factory)
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", holder.get()))
    first.start()
    assert entered.wait(WAIT)
    # The factory holds no lock of the holder: another thread can look at it meanwhile.
    assert not holder.created
    second = threading.Thread(target=lambda: results.setdefault("second", holder.get()))
    second.start()
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert results["first"] is results["second"] and len(calls) == 1
    holder.close()


def test_waiting_for_another_threads_factory_has_a_limit(connect: Connect) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck_factory() -> KalshiStreamClient:
        entered.set()
        assert release.wait(WAIT)
        return connect()

    holder = PerProcessClient(stuck_factory, wait=0.05)
    creator = threading.Thread(target=holder.get)
    creator.start()
    assert entered.wait(WAIT)
    try:
        with pytest.raises(ConcurrencyError, match="creating the client"):
            holder.get()
    finally:
        release.set()
        creator.join(WAIT)
    holder.close()


def test_a_factory_that_calls_get_fails_instead_of_deadlocking() -> None:
    holder: PerProcessClient

    def reentrant() -> KalshiStreamClient:
        return holder.get()

    holder = PerProcessClient(reentrant)
    with pytest.raises(ConcurrencyError, match="factory called get"):
        holder.get()


def test_a_failing_factory_is_tried_again_on_the_next_get(connect: Connect) -> None:
    attempts: list[int] = []

    def flaky() -> KalshiStreamClient:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("network down")
        return connect()

    holder = PerProcessClient(flaky)
    with pytest.raises(OSError, match="network down"):
        holder.get()
    assert not holder.get().closed and len(attempts) == 2
    holder.close()


@pytest.mark.parametrize("wait", [0, -1, float("nan"), "5"])
def test_a_bad_wait_is_refused(wait: Any) -> None:
    with pytest.raises(ConfigurationError, match="wait"):
        PerProcessClient(lambda: None, wait=wait)  # type: ignore[arg-type,return-value]
