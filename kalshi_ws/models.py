"""Typed messages: every Kalshi message type, system messages, command results.

All classes here are frozen, slotted, keyword-only attrs classes, so an instance can
pass from the reader thread to the dispatcher and on to any user thread without
copying or locking. Attribute names are Kalshi's wire names. Money (``*_dollars``)
and contract counts (``*_fp``) are :class:`decimal.Decimal`, never float. Integer
cents and counts that older servers sent (removed by Kalshi on 12 Mar 2026) are kept
as optional ints so old captures still read.

This module holds data only: how JSON becomes these classes lives in ``_wire.py``.
"""

from __future__ import annotations

import abc
import builtins
import enum
import sys
import warnings
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from .exceptions import ConnectionLost

if sys.version_info >= (3, 11) or TYPE_CHECKING:
    from typing import dataclass_transform
else:  # Python 3.10: only type checkers use it
    def dataclass_transform(**_: Any) -> Any:
        return lambda decorator: decorator

__all__ = [
    "NO_EXTRA",
    "BookState",
    "CfbenchmarksValue",
    "CfbenchmarksValue5hz",
    "CfbenchmarksWindow",
    "Channel",
    "ChannelResumed",
    "ChannelStale",
    "ChannelStats",
    "ClientStats",
    "Closed",
    "ErrorCode",
    "EventFeeUpdate",
    "EventLifecycle",
    "ExtraFields",
    "Fill",
    "Freshness",
    "IndexList",
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
    "PriceRange",
    "PythValue",
    "QuoteAccepted",
    "QuoteCreated",
    "QuoteExecuted",
    "Reconnected",
    "Resubscribed",
    "RfqCreated",
    "RfqDeleted",
    "SelectedMarket",
    "SequenceGap",
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
    "UserOrder",
]


class _ChannelType(enum.EnumMeta):
    """Enum metaclass that warns when a deprecated member is named.

    Deprecated members are taken out of the class namespace after creation, so naming
    any other member costs nothing extra; ``Channel("multivariate")``,
    ``Channel["MULTIVARIATE"]`` and iteration still find it, silently.
    """

    def __getattr__(cls, name: str) -> Any:
        replacement = _DEPRECATED_CHANNELS.get(name)
        if replacement is None:
            raise AttributeError(name)
        warnings.warn(
            f"Channel.{name} is deprecated: Kalshi removed the {name.lower()!r} channel on "
            f"6 Aug 2026 and answers error 8 to it; use Channel.{replacement} "
            f"({getattr(cls, replacement).value!r}) instead",
            DeprecationWarning, stacklevel=2)
        return cls._member_map_[name]


class Channel(str, enum.Enum, metaclass=_ChannelType):
    """Kalshi WebSocket channel names (the ``params.channels`` values).

    Members compare equal to their wire strings (``Channel.TICKER == "ticker"``).
    ``MULTIVARIATE`` is deprecated (naming it warns): Kalshi removed the channel on
    6 Aug 2026 and now answers error 8 (unknown channel) to it; combo (multivariate)
    markets are on ``MULTIVARIATE_MARKET_LIFECYCLE``.
    """

    ORDERBOOK_DELTA = "orderbook_delta"
    TICKER = "ticker"
    TRADE = "trade"
    FILL = "fill"
    MARKET_POSITIONS = "market_positions"
    USER_ORDERS = "user_orders"
    ORDER_GROUP_UPDATES = "order_group_updates"
    COMMUNICATIONS = "communications"
    MARKET_LIFECYCLE_V2 = "market_lifecycle_v2"
    MULTIVARIATE_MARKET_LIFECYCLE = "multivariate_market_lifecycle"
    CFBENCHMARKS_VALUE = "cfbenchmarks_value"
    CFBENCHMARKS_VALUE_5HZ = "cfbenchmarks_value_5hz"
    PYTH_VALUE = "pyth_value"
    MULTIVARIATE = "multivariate"

    # Hash and compare exactly like the wire string, on every Python version, so that
    # a member and its name are the same dict key and set member.
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    @property
    def requires_market_tickers(self) -> bool:
        """Whether Kalshi refuses a subscription to this channel without markets."""
        return self is Channel.ORDERBOOK_DELTA

    @property
    def sequenced(self) -> bool:
        """Whether this channel's data messages carry a per-subscription ``seq``."""
        return self not in _UNSEQUENCED

    @property
    def default_overflow(self) -> str:
        """The overflow policy used unless configured: latest-value feeds may drop."""
        return "drop_oldest" if self in _LOSSY else "error"


