"""User-facing configuration: credentials and URL, health checks, connect and reconnect policy."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import attrs

from .auth import KeyInput, Signer, load_private_key
from .exceptions import ConfigurationError, InvalidCommand

__all__ = [
    "DEMO_WS_URL",
    "PROD_WS_URL",
    "Backoff",
    "ConnectStrategy",
    "HealthConfig",
    "KalshiConfig",
    "ReconnectPolicy",
]

logger = logging.getLogger(__name__)

PROD_WS_URL = "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
DEMO_WS_URL = "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2"

_ENVIRONMENTS = {"demo": DEMO_WS_URL, "prod": PROD_WS_URL, "production": PROD_WS_URL}


class KalshiConfig:
    """Credentials and endpoint for one Kalshi account.

    The private key is loaded and checked here, at construction, so a bad key fails at
    once. It never appears in ``repr``, ``str``, logs or exceptions.

    Args:
        api_key_id: The API key id (a UUID shown when the key was created).
        private_key: PEM text or bytes (PKCS#1 or PKCS#8), or a ``cryptography`` RSA
            private key object.
        environment: ``"demo"`` (default) or ``"prod"``; picks Kalshi's URL.
        ws_url: Overrides the URL. ``ws://`` (no TLS) is allowed to a loopback host
            (``localhost``, ``127.x.x.x``, ``::1``) only: elsewhere the signed headers
            would travel in clear, and anyone on the path could replay them within
            the clock-skew window.
        private_key_password: The password of an encrypted PEM, if any.
        allow_insecure: Allow ``ws://`` to a host that is not loopback anyway (a
            warning is logged when the config is made).

    Raises:
        ConfigurationError: a missing key id, an unusable key, an unknown environment,
            a URL that is not ws:// or wss://, ws:// to a host that is not loopback
            without ``allow_insecure=True``, or an ``allow_insecure`` that is not a bool.
    """

    __slots__ = ("_api_key_id", "_environment", "_private_key", "_url")

    def __init__(
        self,
        api_key_id: str,
        private_key: KeyInput,
        *,
        environment: str = "demo",
        ws_url: str | None = None,
        private_key_password: str | bytes | None = None,
        allow_insecure: bool = False,
    ) -> None:
        if not isinstance(api_key_id, str) or not api_key_id.strip():
            raise ConfigurationError("api_key_id must be a non-empty string")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in api_key_id.strip()):
            # It is sent as a handshake header: a line break would start another header.
            raise ConfigurationError("api_key_id must not contain control characters "
                                     "(line breaks, tabs)")
        if not isinstance(allow_insecure, bool):
            raise ConfigurationError(f"allow_insecure must be True or False, not "
                                     f"{allow_insecure!r}")
        env = str(environment).strip().lower()
        if env not in _ENVIRONMENTS:
            raise ConfigurationError(
                f"environment must be 'demo' or 'prod', not {environment!r}"
            )
        url = ws_url if ws_url is not None else _ENVIRONMENTS[env]
        _check_url(url, allow_insecure)
        self._api_key_id = api_key_id.strip()
        self._private_key = load_private_key(private_key, private_key_password)
        self._environment = "prod" if env == "production" else env
        self._url = url

    @classmethod
    def from_key_file(
        cls,
        api_key_id: str,
        path: str | os.PathLike[str],
        *,
        environment: str = "demo",
        ws_url: str | None = None,
        private_key_password: str | bytes | None = None,
        allow_insecure: bool = False,
    ) -> KalshiConfig:
        """Build a config from a PEM key file (the other arguments as for the class).

        Raises:
            ConfigurationError: the file cannot be read, or holds no usable key.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read private key file {os.fspath(path)!r}: {exc.strerror or exc}"
            ) from None
        return cls(api_key_id, data, environment=environment, ws_url=ws_url,
                   private_key_password=private_key_password, allow_insecure=allow_insecure)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KalshiConfig:
        """Build a config from environment variables.

        Reads ``KALSHI_API_KEY_ID``; ``KALSHI_PRIVATE_KEY_PATH`` (a PEM file) or
        ``KALSHI_PRIVATE_KEY`` (the PEM text itself); optionally ``KALSHI_ENV``
        (``demo`` or ``prod``), ``KALSHI_WS_URL``, ``KALSHI_PRIVATE_KEY_PASSWORD`` and
        ``KALSHI_ALLOW_INSECURE=1`` (see ``allow_insecure``).

        Args:
            environ: The variables to read (default ``os.environ``).

        Raises:
            ConfigurationError: naming each missing or unusable variable.
        """
        env = os.environ if environ is None else environ
        key_id = env.get("KALSHI_API_KEY_ID", "").strip()
        key_path = env.get("KALSHI_PRIVATE_KEY_PATH", "").strip()
        key_text = env.get("KALSHI_PRIVATE_KEY", "")
        missing = []
        if not key_id:
            missing.append("KALSHI_API_KEY_ID")
        if not key_path and not key_text.strip():
            missing.append("KALSHI_PRIVATE_KEY_PATH (or KALSHI_PRIVATE_KEY)")
        if missing:
            raise ConfigurationError("missing environment variable(s): " + ", ".join(missing))
        options: dict[str, Any] = {
            "environment": env.get("KALSHI_ENV", "demo").strip() or "demo",
            "ws_url": env.get("KALSHI_WS_URL", "").strip() or None,
            "private_key_password": env.get("KALSHI_PRIVATE_KEY_PASSWORD") or None,
            "allow_insecure": env.get("KALSHI_ALLOW_INSECURE", "").strip().lower()
            in ("1", "true", "yes"),
        }
        try:
            if key_path:
                return cls.from_key_file(key_id, key_path, **options)
            return cls(key_id, key_text.replace("\\n", "\n"), **options)
        except ConfigurationError as exc:
            source = "KALSHI_PRIVATE_KEY_PATH" if key_path else "KALSHI_PRIVATE_KEY"
            if "environment must be" in str(exc):
                source = "KALSHI_ENV"
            elif "URL" in str(exc) or "ws_url" in str(exc):
                source = "KALSHI_WS_URL"
            raise ConfigurationError(f"{source}: {exc}") from None

    @property
    def api_key_id(self) -> str:
        """The API key id."""
        return self._api_key_id

    @property
    def environment(self) -> str:
        """``"demo"`` or ``"prod"``."""
        return self._environment

    @property
    def url(self) -> str:
        """The WebSocket URL to connect to."""
        return self._url

    def signer(self, clock: Callable[[], float] | None = None) -> Signer:
        """Return a :class:`Signer` for the handshake headers of this account."""
        if clock is None:
            return Signer(self._api_key_id, self._private_key)
        return Signer(self._api_key_id, self._private_key, clock)

    def public_key_pem(self) -> bytes:
        """The PEM of the public half of the key (to configure a test server)."""
        from cryptography.hazmat.primitives import serialization

        return self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        bits = self._private_key.key_size
        return (
            f"KalshiConfig(api_key_id={self._api_key_id!r}, environment={self._environment!r}, "
            f"url={self._url!r}, private_key=<RSA {bits}-bit, hidden>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("KalshiConfig holds a private key and cannot be pickled")


def _check_url(url: object, allow_insecure: bool = False) -> None:
    if not isinstance(url, str):
        raise ConfigurationError(f"ws_url must be a string, not {type(url).__name__}")
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018  (raises ValueError for a bad or out-of-range port)
    except ValueError as exc:
        raise ConfigurationError(f"ws_url {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise ConfigurationError(
            f"ws_url must be a ws:// or wss:// URL with a host, not {url!r}"
        )
    if parsed.scheme == "ws" and not is_loopback(parsed.hostname):
        if not allow_insecure:
            raise ConfigurationError(
                f"ws_url {url!r} has no TLS and {parsed.hostname!r} is not this machine: "
                "the signed login headers would travel in clear and could be replayed. "
                "Use wss://, or pass allow_insecure=True (KALSHI_ALLOW_INSECURE=1) if you "
                "accept that")
        logger.warning("ws_url %s has no TLS: the signed login headers travel in clear "
                       "(allow_insecure=True)", url)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address)."""
    if host.lower().rstrip(".") == "localhost":  # resolved from /etc/hosts, not DNS
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_seconds(value: object) -> bool:
    """Whether ``value`` is a usable duration: a finite number above zero (not a bool)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value > 0)


