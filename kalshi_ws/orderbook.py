"""An exact order book for one Kalshi market, kept from snapshot and delta messages.

Kalshi's book has no asks. Every level is a resting *bid*: the YES ladder holds bids
to buy YES and the NO ladder holds bids to buy NO. An ask on one side is a bid on the
other: the best YES ask is ``1 - best NO bid`` and it has the size of that NO bid.

:class:`OrderBook` holds both ladders and applies ``orderbook_snapshot`` and
``orderbook_delta`` messages to them. It stores NO-side prices in NO terms whichever
convention the stream used: a book created with ``use_yes_price=True`` (for a
subscription that sent that flag, where a NO bid at 0.30 arrives as 0.70) converts
each NO price on the way in, so every query answers the same for both conventions.

Prices (dollars) and sizes (contracts) are :class:`decimal.Decimal` everywhere and
arithmetic is exact: a float is refused with :class:`TypeError`, and a sum that could
not be represented exactly raises instead of rounding. ``Decimal("0.30")`` and
``Decimal("0.3000")`` are the same level.

The module is pure: no I/O, no threads, no sleeping. The clock that stamps
``updated_at`` is injectable.

Threads:
    An :class:`OrderBook` is not thread-safe. Call its methods from one thread at a
    time (the thread that applies the updates, or under your own lock).
    :meth:`OrderBook.snapshot` returns a :class:`BookSnapshot`, an immutable copy
    that any number of threads may read while the book goes on changing.

The book does not check sequence numbers: Kalshi numbers frames per subscription,
not per market, so a gap in what one market sees proves nothing. Gap detection
belongs to the protocol layer; the book only records the ``seq`` it is given.
"""

from __future__ import annotations

import decimal
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from . import _compiled, _wire
from .models import Level, OrderbookDelta, OrderbookSnapshot, _frozen

__all__ = ["BookDepth", "BookSnapshot", "Level", "OrderBook", "TopOfBook"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)

# Book arithmetic runs in this context, not the calling thread's: the result does
# not depend on what the application did to its own decimal context, and a result
# that would need rounding raises decimal.Inexact instead of silently rounding.
_EXACT = decimal.Context(
    prec=40,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow,
           decimal.Inexact],
)
_add = _EXACT.add
_subtract = _EXACT.subtract


def _asks(bids: Iterable[Level]) -> tuple[Level, ...]:
    """The asks that bids on one side make on the other side, best (lowest) first."""
    return tuple([(_subtract(_ONE, price), size) for price, size in bids])


def _check_decimals(price: object, size: object) -> None:
    """Raise TypeError unless both values are Decimals, ValueError unless finite."""
    for name, value in (("price", price), ("size", size)):
        if not isinstance(value, Decimal):
            raise TypeError(
                f"order book {name} must be a Decimal, not {type(value).__name__}: {value!r}"
            )
        if not value.is_finite():
            raise ValueError(f"order book {name} must be finite, not {value}")


def _bad_price(price: Decimal) -> ValueError:
    return ValueError(f"order book price must be between 0 and 1 dollar exclusive: {price}")


def _load_side(levels: tuple[Level, ...], flip: bool) -> _Side:
    """Validate one side of a snapshot; return its prices, lowest first, and their sizes.

    Levels repeated at one price are added up; levels whose total is not positive
    are left out.
    """
    if not flip:  # as Kalshi sends it: only split it
        side = _ladder_side(levels)
        if side is not None:
            return side
    sizes: dict[Decimal, Decimal] = {}
    for price, size in levels:
        if (type(price) is not Decimal or type(size) is not Decimal
                or not price.is_finite() or not size.is_finite()):
            _check_decimals(price, size)
        if flip:
            price = _subtract(_ONE, price)
        if not _ZERO < price < _ONE:
            raise _bad_price(price)
        previous = sizes.get(price)
        sizes[price] = size if previous is None else _add(previous, size)
    prices = tuple([price for price in sorted(sizes) if sizes[price] > _ZERO])
    return prices, tuple([sizes[price] for price in prices])