# Deprecated member -> the member to use instead.
_DEPRECATED_CHANNELS = {"MULTIVARIATE": "MULTIVARIATE_MARKET_LIFECYCLE"}
for _name in _DEPRECATED_CHANNELS:
    type.__delattr__(Channel, _name)  # found through _ChannelType.__getattr__, which warns
del _name  # pyright: ignore[reportPossiblyUnboundVariable]

_UNSEQUENCED = frozenset(
    {Channel.TICKER, Channel.FILL, Channel.MARKET_POSITIONS, Channel.USER_ORDERS}
)
#: Your own data without seq: a lost message is invisible (see :class:`UnsequencedGap`).
USER_UNSEQUENCED = frozenset({Channel.FILL, Channel.MARKET_POSITIONS, Channel.USER_ORDERS})
_LOSSY = frozenset(
    {
        Channel.TICKER,
        Channel.CFBENCHMARKS_VALUE,
        Channel.CFBENCHMARKS_VALUE_5HZ,
        Channel.PYTH_VALUE,
    }
)


class ErrorCode(enum.IntEnum):
    """Kalshi's WebSocket error codes (``msg.code`` of an ``error`` message).

    Codes 6, 16 and 17 are retired but kept to read logs of older deployments.
    Codes 10 and 25 end the subscription they name: it must be created again.
    """

    UNABLE_TO_PROCESS_MESSAGE = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SUBSCRIPTION_IDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    ALREADY_SUBSCRIBED = 6
    UNKNOWN_SUBSCRIPTION_ID = 7
    UNKNOWN_CHANNEL_NAME = 8
    AUTHENTICATION_REQUIRED = 9
    CHANNEL_ERROR = 10
    INVALID_PARAMETER = 11
    EXACTLY_ONE_SUBSCRIPTION_ID_REQUIRED = 12
    UNSUPPORTED_ACTION = 13
    MARKET_TICKER_REQUIRED = 14
    ACTION_REQUIRED = 15
    MARKET_NOT_FOUND = 16
    INTERNAL_ERROR = 17
    COMMAND_TIMEOUT = 18
    SHARD_FACTOR_MUST_BE_POSITIVE = 19
    SHARD_FACTOR_REQUIRED = 20
    SHARD_KEY_OUT_OF_RANGE = 21
    SHARD_FACTOR_TOO_LARGE = 22
    MATCH_IDS_REQUIRED = 23
    INDEX_IDS_REQUIRED = 24
    SUBSCRIPTION_BUFFER_OVERFLOW = 25
    SUBSCRIPTION_MARKET_LIMIT_EXCEEDED = 26
    TOO_MANY_REQUESTS = 27
    UNDERLYING_TICKERS_REQUIRED = 28

    @property
    def terminal(self) -> bool:
        """Whether this error ends the subscription it is scoped to."""
        return self in (ErrorCode.CHANNEL_ERROR, ErrorCode.SUBSCRIPTION_BUFFER_OVERFLOW,
                        ErrorCode.INTERNAL_ERROR)


_M = TypeVar("_M")
_C = TypeVar("_C", bound=type)


@dataclass_transform(frozen_default=True, kw_only_default=True,
                     field_specifiers=(attrs.field, attrs.Factory))
def _frozen(cls: _C) -> _C:
    """``attrs.frozen(kw_only=True)``, spelled so that type checkers see the fields."""
    return attrs.frozen(kw_only=True)(cls)


