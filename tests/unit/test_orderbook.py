"""The order book: exact Decimal levels, both price conventions, copies for other threads.

The property tests check :class:`OrderBook` against the obvious implementation
(:class:`ModelBook`: two plain dicts, every answer recomputed by sorting) on every
query after every message.
"""

from __future__ import annotations

import decimal
import itertools
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_ws import _wire
from kalshi_ws.models import OrderbookDelta, OrderbookSnapshot
from kalshi_ws.orderbook import BookDepth, BookSnapshot, OrderBook, TopOfBook
from tests.conftest import load_examples, load_legacy_frames

D = Decimal
ONE = Decimal(1)
Levels = tuple[tuple[Decimal, Decimal], ...]


def snapshot(yes: Any = (), no: Any = (), market: str = "M") -> OrderbookSnapshot:
    """An orderbook_snapshot from (price, size) pairs written as strings."""
    return OrderbookSnapshot(
        market_ticker=market,
        yes_dollars_fp=tuple((D(p), D(s)) for p, s in yes),
        no_dollars_fp=tuple((D(p), D(s)) for p, s in no),
    )


def delta(side: str, price: Any, size: Any, market: str = "M") -> OrderbookDelta:
    """An orderbook_delta; strings become Decimals, anything else is passed as is."""
    return OrderbookDelta(
        market_ticker=market, side=side,
        price_dollars=D(price) if isinstance(price, str) else price,
        delta_fp=D(size) if isinstance(size, str) else size,
    )


def flip(levels: Levels) -> Levels:
    """NO levels in NO terms -> the same levels on the YES scale (use_yes_price)."""
    return tuple((ONE - price, size) for price, size in levels)


class ModelBook:
    """The brute-force reference: plain dicts, NO prices in NO terms, sorted on demand."""

    def __init__(self) -> None:
        self.ladders: dict[str, dict[Decimal, Decimal]] = {"yes": {}, "no": {}}
        self.last_seq: int | None = None

    def snapshot(self, yes: Levels, no: Levels, seq: int | None) -> None:
        for side, levels in (("yes", yes), ("no", no)):
            total: dict[Decimal, Decimal] = {}
            for price, size in levels:
                total[price] = total.get(price, D(0)) + size
            self.ladders[side] = {p: s for p, s in total.items() if s > 0}
        if seq is not None:
            self.last_seq = seq

    def change(self, side: str, price: Decimal, change: Decimal, seq: int | None) -> None:
        ladder = self.ladders[side]
        size = ladder.get(price, D(0)) + change
        if size > 0:
            ladder[price] = size
        else:
            ladder.pop(price, None)
        if seq is not None:
            self.last_seq = seq

    def expected(self) -> dict[str, Any]:
        """Every query of a book, as the spec defines it."""
        yes = tuple(sorted(self.ladders["yes"].items(), reverse=True))
        no = tuple(sorted(self.ladders["no"].items(), reverse=True))
        yes_asks = tuple((1 - p, s) for p, s in no)
        no_asks = tuple((1 - p, s) for p, s in yes)
        bid = yes[0] if yes else (None, None)
        ask = yes_asks[0] if yes_asks else (None, None)
        both = bool(yes and no)
        return {
            "yes_bids": yes, "no_bids": no, "yes_asks": yes_asks, "no_asks": no_asks,
            "best_yes_bid": bid[0], "best_yes_bid_size": bid[1],
            "best_no_bid": no[0][0] if no else None,
            "best_no_bid_size": no[0][1] if no else None,
            "best_yes_ask": ask[0], "best_yes_ask_size": ask[1],
            "best_no_ask": no_asks[0][0] if no_asks else None,
            "best_no_ask_size": no_asks[0][1] if no_asks else None,
            "spread": ask[0] - bid[0] if both else None,
            "mid": (bid[0] + ask[0]) / 2 if both else None,
            "is_empty": not yes and not no,
            "last_seq": self.last_seq,
            "depth": [BookDepth(yes_bids=yes[:n], yes_asks=yes_asks[:n], no_bids=no[:n],
                                no_asks=no_asks[:n]) for n in (0, 1, 3, 1000)],
            "top": TopOfBook(market_ticker="M", best_yes_bid=bid[0],
                             best_yes_bid_size=bid[1], best_yes_ask=ask[0],
                             best_yes_ask_size=ask[1], last_seq=self.last_seq),
        }


