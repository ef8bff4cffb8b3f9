"""Objects explain themselves: useful reprs without secrets, close_reason, clear misuse errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Channel,
    ConnectionClosedOK,
    KalshiConfig,
    KalshiStreamClient,
    StreamUpdate,
)
from kalshi_ws.testing import FakeKalshiServer, simulated
from tests.timing import MS, WAIT

ROOT = Path(__file__).resolve().parents[2]
LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=]{40,}")  # a key or signature would be one


def assert_explains(text: str, *expected: str) -> None:
    assert " object at 0x" not in text, text
    for part in expected:
        assert part in text, f"{part!r} not in {text!r}"
    assert "PRIVATE" not in text and "SIGNATURE" not in text.upper()
    assert not LONG_TOKEN.search(text), text


def test_a_simulation_says_where_it_runs_and_what_it_simulates() -> None:
    simulation = simulated(["SIM-EXTRA"])
    assert_explains(repr(simulation), "<Simulation not started", "SIM-EXTRA")
    with simulation:
        assert_explains(repr(simulation), simulation.server.url, "SIM-ALPHA", "SIM-EXTRA")
    assert_explains(repr(simulation), "<Simulation stopped")


def test_simulation_config_is_never_none_and_says_when_it_is_not_ready() -> None:
    simulation = simulated()
    with pytest.raises(RuntimeError, match="not started.*simulated"):
        _ = simulation.config
    with simulation:
        assert isinstance(simulation.config, KalshiConfig)
        assert simulation.config.url == simulation.server.url


def test_a_fake_server_says_its_url_mode_and_sessions(private_key: rsa.RSAPrivateKey) -> None:
    server = FakeKalshiServer(public_key=private_key.public_key())
    assert_explains(repr(server), "<FakeKalshiServer not started", "simulator",
                    "signed handshakes")
    with server:
        config = KalshiConfig("test-key-id", private_key, ws_url=server.url)
        with KalshiStreamClient.connect(config) as client:
            client.list_subscriptions()  # answered by the session: the server has it now
            assert_explains(repr(server), server.url, "sessions=1", "markets=3")
    assert_explains(repr(FakeKalshiServer()), "no auth")


def test_order_book_sets_and_the_queue_say_what_they_hold(config: KalshiConfig,
                                                          server: FakeKalshiServer) -> None:
    with KalshiStreamClient.connect(config, queue=True) as client:
        books = client.orderbooks(["SIM-ALPHA", "SIM-BRAVO"])
        assert books.wait_synced(timeout=WAIT)
        assert_explains(repr(books), "<OrderBookSet sid=", "'SIM-ALPHA', 'SIM-BRAVO'",
                        "2/2 synced")
        client.subscribe([Channel.TRADE])
        server.publish("trade", "trade", {"market_ticker": "SIM-ALPHA", "count_fp": "5.00"})
        updates = client.updates
        item = updates.get(timeout=5_000 * MS)
        while not (isinstance(item, StreamUpdate) and item.channel == Channel.TRADE):
            item = updates.get(timeout=5_000 * MS)
        assert_explains(repr(updates), "<UpdatesQueue ", f"of {updates.maxsize} items",
                        "0 dropped")
        books.close()
        assert_explains(repr(books), "closed")
    assert_explains(repr(client), "CLOSED")


def test_close_reason_says_the_user_closed_the_client(config: KalshiConfig) -> None:
    client = KalshiStreamClient.connect(config)
    assert client.close_reason is None
    client.close()
    reason = client.close_reason
    assert isinstance(reason, ConnectionClosedOK)
    assert "closed by the user" in str(reason)
    assert client.close_reason is reason
    client.close()  # idempotent: the reason stays
    assert client.close_reason is reason


def test_close_reason_keeps_the_servers_own_clean_close(config: KalshiConfig,
                                                         server: FakeKalshiServer) -> None:
    client = KalshiStreamClient.connect(config)
    server.close_connections(1000)
    assert list(client.iter_updates(timeout=WAIT))[-1].__class__.__name__ == "Closed"
    client.close()
    reason = client.close_reason
    assert isinstance(reason, ConnectionClosedOK) and "by the user" not in str(reason)


def test_the_constructor_points_to_connect(config: KalshiConfig) -> None:
    with pytest.raises(TypeError, match=r"KalshiStreamClient\.connect\(config"):
        KalshiStreamClient(config)  # type: ignore[call-arg]


BLOCK_WEBSOCKETS = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "websockets" or name.startswith("websockets."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
try:
    import kalshi_ws.testing
except ImportError as exc:
    print(type(exc).__name__, exc)
import kalshi_ws
print("core ok", kalshi_ws.KalshiStreamClient.__name__)
"""


def test_importing_the_testing_tools_without_their_extra_names_the_install() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_WEBSOCKETS], capture_output=True,
                            text=True, timeout=60_000 * MS, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("ImportError kalshi_ws.testing needs the 'testing' extra")
    assert 'pip install "kalshi-ws[testing]"' in first
    assert second == "core ok KalshiStreamClient"


def test_a_stopped_fake_server_says_it_stopped(private_key: rsa.RSAPrivateKey) -> None:
    from kalshi_ws.testing import FakeKalshiServer
    server = FakeKalshiServer(public_key=private_key.public_key())
    assert "not started" in repr(server)
    with server:
        assert server.url in repr(server)
    assert "stopped" in repr(server) and "not started" not in repr(server)