class ExtraFields(Mapping[str, Any]):
    """A read-only mapping of the fields a message class does not know (see ``extra``).

    It holds the keys of Kalshi's payload that have no attribute on the class (a field
    Kalshi added after this release), and the raw values of fields whose value could
    not be read (the attribute then reads None). Immutable, picklable, compares equal to
    a dict with the same items.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> Any:
        return (ExtraFields, (self._data,))

    __hash__ = None  # type: ignore[assignment]  # like a dict


#: The ``extra`` of a message whose payload held only fields its class knows.
NO_EXTRA: Mapping[str, Any] = ExtraFields()


def _extra() -> Any:
    """The ``extra`` attribute of every message class (keyword-only, default empty)."""
    return attrs.field(default=NO_EXTRA, hash=False)

Level = tuple[Decimal, Decimal]
"""One order-book level: (price in dollars, size in contracts)."""


# --------------------------------------------------------------------------- order book


@_frozen
class OrderbookSnapshot:
    """``orderbook_snapshot``: the full book of one market (channel ``orderbook_delta``).

    Each level is a resting bid. ``no_dollars_fp`` prices are in NO terms unless the
    subscription used ``use_yes_price``. An absent side means an empty side.
    """

    TYPE: ClassVar[str] = "orderbook_snapshot"
    market_ticker: str
    market_id: str | None = None
    yes_dollars_fp: tuple[Level, ...] = ()
    no_dollars_fp: tuple[Level, ...] = ()
    # Legacy (removed 12 Mar 2026): [cents, count] and [dollar string, count].
    yes: tuple[tuple[int, int], ...] | None = None
    no: tuple[tuple[int, int], ...] | None = None
    yes_dollars: tuple[Level, ...] | None = None
    no_dollars: tuple[Level, ...] | None = None
    extra: Mapping[str, Any] = _extra()

    #: Fields a book cannot be applied without: a bad value makes the message malformed.
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset(
        {"yes_dollars_fp", "no_dollars_fp", "yes", "no", "yes_dollars", "no_dollars"})

    def yes_levels(self) -> tuple[Level, ...]:
        """YES bids as (price, size), from the current field or a legacy one."""
        return _levels(self.yes_dollars_fp, self.yes_dollars, self.yes)

    def no_levels(self) -> tuple[Level, ...]:
        """NO bids as (price, size), from the current field or a legacy one."""
        return _levels(self.no_dollars_fp, self.no_dollars, self.no)

def _levels(
    current: tuple[Level, ...],
    legacy_dollars: tuple[Level, ...] | None,
    legacy_cents: tuple[tuple[int, int], ...] | None,
) -> tuple[Level, ...]:
    if current or (legacy_dollars is None and legacy_cents is None):
        return current
    if legacy_dollars is not None:
        return legacy_dollars
    assert legacy_cents is not None
    return tuple((Decimal(p) / 100, Decimal(q)) for p, q in legacy_cents)


@_frozen
class OrderbookDelta:
    """``orderbook_delta``: a signed change of resting size at one price level.

    ``client_order_id`` and ``subaccount`` are present only when your own order
    caused the change.
    """

    TYPE: ClassVar[str] = "orderbook_delta"
    market_ticker: str
    side: str
    market_id: str | None = None
    price_dollars: Decimal | None = None
    delta_fp: Decimal | None = None
    client_order_id: str | None = None
    subaccount: int | None = None
    ts_ms: int | None = None
    ts: str | None = None
    # Legacy (removed 12 Mar 2026).
    price: int | None = None
    delta: int | None = None
    extra: Mapping[str, Any] = _extra()

    #: Fields a book cannot be applied without: a bad value makes the message malformed.
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset({"price_dollars", "delta_fp", "price", "delta"})

    def level_price(self) -> Decimal:
        """The price that changed, in dollars (from ``price_dollars`` or legacy cents)."""
        if self.price_dollars is not None:
            return self.price_dollars
        if self.price is not None:
            return Decimal(self.price) / 100
        raise ValueError(f"orderbook_delta for {self.market_ticker} carries no price")

    def size_change(self) -> Decimal:
        """The signed size change, in contracts (from ``delta_fp`` or legacy ``delta``)."""
        if self.delta_fp is not None:
            return self.delta_fp
        if self.delta is not None:
            return Decimal(self.delta)
        raise ValueError(f"orderbook_delta for {self.market_ticker} carries no size")

# --------------------------------------------------------------------------- market data


@_frozen
class Ticker:
    """``ticker``: a market's price, top of book, volume and open interest changed."""

    TYPE: ClassVar[str] = "ticker"
    market_ticker: str
    market_id: str | None = None
    price_dollars: Decimal | None = None
    yes_bid_dollars: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    yes_bid_size_fp: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    last_trade_size_fp: Decimal | None = None
    volume_fp: Decimal | None = None
    open_interest_fp: Decimal | None = None
    dollar_volume: int | None = None
    dollar_open_interest: int | None = None
    ts_ms: int | None = None
    ts: int | None = None
    time: str | None = None
    # Legacy (removed 12 Mar 2026).
    price: int | None = None
    yes_bid: int | None = None
    yes_ask: int | None = None
    volume: int | None = None
    open_interest: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class TickerV2:
    """``ticker_v2`` (removed by Kalshi on 12 Feb 2026): partial ticker changes."""

    TYPE: ClassVar[str] = "ticker_v2"
    market_ticker: str
    market_id: str | None = None
    price: int | None = None
    price_dollars: Decimal | None = None
    volume_delta: int | None = None
    volume_delta_fp: Decimal | None = None
    open_interest_delta: int | None = None
    open_interest_delta_fp: Decimal | None = None
    dollar_volume_delta: int | None = None
    dollar_open_interest_delta: int | None = None
    ts: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class Trade:
    """``trade``: a public trade. ``taker_side`` is deprecated by Kalshi."""

    TYPE: ClassVar[str] = "trade"
    market_ticker: str
    trade_id: str | None = None
    yes_price_dollars: Decimal | None = None
    no_price_dollars: Decimal | None = None
    count_fp: Decimal | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    taker_side: str | None = None
    is_block_trade: bool | None = None
    ts_ms: int | None = None
    ts: int | None = None
    # Legacy (removed 12 Mar 2026).
    yes_price: int | None = None
    no_price: int | None = None
    count: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class Fill:
    """``fill``: one of your orders traded. ``side``, ``action``, ``purchased_side`` are deprecated."""

    TYPE: ClassVar[str] = "fill"
    order_id: str
    market_ticker: str
    trade_id: str | None = None
    client_order_id: str | None = None
    exchange_index: int | None = None
    is_taker: bool | None = None
    yes_price_dollars: Decimal | None = None
    count_fp: Decimal | None = None
    fee_cost: Decimal | None = None
    post_position_fp: Decimal | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    side: str | None = None
    action: str | None = None
    purchased_side: str | None = None
    subaccount: int | None = None
    ts_ms: int | None = None
    ts: int | None = None
    # Legacy (removed 12 Mar 2026).
    yes_price: int | None = None
    count: int | None = None
    post_position: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class MarketPosition:
    """``market_position`` (channel ``market_positions``): your position in a market changed."""

    TYPE: ClassVar[str] = "market_position"
    market_ticker: str
    user_id: str | None = None
    position_fp: Decimal | None = None
    position_cost_dollars: Decimal | None = None
    realized_pnl_dollars: Decimal | None = None
    fees_paid_dollars: Decimal | None = None
    position_fee_cost_dollars: Decimal | None = None
    volume_fp: Decimal | None = None
    subaccount: int | None = None
    # Legacy: counts (removed 12 Mar 2026) and centi-cent amounts (removed 2 Apr 2026).
    position: int | None = None
    volume: int | None = None
    position_cost: int | None = None
    realized_pnl: int | None = None
    fees_paid: int | None = None
    position_fee_cost: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class UserOrder:
    """``user_order`` (channel ``user_orders``): one of your orders changed.

    The market field is named ``ticker`` here, as on the wire.
    """

    TYPE: ClassVar[str] = "user_order"
    order_id: str
    ticker: str
    user_id: str | None = None
    exchange_index: int | None = None
    status: str | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    side: str | None = None
    is_yes: bool | None = None
    yes_price_dollars: Decimal | None = None
    fill_count_fp: Decimal | None = None
    remaining_count_fp: Decimal | None = None
    initial_count_fp: Decimal | None = None
    taker_fill_cost_dollars: Decimal | None = None
    maker_fill_cost_dollars: Decimal | None = None
    taker_fees_dollars: Decimal | None = None
    maker_fees_dollars: Decimal | None = None
    client_order_id: str | None = None
    order_group_id: str | None = None
    self_trade_prevention_type: str | None = None
    created_ts_ms: int | None = None
    last_updated_ts_ms: int | None = None
    expiration_ts_ms: int | None = None
    last_update_reason: str | None = None
    subaccount_number: int | None = None
    created_time: str | None = None
    last_update_time: str | None = None
    expiration_time: str | None = None
    # Legacy (removed 12 Mar 2026).
    yes_price: int | None = None
    fill_count: int | None = None
    remaining_count: int | None = None
    initial_count: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class OrderGroupUpdate:
    """``order_group_updates``: an order group was created, triggered, reset, deleted or re-limited."""

    TYPE: ClassVar[str] = "order_group_updates"
    event_type: str
    order_group_id: str
    contracts_limit_fp: Decimal | None = None
    ts_ms: int | None = None
    # Legacy (removed 12 Mar 2026).
    contracts_limit: int | None = None

    extra: Mapping[str, Any] = _extra()

