"""Fixtures shared by the integration tests against a hostile server of the tests' own
(tests/hostile_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import KalshiConfig, KalshiStreamClient
from tests.hostile_server import HostileServer
from tests.timing import MS


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.fixture
def hostile_config(hostile: HostileServer, private_key: rsa.RSAPrivateKey) -> KalshiConfig:
    return KalshiConfig("test-key-id", private_key, ws_url=hostile.url)


@pytest.fixture
def open_client(hostile_config: KalshiConfig) -> Iterator[Callable[..., KalshiStreamClient]]:
    """Connect clients to the hostile server; each is closed (and must end CLOSED)."""
    clients: list[KalshiStreamClient] = []

    def factory(**options: Any) -> KalshiStreamClient:
        client = KalshiStreamClient.connect(hostile_config, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close(timeout=3_000 * MS)
        assert client.state == "CLOSED"
