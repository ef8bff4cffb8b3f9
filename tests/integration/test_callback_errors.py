"""Callback exceptions are visible without any set-up, or go to on_error (issue 14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from kalshi_ws import ConfigurationError, KalshiStreamClient, StreamItem, StreamUpdate
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector
from tests.timing import MS, WAIT

SCRIPT = textwrap.dedent("""
    import threading
    from kalshi_ws import KalshiStreamClient, StreamUpdate
    from kalshi_ws.testing import simulated

    failed = threading.Event()
    def broken(item):
        if isinstance(item, StreamUpdate):
            failed.set()
            1 / 0

    with simulated() as sim, KalshiStreamClient.connect(sim.config) as client:
        client.add_callback(broken)
        client.subscribe(["ticker"])
        assert failed.wait(20)
        errors = client.stats().callback_errors
    print("errors counted:", errors >= 1)
""")


def _one_failing_update(server: FakeKalshiServer,
                        client: KalshiStreamClient) -> KalshiStreamClient:
    """Deliver one ticker update through a callback that raises, then a healthy one."""
    collector = Collector()
    client.add_callback(lambda item: 1 / 0 if isinstance(item, StreamUpdate) else None)
    client.add_callback(collector)
    client.subscribe(["ticker"])
    server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA", "price_dollars": "0.5"})
    collector.wait_for(lambda items: collector.updates())
    return client


@pytest.mark.timeout(60)
def test_a_callback_exception_is_shown_on_stderr_without_any_logging_set_up() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=50_000 * MS, check=False)
    assert done.returncode == 0, done.stderr
    assert "errors counted: True" in done.stdout
    assert "Exception in kalshi_ws callback" in done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "ZeroDivisionError: division by zero" in done.stderr


def test_on_error_receives_the_exception_and_the_item_and_delivery_goes_on(
        server: FakeKalshiServer, connect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[BaseException, StreamItem]] = []
    got = threading.Event()

    def on_error(exc: BaseException, item: StreamItem) -> None:
        seen.append((exc, item))
        got.set()

    client = _one_failing_update(server, connect(on_error=on_error))
    assert got.wait(WAIT)
    exc, item = seen[0]
    assert isinstance(exc, ZeroDivisionError) and isinstance(item, StreamUpdate)
    assert client.stats().callback_errors == 1
    assert "ZeroDivisionError" not in capsys.readouterr().err


def test_an_on_error_that_raises_is_shown_too(server: FakeKalshiServer, connect: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
    _one_failing_update(server, connect(on_error=lambda exc, item: {}["missing"]))
    assert "KeyError" in caplog.text  # logging is configured here (pytest's handler)


def test_on_error_must_be_callable(connect: Any) -> None:
    with pytest.raises(ConfigurationError, match="on_error"):
        connect(on_error="print")