QUERIES = ["yes_bids", "no_bids", "yes_asks", "no_asks", "best_yes_bid",
           "best_yes_bid_size", "best_no_bid", "best_no_bid_size", "best_yes_ask",
           "best_yes_ask_size", "best_no_ask", "best_no_ask_size", "spread", "mid",
           "is_empty", "last_seq"]


def answers(book: OrderBook | BookSnapshot) -> dict[str, Any]:
    """Every query of a live book or of a copy."""
    result = {name: getattr(book, name) for name in QUERIES}
    result["depth"] = [book.depth(n) for n in (0, 1, 3, 1000)]
    result["top"] = book.top()
    return result


def assert_all_decimal(result: dict[str, Any]) -> None:
    """Every price and size the book hands out (so every one it stores) is a Decimal."""
    values = [result[name] for name in QUERIES if name not in ("is_empty", "last_seq")]
    for name in ("yes_bids", "no_bids", "yes_asks", "no_asks"):
        values.extend(itertools.chain.from_iterable(result[name]))
    for value in values:
        if not isinstance(value, tuple):
            assert value is None or type(value) is Decimal, repr(value)


def assert_matches(book: OrderBook, model: ModelBook) -> None:
    expected = model.expected()
    live = answers(book)
    assert live == expected
    assert answers(book.snapshot()) == expected
    assert_all_decimal(live)


# --------------------------------------------------------------------------- strategies


def cents(n: int) -> Decimal:
    return Decimal(n).scaleb(-2)  # 30 -> Decimal("0.30")


def respelled(price: Decimal) -> st.SearchStrategy[Decimal]:
    """The price as written ("0.3") or with Kalshi's four decimals ("0.3000")."""
    return st.sampled_from([price, price.quantize(D("0.0001"))])


PRICES = st.one_of(
    st.integers(35, 45).map(cents),  # a narrow band, so deltas meet existing levels
    st.integers(1, 99).map(cents),
    st.integers(1, 9999).map(lambda n: Decimal(n).scaleb(-4)),  # sub-penny grid
).flatmap(respelled)
SIZES = st.integers(-20_000, 20_000).map(lambda n: Decimal(n).scaleb(-2))
POSITIVE_SIZES = st.integers(1, 20_000).map(lambda n: Decimal(n).scaleb(-2))
SIDES = st.sampled_from(["yes", "no"])
# Snapshot levels: mostly positive; repeated prices and non-positive sizes now and then.
LEVELS = st.lists(
    st.tuples(PRICES, st.one_of(POSITIVE_SIZES, POSITIVE_SIZES, SIZES)), max_size=25
).map(tuple)
STEP_KINDS = st.sampled_from(
    ["any", "existing", "remove", "overshoot", "absent_negative", "snapshot"])


def draw_step(data: st.DataObject, model: ModelBook) -> tuple[Any, ...]:
    """One logical message (NO prices in NO terms), aimed at interesting cases."""
    kind = data.draw(STEP_KINDS)
    if kind == "snapshot":
        return ("snapshot", data.draw(LEVELS), data.draw(LEVELS))
    side = data.draw(SIDES)
    ladder = model.ladders[side]
    if kind in ("existing", "remove", "overshoot") and ladder:
        price = data.draw(st.sampled_from(sorted(ladder)).flatmap(respelled))
        change = {"existing": lambda: data.draw(SIZES),
                  "remove": lambda: -ladder[price],
                  "overshoot": lambda: -ladder[price] - data.draw(POSITIVE_SIZES)}[kind]()
    elif kind == "absent_negative":
        price = data.draw(PRICES.filter(lambda p: p not in ladder))
        change = -data.draw(POSITIVE_SIZES)
    else:
        price, change = data.draw(PRICES), data.draw(SIZES)
    return ("delta", side, price, change)