# --------------------------------------------------------------------------- lifecycle


@_frozen
class PriceRange:
    """One band of a market's tick structure: prices in [start, end] move by ``step``."""

    start: Decimal
    end: Decimal
    step: Decimal

    extra: Mapping[str, Any] = _extra()

@_frozen
class MarketMetadata:
    """The ``additional_metadata`` object of a market's ``created`` lifecycle event."""

    name: str | None = None
    title: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    can_close_early: bool | None = None
    event_ticker: str | None = None
    expected_expiration_ts: int | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: Mapping[str, Any] | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class _LifecycleFields:
    market_ticker: str
    event_type: str
    exchange_index: int | None = None
    open_ts: int | None = None
    close_ts: int | None = None
    determination_ts: int | None = None
    settled_ts: int | None = None
    result: str | None = None
    settlement_value: Decimal | None = None
    is_deactivated: bool | None = None
    additional_metadata: MarketMetadata | None = None
    price_level_structure: str | None = None
    price_ranges: tuple[PriceRange, ...] | None = None
    # metadata_updated events
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: Mapping[str, Any] | None = None
    yes_sub_title: str | None = None
    # fractional_trading_updated (removed 17 Apr 2026)
    fractional_trading_enabled: bool | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class MarketLifecycle(_LifecycleFields):
    """``market_lifecycle_v2``: a market was created, (de)activated, determined, settled,
    re-ticked (``price_level_structure_updated``) or re-described (``metadata_updated``).

    Which optional fields are set depends on ``event_type``.
    """

    TYPE: ClassVar[str] = "market_lifecycle_v2"


