"""Key loading and handshake signing (RSA-PSS, SHA-256, salt = digest length).

Kalshi authenticates a WebSocket only at the HTTP upgrade, with three headers. The
string signed is ``<timestamp_ms>GET/trade-api/ws/v2``; a fresh timestamp and
signature are made for every connection attempt. Nothing here logs or repeats key
material, and no error message quotes it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .exceptions import ConfigurationError

__all__ = ["WS_SIGN_PATH", "Signer", "load_private_key", "sign_message"]

WS_SIGN_PATH = "/trade-api/ws/v2"
"""The path Kalshi verifies in the signature, whatever host is used."""

KeyInput = str | bytes | rsa.RSAPrivateKey

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


MIN_KEY_BITS = 1024


def load_private_key(key: KeyInput, password: str | bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM (PKCS#1 or PKCS#8) or accept a key object.

    Args:
        key: PEM text or bytes, or a ``cryptography`` RSA private key.
        password: The password of an encrypted PEM, if any.

    Returns:
        The RSA private key.

    Raises:
        ConfigurationError: the data is not a PEM private key, the password is wrong
            or missing, or the key is not RSA of at least 1024 bits. The message never
            quotes the key.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        return _check_size(key)
    if isinstance(key, str):
        data = key.encode("utf-8")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    else:
        raise ConfigurationError(
            "private_key must be PEM text or bytes, or an RSA private key object; "
            f"got {type(key).__name__}"
        )
    if b"-----BEGIN" not in data:
        raise ConfigurationError(
            "private_key is not PEM: expected a '-----BEGIN RSA PRIVATE KEY-----' or "
            "'-----BEGIN PRIVATE KEY-----' block (did you pass a file path? use "
            "KalshiConfig.from_key_file)"
        )
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise ConfigurationError("private_key holds a PUBLIC key; Kalshi needs the private key")
    pw = password.encode("utf-8") if isinstance(password, str) else password
    try:
        loaded = serialization.load_pem_private_key(data, password=pw)
    except TypeError as exc:
        # Encrypted without a password, or a password given for an unencrypted key.
        raise ConfigurationError(f"private_key password problem: {exc}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(
            "private_key could not be loaded: not a valid PEM private key, or wrong password"
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigurationError(
            f"private_key is a {type(loaded).__name__.lstrip('_')}, but Kalshi requires an RSA key"
        )
    return _check_size(loaded)


def _check_size(key: rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    # RSA-PSS with SHA-256 and a digest-length salt cannot sign with very small keys,
    # and Kalshi issues 2048-bit ones: refuse now rather than at the first handshake.
    if key.key_size < MIN_KEY_BITS:
        raise ConfigurationError(
            f"private_key is a {key.key_size}-bit RSA key; Kalshi's keys are 2048-bit and "
            f"signing needs at least {MIN_KEY_BITS} bits"
        )
    return key


def sign_message(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Return the base64 RSA-PSS/SHA-256 signature of ``message``, as Kalshi expects."""
    signature = private_key.sign(message.encode("utf-8"), _PSS, hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


class Signer:
    """Makes the three ``KALSHI-ACCESS-*`` handshake headers for one API key.

    Thread-safe: ``headers()`` may be called from any thread.

    Args:
        api_key_id: The API key id.
        private_key: The RSA private key matching it.
        clock: Returns the current time in seconds (injectable for tests).
    """

    __slots__ = ("_api_key_id", "_clock", "_private_key")

    def __init__(
        self,
        api_key_id: str,
        private_key: rsa.RSAPrivateKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key_id = api_key_id
        self._private_key = private_key
        self._clock = clock

    def headers(self, path: str = WS_SIGN_PATH) -> dict[str, str]:
        """Sign ``<timestamp_ms>GET<path>`` now and return the handshake headers."""
        timestamp = str(int(self._clock() * 1000))
        return {
            "KALSHI-ACCESS-KEY": self._api_key_id,
            "KALSHI-ACCESS-TIMESTAMP": timestamp,
            "KALSHI-ACCESS-SIGNATURE": sign_message(self._private_key, timestamp + "GET" + path),
        }

    def __repr__(self) -> str:
        return f"Signer(api_key_id={self._api_key_id!r}, private_key=<hidden>)"
