"""The fake server's logs and the client's words for a reset (issue 14, point 9)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kalshi_ws import (
    Backoff,
    ConnectionLost,
    KalshiConfig,
    KalshiStreamClient,
    Reconnected,
    ReconnectPolicy,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.timing import MS, WAIT

ROOT = Path(__file__).resolve().parents[2]
FAST = ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05))


def test_the_fake_server_never_logs_a_signature(server: FakeKalshiServer, config: KalshiConfig,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Even at DEBUG, where websockets logs every handshake header."""
    with caplog.at_level(logging.DEBUG), KalshiStreamClient.connect(config) as client:
        client.subscribe(["ticker"])
    handshake = [r.getMessage() for r in caplog.records
                 if r.name.startswith("kalshi_ws.testing") and "KALSHI-ACCESS" in r.getMessage()]
    assert any("KALSHI-ACCESS-TIMESTAMP" in line for line in handshake)  # headers logged
    assert "< KALSHI-ACCESS-SIGNATURE: [redacted]" in handshake
    assert not re.search(r"SIGNATURE\W*[A-Za-z0-9+/=]{16,}", caplog.text, re.IGNORECASE)


def test_a_reset_reads_as_a_sentence(server: FakeKalshiServer, config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(config, reconnect=FAST) as client:
        client.subscribe(["ticker"])
        server.drop_connections()
        items = client.iter_updates(timeout=WAIT)
        lost = next(items)
        assert isinstance(lost, ConnectionLost)
        assert lost.reason == ("the connection was reset (by the server or the network), "
                               "without a close frame")
        assert isinstance(lost.error.__cause__, ConnectionResetError)  # the errno is kept
        assert isinstance(next(items), Reconnected)


def test_the_reconnect_example_says_what_it_shows() -> None:
    """examples/stream_reconnect.py's text matches the sid map it prints."""
    example = ROOT / "examples" / "stream_reconnect.py"
    text = " ".join(example.read_text().split())
    assert "under new sids" not in text
    assert "the map reads ``{1: 1, 2: 2}``" in text
    result = subprocess.run([sys.executable, str(example), "--simulate", "--updates", "2"],
                            capture_output=True, text=True, timeout=60_000 * MS, cwd=ROOT,
                            check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "sid map (old -> new) {1: 1, 2: 2}" in result.stdout
    assert "!! connection lost: the connection was reset" in result.stdout
    assert "Errno" not in result.stdout


@pytest.mark.parametrize("message", [
    "< KALSHI-ACCESS-SIGNATURE: /abc+def==",  # websockets' handshake log
    "headers {'KALSHI-ACCESS-SIGNATURE': 'x/y+z=', 'KALSHI-ACCESS-KEY': 'k'}",
    "kalshi-access-signature=abc",
])
def test_the_fake_server_redacts_a_signature_in_any_shape(message: str) -> None:
    from kalshi_ws.testing.server import _RedactSignatures

    record = logging.LogRecord("kalshi_ws.testing.server", logging.DEBUG, __file__, 1,
                               "%s", (message,), None)
    assert _RedactSignatures().filter(record)
    text = record.getMessage()
    assert "[redacted]" in text and not re.search(r"abc|x/y", text)
    assert "'KALSHI-ACCESS-KEY': 'k'" in text or "KEY" not in message
