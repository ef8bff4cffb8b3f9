"""OrderBookSet: live local order books kept from an ``orderbook_delta`` subscription.

A set subscribes its markets, applies snapshots and deltas (on the client's dispatcher
thread, in stream order) and lets any thread read an immutable snapshot of a book. It
always knows whether a book can be trusted:

* a book is *synced* only after its snapshot has been applied, and only while the
  client's reader has seen no gap since (the reader's view is checked directly, so a
  gap is visible at once, before the dispatcher reaches it in the stream);
* a gap, a terminal subscription error, a resubscription or a lost connection marks
  the affected books unsynced at once; they become synced again only when their fresh
  snapshot has been applied. No delta from before that snapshot is ever applied after
  it (the reader never delivers one, and the set ignores deltas of unsynced books).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .config import check_timeout
from .exceptions import CommandError, ConcurrencyError, ConnectionLost, InvalidCommand
from .models import (
    BookState,
    Channel,
    Closed,
    Lagged,
    MalformedMessage,
    OrderbookDelta,
    OrderbookSnapshot,
    Reconnected,
    Resubscribed,
    SequenceGap,
    StreamItem,
    StreamUpdate,
    SubscribeResult,
    Subscription,
    SubscriptionError,
    Ticker,
    Unsubscribed,
)
from .orderbook import BookSnapshot, OrderBook, TopOfBook
from .protocol import string_list

if TYPE_CHECKING:
    from ._dispatch import CallbackHandle

__all__ = ["BookSource", "CrossCheck", "OrderBookSet"]

logger = logging.getLogger(__name__)

ChangeCallback = Callable[[str, TopOfBook], Any]


class BookSource(Protocol):
    """What an :class:`OrderBookSet` uses of a client: public methods only.

    :class:`~kalshi_ws.client.KalshiStreamClient` is one. Its seam for features built
    on it is :meth:`~kalshi_ws.client.KalshiStreamClient.add_listener`,
    ``book_state``, ``resync_books``, ``subscription_options``,
    ``on_dispatcher_thread`` and ``report_callback_error``; the rest are its commands.
    It must be hashable and weakly referenceable, as any plain class instance is (each
    client's live sets are found through a weak registry).
    """

    @property
    def closed(self) -> bool: ...

    def subscribe(self, channels: Iterable[Channel | str] | Channel | str,
                  market_tickers: Iterable[str] | str | None = None, *,
                  timeout: float | None = None, **options: Any) -> SubscribeResult: ...

    def unsubscribe(self, sids: Iterable[int] | int, *,
                    timeout: float | None = None) -> list[int]: ...

    def add_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                    timeout: float | None = None) -> list[str]: ...

    def remove_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                       timeout: float | None = None) -> list[str]: ...

    def get_snapshot(self, sid: int, market_tickers: Iterable[str] | str, *,
                     timeout: float | None = None) -> list[str]: ...

    def subscriptions(self) -> list[Subscription]: ...

    def add_listener(self, fn: Callable[[StreamItem], Any],
                     channels: Iterable[Channel | str] | Channel | str | None = None,
                     ) -> CallbackHandle: ...

    def remove_callback(self, handle: CallbackHandle) -> bool: ...

    def on_dispatcher_thread(self) -> bool: ...

    def book_state(self, market: str) -> BookState: ...

    def resync_books(self, markets: Iterable[str] | str) -> list[str]: ...

    def subscription_options(self, sid: int) -> dict[str, Any]: ...

    def report_callback_error(self, fn: Any, item: Any, exc: BaseException) -> None: ...


# The live sets of each client, so that closing one set leaves the markets another
# still uses subscribed (Kalshi keeps one order-book subscription per connection).
# Weak on both sides: a set holds its client, so a strong collection of sets here
# would keep every client that ever had one alive for ever. A live set is kept alive
# by its listener, which its client holds until the set is closed.
_live_sets: weakref.WeakKeyDictionary[Any, weakref.WeakSet[OrderBookSet]] = \
    weakref.WeakKeyDictionary()
_live_sets_lock = threading.Lock()


def _book_markets(client: BookSource) -> set[str]:
    """The markets ``client``'s order-book subscriptions cover now (any thread)."""
    return {m for s in client.subscriptions() if s.channel == Channel.ORDERBOOK_DELTA
            for m in s.market_tickers}


def _sets_of(client: BookSource) -> list[OrderBookSet]:
    """The live sets of ``client`` (a copy; any thread)."""
    with _live_sets_lock:
        return list(_live_sets.get(client, ()))


@attrs.frozen
class CrossCheck:
    """How often the books' top agreed with Kalshi's ``ticker`` messages.

    Attributes:
        checked: Ticker messages compared with their book, where the stream shows the
            book in sync at the ticker's place (its snapshot applied, no gap since).
            A ticker that disagrees counts only if the reader too still has the book in
            sync: not one that disagrees with a book waiting for a fresh snapshot
            (after ``resync_books``, say), whose deltas the reader holds back.
        disagreements: Of those, how many disagreed on the best bid/ask or their sizes.
        last_disagreement: A description of the latest disagreement, if any.

    Ticker and book messages travel on different subscriptions, so a short-lived
    disagreement while one has moved and the other not yet is expected; a persistent
    one is worth a look.
    """

    checked: int = 0
    disagreements: int = 0
    last_disagreement: str | None = None


class OrderBookSet:
    """Order books for a set of markets. Create it with ``client.orderbooks(markets)``.

    Thread-safe: :meth:`get`, :meth:`is_synced`, :meth:`wait_synced`, :meth:`on_change`
    and the market commands may be called from any thread. Change callbacks run on the
    client's dispatcher thread, after the book changed, holding no lock.
    """

    def __init__(self, client: BookSource, markets: Iterable[str], *,
                 use_yes_price: bool = False, timeout: float | None = None) -> None:
        self._client = client
        # An insertion-ordered dict: the order of the markets, and O(1) membership.
        self._markets = dict.fromkeys(string_list("market_tickers", markets))
        if not self._markets:
            raise InvalidCommand("orderbooks() needs at least one market ticker")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._books: dict[str, OrderBook] = {}
        self._applied: dict[str, Any] = {}  # the snapshot message last applied, per market
        self._stale: set[str] = set()  # books waiting for a fresh snapshot
        # Markets whose book has not been applied since it was last distrusted (or ever):
        # wait_synced() waits for this set to empty instead of asking every market.
        self._unsynced: set[str] = set(self._markets)
        self._waiters = 0  # threads in wait_synced()
        self._subset_waiters = 0  # of those, threads waiting for some markets only
        self._listeners: tuple[ChangeCallback, ...] = ()
        self._use_yes_price = use_yes_price
        self._checked = 0
        self._disagreements = 0
        self._last_disagreement: str | None = None
        self.resyncs = 0
        self._closed = False
        self._handle: CallbackHandle = client.add_listener(
            self._on_item, [Channel.ORDERBOOK_DELTA, Channel.TICKER])
        covered = _book_markets(client)
        # Markets your own order-book subscription held before this set asked for them:
        # this set never gives them back (Kalshi merges everything into one subscription).
        self._held_before = self._users_own(covered, self._markets)
        try:
            result = client.subscribe([Channel.ORDERBOOK_DELTA], list(self._markets),
                                      use_yes_price=use_yes_price, timeout=timeout)
            if not result.successful:
                failure = result.failed[0]
                raise CommandError(failure.code, failure.message)
            self._sid = result.successful[0].sid
            # Kalshi merges this into a live order-book subscription; markets it already
            # covered get no new snapshot unless asked, and this set needs one.
            already = [m for m in self._markets if m in covered]
            if already:
                client.get_snapshot(self._sid, already, timeout=timeout)
        except BaseException:
            client.remove_callback(self._handle)
            raise
        with _live_sets_lock:
            _live_sets.setdefault(client, weakref.WeakSet()).add(self)
        # Kalshi merges order-book subscriptions: the convention is the subscription's.
        recorded = client.subscription_options(self._sid).get("use_yes_price")
        if recorded is not None and recorded != use_yes_price:
            logger.warning("orderbook_delta sid %d already uses use_yes_price=%s; the books "
                           "follow it", self._sid, recorded)
            self._use_yes_price = bool(recorded)

    def __repr__(self) -> str:
        markets = self.markets
        synced = sum(self.is_synced(m) for m in markets) if not self._closed else 0
        state = "closed" if self._closed else f"{synced}/{len(markets)} synced"
        return (f"<OrderBookSet sid={self._sid} markets={markets!r} {state} "
                f"use_yes_price={self._use_yes_price} resyncs={self.resyncs}>")

    # ------------------------------------------------------------------ reading

    @property
    def markets(self) -> list[str]:
        """The markets of the set."""
        with self._lock:
            return list(self._markets)

    @property
    def use_yes_price(self) -> bool:
        """The price convention of the stream the books are built from."""
        return self._use_yes_price

    def get(self, market: str) -> BookSnapshot:
        """An immutable snapshot of one book (cheap; the same object until it changes).

        Check :meth:`is_synced` to know whether it can be trusted.

        Raises:
            KeyError: ``market`` is not in the set.
        """
        with self._lock:
            if market not in self._markets:
                raise KeyError(f"{market!r} is not in this OrderBookSet")
            book = self._books.get(market)
            if book is None:
                book = self._books[market] = self._new_book(market)
            return book.snapshot()

    def is_synced(self, market: str) -> bool:
        """Whether the book of ``market`` reflects every message received so far.

        False from the moment the client sees a gap (or loses the connection) until
        the book's fresh snapshot has been applied.
        """
        state = self._client.book_state(market)
        latest = state.snapshot
        with self._lock:
            return state.synced and latest is not None and self._applied.get(market) is latest \
                and market not in self._stale

    def wait_synced(self, timeout: float | None = None,
                    markets: Iterable[str] | None = None) -> bool:
        """Block until every book (or the given ones) is synced; False on timeout.

        It sleeps until the books it waits for have had their snapshots applied (woken
        by the dispatcher, at most 0.2 s apart), then confirms with :meth:`is_synced`
        for each of them, so a gap the reader has already seen is noticed: the cost of
        a wake does not grow with the number of markets. Any thread but the one running
        callbacks may call it.

        Args:
            timeout: Seconds to wait; None waits as long as the client lives.
            markets: Wait for these markets only.

        Raises:
            ConcurrencyError: called from a callback while a book is unsynced (books
                are updated on the thread that runs callbacks, so it cannot wait).
            InvalidCommand: a bad timeout or market list.
        """
        check_timeout(timeout)
        wanted = set(string_list("markets", markets)) if markets is not None else None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._waiters += 1
            self._subset_waiters += wanted is not None
        try:
            while True:
                if self._applied_all(wanted) and all(
                        self.is_synced(m) for m in (wanted or self.markets)):
                    return True
                if self._client.closed:
                    return False
                if self._client.on_dispatcher_thread():
                    raise ConcurrencyError(
                        "wait_synced() cannot wait inside a callback: books are updated on "
                        "the thread running callbacks; check is_synced() instead")
                remaining = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if remaining <= 0:
                    return False
                with self._changed:
                    self._changed.wait(remaining)
        finally:
            with self._lock:
                self._waiters -= 1
                self._subset_waiters -= wanted is not None

    def _applied_all(self, wanted: set[str] | None) -> bool:
        with self._lock:
            return self._applied_all_locked(wanted)

    def _applied_all_locked(self, wanted: set[str] | None) -> bool:
        """Whether every wanted book (all when None) has had its snapshot applied since
        it was last distrusted (hold ``_lock``). Markets outside the set count as
        never synced."""
        if wanted is None:
            return not self._unsynced
        return self._unsynced.isdisjoint(wanted) and all(m in self._markets for m in wanted)

    def on_change(self, fn: ChangeCallback) -> None:
        """Call ``fn(market, top_of_book)`` on the dispatcher thread after each change.

        Also called when a book becomes unsynced (with its last top); check
        :meth:`is_synced`.
        """
        with self._lock:
            self._listeners = (*self._listeners, fn)

    def cross_check(self) -> CrossCheck:
        """Agreement of the books' top with Kalshi's ``ticker`` messages so far.

        Counted only while the ``ticker`` channel is subscribed for these markets. Each
        ticker is compared with its book as it stood at the ticker's place in the
        stream, if the stream shows that book in sync there (see :class:`CrossCheck`);
        a ticker that disagrees while the reader already knows the book is out of date
        (a gap it has seen, a resync it asked for) is not counted at all. Any thread.
        """
        return CrossCheck(checked=self._checked, disagreements=self._disagreements,
                          last_disagreement=self._last_disagreement)

    # ------------------------------------------------------------------ changing

    def add_markets(self, markets: Iterable[str], *, timeout: float | None = None) -> None:
        """Add markets (update_subscription add_markets); their books sync on snapshot.

        Markets the order-book subscription already covers (another set's, or your own)
        get a fresh snapshot (get_snapshot). Any thread.

        Raises:
            InvalidCommand: ``markets`` is not a list of tickers.
            CommandError, TimeoutError, ConnectionClosed: as the client's commands.
        """
        new = list(dict.fromkeys(m for m in string_list("markets", markets)
                                 if m not in self._markets))
        if not new:
            return
        covered = _book_markets(self._client)
        held_before = self._users_own(covered, new)
        with self._lock:
            self._markets.update(dict.fromkeys(new))
            self._unsynced.update(new)
        try:
            sid = self._current_sid()
            self._client.add_markets(sid, new, timeout=timeout)
            # Markets the subscription already covered get no new snapshot unless asked.
            already = [m for m in new if m in covered]
            if already:
                self._client.get_snapshot(sid, already, timeout=timeout)
        except BaseException:
            with self._lock:  # not added after all
                for market in new:
                    self._markets.pop(market, None)
                    self._unsynced.discard(market)
            raise
        with self._lock:
            self._held_before |= held_before

    def remove_markets(self, markets: Iterable[str], *, timeout: float | None = None) -> None:
        """Forget markets' books and unsubscribe them (update_subscription
        delete_markets), except those another live set uses or your own subscription
        held before this set asked for them, which stay subscribed. Any thread.

        Raises:
            InvalidCommand: ``markets`` is not a list of tickers.
            CommandError, TimeoutError, ConnectionClosed: as the client's commands.
        """
        gone = [m for m in string_list("markets", markets) if m in self._markets]
        if not gone:
            return
        released = self._releasable(gone)
        if released:
            self._client.remove_markets(self._current_sid(), released, timeout=timeout)
        with self._lock:
            for market in gone:
                self._markets.pop(market, None)
                self._books.pop(market, None)
                self._applied.pop(market, None)  # added again: in sync at its next snapshot
                self._stale.discard(market)
                self._unsynced.discard(market)
            self._changed.notify_all()  # a waiter may wait for these no longer

    def close(self, *, timeout: float | None = None) -> None:
        """Stop maintaining the books and unsubscribe their markets (as
        :meth:`remove_markets`, the markets others use stay). Idempotent; any thread."""
        if self._closed:
            return
        self._closed = True
        self._client.remove_callback(self._handle)
        with _live_sets_lock:
            live = _live_sets.get(self._client)
            if live is not None:
                live.discard(self)
            # The sets still live as this one leaves: of two sets closing at once, one
            # sees the other and keeps what they share, so only one releases it.
            others = list(live or ())
        if self._client.closed:
            return
        mine = self._releasable(self.markets, others)
        mine_set = set(mine)
        sid = self._current_sid()
        current = [s for s in self._client.subscriptions() if s.sid == sid]
        remaining = [m for m in (current[0].market_tickers if current else ())
                     if m not in mine_set]
        if not current or not mine:
            return
        if remaining:
            self._client.remove_markets(sid, mine, timeout=timeout)
        else:
            self._client.unsubscribe(sid, timeout=timeout)

    def __enter__(self) -> OrderBookSet:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _current_sid(self) -> int:
        for subscription in self._client.subscriptions():
            if subscription.channel == Channel.ORDERBOOK_DELTA:
                return subscription.sid
        return self._sid

    def _releasable(self, markets: Iterable[str],
                    others: list[OrderBookSet] | None = None) -> list[str]:
        """Of ``markets`` (this set's), those this set may unsubscribe: Kalshi keeps one
        order-book subscription per connection, so not those another live set (of
        ``others``, else of the sets live now) uses, nor those your own subscription held
        before this set asked for them."""
        with self._lock:
            kept = set(self._held_before)
        if others is None:
            others = _sets_of(self._client)
        kept.update(*(other.markets for other in others if other is not self))
        return [m for m in markets if m not in kept]

    def _users_own(self, covered: set[str], markets: Iterable[str]) -> set[str]:
        """Of ``markets``, those the order-book subscription ``covered`` for no live set:
        your own subscription's."""
        in_sets = {m for other in _sets_of(self._client) if other is not self
                   for m in other.markets}
        return {m for m in markets if m in covered and m not in in_sets}

    def _new_book(self, market: str) -> OrderBook:
        return OrderBook(market, use_yes_price=self._use_yes_price)

    # ------------------------------------------------------------------ stream (dispatcher)

    def _on_item(self, item: Any) -> None:
        if type(item) is StreamUpdate:
            if type(item.msg) is MalformedMessage:
                if item.channel == Channel.ORDERBOOK_DELTA:
                    self._on_malformed(item.msg)
            elif item.type == "orderbook_delta":
                self._on_delta(item)
            elif item.type == "orderbook_snapshot":
                self._on_snapshot(item)
            elif item.type == "ticker":
                self._on_ticker(item)
        elif isinstance(item, (SequenceGap, Resubscribed, SubscriptionError, Unsubscribed)):
            if item.channel == Channel.ORDERBOOK_DELTA:
                self._all_stale(type(item).__name__)
        elif isinstance(item, Lagged):
            if item.channel == Channel.ORDERBOOK_DELTA:
                # Book messages were dropped (overflow="drop_oldest"): every book may
                # have a hole. Distrust them all and fetch fresh snapshots.
                self._all_stale("Lagged")
                self._client.resync_books(self.markets)
        elif isinstance(item, (ConnectionLost, Reconnected, Closed)):
            self._all_stale(type(item).__name__)

    def _on_delta(self, update: StreamUpdate) -> None:
        msg: OrderbookDelta = update.msg  # type: ignore[assignment]  # its type said so
        market = msg.market_ticker
        with self._lock:
            book = self._books.get(market)
            if book is None or market in self._stale:
                return  # not ours, or waiting for its snapshot
            try:
                book.apply_delta(msg, seq=update.seq)
            except (TypeError, ValueError, ArithmeticError) as exc:
                refused: Exception | None = exc
                self._stale.add(market)
                self._unsynced.add(str(market))  # a key of _books: a str
            else:
                refused = None
            top = book.top() if self._listeners or refused else None
            listeners = self._listeners
        if refused is not None:
            logger.error("order book %s refused a delta (%s); resynchronising it", market,
                         refused)
            self._client.resync_books([market])
        for listener in listeners:
            self._call(listener, market, top)

    def _on_snapshot(self, update: StreamUpdate) -> None:
        msg: OrderbookSnapshot = update.msg  # type: ignore[assignment]  # its type said so
        market = msg.market_ticker
        with self._lock:
            if market not in self._markets:
                return
            book = self._books.get(market)
            if book is None:
                book = self._books[market] = self._new_book(market)
            elif market in self._stale:
                self.resyncs += 1
            book.apply_snapshot(msg, seq=update.seq)
            self._stale.discard(market)
            self._applied[market] = msg
            listeners = self._listeners
            top = book.top() if listeners else None
            unsynced = self._unsynced
            if market in unsynced:
                unsynced.discard(market)
                # Wake waiters when the last book synced; for waiters on some markets
                # only, at every snapshot (each wake costs them a set look-up).
                if self._waiters and (not unsynced or self._subset_waiters):
                    self._changed.notify_all()
            elif self._waiters:
                self._changed.notify_all()  # a newer snapshot a waiter may need
        for listener in listeners:
            self._call(listener, market, top)

    def _on_malformed(self, msg: MalformedMessage) -> None:
        """An unreadable book frame: its book (every book, if the market is unreadable
        too) is unsynced; the reader has already asked for a fresh snapshot."""
        payload = msg.raw.get("msg")
        market = payload.get("market_ticker") if isinstance(payload, dict) else None
        self._all_stale("unreadable order-book frame",
                        only=market if isinstance(market, str) else None)

    def _all_stale(self, why: str, only: str | None = None) -> None:
        with self._lock:
            books = self._books if only is None else \
                {m: b for m, b in ((only, self._books.get(only)),) if b is not None}
            listeners = self._listeners
            stale = [(m, b.top() if listeners else None) for m, b in books.items()
                     if m not in self._stale]
            self._stale.update(books)
            self._unsynced.update(books)
            if self._waiters:
                self._changed.notify_all()  # e.g. the client closed: a waiter returns
        if stale:
            logger.info("order books unsynced (%s): %s", why, ", ".join(m for m, _ in stale))
        for market, top in stale:
            for listener in listeners:
                self._call(listener, market, top)

    def _on_ticker(self, update: StreamUpdate) -> None:
        """Compare the book with a ticker at the ticker's place in the stream.

        The book there has applied every delta before the ticker, unless the reader has
        since unsynced it (a resync asked for, deltas held back): a disagreement is
        confirmed with :meth:`is_synced` (the reader's view, under the client's lock)
        before it counts. Agreement needs no confirmation, so the dispatcher does not
        queue for the lock the reader holds at every ticker.
        """
        ticker: Ticker = update.msg  # type: ignore[assignment]  # its type said so
        market = getattr(ticker, "market_ticker", None)
        with self._lock:
            book = self._books.get(market)  # type: ignore[arg-type]
            if book is None or market in self._stale or market not in self._applied:
                return
            top = book.top()
        mismatches = []
        for name, book_value, ticker_value in (
                ("yes bid", top.best_yes_bid, ticker.yes_bid_dollars),
                ("yes ask", top.best_yes_ask, ticker.yes_ask_dollars),
                ("yes bid size", top.best_yes_bid_size, ticker.yes_bid_size_fp),
                ("yes ask size", top.best_yes_ask_size, ticker.yes_ask_size_fp)):
            if book_value is not None and ticker_value is not None and book_value != ticker_value:
                mismatches.append(f"{name} book {book_value} vs ticker {ticker_value}")
        if mismatches and not self.is_synced(market):
            return  # not a fair comparison: the book is waiting for a fresh snapshot
        self._checked += 1
        if mismatches:
            self._disagreements += 1
            self._last_disagreement = f"{market}: {'; '.join(mismatches)}"

    def _call(self, listener: ChangeCallback, market: str, top: TopOfBook | None) -> None:
        try:
            listener(market, top)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - shown, counted, on_error: as callbacks
            self._client.report_callback_error(listener, top, exc)