#: One side of a snapshot: its prices, ascending, and their sizes.
_Side = tuple[tuple[Decimal, ...], tuple[Decimal, ...]]
_EMPTY_SIDE: _Side = ((), ())


def _split(levels: tuple[Level, ...]) -> _Side:
    prices, sizes = zip(*levels)
    return prices, sizes


def _ladder_side_in_python(levels: object) -> _Side | None:
    """The prices and sizes of ``levels`` if it is a side as Kalshi sends it (see
    :func:`_is_ladder`), else None."""
    try:
        if _is_ladder(levels):
            return _split(levels) if levels else _EMPTY_SIDE  # type: ignore[arg-type]  # checked
    except Exception:  # noqa: BLE001, S110 - odd values: the caller's checks say what
        pass
    return None


_INFINITY = Decimal("Infinity")


def _in_c(name: str, *constants: object) -> Callable[..., Any] | None:
    """The C module's function ``name`` with ``constants`` as its first arguments, or
    None where the C module is not used. Chosen once, when kalshi_ws is imported (see
    :mod:`kalshi_ws._compiled`): an OrderBook belongs to no client."""
    if not _compiled.enabled():
        return None
    return partial(getattr(_compiled.speedups, name), *constants)


#: The prices and sizes of a side as Kalshi sends it, else None: see
#: :func:`_ladder_side_in_python` (the C module's ``split_ladder`` gives the same).
_ladder_side: Callable[[object], _Side | None] = \
    _in_c("split_ladder", _ZERO, _ONE, _INFINITY) or _ladder_side_in_python


def _is_ladder(levels: object) -> bool:
    """Whether ``levels`` is a tuple of (Decimal price, Decimal size) tuples with prices
    rising strictly inside (0, 1) and sizes positive and finite. May raise on odd
    values (a NaN compared)."""
    if type(levels) is not tuple:
        return False
    previous = _ZERO
    for level in levels:
        if type(level) is not tuple or len(level) != 2:
            return False
        price, size = level
        if (type(price) is not Decimal or type(size) is not Decimal or not previous < price
                or not size > _ZERO or not size.is_finite()):
            return False
        previous = price
    return previous < _ONE


#: Changes of a side since its snapshot after which its sizes go into a dict (a new
#: tuple per change costs a little more than a dict update, a dict more memory).
_EDITS_BEFORE_DICT = 16


#: A side after a change: its prices, and its sizes (in their order, or by price).
_ChangedSide = tuple[tuple[Decimal, ...], tuple[Decimal, ...] | dict[Decimal, Decimal]]


def _changed_side_in_python(prices: tuple[Decimal, ...],
                            sizes: tuple[Decimal, ...] | dict[Decimal, Decimal],
                            price: Decimal, delta: Decimal,
                            edits: int) -> _ChangedSide | None:
    """One side after adding ``delta`` contracts at ``price`` (validated Decimals);
    None if nothing changes (a negative change where no level rests).

    A dict of sizes is changed in place; tuples are never changed.

    Raises:
        ValueError: a new level's price is not strictly between 0 and 1.
    """
    if edits >= _EDITS_BEFORE_DICT and not isinstance(sizes, dict):
        sizes = dict(zip(prices, sizes))
    if isinstance(sizes, dict):
        size = sizes.get(price)
        if size is None:
            if not delta > _ZERO:
                return None
            if not _ZERO < price < _ONE:
                raise _bad_price(price)
            sizes[price] = delta
            if not prices or prices[-1] < price:
                return (*prices, price), sizes
            index = bisect_left(prices, price)
            return (*prices[:index], price, *prices[index:]), sizes
        size = _add(size, delta)
        if size > _ZERO:
            sizes[price] = size
            return prices, sizes
        del sizes[price]
        if prices[-1] == price:
            return prices[:-1], sizes
        index = bisect_left(prices, price)
        return prices[:index] + prices[index + 1:], sizes
    index = bisect_left(prices, price)
    if index < len(prices) and prices[index] == price:
        size = _add(sizes[index], delta)
        if size > _ZERO:
            return prices, (*sizes[:index], size, *sizes[index + 1:])
        return prices[:index] + prices[index + 1:], sizes[:index] + sizes[index + 1:]
    if not delta > _ZERO:
        return None
    if not _ZERO < price < _ONE:
        raise _bad_price(price)
    return (*prices[:index], price, *prices[index:]), (*sizes[:index], delta, *sizes[index:])


