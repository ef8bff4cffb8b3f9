"""Shared fixtures: a throwaway RSA key, the fake Kalshi server, clients, a thread-leak guard."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import KalshiConfig, KalshiStreamClient
from kalshi_ws.testing import FakeKalshiServer

DATA = Path(__file__).parent / "data"


def load_examples() -> list[dict[str, Any]]:
    """Kalshi's AsyncAPI examples (see tests/data/SOURCES.md)."""
    with open(DATA / "kalshi-asyncapi-examples.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_legacy_frames() -> list[dict[str, Any]]:
    with open(DATA / "legacy-frames.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def private_key() -> rsa.RSAPrivateKey:
    """A throwaway key generated for this test run (never stored)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def private_key_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())


@pytest.fixture
def server(private_key: rsa.RSAPrivateKey) -> Iterator[FakeKalshiServer]:
    with FakeKalshiServer(public_key=private_key.public_key()) as fake:
        yield fake


@pytest.fixture
def config(server: FakeKalshiServer, private_key: rsa.RSAPrivateKey) -> KalshiConfig:
    return KalshiConfig("test-key-id", private_key, ws_url=server.url)


@pytest.fixture
def connect(config: KalshiConfig) -> Iterator[Callable[..., KalshiStreamClient]]:
    """Factory: connect a client to the fake server; every client is closed afterwards."""
    clients: list[KalshiStreamClient] = []

    def factory(cfg: KalshiConfig | None = None, **options: Any) -> KalshiStreamClient:
        client = KalshiStreamClient.connect(cfg or config, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(connect: Callable[..., KalshiStreamClient]) -> KalshiStreamClient:
    return connect()


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kalshi-ws-")]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test that leaves a kalshi-ws thread running after its clients closed."""
    before = set(_our_threads())
    yield
    deadline = time.monotonic() + 5
    for thread in _our_threads():
        if thread not in before:
            thread.join(max(0.0, deadline - time.monotonic()))
    leaked = [t.name for t in _our_threads() if t not in before and t.is_alive()]
    assert not leaked, f"threads outlived the test: {leaked}"


class Collector:
    """A callback that records items and lets a test wait for a condition (no sleeps)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self.items)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"condition not met in {timeout} s; got "
                                         f"{len(self.items)} items: {self.items[-5:]!r}")
                self._changed.wait(remaining)

    def of_type(self, cls: type) -> list[Any]:
        with self._changed:
            return [i for i in self.items if isinstance(i, cls)]

    def updates(self, wire_type: str | None = None) -> list[Any]:
        from kalshi_ws import StreamUpdate
        with self._changed:
            return [i for i in self.items if isinstance(i, StreamUpdate)
                    and (wire_type is None or i.type == wire_type)]


@pytest.fixture
def collector() -> Collector:
    return Collector()