def check_timeout(timeout: object) -> None:
    """Refuse a timeout argument that is neither None nor a usable duration.

    Raises:
        InvalidCommand: naming the value.
    """
    if timeout is not None and not is_seconds(timeout):
        raise InvalidCommand(f"timeout must be a positive number of seconds or None, "
                             f"not {timeout!r}")


def _positive(name: str, *, optional: bool = True,
              ) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
        if (value is not None or not optional) and not is_seconds(value):
            raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")

    return check


def _is_backoff(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Backoff):
        raise ConfigurationError(f"backoff must be a Backoff, not {value!r}")


@attrs.frozen(kw_only=True)
class HealthConfig:
    """Liveness checks for a connection.

    Kalshi pings every 10 s, but possibly only while the connection is idle. The
    client therefore also pings on its own and watches for silence.

    Attributes:
        ping_interval: Seconds between the client's own pings (None: never ping).
        pong_timeout: Seconds to wait for the pong of a client ping before declaring
            the connection dead.
        idle_timeout: Seconds without any frame at all (data, ping or pong) after which
            the connection is dead (None: no idle check). A dead connection is reported
            within idle_timeout plus the reader's tick (half a second). Only whole
            frames count: bytes of a frame that never completes are no sign of life.
    """

    ping_interval: float | None = attrs.field(default=10.0, validator=_positive("ping_interval"))
    pong_timeout: float = attrs.field(default=10.0,
                                      validator=_positive("pong_timeout", optional=False))
    idle_timeout: float | None = attrs.field(default=30.0, validator=_positive("idle_timeout"))