@_frozen
class MultivariateMarketLifecycle(_LifecycleFields):
    """``multivariate_market_lifecycle``: lifecycle of combo (MVE) markets."""

    TYPE: ClassVar[str] = "multivariate_market_lifecycle"


@_frozen
class EventLifecycle:
    """``event_lifecycle``: an event was created (lifecycle channels)."""

    TYPE: ClassVar[str] = "event_lifecycle"
    event_ticker: str
    exchange_index: int | None = None
    title: str | None = None
    subtitle: str | None = None
    collateral_return_type: str | None = None
    series_ticker: str | None = None
    strike_date: int | None = None
    strike_period: str | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class EventFeeUpdate:
    """``event_fee_update``: an event's fee override was set or (both None) cleared."""

    TYPE: ClassVar[str] = "event_fee_update"
    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None

    extra: Mapping[str, Any] = _extra()

# --------------------------------------------------------------------------- communications


@_frozen
class MveSelectedLeg:
    """One leg of a combo RFQ."""

    event_ticker: str | None = None
    market_ticker: str | None = None
    side: str | None = None
    yes_settlement_value_dollars: Decimal | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class _RfqFields:
    id: str
    market_ticker: str | None = None
    creator_id: str | None = None
    event_ticker: str | None = None
    contracts_fp: Decimal | None = None
    target_cost_dollars: Decimal | None = None
    # Legacy (removed 12 Mar 2026).
    contracts: int | None = None
    target_cost: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class RfqCreated(_RfqFields):
    """``rfq_created`` (channel ``communications``): a request for quote was opened."""

    TYPE: ClassVar[str] = "rfq_created"
    created_ts: str | None = None
    mve_collection_ticker: str | None = None
    mve_selected_legs: tuple[MveSelectedLeg, ...] | None = None


@_frozen
class RfqDeleted(_RfqFields):
    """``rfq_deleted`` (channel ``communications``): a request for quote was closed."""

    TYPE: ClassVar[str] = "rfq_deleted"
    deleted_ts: str | None = None


@_frozen
class _QuoteFields:
    quote_id: str
    rfq_id: str | None = None
    quote_creator_id: str | None = None
    rfq_creator_id: str | None = None
    market_ticker: str | None = None
    event_ticker: str | None = None
    yes_bid_dollars: Decimal | None = None
    no_bid_dollars: Decimal | None = None
    yes_contracts_offered_fp: Decimal | None = None
    no_contracts_offered_fp: Decimal | None = None
    rfq_target_cost_dollars: Decimal | None = None
    subaccount: int | None = None
    # Legacy (removed 12 Mar 2026).
    yes_bid: int | None = None
    no_bid: int | None = None
    yes_contracts_offered: int | None = None
    no_contracts_offered: int | None = None
    rfq_target_cost: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class QuoteCreated(_QuoteFields):
    """``quote_created`` (channel ``communications``). A bid of ``0`` means that side is declined."""

    TYPE: ClassVar[str] = "quote_created"
    created_ts: str | None = None


@_frozen
class QuoteAccepted(_QuoteFields):
    """``quote_accepted`` (channel ``communications``). Carries no timestamp."""

    TYPE: ClassVar[str] = "quote_accepted"
    accepted_side: str | None = None
    contracts_accepted_fp: Decimal | None = None
    # Legacy (removed 12 Mar 2026).
    contracts_accepted: int | None = None


@_frozen
class QuoteExecuted:
    """``quote_executed`` (channel ``communications``): join with ``fill`` on ``order_id``."""

    TYPE: ClassVar[str] = "quote_executed"
    quote_id: str
    rfq_id: str | None = None
    quote_creator_id: str | None = None
    rfq_creator_id: str | None = None
    order_id: str | None = None
    client_order_id: str | None = None
    market_ticker: str | None = None
    executed_ts: str | None = None
    subaccount: int | None = None

    extra: Mapping[str, Any] = _extra()