# --------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(data=st.data(), yes=LEVELS, no=LEVELS)
def test_book_matches_brute_force_model_after_every_message(
    data: st.DataObject, yes: Levels, no: Levels
) -> None:
    book, model = OrderBook("M"), ModelBook()
    book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=yes,
                                          no_dollars_fp=no), seq=1)
    model.snapshot(yes, no, 1)
    assert_matches(book, model)
    for seq in range(2, 2 + data.draw(st.integers(0, 40))):
        step = draw_step(data, model)
        if step[0] == "snapshot":
            book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=step[1],
                                                  no_dollars_fp=step[2]), seq=seq)
            model.snapshot(step[1], step[2], seq)
        else:
            _, side, price, change = step
            book.apply_delta(OrderbookDelta(market_ticker="M", side=side,
                                            price_dollars=price, delta_fp=change), seq=seq)
            model.change(side, price, change, seq)
        assert_matches(book, model)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), yes=LEVELS, no=LEVELS)
def test_both_price_conventions_give_identical_answers(
    data: st.DataObject, yes: Levels, no: Levels
) -> None:
    """The same logical stream, NO prices in NO terms to one book, on the YES scale to another."""
    no_terms = OrderBook("M", clock=lambda: 1.0)
    yes_scale = OrderBook("M", use_yes_price=True, clock=lambda: 1.0)
    model = ModelBook()
    no_terms.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=yes,
                                              no_dollars_fp=no))
    yes_scale.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=yes,
                                               no_dollars_fp=flip(no)))
    model.snapshot(yes, no, None)
    assert answers(no_terms) == answers(yes_scale) == model.expected()
    for seq in range(1, 1 + data.draw(st.integers(0, 40))):
        step = draw_step(data, model)
        if step[0] == "snapshot":
            _, yes, no = step
            no_terms.apply_snapshot(OrderbookSnapshot(
                market_ticker="M", yes_dollars_fp=yes, no_dollars_fp=no), seq=seq)
            yes_scale.apply_snapshot(OrderbookSnapshot(
                market_ticker="M", yes_dollars_fp=yes, no_dollars_fp=flip(no)), seq=seq)
            model.snapshot(yes, no, seq)
        else:
            _, side, price, change = step
            no_terms.apply_change(side, price, change, seq=seq)
            yes_scale.apply_change(side, ONE - price if side == "no" else price, change,
                                   seq=seq)
            model.change(side, price, change, seq)
        assert answers(no_terms) == answers(yes_scale) == model.expected()
        assert no_terms.snapshot() == yes_scale.snapshot()


@settings(max_examples=100, deadline=None)
@given(bad=st.floats(), side=SIDES, use_yes_price=st.booleans(),
       bad_field=st.sampled_from(["price", "size"]))
def test_a_float_never_enters_a_book(
    bad: float, side: str, use_yes_price: bool, bad_field: str
) -> None:
    book = OrderBook("M", use_yes_price=use_yes_price)
    book.apply_snapshot(snapshot(yes=[("0.40", "10")], no=[("0.55", "3")]), seq=1)
    before = book.snapshot()
    price, size = (bad, D("1")) if bad_field == "price" else (D("0.40"), bad)
    with pytest.raises(TypeError, match=bad_field):
        book.apply_change(side, price, size)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=bad_field):
        book.apply_delta(delta(side, price, size))
    levels = ((price, size),)
    with pytest.raises(TypeError, match=bad_field):
        book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=levels))
    with pytest.raises(TypeError, match=bad_field):
        book.apply_snapshot(OrderbookSnapshot(market_ticker="M", no_dollars_fp=levels))
    assert book.snapshot() is before  # nothing changed, not even the clock or a cache


@pytest.mark.parametrize("bad", [1, True, "0.40", Fraction(2, 5), None])
def test_other_non_decimals_are_refused_too(bad: Any) -> None:
    book = OrderBook("M")
    with pytest.raises(TypeError):
        book.apply_change("yes", bad, D("1"))
    with pytest.raises(TypeError):
        book.apply_change("yes", D("0.40"), bad)
    assert book.is_empty
    assert book.updated_at is None


# --------------------------------------------------------------------------- examples from the spec


