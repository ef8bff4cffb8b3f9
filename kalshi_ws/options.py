"""ClientOptions: the validated options of one client (``KalshiStreamClient.connect``).

:class:`~kalshi_ws.config.KalshiConfig` says where and as whom to connect; this says
how the client behaves once connected. Every value is checked once, here, so that a
bad option fails at ``connect()`` with a message naming it, before any socket opens.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._dispatch import DROP_OLDEST, ERROR
from ._transport import DEFAULT_MAX_MESSAGE_SIZE
from .config import ConnectStrategy, HealthConfig, ReconnectPolicy, is_seconds
from .exceptions import ConfigurationError
from .freshness import stale_after_table
from .models import Channel, channel_of

__all__ = ["ClientOptions"]

# The client's parts log under its public name, as websockets names its loggers by
# role: users configure "kalshi_ws.client" whichever module does the work.
logger = logging.getLogger("kalshi_ws.client")


@attrs.frozen(kw_only=True)
class ClientOptions:
    """The options of one client, validated (build them with :meth:`build`).

    The attributes are ``connect()``'s keyword arguments, normalised: ``health`` is
    always a :class:`HealthConfig`, ``reconnect`` a :class:`ReconnectPolicy` or None,
    and ``overflow`` a table of channel name to policy plus ``overflow_default``.
    Immutable, so any thread may read it.
    """

    timeout: float = 10.0
    strategy: ConnectStrategy = ConnectStrategy.SIMPLE
    health: HealthConfig = attrs.field(factory=HealthConfig)
    reconnect: ReconnectPolicy | None = None
    command_timeout: float = 10.0
    close_timeout: float = 5.0
    queue: bool | None = None
    queue_maxsize: int = 65536
    max_pending: int = 65536
    overflow: Mapping[str, str] = attrs.field(factory=dict)
    overflow_default: str | None = None
    resync: bool = True
    ssl_context: ssl.SSLContext | None = None
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    on_error: Callable[[BaseException, Any], Any] | None = None
    stale_after: float | Mapping[Channel | str, float] | None = None

    def overflow_policy(self, channel: Any) -> str:
        """The overflow policy (``"error"`` or ``"drop_oldest"``) of one channel."""
        policy = self.overflow.get(str(channel))
        if policy is not None:
            return policy
        if self.overflow_default is not None:
            return self.overflow_default
        member = channel_of(str(channel))
        return member.default_overflow if isinstance(member, Channel) else ERROR

    @classmethod
    def build(cls, *, health: HealthConfig | None = None,
              reconnect: bool | ReconnectPolicy | None = False,
              overflow: str | Mapping[Channel | str, str] | None = None,
              **values: Any) -> ClientOptions:
        """Check ``connect()``'s keyword arguments and return them normalised.

        Any thread may call it.

        Raises:
            ConfigurationError: an option has the wrong type or value; the message
                names the option.
        """
        _check_numbers(values)
        if values.get("on_error") is not None and not callable(values["on_error"]):
            raise ConfigurationError("on_error must be callable (or None)")
        if not isinstance(values.get("strategy", ConnectStrategy.SIMPLE), ConnectStrategy):
            raise ConfigurationError("strategy must be ConnectStrategy.SIMPLE, "
                                     "ConnectStrategy.RETRY or ConnectStrategy.retry(...)")
        health = health or HealthConfig()
        if not isinstance(health, HealthConfig):
            raise ConfigurationError("health must be a HealthConfig")
        if not any(values.get("queue") is allowed for allowed in (True, False, None)):
            raise ConfigurationError("queue must be True, False or None")
        if not isinstance(values.get("resync", True), bool):
            raise ConfigurationError(f"resync must be True or False, not {values['resync']!r}")
        stale_after_table(values.get("stale_after"))  # raises ConfigurationError
        _check_ssl_context(values.get("ssl_context"))
        table, default = _overflow_table(overflow)
        return cls(health=health, reconnect=_reconnect_policy(reconnect), overflow=table,
                   overflow_default=default, **values)


def _check_numbers(values: Mapping[str, Any]) -> None:
    for name in ("timeout", "command_timeout", "close_timeout"):
        if name in values and not is_seconds(values[name]):
            raise ConfigurationError(f"{name} must be a positive number of seconds, "
                                     f"not {values[name]!r}")
    for name in ("queue_maxsize", "max_pending"):
        value = values.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive int")
    size = values.get("max_message_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigurationError(f"max_message_size must be a positive number of bytes "
                                 f"or None, not {size!r}")


def _reconnect_policy(reconnect: Any) -> ReconnectPolicy | None:
    if reconnect is True:
        return ReconnectPolicy()
    if reconnect is False or reconnect is None:
        return None
    if not isinstance(reconnect, ReconnectPolicy):
        raise ConfigurationError("reconnect must be True, False or a ReconnectPolicy")
    return reconnect


def _check_ssl_context(context: Any) -> None:
    if context is None:
        return
    if not isinstance(context, ssl.SSLContext):
        raise ConfigurationError("ssl_context must be an ssl.SSLContext")
    if context.verify_mode == ssl.CERT_NONE or not context.check_hostname:
        logger.warning("ssl_context does not verify the server certificate and host "
                       "name: the connection can be intercepted")


def _overflow_table(overflow: Any) -> tuple[dict[str, str], str | None]:
    policies = (DROP_OLDEST, ERROR)
    if overflow is None:
        return {}, None
    if isinstance(overflow, str):
        if overflow not in policies:
            raise ConfigurationError(f"overflow must be 'error' or 'drop_oldest', "
                                     f"not {overflow!r}")
        return {}, overflow
    if isinstance(overflow, Mapping):
        table = {}
        for channel, policy in overflow.items():
            if policy not in policies:
                raise ConfigurationError(
                    f"overflow policy for {channel} must be 'error' or 'drop_oldest', "
                    f"not {policy!r}")
            table[str(channel_of(str(channel)))] = policy
        return table, None
    raise ConfigurationError("overflow must be a policy name or a mapping of channel to policy")