# --------------------------------------------------------------------------- reference prices


@_frozen
class CfbenchmarksWindow:
    """A windowed average of a CF Benchmarks index."""

    value: Decimal | None = None
    window_size: int | None = None
    window_start_ts_ms: int | None = None
    window_end_ts_exclusive: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class CfbenchmarksValue:
    """``cfbenchmarks_value``: an index value (``data`` is the upstream JSON, as a string)."""

    TYPE: ClassVar[str] = "cfbenchmarks_value"
    index_id: str
    received_at: int | None = None
    data: str | None = None
    avg_60s_data: CfbenchmarksWindow | None = None
    last_60s_windowed_average_15min: CfbenchmarksWindow | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class CfbenchmarksValue5hz:
    """``cfbenchmarks_value_5hz``: a fast index value."""

    TYPE: ClassVar[str] = "cfbenchmarks_value_5hz"
    index_id: str
    value_usd: Decimal | None = None
    source_ts_ms: int | None = None
    received_at: int | None = None
    data: str | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class IndexList:
    """``cfbenchmarks_value_indexlist`` / ``cfbenchmarks_value_5hz_indexlist``: the indices subscribed."""

    index_ids: tuple[str, ...] = ()

    extra: Mapping[str, Any] = _extra()

@_frozen
class PythValue:
    """``pyth_value``: a Pyth reference price."""

    TYPE: ClassVar[str] = "pyth_value"
    underlying_ticker: str
    value_usd: Decimal | None = None
    source_ts_ms: int | None = None
    received_at: int | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class UnderlyingList:
    """``pyth_value_underlying_list``: the Pyth underlyings subscribed."""

    TYPE: ClassVar[str] = "pyth_value_underlying_list"
    underlying_tickers: tuple[str, ...] = ()

    extra: Mapping[str, Any] = _extra()

@_frozen
class SelectedMarket:
    """One selected market of a ``multivariate_lookup``."""

    event_ticker: str | None = None
    market_ticker: str | None = None
    side: str | None = None

    extra: Mapping[str, Any] = _extra()

@_frozen
class MultivariateLookup:
    """``multivariate_lookup`` (channel ``multivariate``, removed 6 Aug 2026)."""

    TYPE: ClassVar[str] = "multivariate_lookup"
    collection_ticker: str | None = None
    event_ticker: str | None = None
    market_ticker: str | None = None
    selected_markets: tuple[SelectedMarket, ...] = ()

    extra: Mapping[str, Any] = _extra()

@_frozen
class UnknownMessage:
    """A message whose ``type`` this version does not know; ``raw`` is the whole frame."""

    type: str
    raw: Mapping[str, Any]


@_frozen
class MalformedMessage:
    """A known message type whose payload could not be read; ``raw`` is the whole frame.

    ``error`` says which field was wrong and why.
    """

    type: str
    raw: Mapping[str, Any]
    error: str


Message = (
    OrderbookSnapshot
    | OrderbookDelta
    | Ticker
    | TickerV2
    | Trade
    | Fill
    | MarketPosition
    | UserOrder
    | OrderGroupUpdate
    | MarketLifecycle
    | MultivariateMarketLifecycle
    | EventLifecycle
    | EventFeeUpdate
    | RfqCreated
    | RfqDeleted
    | QuoteCreated
    | QuoteAccepted
    | QuoteExecuted
    | CfbenchmarksValue
    | CfbenchmarksValue5hz
    | IndexList
    | PythValue
    | UnderlyingList
    | MultivariateLookup
    | UnknownMessage
    | MalformedMessage
)


# --------------------------------------------------------------------------- stream items


@_frozen
class StreamUpdate:
    """One data message from Kalshi.

    Attributes:
        channel: The channel of the subscription (a :class:`Channel` when known).
        type: The wire ``type`` (``"ticker"``, ``"orderbook_delta"``, ...).
        sid: The subscription id the message belongs to.
        seq: The per-subscription sequence number, or None on unsequenced channels.
        msg: The typed payload (one of the message classes of this module).
        sending_ts_ms: When Kalshi queued the frame (unix ms), if the server said so.
    """

    channel: Channel | str
    type: str
    sid: int | None
    seq: int | None
    msg: Message
    sending_ts_ms: int | None = None

    def msg_as(self, cls: builtins.type[_M]) -> _M | None:
        """The payload if it is a ``cls``, else None: a typed view of a known channel.

        ``msg`` is typed as the union of every message class; this narrows it for a
        type checker and at run time (a :class:`MalformedMessage` or
        :class:`UnknownMessage` gives None, so check it)::

            if (ticker := update.msg_as(Ticker)) is not None:
                print(ticker.market_ticker, ticker.price_dollars)

        Pure; any thread.
        """
        msg = self.msg
        return msg if isinstance(msg, cls) else None