def test_spec_example_snapshot_gives_the_top_of_book() -> None:
    """Protocol reference 5.2: YES bids 0.31/0.33/0.34, NO bids 0.62/0.64."""
    book = OrderBook("M")
    book.apply_snapshot(snapshot(
        yes=[("0.3100", "120.00"), ("0.3300", "45.50"), ("0.3400", "210.00")],
        no=[("0.6200", "80.00"), ("0.6400", "15.00")]), seq=1)
    assert book.yes_bids == ((D("0.34"), D("210")), (D("0.33"), D("45.5")),
                             (D("0.31"), D("120")))
    assert book.no_bids == ((D("0.64"), D("15")), (D("0.62"), D("80")))
    assert book.yes_asks == ((D("0.36"), D("15")), (D("0.38"), D("80")))
    assert book.no_asks == ((D("0.66"), D("210")), (D("0.67"), D("45.5")),
                            (D("0.69"), D("120")))
    assert (book.best_yes_bid, book.best_yes_bid_size) == (D("0.34"), D("210"))
    assert (book.best_yes_ask, book.best_yes_ask_size) == (D("0.36"), D("15"))
    assert (book.best_no_bid, book.best_no_bid_size) == (D("0.64"), D("15"))
    assert (book.best_no_ask, book.best_no_ask_size) == (D("0.66"), D("210"))
    assert book.spread == D("0.02")
    assert book.mid == D("0.35")
    assert book.top() == TopOfBook(market_ticker="M", best_yes_bid=D("0.34"),
                                   best_yes_bid_size=D("210"), best_yes_ask=D("0.36"),
                                   best_yes_ask_size=D("15"), last_seq=1)
    assert book.depth(1) == BookDepth(yes_bids=((D("0.34"), D("210")),),
                                      yes_asks=((D("0.36"), D("15")),),
                                      no_bids=((D("0.64"), D("15")),),
                                      no_asks=((D("0.66"), D("210")),))


def test_with_use_yes_price_a_no_bid_at_30_arrives_as_70() -> None:
    """Protocol reference 6.4: best YES ask = min price of the NO ladder on the YES scale."""
    book = OrderBook("M", use_yes_price=True)
    book.apply_snapshot(snapshot(yes=[("0.25", "5")], no=[("0.70", "9"), ("0.80", "4")]))
    assert book.no_bids == ((D("0.30"), D("9")), (D("0.20"), D("4")))
    assert (book.best_yes_ask, book.best_yes_ask_size) == (D("0.70"), D("9"))
    book.apply_delta(delta("no", "0.7000", "-9"))
    assert (book.best_yes_ask, book.best_no_bid) == (D("0.80"), D("0.20"))
    book.apply_delta(delta("no", "0.65", "1.25"))
    assert (book.best_yes_ask, book.best_yes_ask_size) == (D("0.65"), D("1.25"))
    assert book.use_yes_price is True
    assert OrderBook("M").use_yes_price is False


def test_asyncapi_example_frames_apply_through_the_wire_layer() -> None:
    frames = {e["example"]: e["payload"] for e in load_examples()}
    snap, change = frames["orderbookWithBothSides"], frames["priceLevelUpdate"]
    book = OrderBook(snap["msg"]["market_ticker"])
    book.apply_snapshot(_wire.build_message(snap["type"], snap["msg"], snap), seq=snap["seq"])
    assert book.best_yes_bid == D("0.22")
    assert book.best_yes_ask == D("0.44")
    # The example delta removes 54 at a YES price with no level: nothing may appear.
    book.apply_delta(_wire.build_message(change["type"], change["msg"], change),
                     seq=change["seq"])
    assert [p for p, _ in book.yes_bids] == [D("0.22"), D("0.08")]
    assert book.last_seq == change["seq"]


# --------------------------------------------------------------------------- snapshots


def test_a_snapshot_replaces_both_sides_and_an_absent_side_is_empty() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10"), ("0.41", "1")], no=[("0.55", "3")]))
    book.apply_snapshot(snapshot(yes=[("0.20", "7")]))
    assert book.yes_bids == ((D("0.20"), D("7")),)
    assert book.no_bids == ()
    assert book.best_yes_ask is None
    book.apply_snapshot(OrderbookSnapshot(market_ticker="M"))
    assert book.is_empty
    assert book.yes_bids == book.no_bids == ()


