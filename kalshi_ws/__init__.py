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

from . import _compiled
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
from .environment import config_from_env
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
from .models import (
    BookState,
    CfbenchmarksValue,
    CfbenchmarksValue5hz,
    CfbenchmarksWindow,
    Channel,
    ChannelResumed,
    ChannelStale,
    ChannelStats,
    ClientStats,
    Closed,
    ErrorCode,
    EventFeeUpdate,
    EventLifecycle,
    ExtraFields,
    Fill,
    Freshness,
    IndexList,
    Lagged,
    MalformedMessage,
    MarketLifecycle,
    MarketMetadata,
    MarketPosition,
    Message,
    MultivariateLookup,
    MultivariateMarketLifecycle,
    MveSelectedLeg,
    OrderbookDelta,
    OrderbookSnapshot,
    OrderGroupUpdate,
    PriceRange,
    PythValue,
    QuoteAccepted,
    QuoteCreated,
    QuoteExecuted,
    Reconnected,
    Resubscribed,
    RfqCreated,
    RfqDeleted,
    SelectedMarket,
    SequenceGap,
    StreamItem,
    StreamUpdate,
    SubscribeFailure,
    SubscribeResult,
    Subscription,
    SubscriptionError,
    SubscriptionInfo,
    SystemMessage,
    Ticker,
    TickerV2,
    Trade,
    UnderlyingList,
    UnknownMessage,
    UnsequencedGap,
    Unsubscribed,
    UserOrder,
)
from .per_process import PerProcessClient

__all__ = [
    "DEMO_WS_URL",
    "PROD_WS_URL",
    "AuthenticationError",
    "Backoff",
    "BookState",
    "CallbackHandle",
    "CfbenchmarksValue",
    "CfbenchmarksValue5hz",
    "CfbenchmarksWindow",
    "Channel",
    "ChannelResumed",
    "ChannelStale",
    "ChannelStats",
    "ClientStats",
    "Closed",
    "CommandError",
    "CommandTimeout",
    "ConcurrencyError",
    "ConfigurationError",
    "ConnectStrategy",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionLost",
    "ErrorCode",
    "EventFeeUpdate",
    "EventLifecycle",
    "ExtraFields",
    "Fill",
    "Freshness",
    "HandshakeError",
    "HealthConfig",
    "IndexList",
    "InvalidCommand",
    "KalshiConfig",
    "KalshiStreamClient",
    "KalshiWSError",
    "Lagged",
    "MalformedMessage",
    "MarketLifecycle",
    "MarketMetadata",
    "MarketPosition",
    "Message",
    "MultivariateLookup",
    "MultivariateMarketLifecycle",
    "MveSelectedLeg",
    "OrderGroupUpdate",
    "OrderbookDelta",
    "OrderbookSnapshot",
    "PerProcessClient",
    "PriceRange",
    "ProtocolError",
    "PythValue",
    "QuoteAccepted",
    "QuoteCreated",
    "QuoteExecuted",
    "ReconnectPolicy",
    "Reconnected",
    "Resubscribed",
    "RfqCreated",
    "RfqDeleted",
    "SelectedMarket",
    "SequenceGap",
    "SlowConsumerError",
    "StreamItem",
    "StreamUpdate",
    "SubscribeFailure",
    "SubscribeResult",
    "Subscription",
    "SubscriptionError",
    "SubscriptionInfo",
    "SystemMessage",
    "Ticker",
    "TickerV2",
    "Trade",
    "UnderlyingList",
    "UnknownMessage",
    "UnsequencedGap",
    "Unsubscribed",
    "UpdatesQueue",
    "UserOrder",
    "__version__",
    "config_from_env",
    "speedups",
]


def speedups() -> bool:
    """Whether clients created now use the optional C speed-ups.

    True where ``kalshi_ws._speedups`` was built at install time (it needs a C compiler
    and Python's headers) and ``KALSHI_WS_PURE_PYTHON`` is not set. Either way every
    frame, message, book and error is the same; the C code cuts frames out of the bytes
    read, reads the frames of learned shapes and snapshot sides, and loads and changes
    order books faster. The order-book steps are shared by every client, so for them
    the variable counts as it was when kalshi_ws was imported. Any thread may call it.
    """
    return _compiled.enabled()

logging.getLogger(__name__).addHandler(logging.NullHandler())