class SystemMessage(abc.ABC):
    """Base of the client's own messages, delivered on the same stream as updates.

    :class:`ConnectionLost` (an exception class, also raised to callers) is registered
    as one too.
    """

    __slots__ = ()

    @property
    def final(self) -> bool:
        """Whether this message ends the stream (nothing follows it)."""
        return False


SystemMessage.register(ConnectionLost)


@_frozen
class Closed(SystemMessage):
    """The connection was closed cleanly (by us or the server). Always the last message."""

    code: int | None = None
    reason: str = ""

    @property
    def final(self) -> bool:
        """Always True: nothing follows a Closed message."""
        return True


@_frozen
class Unsubscribed(SystemMessage):
    """A subscription ended: you unsubscribed it, or Kalshi ended it with an error."""

    sid: int
    channel: Channel | str
    reason: str = "unsubscribed"


@_frozen
class Reconnected(SystemMessage):
    """The client reconnected and restored every subscription.

    Attributes:
        attempt: Which reconnect attempt succeeded (1 for the first).
        downtime: Seconds between losing the connection and restoring it.
        sid_map: Old sid to new sid, for every restored subscription.
        failed: Subscriptions that could not be restored, as (old sid, error text).
        unsequenced_gap: Which of your unsequenced channels (fill, user_orders,
            market_positions) may have lost messages while the connection was down, and
            when; None if you had none of them. The same :class:`UnsequencedGap` is
            also delivered on its own, right after this message.
    """

    attempt: int
    downtime: float
    sid_map: Mapping[int, int]
    failed: tuple[tuple[int, str], ...] = ()
    unsequenced_gap: UnsequencedGap | None = None


@_frozen
class UnsequencedGap(SystemMessage):
    """Messages of these channels may have been lost, unseen, between two times.

    ``fill``, ``user_orders`` and ``market_positions`` carry no ``seq``: when the
    connection drops, what Kalshi sent meanwhile is gone and nothing shows it. Reconcile
    these channels over Kalshi's REST API for the window ``since`` .. ``until``.
    Delivered after :class:`Reconnected`, before any data of the new connection.

    Attributes:
        channels: The unsequenced user channels you were subscribed to.
        since: Unix time (seconds) of the last frame read before the connection was lost.
        until: Unix time (seconds) when the subscriptions were restored.
    """

    channels: tuple[Channel | str, ...]
    since: float
    until: float


@_frozen
class ChannelStale(SystemMessage):
    """A subscribed channel has been silent longer than its ``stale_after`` (opt-in).

    Attributes:
        channel: The silent channel.
        silent_for: Seconds since its last message (or since it was first checked).
        stale_after: The threshold that was crossed, in seconds.
    """

    channel: Channel | str
    silent_for: float
    stale_after: float


@_frozen
class ChannelResumed(SystemMessage):
    """A channel reported by :class:`ChannelStale` delivers again; its message follows.

    Attributes:
        channel: The channel.
        silent_for: Seconds it had been silent.
    """

    channel: Channel | str
    silent_for: float


@_frozen
class SequenceGap(SystemMessage):
    """At least one message of a subscription was lost (``received`` > ``expected``).

    On ``orderbook_delta`` subscriptions the client resynchronises the affected books
    automatically; their deltas are held back until fresh snapshots arrive.
    """

    sid: int
    channel: Channel | str
    expected: int
    received: int


@_frozen
class Lagged(SystemMessage):
    """``dropped`` messages of ``channel`` were discarded because a consumer fell behind.

    Only channels whose overflow policy is ``"drop_oldest"`` are ever dropped.
    """

    dropped: int
    channel: Channel | str
    consumer: str = "updates"


@_frozen
class Resubscribed(SystemMessage):
    """The client re-created a subscription (after a terminal error or failed resync)."""

    channel: Channel | str
    old_sid: int
    new_sid: int
    reason: str


@_frozen
class SubscriptionError(SystemMessage):
    """Kalshi reported an error scoped to a live subscription (not to one of your commands)."""

    sid: int
    channel: Channel | str
    code: int
    message: str
    markets: tuple[str, ...] = ()
    sending_ts_ms: int | None = None


StreamItem = StreamUpdate | SystemMessage


# --------------------------------------------------------------------------- command results


