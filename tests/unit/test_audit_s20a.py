"""Acceptance audit (session 20): README promises of Configuration that failed.

"ConfigurationError (ValueError): bad key, URL, option or environment variable": each
option below was accepted and only failed later (the reader thread died on its first
ping or reconnect), or changed behaviour silently.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Backoff,
    ConfigurationError,
    ConnectStrategy,
    HealthConfig,
    KalshiConfig,
    ReconnectPolicy,
)
from kalshi_ws.options import ClientOptions


def test_health_refuses_a_pong_timeout_of_none() -> None:
    """pong_timeout=None used to pass, then killed the reader at its first ping."""
    with pytest.raises(ConfigurationError, match="pong_timeout"):
        HealthConfig(pong_timeout=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("backoff", ["fast", 3, None])
def test_reconnect_policy_refuses_a_backoff_that_is_not_a_backoff(backoff: Any) -> None:
    """ReconnectPolicy(backoff=...) used to pass, then killed the client at its first
    reconnect."""
    with pytest.raises(ConfigurationError, match="backoff"):
        ReconnectPolicy(backoff=backoff)


def test_connect_strategy_refuses_a_backoff_that_is_not_a_backoff() -> None:
    with pytest.raises(ConfigurationError, match="backoff"):
        ConnectStrategy(retries=True, backoff="fast")  # type: ignore[arg-type]
    assert ConnectStrategy(retries=True, backoff=Backoff(base=1)).backoff.base == 1


@pytest.mark.parametrize("value", ["no", "false", 0, 1, None])
def test_allow_insecure_must_be_a_bool(private_key: rsa.RSAPrivateKey, value: Any) -> None:
    """allow_insecure="no" used to allow ws:// to another host (a truthy string)."""
    with pytest.raises(ConfigurationError, match="allow_insecure must be True or False"):
        KalshiConfig("id", private_key, ws_url="ws://example.com/x", allow_insecure=value)


@pytest.mark.parametrize("value", ["no", 0, None])
def test_resync_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="resync must be True or False"):
        ClientOptions.build(resync=value)


@pytest.mark.parametrize("key_id", ["id\r\nX-Injected: 1", "id\nother", "id\x00", "a\tb"])
def test_an_api_key_id_with_control_characters_is_refused(
        private_key: rsa.RSAPrivateKey, key_id: str) -> None:
    """The key id goes into a handshake header as is: a line break in it would end the
    header and start another. README: a bad key raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="api_key_id"):
        KalshiConfig(key_id, private_key)