def test_legacy_cent_snapshot_and_delta_use_the_model_helpers() -> None:
    book = OrderBook("M")
    book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes=((31, 120), (33, 45)),
                                          no=((62, 80),)))
    assert book.yes_bids == ((D("0.33"), D("45")), (D("0.31"), D("120")))
    assert book.best_yes_ask == D("0.38")
    book.apply_delta(OrderbookDelta(market_ticker="M", side="yes", price=33, delta=-5))
    assert book.best_yes_bid_size == D("40")
    book.apply_delta(OrderbookDelta(market_ticker="M", side="yes", price=33, delta=-40))
    assert book.best_yes_bid == D("0.31")


def test_legacy_frames_apply_through_the_wire_layer() -> None:
    books = {"OLD-MKT": OrderBook("OLD-MKT"), "OLD-MKT2": OrderBook("OLD-MKT2")}
    for frame in load_legacy_frames():
        if frame["type"] not in ("orderbook_snapshot", "orderbook_delta"):
            continue
        msg = _wire.build_message(frame["type"], frame["msg"], frame)
        book = books[msg.market_ticker]
        apply = book.apply_snapshot if frame["type"] == "orderbook_snapshot" else \
            book.apply_delta
        apply(msg, seq=frame.get("seq"))
    assert books["OLD-MKT"].yes_bids == ((D("0.33"), D("40")), (D("0.31"), D("120")))
    assert books["OLD-MKT"].no_bids == ((D("0.62"), D("80")),)
    assert books["OLD-MKT2"].yes_bids == ((D("0.31"), D("120")),)
    assert books["OLD-MKT2"].best_yes_ask == D("0.38")


def test_snapshot_levels_at_one_price_add_up_and_empty_levels_are_dropped() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.30", "4"), ("0.3000", "2.5"), ("0.20", "0"),
                                      ("0.10", "-1")]))
    assert book.yes_bids == ((D("0.30"), D("6.5")),)


# --------------------------------------------------------------------------- deltas


def test_one_level_per_price_whatever_its_spelling() -> None:
    book = OrderBook("M")
    book.apply_delta(delta("yes", "0.3", "10"))
    book.apply_delta(delta("yes", "0.3000", "-4"))
    book.apply_delta(delta("yes", "0.30", "0.50"))
    assert book.yes_bids == ((D("0.30"), D("6.50")),)
    book.apply_delta(delta("yes", "0.300", "-6.5"))
    assert book.is_empty


def test_fractional_sizes_are_exact_so_no_phantom_level_remains() -> None:
    book = OrderBook("M")
    for size in ("0.10", "0.20", "-0.30"):
        book.apply_delta(delta("no", "0.55", size))
    assert book.no_bids == ()  # 0.1 + 0.2 - 0.3 would leave 5.5e-17 in floats


def test_sums_stay_exact_whatever_the_callers_decimal_context() -> None:
    book = OrderBook("M")
    with decimal.localcontext(decimal.Context(prec=3)):
        book.apply_delta(delta("yes", "0.4512", "12345.67"))
        book.apply_delta(delta("yes", "0.4512", "0.01"))
        assert book.best_yes_bid_size == D("12345.68")
        assert book.best_no_ask == D("0.5488")


def test_a_negative_change_at_a_missing_level_creates_nothing() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10")]))
    book.apply_delta(delta("yes", "0.41", "-3"))
    book.apply_delta(delta("yes", "0.42", "0"))
    book.apply_delta(delta("no", "0.50", "-0.01"))
    assert book.yes_bids == ((D("0.40"), D("10")),)
    assert book.no_bids == ()


def test_a_level_going_to_zero_or_below_disappears() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10"), ("0.39", "2"), ("0.38", "1")]))
    book.apply_delta(delta("yes", "0.40", "-10"))  # the best, exactly
    book.apply_delta(delta("yes", "0.38", "-7.25"))  # below the best, overshooting
    assert book.yes_bids == ((D("0.39"), D("2")),)