#: One side after adding ``delta`` contracts at ``price``: see
#: :func:`_changed_side_in_python` (the C module's ``changed_side`` gives the same).
_changed_side: Callable[..., _ChangedSide | None] = _in_c(
    "changed_side", _ZERO, _ONE, _add, _bad_price, _EDITS_BEFORE_DICT) or \
    _changed_side_in_python


def _bids(prices: tuple[Decimal, ...], sizes: tuple[Decimal, ...] | dict[Decimal, Decimal],
          n: int | None) -> tuple[Level, ...]:
    """The best ``n`` (all when None) levels of one side, highest price first."""
    best = prices[::-1] if n is None else prices[:-n - 1:-1]
    if isinstance(sizes, dict):
        return tuple([(price, sizes[price]) for price in best])
    return tuple(zip(best, sizes[::-1] if n is None else sizes[:-n - 1:-1]))


class _BookQueries:
    """Every query of a book, computed from its two bid ladders (in NO terms).

    Subclasses provide ``market_ticker``, ``last_seq``, ``yes_bids`` and ``no_bids``;
    they may override the underscored accessors with faster ones. Queries never
    block or raise (except :meth:`depth` for a negative count). On a
    :class:`BookSnapshot` any thread may run them; on an :class:`OrderBook` only the
    updating thread.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def market_ticker(self) -> str: ...

        @property
        def last_seq(self) -> int | None: ...

        @property
        def yes_bids(self) -> tuple[Level, ...]: ...

        @property
        def no_bids(self) -> tuple[Level, ...]: ...

    def _best_yes(self) -> Level | None:
        bids = self.yes_bids
        return bids[0] if bids else None

    def _best_no(self) -> Level | None:
        bids = self.no_bids
        return bids[0] if bids else None

    def _top_yes_bids(self, n: int) -> tuple[Level, ...]:
        return self.yes_bids[:n]

    def _top_no_bids(self, n: int) -> tuple[Level, ...]:
        return self.no_bids[:n]

    @property
    def yes_asks(self) -> tuple[Level, ...]:
        """Offers to sell YES, best (lowest price) first: the NO bids seen from YES."""
        return _asks(self.no_bids)

    @property
    def no_asks(self) -> tuple[Level, ...]:
        """Offers to sell NO, best (lowest price) first: the YES bids seen from NO."""
        return _asks(self.yes_bids)

    @property
    def best_yes_bid(self) -> Decimal | None:
        """The highest YES bid, or None when the YES ladder is empty."""
        level = self._best_yes()
        return None if level is None else level[0]

    @property
    def best_yes_bid_size(self) -> Decimal | None:
        """Contracts bid at :attr:`best_yes_bid`, or None."""
        level = self._best_yes()
        return None if level is None else level[1]

    @property
    def best_no_bid(self) -> Decimal | None:
        """The highest NO bid (NO terms), or None when the NO ladder is empty."""
        level = self._best_no()
        return None if level is None else level[0]

    @property
    def best_no_bid_size(self) -> Decimal | None:
        """Contracts bid at :attr:`best_no_bid`, or None."""
        level = self._best_no()
        return None if level is None else level[1]

    @property
    def best_yes_ask(self) -> Decimal | None:
        """The lowest YES ask, ``1 - best_no_bid``, or None when no NO bid rests."""
        level = self._best_no()
        return None if level is None else _subtract(_ONE, level[0])

    @property
    def best_yes_ask_size(self) -> Decimal | None:
        """Contracts offered at :attr:`best_yes_ask` (the best NO bid's size), or None."""
        return self.best_no_bid_size

    @property
    def best_no_ask(self) -> Decimal | None:
        """The lowest NO ask, ``1 - best_yes_bid``, or None when no YES bid rests."""
        level = self._best_yes()
        return None if level is None else _subtract(_ONE, level[0])

    @property
    def best_no_ask_size(self) -> Decimal | None:
        """Contracts offered at :attr:`best_no_ask` (the best YES bid's size), or None."""
        return self.best_yes_bid_size

    @property
    def spread(self) -> Decimal | None:
        """``best_yes_ask - best_yes_bid``, or None unless both sides have a level.

        Negative when the book is crossed (which a consistent Kalshi book never is).
        """
        yes, no = self._best_yes(), self._best_no()
        if yes is None or no is None:
            return None
        return _subtract(_subtract(_ONE, no[0]), yes[0])

    @property
    def is_crossed(self) -> bool:
        """Whether the best YES and NO bids add up to a dollar or more (they would trade).

        A consistent Kalshi book is never crossed for long; the books do not correct it
        (see "Order books" in the README).
        """
        yes, no = self._best_yes(), self._best_no()
        return yes is not None and no is not None and yes[0] + no[0] >= _ONE

    @property
    def mid(self) -> Decimal | None:
        """``(best_yes_bid + best_yes_ask) / 2``, or None unless both sides have a level."""
        yes, no = self._best_yes(), self._best_no()
        if yes is None or no is None:
            return None
        return _EXACT.divide(_add(yes[0], _subtract(_ONE, no[0])), _TWO)

    def depth(self, n: int) -> BookDepth:
        """The best ``n`` levels of each of the four ladders.

        Args:
            n: How many levels to take from each ladder (fewer when a ladder is
                shorter).

        Raises:
            ValueError: If ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"depth must be >= 0, not {n}")
        yes_bids = self._top_yes_bids(n)
        no_bids = self._top_no_bids(n)
        return BookDepth(yes_bids=yes_bids, yes_asks=_asks(no_bids),
                         no_bids=no_bids, no_asks=_asks(yes_bids))

    def top(self) -> TopOfBook:
        """The best YES bid and ask with their sizes, and the last sequence number."""
        yes, no = self._best_yes(), self._best_no()
        return _new_top(self.market_ticker,
                        None if yes is None else yes[0],
                        None if yes is None else yes[1],
                        None if no is None else _subtract(_ONE, no[0]),
                        None if no is None else no[1],
                        self.last_seq)


@_frozen
class BookDepth:
    """The best levels of the four ladders of a book, each best first.

    Attributes:
        yes_bids: YES bids, highest price first.
        yes_asks: YES asks (from NO bids), lowest price first.
        no_bids: NO bids in NO terms, highest price first.
        no_asks: NO asks (from YES bids), lowest price first.
    """

    yes_bids: tuple[Level, ...]
    yes_asks: tuple[Level, ...]
    no_bids: tuple[Level, ...]
    no_asks: tuple[Level, ...]


@_frozen
class TopOfBook:
    """The best YES bid and ask of one market, as passed to book-change callbacks.

    Attributes:
        market_ticker: The market.
        best_yes_bid: The highest YES bid, or None.
        best_yes_bid_size: Its size, or None.
        best_yes_ask: The lowest YES ask (``1 - best NO bid``), or None.
        best_yes_ask_size: Its size (the best NO bid's size), or None.
        last_seq: The ``seq`` of the last message applied that carried one, or None.
    """

    market_ticker: str
    best_yes_bid: Decimal | None
    best_yes_bid_size: Decimal | None
    best_yes_ask: Decimal | None
    best_yes_ask_size: Decimal | None
    last_seq: int | None


#: ``TopOfBook(market_ticker, best_yes_bid, best_yes_bid_size, best_yes_ask,
#: best_yes_ask_size, last_seq)``, positional and without ``__init__`` (see
#: :func:`kalshi_ws._wire.constructor`): a top is made after every change that a
#: callback watches and at every ticker cross-checked. In C where it is used, chosen
#: once, at import, as the other order-book speed-ups are.
_new_top: Callable[[str, Decimal | None, Decimal | None, Decimal | None, Decimal | None,
                    int | None], TopOfBook] = _wire.constructor(TopOfBook)


@_frozen
class BookSnapshot(_BookQueries):
    """An immutable copy of an :class:`OrderBook`, safe to read from any thread.

    It answers every query an :class:`OrderBook` answers, identically.

    Attributes:
        market_ticker: The market.
        yes_bids: YES bids as (price, size), highest price first.
        no_bids: NO bids as (price in NO terms, size), highest price first.
        last_seq: The book's :attr:`OrderBook.last_seq` when the copy was taken.
        updated_at: The book's :attr:`OrderBook.updated_at` when the copy was taken.
    """

    # Fields answering _BookQueries' read-only properties (pyright wants properties).
    market_ticker: str  # pyright: ignore[reportIncompatibleMethodOverride]
    yes_bids: tuple[Level, ...]  # pyright: ignore[reportIncompatibleMethodOverride]
    no_bids: tuple[Level, ...]  # pyright: ignore[reportIncompatibleMethodOverride]
    last_seq: int | None = None  # pyright: ignore[reportIncompatibleMethodOverride]
    updated_at: float | None = None

    @property
    def is_empty(self) -> bool:
        """Whether both ladders are empty."""
        return not self.yes_bids and not self.no_bids


class OrderBook(_BookQueries):
    """The live order book of one market.

    Each side is a tuple of its prices, ascending (the best bid last), and its sizes:
    a tuple of them in the same order while the side is quiet (compact: most books of
    a large set change rarely; a delta makes new tuples), a dict from price to size
    once it has changed more than a few times since its snapshot (a delta is then a
    dict update, and a new price tuple when a level appears or disappears). Tuples and
    dicts of Decimals are not tracked by the garbage collector, so many books do not
    make its full collections any longer.

    Threads:
        Not thread-safe, and no method blocks. Apply updates and run queries from
        one thread at a time; hand other threads a :meth:`snapshot`.

    Args:
        market_ticker: The market this book follows; messages for any other market
            are refused.
        use_yes_price: Whether the stream prices NO levels on the YES scale (the
            subscription was made with ``use_yes_price: true``). Applies to
            :meth:`apply_snapshot`, :meth:`apply_delta` and :meth:`apply_change`;
            queries always answer in the default convention (NO prices in NO terms).
        clock: Returns the time stamped into :attr:`updated_at` at each apply
            (seconds since the epoch by default).
    """

    __slots__ = (
        "_clock",
        "_last_seq",
        "_market_ticker",
        "_no_bids",
        "_no_edits",
        "_no_prices",
        "_no_sizes",
        "_snapshot",
        "_updated_at",
        "_use_yes_price",
        "_yes_bids",
        "_yes_edits",
        "_yes_prices",
        "_yes_sizes",
    )

    def __init__(
        self,
        market_ticker: str,
        *,
        use_yes_price: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._market_ticker = market_ticker
        self._use_yes_price = bool(use_yes_price)
        self._clock = clock
        # Prices ascending (best bid last); sizes in that order, or by price once busy.
        self._yes_prices: tuple[Decimal, ...] = ()
        self._yes_sizes: tuple[Decimal, ...] | dict[Decimal, Decimal] = ()
        self._no_prices: tuple[Decimal, ...] = ()  # NO terms
        self._no_sizes: tuple[Decimal, ...] | dict[Decimal, Decimal] = ()
        self._yes_edits = self._no_edits = 0  # changes since the snapshot, per side
        # Caches, None when stale.
        self._yes_bids: tuple[Level, ...] | None = ()
        self._no_bids: tuple[Level, ...] | None = ()
        self._snapshot: BookSnapshot | None = None
        self._last_seq: int | None = None
        self._updated_at: float | None = None

    def __repr__(self) -> str:
        return (f"<OrderBook {self._market_ticker} yes={len(self.yes_bids)} levels "
                f"no={len(self.no_bids)} levels last_seq={self._last_seq}>")

    @property
    def market_ticker(self) -> str:
        """The market this book follows."""
        return self._market_ticker

    @property
    def use_yes_price(self) -> bool:
        """Whether incoming NO prices are on the YES scale (queries never are)."""
        return self._use_yes_price

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` of the last message applied that carried one, or None."""
        return self._last_seq

    @property
    def updated_at(self) -> float | None:
        """What the clock said at the last apply, or None before any."""
        return self._updated_at

    @property
    def is_empty(self) -> bool:
        """Whether both ladders are empty."""
        return not self._yes_prices and not self._no_prices

    # ----------------------------------------------------------------- updates

    def apply_snapshot(self, msg: OrderbookSnapshot, *, seq: int | None = None) -> None:
        """Replace both ladders with those of an ``orderbook_snapshot``.

        A side absent from the message becomes empty. Levels in the legacy
        integer-cent or dollar fields are read through the message's helpers.
        Levels repeated at one price are added up; levels with a size that is not
        positive are left out. On error the book is left unchanged. Call it from
        the updating thread; it does not block.

        Args:
            msg: The snapshot.
            seq: The frame's sequence number, recorded as :attr:`last_seq` (None
                leaves :attr:`last_seq` as it was).

        Raises:
            ValueError: If the snapshot is for another market, or a price is not
                strictly between 0 and 1, or a value is not finite.
            TypeError: If a price or size is not a Decimal.
            decimal.Inexact: If a sum would need more than 40 digits (it never
                does with Kalshi's 4-decimal prices and 2-decimal sizes).
        """
        if msg.market_ticker != self._market_ticker:
            raise self._wrong_market(msg.market_ticker)
        yes = _load_side(msg.yes_levels(), False)
        no = _load_side(msg.no_levels(), self._use_yes_price)
        self._yes_prices, self._yes_sizes = yes
        self._no_prices, self._no_sizes = no
        self._yes_edits = self._no_edits = 0
        self._yes_bids = self._no_bids = None
        self._snapshot = None
        if seq is not None:
            self._last_seq = seq
        self._updated_at = self._clock()

    def apply_delta(self, msg: OrderbookDelta, *, seq: int | None = None) -> None:
        """Apply an ``orderbook_delta``: add its signed size change to one level.

        A level whose size falls to zero or below disappears; a negative change at
        a price with no level is ignored. Legacy integer ``price``/``delta`` fields
        are read when the current ones are missing. On error the book is left
        unchanged. Call it from the updating thread; it does not block.

        Args:
            msg: The delta.
            seq: The frame's sequence number, recorded as :attr:`last_seq` (None
                leaves :attr:`last_seq` as it was).

        Raises:
            ValueError: If the delta is for another market, its side is neither
                ``"yes"`` nor ``"no"``, it carries no price or no size, a value is
                not finite, or a new level's price is not strictly between 0 and 1.
            TypeError: If the price or size is not a Decimal.
            decimal.Inexact: If a sum would need more than 40 digits.
        """
        if msg.market_ticker != self._market_ticker:
            raise self._wrong_market(msg.market_ticker)
        price = msg.price_dollars
        if price is None:
            price = msg.level_price()
        delta = msg.delta_fp
        if delta is None:
            delta = msg.size_change()
        self._change(msg.side, price, delta, seq)

    def apply_change(
        self, side: str, price: Decimal, delta: Decimal, *, seq: int | None = None
    ) -> None:
        """Add a signed size change to one level, without a message object.

        Same rules as :meth:`apply_delta`. Call it from the updating thread; it
        does not block.

        Args:
            side: ``"yes"`` or ``"no"``.
            price: The level's price, in the book's stream convention (a NO price
                on the YES scale when :attr:`use_yes_price` is true).
            delta: The signed change in contracts.
            seq: The sequence number to record as :attr:`last_seq` (None leaves it
                as it was).

        Raises:
            TypeError: If ``price`` or ``delta`` is not a Decimal.
            ValueError: If ``side`` is neither ``"yes"`` nor ``"no"``, a value is
                not finite, or a new level's price is not strictly between 0 and 1.
            decimal.Inexact: If a sum would need more than 40 digits.
        """
        self._change(side, price, delta, seq)

    def _change(self, side: str, price: Decimal, delta: Decimal, seq: int | None) -> None:
        # The hot path: everything is validated before anything is changed.
        if (type(price) is not Decimal or type(delta) is not Decimal
                or not price.is_finite() or not delta.is_finite()):
            _check_decimals(price, delta)
        if side == "yes":
            changed = _changed_side(self._yes_prices, self._yes_sizes, price, delta,
                                    self._yes_edits)
            self._yes_bids = None
            if changed is not None:
                self._yes_prices, self._yes_sizes = changed
                self._yes_edits += 1
        elif side == "no":
            if self._use_yes_price:
                price = _subtract(_ONE, price)
            changed = _changed_side(self._no_prices, self._no_sizes, price, delta,
                                    self._no_edits)
            self._no_bids = None
            if changed is not None:
                self._no_prices, self._no_sizes = changed
                self._no_edits += 1
        else:
            raise ValueError(f"order book side must be 'yes' or 'no', not {side!r}")
        self._snapshot = None
        if seq is not None:
            self._last_seq = seq
        self._updated_at = self._clock()

    def clear(self) -> None:
        """Empty both ladders and forget :attr:`last_seq` and :attr:`updated_at`.

        For a book that can no longer be trusted (a sequence gap, a reconnect)
        until its next snapshot. Call it from the updating thread.
        """
        self._yes_prices = self._yes_sizes = self._no_prices = self._no_sizes = ()
        self._yes_edits = self._no_edits = 0
        self._yes_bids = self._no_bids = ()
        self._snapshot = None
        self._last_seq = None
        self._updated_at = None

    def _wrong_market(self, market_ticker: str) -> ValueError:
        return ValueError(
            f"message for market {market_ticker!r} applied to the book of "
            f"{self._market_ticker!r}"
        )

    # ----------------------------------------------------------------- queries

    @property
    def yes_bids(self) -> tuple[Level, ...]:
        """YES bids as (price, size), highest price first."""
        bids = self._yes_bids
        if bids is None:
            bids = self._yes_bids = _bids(self._yes_prices, self._yes_sizes, None)
        return bids

    @property
    def no_bids(self) -> tuple[Level, ...]:
        """NO bids as (price in NO terms, size), highest price first."""
        bids = self._no_bids
        if bids is None:
            bids = self._no_bids = _bids(self._no_prices, self._no_sizes, None)
        return bids

    def _best_yes(self) -> Level | None:
        prices = self._yes_prices
        if not prices:
            return None
        sizes = self._yes_sizes
        return prices[-1], sizes[prices[-1]] if isinstance(sizes, dict) else sizes[-1]

    def _best_no(self) -> Level | None:
        prices = self._no_prices
        if not prices:
            return None
        sizes = self._no_sizes
        return prices[-1], sizes[prices[-1]] if isinstance(sizes, dict) else sizes[-1]

    def _top_yes_bids(self, n: int) -> tuple[Level, ...]:
        if self._yes_bids is not None:
            return self._yes_bids[:n]
        return _bids(self._yes_prices, self._yes_sizes, n)

    def _top_no_bids(self, n: int) -> tuple[Level, ...]:
        if self._no_bids is not None:
            return self._no_bids[:n]
        return _bids(self._no_prices, self._no_sizes, n)

    def top(self) -> TopOfBook:
        """The best YES bid and ask with their sizes, and the last sequence number."""
        # The same answer as _BookQueries.top, inlined: callers may ask after every delta.
        yes, no = self._best_yes(), self._best_no()
        bid: Decimal | None
        bid_size: Decimal | None
        if yes is not None:
            bid, bid_size = yes
        else:
            bid = bid_size = None
        ask: Decimal | None
        ask_size: Decimal | None
        if no is not None:
            ask, ask_size = _subtract(_ONE, no[0]), no[1]
        else:
            ask = ask_size = None
        return _new_top(self._market_ticker, bid, bid_size, ask, ask_size, self._last_seq)

    def snapshot(self) -> BookSnapshot:
        """An immutable copy of the book, for other threads.

        Call it from the thread that applies updates (or under the same lock). The
        copy is cached: calls with no apply or clear in between return the same
        object, and a ladder that did not change since the last copy is shared.
        """
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = BookSnapshot(
                market_ticker=self._market_ticker,
                yes_bids=self.yes_bids,
                no_bids=self.no_bids,
                last_seq=self._last_seq,
                updated_at=self._updated_at,
            )
        return snapshot
