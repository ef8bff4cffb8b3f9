"""The fake server's handshake rules, without sockets: Kalshi's signature check and the
refusals and drops a test queues (kalshi_ws.testing._handshake)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws.auth import Signer
from kalshi_ws.testing._handshake import HandshakeGate, load_public_key

PATH = "/trade-api/ws/v2"
NOW = 1_750_000_000.0


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed(key: rsa.RSAPrivateKey, at: float = NOW, path: str = PATH) -> dict[str, str]:
    return Signer("test-key", key, clock=lambda: at).headers(path)


def test_without_a_key_anything_but_an_origin_is_accepted() -> None:
    gate = HandshakeGate()
    assert gate.verdict({}, PATH) == (101, "")
    assert gate.verdict({"Origin": "https://example.com"}, PATH) == (403, "Forbidden")


def test_kalshis_signature_rules(key: rsa.RSAPrivateKey) -> None:
    gate = HandshakeGate(key.public_key(), max_clock_skew=30, clock=lambda: NOW)
    assert gate.verdict(signed(key), PATH + "?x=1") == (101, "")  # the query is not signed
    assert gate.verdict(signed(key, NOW - 29), PATH) == (101, "")
    assert gate.verdict(signed(key, NOW - 31), PATH) == (401, "stale KALSHI-ACCESS-TIMESTAMP")
    headers = signed(key)
    del headers["KALSHI-ACCESS-KEY"]
    assert gate.verdict(headers, PATH) == (401, "missing KALSHI-ACCESS headers")
    assert gate.verdict({**signed(key), "KALSHI-ACCESS-TIMESTAMP": "soon"}, PATH) == \
        (401, "bad KALSHI-ACCESS-TIMESTAMP")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for headers in (signed(other), signed(key, path="/elsewhere"),
                    {**signed(key), "KALSHI-ACCESS-SIGNATURE": "not base64!"}):
        assert gate.verdict(headers, PATH) == (401, "INCORRECT_API_KEY_SIGNATURE")


def test_queued_refusals_come_first_then_the_rules(key: rsa.RSAPrivateKey) -> None:
    gate = HandshakeGate(key.public_key(), clock=lambda: NOW)
    gate.reject(503, 2, retry_after="7")
    assert [gate.verdict(signed(key), PATH) for _ in range(3)] == [
        (503, "rejected with 503 by the test")] * 2 + [(101, "")]
    assert gate.retry_after == "7"
    gate.reject(429, None, body="slow down")
    assert [gate.verdict(signed(key), PATH)[0] for _ in range(3)] == [429] * 3
    gate.drops = 2
    assert [gate.take_drop() for _ in range(3)] == [True, True, False]
    gate.drops = 1
    gate.accept()
    assert not gate.take_drop() and gate.retry_after is None
    assert gate.verdict(signed(key), PATH) == (101, "")


def test_public_keys_load_from_pem_keys_and_configs(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    numbers = public.public_numbers()
    for given in (public, key, pem, pem.decode()):
        loaded = load_public_key(given)
        assert loaded is not None and loaded.public_numbers() == numbers
    assert load_public_key(None) is None
    with pytest.raises(TypeError, match="PEM, an RSA key or a KalshiConfig"):
        load_public_key(42)