@_frozen
class BookState:
    """An order book as the client's reader sees it (``client.book_state(market)``).

    Attributes:
        synced: Some ``orderbook_delta`` subscription has the market's snapshot and
            has seen no gap since.
        snapshot: The latest snapshot message accepted for the market (the very object
            delivered on the stream), or None.
    """

    synced: bool
    snapshot: OrderbookSnapshot | None = None



@_frozen
class Subscription:
    """A live subscription: its channel, its current sid and its market filter.

    Attributes:
        sending_ts_ms: In a ``subscribe`` result, when Kalshi sent its reply (unix ms),
            if the reply said so; None otherwise. Not compared by ``==``.
    """

    channel: Channel | str
    sid: int
    market_tickers: tuple[str, ...] = ()
    sending_ts_ms: int | None = attrs.field(default=None, eq=False)


@_frozen
class SubscribeFailure:
    """A channel of a ``subscribe`` command that Kalshi refused.

    Attributes:
        markets: The markets Kalshi's error names (``market_ticker`` /
            ``market_tickers``), else empty.
        sending_ts_ms: When Kalshi sent the error (unix ms), if it said so.
    """

    channel: Channel | str
    code: int
    message: str
    markets: tuple[str, ...] = ()
    sending_ts_ms: int | None = None


@_frozen
class SubscribeResult:
    """The outcome of one ``subscribe`` command: one entry per channel requested."""

    successful: tuple[Subscription, ...] = ()
    failed: tuple[SubscribeFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every channel was subscribed."""
        return not self.failed

    @property
    def sids(self) -> tuple[int, ...]:
        """The sids of the successful subscriptions."""
        return tuple(s.sid for s in self.successful)


@_frozen
class SubscriptionInfo:
    """One entry of a ``list_subscriptions`` reply."""

    channel: Channel | str
    sid: int


# --------------------------------------------------------------------------- counters


@_frozen
class ChannelStats:
    """Message counters of one channel since the client was created.

    Attributes:
        received: Data messages read from the socket.
        delivered: Messages handed to every consumer (callbacks and the queue).
        dropped: Messages discarded by an overflow policy (each reported by ``Lagged``).
        duplicates: Stale or repeated sequence numbers discarded.
        gaps: Sequence gaps detected.
        held_back: Order-book deltas discarded because their book awaited a snapshot.
    """

    received: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicates: int = 0
    gaps: int = 0
    held_back: int = 0


@_frozen
class Freshness:
    """How fresh one channel's (or one order book's) data is.

    Latency is the receipt time minus Kalshi's time for the message (``sending_ts_ms``
    when the frame has it, else the payload's ``ts_ms``), over the most recent messages;
    it includes any offset between your clock and Kalshi's.

    Attributes:
        since_last: Seconds since the last message was received; None before the first.
        latency_median_ms: Median latency in ms over the recent window; None without samples.
        latency_p99_ms: 99th percentile latency in ms (nearest rank); None without samples.
        samples: Latency samples in the window (messages carrying a Kalshi time).
        stale: Whether a :class:`ChannelStale` alarm is raised and not yet resumed.
    """

    since_last: float | None = None
    latency_median_ms: int | None = None
    latency_p99_ms: int | None = None
    samples: int = 0
    stale: bool = False


@_frozen
class ClientStats:
    """A snapshot of the client's counters (see :meth:`KalshiStreamClient.stats`).

    Attributes:
        freshness: Per channel: time since the last message and Kalshi-to-receipt latency.
        book_freshness: The same per market, for order books (``orderbook_delta``).
    """

    channels: Mapping[str, ChannelStats]
    reconnects: int = 0
    pending: int = 0
    queued: int = 0
    #: Exceptions raised by callbacks (each shown, or passed to ``on_error``).
    callback_errors: int = 0
    freshness: Mapping[str, Freshness] = attrs.field(factory=dict)
    book_freshness: Mapping[str, Freshness] = attrs.field(factory=dict)

    def stalest(self) -> tuple[str, float] | None:
        """The channel silent the longest and its seconds of silence, or None."""
        known = [(f.since_last, name) for name, f in self.freshness.items()
                 if f.since_last is not None]
        if not known:
            return None
        seconds, name = max(known)
        return name, seconds

    def total(self) -> ChannelStats:
        """The counters summed over every channel."""
        fields = [f.name for f in attrs.fields(ChannelStats)]  # type: ignore[arg-type]
        return ChannelStats(
            **{n: sum(getattr(s, n) for s in self.channels.values()) for n in fields}
        )


def channel_of(name: str) -> Channel | str:
    """Return the :class:`Channel` member for a wire name, or the name itself if unknown."""
    try:
        return Channel(name)
    except ValueError:
        return name
