"""config_from_env(): the user's key from the environment, or the simulator when asked."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import kalshi_ws
from kalshi_ws import (
    DEMO_WS_URL,
    ConfigurationError,
    KalshiStreamClient,
    config_from_env,
    environment,
)
from kalshi_ws.environment import simulating


@pytest.fixture(autouse=True, scope="module")
def _stop_the_shared_simulator() -> Iterator[None]:
    yield
    shared, environment._shared = environment._shared, None
    if shared is not None:
        shared[1].stop()


def test_without_the_switch_it_is_exactly_from_env(private_key_pem: bytes) -> None:
    environ = {"KALSHI_API_KEY_ID": "my-key", "KALSHI_PRIVATE_KEY": private_key_pem.decode()}
    for switch in ("", "0", "false", "no", "OFF"):
        config = config_from_env({**environ, "KALSHI_SIMULATE": switch})
        assert config.api_key_id == "my-key" and config.url == DEMO_WS_URL
    with pytest.raises(ConfigurationError, match="KALSHI_API_KEY_ID"):
        config_from_env({})


def test_the_switch_starts_one_simulator_per_process() -> None:
    assert simulating({"KALSHI_SIMULATE": "1"}) and not simulating({})
    first = config_from_env({"KALSHI_SIMULATE": "1"})
    assert first.url.startswith("ws://127.0.0.1:")
    assert config_from_env({"KALSHI_SIMULATE": "yes"}) is first  # the same simulator
    with KalshiStreamClient.connect(first) as client:
        assert client.subscribe(["ticker"]).ok


def test_a_forked_child_gets_its_own_simulator() -> None:
    parent = config_from_env({"KALSHI_SIMULATE": "1"})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            child = config_from_env({"KALSHI_SIMULATE": "1"})
            with KalshiStreamClient.connect(child) as client:
                code = 0 if child is not parent and client.subscribe(["ticker"]).ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_it_is_exported_and_documented() -> None:
    assert "config_from_env" in kalshi_ws.__all__
    assert kalshi_ws.config_from_env is config_from_env
