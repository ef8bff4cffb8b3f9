"""The fake server's handshake rules: Kalshi's signature check, and the refusals a test asks for.

:class:`HandshakeGate` decides what a WebSocket upgrade request gets: an HTTP status
and a message (101: accepted), or a dropped TCP connection. It does no I/O; the
clock is injectable, so it is unit-testable with plain header mappings. The shell
(:class:`~kalshi_ws.testing.FakeKalshiServer`) asks it on its event loop and turns
the verdict into a response; the fault layer fills its queue of refusals from any
thread (each update is one attribute or deque operation, atomic under the GIL).
"""

from __future__ import annotations

import base64
import collections
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["HandshakeGate", "RedactSignatures", "load_public_key"]

class RedactSignatures(logging.Filter):
    """Blanks the value of a ``KALSHI-ACCESS-SIGNATURE`` header in a log record.

    The ``websockets`` library logs every handshake header at DEBUG; a signature is a
    credential for as long as its timestamp is fresh, so it never reaches a log.
    """

    _HEADER = re.compile(r"""(KALSHI-ACCESS-SIGNATURE['"]?\s*[:=]\s*['"]?)[^\s'",}]+""",
                         re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "signature" in text.lower():
            record.msg, record.args = self._HEADER.sub(r"\1[redacted]", text), ()
        return True


#: (HTTP status, message): 101 accepts the upgrade, anything else refuses it.
Verdict = tuple[int, str]


class HandshakeGate:
    """Kalshi's handshake check, plus the refusals and drops a test has queued.

    Args:
        public_key: The key signatures must verify with (see :func:`load_public_key`);
            None accepts any (or no) credentials.
        max_clock_skew: Seconds a handshake timestamp may differ from the clock.
        clock: The wall clock, in seconds (default :func:`time.time`).
    """

    def __init__(self, public_key: Any = None, *, max_clock_skew: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.public_key = load_public_key(public_key)
        self.max_clock_skew = max_clock_skew
        self.rejections: collections.deque[Verdict] = collections.deque()
        self.reject_forever: Verdict | None = None
        self.retry_after: str | None = None
        self.drops = 0
        self._clock = clock

    def reject(self, status: int, count: int | None = 1, body: str = "",
               retry_after: str | None = None) -> None:
        """Refuse the next ``count`` handshakes (None: all until :meth:`accept`)."""
        self.retry_after = retry_after
        verdict = (status, body or f"rejected with {status} by the test")
        if count is None:
            self.reject_forever = verdict
        else:
            self.rejections.extend([verdict] * count)

    def accept(self) -> None:
        """Forget every queued refusal and drop."""
        self.rejections.clear()
        self.reject_forever = None
        self.retry_after = None
        self.drops = 0

    def take_drop(self) -> bool:
        """Whether this connection attempt is to be dropped (consumes one drop)."""
        if not self.drops:
            return False
        self.drops -= 1
        return True

    def verdict(self, headers: Mapping[str, str], path: str) -> Verdict:
        """What a handshake with these headers, to this path, gets: a queued refusal
        first, then Kalshi's rules (no ``Origin``; signed, fresh ``KALSHI-ACCESS-*``)."""
        if self.rejections:
            return self.rejections.popleft()
        if self.reject_forever is not None:
            return self.reject_forever
        if "Origin" in headers:
            return 403, "Forbidden"
        if self.public_key is None:
            return 101, ""
        return self._signature_verdict(headers, path.split("?", 1)[0])

    def _signature_verdict(self, headers: Mapping[str, str], path: str) -> Verdict:
        assert self.public_key is not None
        key_id = headers.get("KALSHI-ACCESS-KEY")
        timestamp = headers.get("KALSHI-ACCESS-TIMESTAMP")
        signature = headers.get("KALSHI-ACCESS-SIGNATURE")
        if not key_id or not timestamp or not signature:
            return 401, "missing KALSHI-ACCESS headers"
        try:
            stamp = int(timestamp)
        except ValueError:
            return 401, "bad KALSHI-ACCESS-TIMESTAMP"
        if abs(stamp / 1000 - self._clock()) > self.max_clock_skew:
            return 401, "stale KALSHI-ACCESS-TIMESTAMP"
        try:
            self.public_key.verify(
                base64.b64decode(signature, validate=True), (timestamp + "GET" + path).encode(),
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                            salt_length=padding.PSS.DIGEST_LENGTH),
                hashes.SHA256())
        except (InvalidSignature, ValueError):
            return 401, "INCORRECT_API_KEY_SIGNATURE"
        return 101, ""


def load_public_key(key: Any) -> rsa.RSAPublicKey | None:
    """An RSA public key from PEM, an RSA public or private key, or a KalshiConfig.

    Raises:
        TypeError: ``key`` is none of those, or a PEM key that is not RSA.
        ValueError: the PEM text cannot be read.
    """
    if key is None:
        return None
    if hasattr(key, "public_key_pem"):  # a KalshiConfig
        key = key.public_key_pem()
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, (bytes, bytearray)):
        loaded = serialization.load_pem_public_key(bytes(key))
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise TypeError("public_key must be an RSA key")
        return loaded
    raise TypeError(f"public_key must be PEM, an RSA key or a KalshiConfig, not {type(key)}")
