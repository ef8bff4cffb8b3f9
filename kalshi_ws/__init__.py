"""kalshi_ws: a synchronous, threaded client for Kalshi's WebSocket API (trade-api/ws/v2).

Quick start::

    from kalshi_ws import Channel, KalshiConfig, KalshiStreamClient

    config = KalshiConfig.from_env()
    with KalshiStreamClient.connect(config) as client:
        client.subscribe([Channel.TICKER], ["KXHIGHNY-26NOV21-T58"])
        for update in client.iter_updates(timeout=30):
            print(update)
"""

import logging

from ._dispatch import CallbackHandle, UpdatesQueue
from ._version import __version__
from .client import KalshiStreamClient
from .config import (
    DEMO_WS_URL,
    PROD_WS_URL,
    Backoff,
    ConnectStrategy,
    HealthConfig,
    KalshiConfig,
    ReconnectPolicy,
)
from .exceptions import (
    AuthenticationError,
    CommandError,
    CommandTimeout,
    ConcurrencyError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    HandshakeError,
    InvalidCommand,
    KalshiWSError,
    ProtocolError,
    SlowConsumerError,
)
from .models import *  # noqa: F403 - models defines __all__
from .models import __all__ as _models_all

__all__ = [
    "__version__",
    "KalshiStreamClient",
    "KalshiConfig",
    "ConnectStrategy",
    "HealthConfig",
    "ReconnectPolicy",
    "Backoff",
    "CallbackHandle",
    "UpdatesQueue",
    "DEMO_WS_URL",
    "PROD_WS_URL",
    "KalshiWSError",
    "ConfigurationError",
    "InvalidCommand",
    "HandshakeError",
    "AuthenticationError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "ConnectionLost",
    "SlowConsumerError",
    "CommandError",
    "CommandTimeout",
    "ProtocolError",
    "ConcurrencyError",
    *_models_all,
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