def _check_attempts(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ConfigurationError(f"max_attempts must be a positive int or None, not {value!r}")


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n)).

    Attributes:
        base: Seconds; the ceiling of the first wait.
        cap: Seconds; no wait is longer.
        max_attempts: How many attempts in all, the first included (None: no limit).
    """

    base: float = attrs.field(default=0.5, validator=_positive("base"))
    cap: float = attrs.field(default=30.0, validator=_positive("cap"))
    max_attempts: int | None = attrs.field(default=None, validator=_check_attempts)


@attrs.frozen(kw_only=True)
class ConnectStrategy:
    """How the first connection is made.

    ``ConnectStrategy.SIMPLE`` tries once and raises. ``ConnectStrategy.RETRY`` retries
    failed attempts with :class:`Backoff` (10 attempts, 0.5 s base, 30 s cap); build
    another with :meth:`retry`. Authentication failures are never retried.
    """

    retries: bool = False
    backoff: Backoff = attrs.field(default=Backoff(), validator=_is_backoff)

    SIMPLE: ClassVar[ConnectStrategy]
    RETRY: ClassVar[ConnectStrategy]

    @classmethod
    def retry(
        cls, *, base: float = 0.5, cap: float = 30.0, max_attempts: int | None = 10
    ) -> ConnectStrategy:
        """A retrying strategy with the given backoff."""
        return cls(retries=True, backoff=Backoff(base=base, cap=cap, max_attempts=max_attempts))


ConnectStrategy.SIMPLE = ConnectStrategy(retries=False)
ConnectStrategy.RETRY = ConnectStrategy.retry()


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """Automatic reconnection after an unexpected loss (pass ``reconnect=`` to connect).

    Attributes:
        backoff: Delay between attempts; its ``max_attempts`` ends the client after so
            many failed attempts in a row (None: keep trying until close()). A
            ``Retry-After`` the server sends with a refusal (429, 503) is honoured, up
            to the backoff's cap.
        restore_timeout: Seconds to wait for Kalshi to acknowledge the restored
            subscriptions on a new connection before trying again.
        healthy_after: Seconds a connection must stay up before the backoff starts
            again from its smallest wait. A server that accepts and then drops the
            connection at once therefore sees exponentially spaced attempts, not a
            storm of quick reconnects.
    """

    backoff: Backoff = attrs.field(default=Backoff(), validator=_is_backoff)
    restore_timeout: float = attrs.field(default=10.0, validator=_positive("restore_timeout"))
    healthy_after: float = attrs.field(default=30.0, validator=_positive("healthy_after"))