@pytest.mark.parametrize("price", ["0", "1", "1.5", "-0.10", "NaN", "Infinity", "sNaN"])
def test_a_price_outside_0_to_1_or_not_finite_is_refused(price: str) -> None:
    book = OrderBook("M")
    before = book.snapshot()
    with pytest.raises(ValueError, match="price"):
        book.apply_change("yes", D(price), D("1"))
    with pytest.raises(ValueError, match="price"):
        book.apply_snapshot(snapshot(yes=[("0.40", "1")], no=[(price, "1")]))
    assert book.snapshot() is before


@pytest.mark.parametrize("size", ["NaN", "Infinity", "-Infinity"])
def test_a_size_that_is_not_finite_is_refused(size: str) -> None:
    book = OrderBook("M")
    book.apply_change("yes", D("0.40"), D("1"))
    with pytest.raises(ValueError, match="size"):
        book.apply_change("yes", D("0.40"), D(size))
    assert book.yes_bids == ((D("0.40"), D("1")),)


def test_a_bad_side_is_refused() -> None:
    book = OrderBook("M")
    with pytest.raises(ValueError, match="side"):
        book.apply_delta(delta("maybe", "0.40", "1"))
    with pytest.raises(ValueError, match="side"):
        book.apply_change("YES", D("0.40"), D("1"))
    assert book.is_empty


def test_a_delta_without_price_or_size_is_refused() -> None:
    book = OrderBook("M")
    with pytest.raises(ValueError, match="price"):
        book.apply_delta(OrderbookDelta(market_ticker="M", side="yes", delta_fp=D("1")))
    with pytest.raises(ValueError, match="size"):
        book.apply_delta(OrderbookDelta(market_ticker="M", side="yes",
                                        price_dollars=D("0.40")))
    assert book.is_empty


def test_messages_for_another_market_are_refused_and_change_nothing() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10")]), seq=1)
    before = book.snapshot()
    with pytest.raises(ValueError, match="OTHER"):
        book.apply_snapshot(snapshot(no=[("0.50", "1")], market="OTHER"), seq=2)
    with pytest.raises(ValueError, match="OTHER"):
        book.apply_delta(delta("yes", "0.40", "5", market="OTHER"), seq=2)
    assert book.snapshot() is before
    assert book.last_seq == 1


# --------------------------------------------------------------------------- bookkeeping


def test_last_seq_and_updated_at_follow_each_apply_with_an_injected_clock() -> None:
    ticks = itertools.count(100.0)
    book = OrderBook("M", clock=lambda: next(ticks))
    assert (book.last_seq, book.updated_at) == (None, None)
    book.apply_snapshot(snapshot(yes=[("0.40", "10")]), seq=7)
    assert (book.last_seq, book.updated_at) == (7, 100.0)
    book.apply_delta(delta("yes", "0.40", "1"), seq=8)
    assert (book.last_seq, book.updated_at) == (8, 101.0)
    book.apply_change("yes", D("0.41"), D("-1"))  # seq None: the last one stays
    assert (book.last_seq, book.updated_at) == (8, 102.0)
    book.apply_snapshot(snapshot(no=[("0.50", "1")]))
    assert (book.last_seq, book.updated_at) == (8, 103.0)
    assert book.snapshot().updated_at == 103.0
    book.clear()
    assert (book.last_seq, book.updated_at) == (None, None)
    assert book.is_empty


def test_an_empty_book_answers_none() -> None:
    for book in (OrderBook("M"), OrderBook("M").snapshot()):
        assert book.is_empty
        assert book.yes_bids == book.no_bids == book.yes_asks == book.no_asks == ()
        for name in ("best_yes_bid", "best_yes_ask", "best_no_bid", "best_no_ask",
                     "best_yes_bid_size", "best_yes_ask_size", "best_no_bid_size",
                     "best_no_ask_size", "spread", "mid"):
            assert getattr(book, name) is None, name
        assert book.depth(5) == BookDepth(yes_bids=(), yes_asks=(), no_bids=(), no_asks=())
        assert book.top() == TopOfBook(market_ticker="M", best_yes_bid=None,
                                       best_yes_bid_size=None, best_yes_ask=None,
                                       best_yes_ask_size=None, last_seq=None)


