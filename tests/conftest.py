"""Shared fixtures: a throwaway RSA key, the fake Kalshi server, clients, a thread-leak guard."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import KalshiConfig, KalshiStreamClient, _wire
from kalshi_ws.testing import FakeKalshiServer
from tests.timing import FACTOR, MS, WAIT

DATA = Path(__file__).parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Let the tests' child processes (the CLI, the examples) be stopped with Ctrl-C.

    A shell starting a command in the background (``cmd &``) without job control sets
    SIGINT to "ignored", and an ignored signal stays ignored across fork and exec: every
    child would then ignore the SIGINT a test sends it. A handled signal is reset to its
    default at exec, so handling it here gives each child Python's usual Ctrl-C.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``KALSHI_WS_TEST_TIME_FACTOR`` (tests/timing.py), stretch pytest-timeout's
    limit of every test (its own ``timeout`` mark, else the configured one) by the same
    factor as the bounds on the tests' waits."""
    if FACTOR == 1:
        return
    default = float(config.getini("timeout") or 0)
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = (mark.args[0] if mark.args else mark.kwargs.get("timeout", default)) \
            if mark is not None else default
        if seconds:
            kwargs = dict(mark.kwargs) if mark is not None else {}
            kwargs["timeout"] = float(seconds) * FACTOR
            item.add_marker(pytest.mark.timeout(**kwargs), append=False)


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
def warnings_logged_afresh() -> None:
    """Each test sees the decoder's once-per-process warnings ("field ... could not be
    read") as a fresh process would, whatever test ran before it."""
    _wire._warned_fields.clear()


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test that leaves a kalshi-ws thread running after its clients closed."""
    before = set(_our_threads())
    yield
    deadline = time.monotonic() + 5_000 * MS
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

    def wait_for(self, predicate: Callable[[list[Any]], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self.items)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"condition not met in {timeout:g} s; got "
                                         f"{len(self.items)} items: {self.items[-5:]!r}")
                self._changed.wait(remaining)

    def final(self, timeout: float = WAIT) -> Any:
        """Wait for the client's final item (Closed, or a final ConnectionLost)."""
        return self.wait_for(
            lambda items: items[-1] if items and getattr(items[-1], "final", False) else None,
            timeout)

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


class Signal:
    """A test's own event that can happen many times: a callback or thread the test owns
    calls it at each change, and the test waits until a condition holds, checking it again
    at each call (never on a clock). The condition runs on the waiting thread, outside any
    lock, so it may call into the client."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    def __call__(self, *args: Any) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_until(self, condition: Callable[[], Any], timeout: float = WAIT,
                   what: str = "the condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._count
            result = condition()
            if result:
                return result
            with self._changed:
                while self._count == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise AssertionError(f"{what} not reached in {timeout:g} s")
                    self._changed.wait(remaining)


def poll_public_state(condition: Callable[[], Any], timeout: float = WAIT,
                      what: str = "the condition") -> Any:
    """Wait for public state that the library does not signal, checking it every 10 ms of
    test time. Only for states no event announces (each caller says which); anything a
    callback, the fake server or a command reply can show is waited for with those."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g} s")
        pause.wait(10 * MS)


class SentCommands(logging.Handler):
    """The commands the client has sent, read from its DEBUG log of every frame (README,
    Logging). The client registers a command as pending before it sends (and logs) it,
    so once a command is here, closing or dropping the connection finds it waiting for
    its answer, even if the server never read it. Use it through the ``sent_commands``
    fixture."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.commands: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        start = message.find("{")
        if start < 0:
            return
        try:
            frame = json.loads(message[start:])
        except ValueError:
            return  # not a frame we sent (received frames are logged as bytes)
        if isinstance(frame, dict) and "cmd" in frame:
            with self._changed:
                self.commands.append(frame)
                self._changed.notify_all()

    def wait_for(self, cmd: str, count: int = 1, timeout: float = WAIT) -> None:
        """Block until ``count`` commands named ``cmd`` have been sent in all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(c["cmd"] == cmd for c in self.commands) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the client did not send {count} {cmd!r} "
                                         f"command(s) in {timeout:g} s")
                self._changed.wait(remaining)


@pytest.fixture
def sent_commands() -> Iterator[SentCommands]:
    """Record the commands the client sends (turns DEBUG logging of ``kalshi_ws`` on)."""
    handler = SentCommands()
    logger = logging.getLogger("kalshi_ws")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
