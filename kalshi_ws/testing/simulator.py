"""A small market simulator: random-walk order books with exact Decimal sizes.

It is the source of truth for the fake server: subscribers get its snapshots, then
the deltas of every change it makes, so a test can compare a client's books with
:meth:`MarketSimulator.book` at the end. Prices are dollars with four decimals; NO
bids are kept in NO terms (Kalshi's default convention).

Not thread-safe: the fake server calls it from its event loop only.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["BookChange", "MarketSimulator", "TradePrint"]

ONE = Decimal(1)
CENT = Decimal("0.01")
_FOUR = Decimal("0.0001")
_TWO = Decimal("0.01")


@attrs.frozen
class BookChange:
    """One level of one market changed by ``delta`` contracts (side ``yes`` or ``no``)."""

    market: str
    side: str
    price: Decimal  # NO bids in NO terms
    delta: Decimal


@attrs.frozen
class TradePrint:
    """A trade in one market."""

    market: str
    yes_price: Decimal
    count: Decimal
    taker_side: str


class MarketSimulator:
    """Random-walk order books for a few markets.

    Args:
        markets: The market tickers simulated.
        seed: Seed of the random source (same seed, same stream).
        levels: Price levels per side at the start.
        fractional: Probability that a size change is fractional (two decimals).
    """

    def __init__(self, markets: Iterable[str] = ("SIM-ALPHA", "SIM-BRAVO", "SIM-CHARLIE"),
                 *, seed: int | None = None, levels: int = 8, fractional: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.fractional = fractional
        self.markets = list(markets)
        self.ids = {m: str(uuid.UUID(int=self.rng.getrandbits(128))) for m in self.markets}
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        self.volume: dict[str, Decimal] = {}
        self.last_price: dict[str, Decimal] = {}
        for market in self.markets:
            self.add_market(market, levels=levels)

    def add_market(self, market: str, *, levels: int = 8) -> None:
        """Create a book for a new market (idempotent)."""
        if market in self.books:
            return
        if market not in self.ids:
            self.ids[market] = str(uuid.UUID(int=self.rng.getrandbits(128)))
            self.markets.append(market)
        mid = Decimal(self.rng.randint(20, 80)) * CENT
        yes = {mid - CENT * (i + 1): self._size() for i in range(levels)}
        no = {(ONE - mid) - CENT * (i + 1): self._size() for i in range(levels)}
        self.books[market] = {"yes": yes, "no": no}
        self.volume[market] = Decimal(0)
        self.last_price[market] = mid

    def _size(self) -> Decimal:
        whole = Decimal(self.rng.randint(1, 500))
        if self.rng.random() < self.fractional:
            whole += Decimal(self.rng.randint(1, 99)) * _TWO
        return whole

    # ------------------------------------------------------------------ views

    def book(self, market: str) -> dict[str, dict[Decimal, Decimal]]:
        """A copy of a market's book: ``{"yes": {price: size}, "no": {price: size}}``."""
        book = self.books[market]
        return {"yes": dict(book["yes"]), "no": dict(book["no"])}

    def best_bid(self, market: str, side: str) -> Decimal | None:
        """The best bid price of ``side`` (``"yes"`` or ``"no"``) in ``market``, if any."""
        levels = self.books[market][side]
        return max(levels) if levels else None

    def snapshot_msg(self, market: str, *, use_yes_price: bool = False) -> dict[str, Any]:
        """The ``msg`` of an ``orderbook_snapshot`` for ``market`` (empty sides omitted)."""
        book = self.books.get(market) or {"yes": {}, "no": {}}
        msg: dict[str, Any] = {"market_ticker": market,
                               "market_id": self.ids.get(market, str(uuid.uuid4()))}
        yes = [[_dollars(p), _count(q)] for p, q in sorted(book["yes"].items())]
        no = [[_dollars(ONE - p if use_yes_price else p), _count(q)]
              for p, q in sorted(book["no"].items())]
        if yes:
            msg["yes_dollars_fp"] = yes
        if no:
            msg["no_dollars_fp"] = no
        return msg

    def delta_msg(self, change: BookChange, *, use_yes_price: bool = False) -> dict[str, Any]:
        """The ``msg`` of an ``orderbook_delta`` for ``change``."""
        price = ONE - change.price if use_yes_price and change.side == "no" else change.price
        now_ms = int(time.time() * 1000)
        return {"market_ticker": change.market, "market_id": self.ids[change.market],
                "price_dollars": _dollars(price), "delta_fp": _count(change.delta),
                "side": change.side, "ts": _rfc3339(now_ms), "ts_ms": now_ms}

    def ticker_msg(self, market: str) -> dict[str, Any]:
        """The ``msg`` of a ``ticker`` message for ``market``."""
        book = self.books[market]
        yes_bid = max(book["yes"]) if book["yes"] else Decimal(0)
        no_bid = max(book["no"]) if book["no"] else Decimal(0)
        now_ms = int(time.time() * 1000)
        return {
            "market_id": self.ids[market], "market_ticker": market,
            "price_dollars": _dollars(self.last_price[market]),
            "yes_bid_dollars": _dollars(yes_bid),
            "yes_ask_dollars": _dollars(ONE - no_bid if book["no"] else ONE),
            "yes_bid_size_fp": _count(book["yes"].get(yes_bid, Decimal(0))),
            "yes_ask_size_fp": _count(book["no"].get(no_bid, Decimal(0))),
            "last_trade_size_fp": "0.00", "volume_fp": _count(self.volume[market]),
            "open_interest_fp": _count(self.volume[market] / 2),
            "dollar_volume": int(self.volume[market] / 2), "dollar_open_interest": 0,
            "ts": now_ms // 1000, "ts_ms": now_ms, "time": _rfc3339(now_ms),
        }

    def trade_msg(self, trade: TradePrint) -> dict[str, Any]:
        """The ``msg`` of a ``trade`` message."""
        now_ms = int(time.time() * 1000)
        side = trade.taker_side
        return {"trade_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
                "market_ticker": trade.market, "yes_price_dollars": _dollars(trade.yes_price),
                "no_price_dollars": _dollars(ONE - trade.yes_price),
                "count_fp": _count(trade.count), "taker_side": side,
                "taker_outcome_side": side, "taker_book_side": "bid" if side == "yes" else "ask",
                "is_block_trade": False, "ts": now_ms // 1000, "ts_ms": now_ms}

    # ------------------------------------------------------------------ changes

    def step(self, market: str | None = None) -> BookChange:
        """Make one random change to a book and return it."""
        market = market or self.rng.choice(self.markets)
        side = self.rng.choice(("yes", "no"))
        levels = self.books[market][side]
        other = self.books[market]["no" if side == "yes" else "yes"]
        best_other = max(other) if other else Decimal(0)
        ceiling = ONE - best_other - CENT  # never cross the book
        choice = self.rng.random()
        if levels and choice < 0.45:
            price = self.rng.choice(sorted(levels)[-4:])
            delta = -min(levels[price], self._size()) if self.rng.random() < 0.6 \
                else self._size()
        else:
            top = max(levels) if levels else ceiling - 5 * CENT
            price = top + CENT * self.rng.randint(-3, 1)
            price = min(price, ceiling)
            if price <= 0:
                price = CENT
            delta = self._size()
        self.apply(BookChange(market=market, side=side, price=price, delta=delta))
        return BookChange(market=market, side=side, price=price, delta=delta)

    def apply(self, change: BookChange) -> None:
        """Apply a change to the true book (a level at or below zero disappears)."""
        levels = self.books[change.market][change.side]
        size = levels.get(change.price, Decimal(0)) + change.delta
        if size > 0:
            levels[change.price] = size
        else:
            levels.pop(change.price, None)

    def trade(self, market: str | None = None) -> TradePrint:
        """Print a random trade at the top of one market's book."""
        market = market or self.rng.choice(self.markets)
        book = self.books[market]
        taker = self.rng.choice(("yes", "no"))
        if taker == "yes" and book["no"]:
            price = ONE - max(book["no"])
        elif book["yes"]:
            price = max(book["yes"])
        else:
            price = self.last_price[market]
        count = self._size()
        self.last_price[market] = price
        self.volume[market] += count
        return TradePrint(market=market, yes_price=price, count=count, taker_side=taker)


def _rfc3339(ms: int) -> str:
    """Unix milliseconds as Kalshi's RFC3339 ``time`` (UTC, milliseconds, ``Z``)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _dollars(value: Decimal) -> str:
    return str(value.quantize(_FOUR))


def _count(value: Decimal) -> str:
    return str(value.quantize(_TWO))