def test_one_sided_book_has_no_spread_or_mid() -> None:
    book = OrderBook("M")
    book.apply_change("yes", D("0.40"), D("1"))
    assert (book.spread, book.mid, book.best_yes_ask, book.best_no_ask) == \
        (None, None, None, D("0.60"))


def test_depth_refuses_a_negative_count() -> None:
    book = OrderBook("M")
    with pytest.raises(ValueError):
        book.depth(-1)
    with pytest.raises(ValueError):
        book.snapshot().depth(-1)


def test_market_ticker_and_use_yes_price_are_read_only() -> None:
    book = OrderBook("M", use_yes_price=True)
    with pytest.raises(AttributeError):
        book.market_ticker = "X"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        book.use_yes_price = False  # type: ignore[misc]
    assert (book.market_ticker, book.use_yes_price) == ("M", True)


# --------------------------------------------------------------------------- copies


def test_snapshot_is_cached_until_the_book_changes() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10")], no=[("0.55", "3")]), seq=1)
    first = book.snapshot()
    assert book.snapshot() is first
    book.apply_delta(delta("yes", "0.41", "-1"), seq=2)  # no level changes, seq does
    second = book.snapshot()
    assert second is not first
    assert second.last_seq == 2
    assert book.snapshot() is second
    book.clear()
    assert book.snapshot() is not second


def test_snapshot_shares_a_ladder_that_did_not_change() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10")], no=[("0.55", "3")]))
    first = book.snapshot()
    book.apply_delta(delta("yes", "0.40", "1"))
    second = book.snapshot()
    assert second.no_bids is first.no_bids
    assert second.yes_bids == ((D("0.40"), D("11")),)


def test_snapshot_is_immutable_and_unaffected_by_later_updates() -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=[("0.40", "10")], no=[("0.55", "3")]), seq=1)
    copy = book.snapshot()
    expected = answers(copy)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        copy.yes_bids = ()  # type: ignore[misc]
    assert isinstance(copy.yes_bids, tuple)
    assert all(isinstance(level, tuple) for level in copy.yes_bids + copy.no_bids)
    book.apply_delta(delta("yes", "0.40", "-10"), seq=2)
    book.apply_delta(delta("no", "0.56", "8"), seq=3)
    book.apply_snapshot(snapshot(yes=[("0.10", "1")]), seq=4)
    assert answers(copy) == expected
    assert copy.top() == TopOfBook(market_ticker="M", best_yes_bid=D("0.40"),
                                   best_yes_bid_size=D("10"), best_yes_ask=D("0.45"),
                                   best_yes_ask_size=D("3"), last_seq=1)
    assert hash(copy) == hash(BookSnapshot(market_ticker="M", yes_bids=copy.yes_bids,
                                           no_bids=copy.no_bids, last_seq=1,
                                           updated_at=copy.updated_at))


def test_a_crossed_book_says_so() -> None:
    """Issue 10: a crossed book is reported (is_crossed), not corrected or hidden."""

    book = OrderBook("M")
    book.apply_snapshot(OrderbookSnapshot(  # type: ignore[call-arg]
        market_ticker="M", market_id="i",
        yes_dollars_fp=((Decimal("0.40"), Decimal(1)),),
        no_dollars_fp=((Decimal("0.55"), Decimal(1)),)))
    assert not book.is_crossed and not book.snapshot().is_crossed
    book.apply_change("yes", Decimal("0.45"), Decimal(2))
    assert book.is_crossed and book.snapshot().is_crossed  # 0.45 + 0.55 = 1: they trade


# --------------------------------------------------------------------------- compact sides

# Snapshot sides as Kalshi sends them: prices rising, one level per price, sizes positive.
KALSHI_LEVELS = st.lists(st.tuples(PRICES, POSITIVE_SIZES), max_size=25,
                         unique_by=lambda level: level[0]).map(lambda levels: tuple(sorted(levels)))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), yes=KALSHI_LEVELS, no=KALSHI_LEVELS)
def test_a_quiet_side_answers_like_the_model(
    data: st.DataObject, yes: Levels, no: Levels
) -> None:
    """Sides fresh from a Kalshi-ordered snapshot (kept as tuples) answer every query as
    the model does, after each of a few deltas (each making new tuples)."""
    book, model = OrderBook("M"), ModelBook()
    for seq in range(1, 2 + data.draw(st.integers(0, 30))):
        if seq == 1 or data.draw(st.integers(0, 5)) == 0:
            if seq > 1:
                yes, no = data.draw(KALSHI_LEVELS), data.draw(KALSHI_LEVELS)
            book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=yes,
                                                  no_dollars_fp=no), seq=seq)
            model.snapshot(yes, no, seq)
            if data.draw(st.booleans()):
                assert_matches(book, model)  # queries first, on the compact sides
        else:
            step = draw_step(data, model)
            if step[0] == "delta":
                _, side, price, change = step
                book.apply_change(side, price, change, seq=seq)
                model.change(side, price, change, seq)
        assert_matches(book, model)
        assert book.is_empty == (not model.ladders["yes"] and not model.ladders["no"])


def test_a_snapshot_as_kalshi_sends_it_is_kept_as_its_own_values() -> None:
    """A book fresh from a snapshot holds the message's Decimals (no copies); a delta
    changes the book, never the message."""
    msg = snapshot(yes=[("0.38", "1"), ("0.40", "10")], no=[("0.55", "3")])
    book = OrderBook("M")
    book.apply_snapshot(msg)
    assert all(a is b for level, original in zip(book.yes_bids, msg.yes_dollars_fp[::-1])
               for a, b in zip(level, original))
    assert book.top().best_yes_bid_size is msg.yes_dollars_fp[-1][1]
    assert repr(book) == "<OrderBook M yes=2 levels no=1 levels last_seq=None>"
    book.apply_delta(delta("yes", "0.40", "-10"))
    book.apply_delta(delta("yes", "0.39", "4"))
    assert book.yes_bids == ((D("0.39"), D("4")), (D("0.38"), D("1")))
    assert msg.yes_dollars_fp == ((D("0.38"), D("1")), (D("0.40"), D("10")))  # untouched


@pytest.mark.parametrize("yes", [
    [("0.40", "10"), ("0.38", "1")],  # falling
    [("0.40", "10"), ("0.4000", "1")],  # one price twice
    [("0.38", "1"), ("0.40", "0")],  # an empty level
    [("0.38", "1"), ("0.40", "-2")],  # a negative one
])
def test_a_snapshot_in_any_other_form_is_sorted_added_up_and_cleaned(yes: Any) -> None:
    book = OrderBook("M")
    book.apply_snapshot(snapshot(yes=yes))
    model = ModelBook()
    model.snapshot(tuple((D(p), D(s)) for p, s in yes), (), None)
    assert book.yes_bids == model.expected()["yes_bids"]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), yes=KALSHI_LEVELS, no=LEVELS, use_yes_price=st.booleans())
def test_a_busy_side_answers_like_the_model(
    data: st.DataObject, yes: Levels, no: Levels, use_yes_price: bool
) -> None:
    """Past 16 changes since its snapshot a side keeps its sizes in a dict: the answers
    stay the model's all the way through the switch."""
    book, model = OrderBook("M", use_yes_price=use_yes_price), ModelBook()
    book.apply_snapshot(OrderbookSnapshot(market_ticker="M", yes_dollars_fp=yes,
                                          no_dollars_fp=flip(no) if use_yes_price else no))
    model.snapshot(yes, no, None)
    side = data.draw(SIDES)
    for seq in range(1, 40):
        step = draw_step(data, model)
        while step[0] != "delta":
            step = draw_step(data, model)
        _, other_side, price, change = step
        if data.draw(st.integers(0, 4)):
            other_side = side  # mostly one side, so that it gets busy
        book.apply_change(other_side, ONE - price if use_yes_price and other_side == "no"
                          else price, change, seq=seq)
        model.change(other_side, price, change, seq)
        assert_matches(book, model)
