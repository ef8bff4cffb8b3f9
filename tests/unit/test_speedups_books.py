"""The optional C module's order-book steps give exactly what Python gives.

Four steps of reading and keeping books have a C twin in ``kalshi_ws._speedups``:

* ``ladder``: the general path's reading of a side (``_wire._ladder``): a list of
  [price, size] string pairs into a tuple of (Decimal, Decimal), through the decimal
  cache;
* ``split_ladder``: ``OrderBook``'s check that a side is as Kalshi sends it (prices
  rising strictly inside (0, 1), sizes positive and finite) and its split into the
  side's prices and sizes;
* ``changed_side``: a side after a delta (``orderbook._changed_side``);
* ``Constructor`` for ``TopOfBook`` (``orderbook._new_top``).

Each is compared with the Python code beside it on hostile input: the same result
(equal and equal in ``repr``), the same exception, the same decimal cache or dict after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_ws import _compiled, _wire, orderbook
from kalshi_ws.orderbook import OrderBook

speedups = _compiled.speedups
needs_c = pytest.mark.skipif(speedups is None, reason="kalshi_ws._speedups is not built")
pytestmark = needs_c
FUZZ = settings(max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "0")) or 300,
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    """What ``fn(*args)`` gives, spelled out (types included), or what it raises."""
    try:
        return "value", repr(fn(*args))
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc).__name__, str(exc)


# ---------------------------------------------------------------------- ladder (wire)

_CACHED = ["0.0100", "0.5000", "0.9900", "100.00", "5.00", "0"]
_TEXTS = st.sampled_from(_CACHED) | st.sampled_from(
    ["0.42", "7.77", "1e3", "abc", "", "NaN", "Infinity", "-0.01", " 1", "0.1\u00a0",
     "1" * 30]) | st.text(max_size=6)
_VALUES: st.SearchStrategy[Any] = _TEXTS | st.none() | st.integers(-5, 5) | st.floats(allow_nan=True) | \
    st.booleans() | st.just([]) | st.just({})
_PAIRS = st.one_of(
    st.lists(_TEXTS, min_size=2, max_size=2),
    st.lists(_VALUES, min_size=0, max_size=3),
    st.tuples(_TEXTS, _TEXTS),
    _VALUES,
)


def _grows_less_than(limit: int, work: Any) -> None:
    """Run ``work`` once to warm up, then again under tracemalloc: what it leaves
    allocated must stay under ``limit`` bytes (a leak per call grows with the calls)."""
    work()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        work()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < limit


def _wire_ladder_both(value: list[Any], cache: dict[str, Decimal]) -> list[Any]:
    """[(Python outcome, Python cache), (C outcome, C cache)] from the same cache."""
    results = []
    saved = dict(_wire._decimals)
    try:
        for read in (_wire._ladder_in_python,
                     lambda v: speedups.ladder(v, _wire._decimals, _wire._level)):
            _wire._decimals.clear()
            _wire._decimals.update(cache)
            outcome = _outcome(read, value)
            after = _wire._decimals  # its keys, and every value it does not share with cache
            results.append((outcome, list(after), {
                k: repr(v) for k, v in after.items() if cache.get(k) is not v}))
    finally:
        _wire._decimals.clear()
        _wire._decimals.update(saved)
    return results


_FEW = {text: Decimal(text) for text in _CACHED}
_NEARLY_FULL = {**_FEW, **{f"9.{i:04d}": Decimal(f"9.{i:04d}")
                           for i in range(_wire.DECIMAL_CACHE_SIZE - len(_FEW) - 1)}}


@pytest.fixture
def saved_cache() -> Any:
    saved = dict(_wire._decimals)
    yield
    _wire._decimals.clear()
    _wire._decimals.update(saved)


@FUZZ
@given(st.lists(_PAIRS, max_size=12), st.booleans())
def test_a_side_reads_alike_and_leaves_the_same_cache(value: list[Any],
                                                      nearly_full: bool) -> None:
    # Nearly full: the next new string empties the cache, so the order of conversions
    # shows.
    python, c = _wire_ladder_both(value, _NEARLY_FULL if nearly_full else _FEW)
    assert c == python


def test_cached_levels_are_the_cached_objects(saved_cache: None) -> None:
    _wire._decimals.clear()
    side = [["0.5000", "5.00"], ["0.6000", "6.00"]]
    first = speedups.ladder(side, _wire._decimals, _wire._level)  # misses: via _level
    again = speedups.ladder(side, _wire._decimals, _wire._level)  # hits: from the cache
    assert again == first == ((Decimal("0.5000"), Decimal("5.00")),
                              (Decimal("0.6000"), Decimal("6.00")))
    assert all(a is b for level, cached in zip(again, first, strict=True)
               for a, b in zip(level, cached, strict=True))


def test_what_level_raises_comes_out_unchanged(saved_cache: None) -> None:
    class Stop(BaseException):
        pass

    def stop(pair: Any) -> Any:
        raise Stop(pair)

    with pytest.raises(Stop):
        speedups.ladder([["x", "y"]], _wire._decimals, stop)
    with pytest.raises(TypeError, match="3 arguments"):
        speedups.ladder([], _wire._decimals)
    with pytest.raises(TypeError, match="a list and a dict"):
        speedups.ladder((), _wire._decimals, _wire._level)


def test_a_level_that_changes_the_list_is_read_as_a_for_loop_reads_it(
        saved_cache: None) -> None:
    for read in (_wire._ladder_in_python,
                 lambda v: speedups.ladder(v, _wire._decimals, _wire._level)):
        side: list[Any] = [["0.5000", "5.00"], "odd", ["0.6000", "6.00"]]
        calls: list[Any] = []

        def level(pair: Any, side: list[Any] = side, calls: list[Any] = calls) -> Any:
            calls.append(pair)
            side.clear()  # the loop ends after this element
            return ("odd",)

        original = _wire._level
        _wire._decimals.update({"0.5000": Decimal("0.5000"), "5.00": Decimal("5.00")})
        try:
            _wire._level = level  # type: ignore[assignment]
            if read is _wire._ladder_in_python:
                result = read(side)
            else:
                result = speedups.ladder(side, _wire._decimals, level)
        finally:
            _wire._level = original  # type: ignore[assignment]
        assert result == ((Decimal("0.5000"), Decimal("5.00")), ("odd",))
        assert calls == ["odd"]


def test_a_snapshot_is_read_alike_by_the_general_path(saved_cache: None) -> None:
    frame = {"market_ticker": "M", "yes_dollars_fp": [["0.3000", "10.00"], ["0.31", "2"]],
             "no_dollars_fp": [["0.5", "1.5"], ["bad", "1"]]}
    in_c = _outcome(_wire.build_message, "orderbook_snapshot", frame, {})
    _wire._decimals.clear()
    original = _wire._ladder_in_c
    try:
        _wire._ladder_in_c = None
        in_python = _outcome(_wire.build_message, "orderbook_snapshot", frame, {})
    finally:
        _wire._ladder_in_c = original
    assert in_c == in_python
    assert "MalformedMessage" in in_c[1]  # "bad" is not a price: reported, not guessed


def test_the_c_readers_are_used_where_built() -> None:
    if os.environ.get(_compiled.PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        pytest.skip("this run asked for Python alone")
    assert _wire._ladder_in_c is speedups.ladder
    assert orderbook._ladder_side is not orderbook._ladder_side_in_python
    assert orderbook._changed_side is not orderbook._changed_side_in_python


def test_the_pure_python_variable_at_import_keeps_them_in_python() -> None:
    code = ("from kalshi_ws import _wire, orderbook; "
            "print(_wire._ladder_in_c is None, "
            "orderbook._ladder_side is orderbook._ladder_side_in_python, "
            "orderbook._changed_side is orderbook._changed_side_in_python)")
    env = {**os.environ, _compiled.PURE_PYTHON_VARIABLE: "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "True", "True"]


# ---------------------------------------------------------------------- split_ladder (books)

_DECIMALS = st.sampled_from([Decimal(t) for t in (
    "0", "-0", "0.01", "0.0100", "0.5", "0.99", "1", "1.5", "-0.2", "5.00", "100",
    "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1E-30", "0.999999999")])


class _Sub(Decimal):
    pass


_ELEMENTS = _DECIMALS | st.integers(-1, 2) | st.floats(0, 1) | st.just(_Sub("0.5")) | \
    st.none() | st.text(max_size=2)
_LEVELS = st.one_of(
    st.tuples(_DECIMALS, _DECIMALS),
    st.tuples(_ELEMENTS, _ELEMENTS),
    st.lists(_DECIMALS, min_size=2, max_size=2),
    st.tuples(_DECIMALS),
    st.tuples(_DECIMALS, _DECIMALS, _DECIMALS),
    _ELEMENTS,
)


def _ascending(levels: list[tuple[Decimal, Decimal]]) -> tuple[Any, ...]:
    """A side as Kalshi sends it, from a few of its levels (sorted, deduplicated)."""
    seen: dict[Decimal, Decimal] = {}
    for price, size in levels:
        if price.is_finite() and 0 < price < 1 and size.is_finite() and size > 0:
            seen.setdefault(price, size)
    return tuple(sorted(seen.items()))


def _split_both(levels: Any) -> tuple[Any, Any]:
    return (_outcome(orderbook._ladder_side_in_python, levels),
            _outcome(lambda v: speedups.split_ladder(orderbook._ZERO, orderbook._ONE,
                                                     orderbook._INFINITY, v), levels))


@FUZZ
@given(st.lists(_LEVELS, max_size=6) | st.lists(_LEVELS, max_size=6).map(tuple),
       st.booleans())
def test_any_side_splits_alike(levels: Any, traps_off: bool) -> None:
    with localcontext() as context:
        if traps_off:  # a NaN compares False instead of raising
            context.traps[InvalidOperation] = False
        python, c = _split_both(levels)
    assert c == python


@FUZZ
@given(st.lists(st.tuples(_DECIMALS, _DECIMALS), max_size=8))
def test_kalshi_shaped_sides_split_alike_and_are_taken(levels: list[Any]) -> None:
    side = _ascending(levels)
    python, c = _split_both(side)
    assert c == python
    assert python[0] == "value" and python[1] != "None"


def test_odd_sides_split_alike() -> None:
    d = Decimal
    for levels in [(), ((d("0.5"), d("1")),), ((d("0.5"), d("1")), (d("0.5"), d("1"))),
                   ((d("0.6"), d("1")), (d("0.5"), d("1"))), ((d("0"), d("1")),),
                   ((d("1"), d("1")),), ((d("0.5"), d("0")),), ((d("0.5"), d("Inf")),),
                   ((d("0.5"), d("NaN")),), ((d("sNaN"), d("1")),), [(d("0.5"), d("1"))],
                   ((d("0.5"), 1),), ((_Sub("0.5"), d("1")),), ((d("0.5"), d("1"), d(1)),),
                   ([d("0.5"), d("1")],), "ab", None]:
        python, c = _split_both(levels)
        assert c == python, levels


def test_split_ladder_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="4 arguments"):
        speedups.split_ladder(orderbook._ZERO, orderbook._ONE, ())


def test_a_book_loads_a_snapshot_alike_either_way() -> None:
    msg = _wire.build_message("orderbook_snapshot", {
        "market_ticker": "M", "yes_dollars_fp": [["0.30", "10"], ["0.31", "2"]],
        "no_dollars_fp": [["0.40", "3"], ["0.40", "4"]]}, {})
    books = []
    for side in (orderbook._ladder_side, orderbook._ladder_side_in_python):
        original = orderbook._ladder_side
        try:
            orderbook._ladder_side = side
            book = OrderBook("M", clock=lambda: 0.0)
            book.apply_snapshot(msg)
        finally:
            orderbook._ladder_side = original
        books.append(repr(book.snapshot()))
    assert books[0] == books[1]
    assert "(Decimal('0.31'), Decimal('2'))" in books[0]
    assert "(Decimal('0.40'), Decimal('7'))" in books[0]  # repeated levels added up


def test_the_ladder_readers_do_not_leak(saved_cache: None) -> None:
    side = [["0.5000", "5.00"], ["0.6000", "6.00"], ["bad", "1"], "odd"]
    levels = tuple((Decimal(f"0.{i:02d}"), Decimal(i)) for i in range(1, 30))
    bad = ((Decimal("0.5"), Decimal("NaN")),)

    def work() -> None:
        for _ in range(2000):
            _outcome(speedups.ladder, side, _wire._decimals, _wire._level)
            speedups.split_ladder(orderbook._ZERO, orderbook._ONE, orderbook._INFINITY, levels)
            speedups.split_ladder(orderbook._ZERO, orderbook._ONE, orderbook._INFINITY, bad)

    _grows_less_than(64 * 1024, work)


# ---------------------------------------------------------------------- changed_side (books)

_PRICES = [Decimal(t) for t in ("0.01", "0.10", "0.1", "0.30", "0.5", "0.7000", "0.99")]
_PRICE = st.sampled_from(_PRICES + [Decimal(t) for t in ("0", "1", "-0.2", "1.5", "0.42")])
_DELTA = st.sampled_from([Decimal(t) for t in (
    "1", "5.00", "-5.00", "-1", "0", "-0", "0.01", "-1000", "1E+30", "1E-30", "7.77")])


@st.composite
def _sides(draw: st.DrawFn) -> tuple[Any, Any]:
    """A side as a book holds it: prices ascending, sizes positive, as a pair of
    tuples or a tuple and a dict; now and then out of step (hostile)."""
    prices = tuple(sorted(set(draw(st.lists(st.sampled_from(_PRICES), max_size=6)))))
    sizes = tuple(draw(st.sampled_from([Decimal(1), Decimal("2.50"), Decimal("1E-30")]))
                  for _ in prices)
    form = draw(st.sampled_from(["tuples", "dict", "short", "dict-missing"]))
    if form == "dict":
        return prices, dict(zip(prices, sizes, strict=True))
    if form == "short":  # fewer sizes than prices
        return prices, sizes[:-1]
    if form == "dict-missing":  # a price the dict does not know, or a price too few
        mapping = dict(zip(prices, sizes, strict=True))
        drop: bool = draw(st.booleans())
        if mapping and drop:
            mapping.pop(next(iter(mapping)))
        else:
            mapping[Decimal("0.55")] = Decimal(3)
        return prices, mapping
    return prices, sizes


def _changed_both(prices: Any, sizes: Any, price: Any, delta: Any, edits: int) -> list[Any]:
    """The outcome (and the dict after, when it was changed in place) in Python and C."""
    results = []
    for change in (orderbook._changed_side_in_python,
                   lambda *a: speedups.changed_side(
                       orderbook._ZERO, orderbook._ONE, orderbook._add, orderbook._bad_price,
                       orderbook._EDITS_BEFORE_DICT, *a)):
        mine = dict(sizes) if isinstance(sizes, dict) else sizes
        outcome = _outcome(change, prices, mine, price, delta, edits)
        results.append((outcome, repr(mine)))
    return results


@FUZZ
@given(_sides(), _PRICE, _DELTA, st.sampled_from([0, 1, 15, 16, 17, 100]))
def test_any_change_to_a_side_ends_alike(side: tuple[Any, Any], price: Decimal,
                                         delta: Decimal, edits: int) -> None:
    python, c = _changed_both(*side, price, delta, edits)
    assert c == python


def test_every_kind_of_change_ends_alike() -> None:
    d = Decimal
    prices = (d("0.10"), d("0.30"), d("0.50"))
    sizes = (d("1"), d("2"), d("3"))
    cases = [
        (d("0.30"), d("1")), (d("0.30"), d("-2")), (d("0.30"), d("-5")),  # change, empty
        (d("0.50"), d("-3")), (d("0.10"), d("-1")),  # the best level, the worst
        (d("0.20"), d("4")), (d("0.60"), d("4")), (d("0.05"), d("4")),  # new levels
        (d("0.20"), d("-4")), (d("0.20"), d("0")),  # nothing to take from
        (d("0"), d("1")), (d("1"), d("1")), (d("1.5"), d("1")),  # not a price
        (d("0.3"), d("1")),  # the same level spelled differently
        (d("0.30"), d("1E+50")), (d("0.30"), d("1E-50")),  # inexact: raises
    ]
    for price, delta in cases:
        for edits in (0, 16):
            for form in (sizes, dict(zip(prices, sizes, strict=True))):
                python, c = _changed_both(prices, form, price, delta, edits)
                assert c == python, (price, delta, edits, form)
    # An empty side: a new level, or nothing.
    for delta in (d("1"), d("-1")):
        assert _changed_both((), (), d("0.5"), delta, 0)[0] == \
            _changed_both((), (), d("0.5"), delta, 0)[1]
        assert _changed_both((), {}, d("0.5"), delta, 20)[0] == \
            _changed_both((), {}, d("0.5"), delta, 20)[1]


def test_changed_side_checks_its_arguments() -> None:
    args = (orderbook._ZERO, orderbook._ONE, orderbook._add, orderbook._bad_price, 16)
    with pytest.raises(TypeError, match="10 arguments"):
        speedups.changed_side(*args)
    with pytest.raises(TypeError, match="a tuple and a tuple or dict"):
        speedups.changed_side(*args, [], (), Decimal(1), Decimal(1), 0)
    with pytest.raises(TypeError):
        speedups.changed_side(*args, (), (), Decimal(1), Decimal(1), "0")


def test_a_book_changes_alike_either_way() -> None:
    d = Decimal
    msg = _wire.build_message("orderbook_snapshot", {
        "market_ticker": "M", "yes_dollars_fp": [["0.30", "10"], ["0.31", "2"]],
        "no_dollars_fp": [["0.40", "3"]]}, {})
    changes = [("yes", d("0.31"), d("-2")), ("yes", d("0.32"), d("5")),
               ("no", d("0.40"), d("1")), ("no", d("0.41"), d("-1"))] * 10 + \
        [("yes", d("0.30"), d("-10")), ("no", d("0.99"), d("1"))]
    books = []
    for change in (orderbook._changed_side, orderbook._changed_side_in_python):
        original = orderbook._changed_side
        try:
            orderbook._changed_side = change
            book = OrderBook("M", clock=lambda: 0.0)
            book.apply_snapshot(msg)
            tops = []
            for seq, (side, price, delta) in enumerate(changes):
                book.apply_change(side, price, delta, seq=seq)
                tops.append(repr(book.top()))
        finally:
            orderbook._changed_side = original
        books.append((tops, repr(book.snapshot())))
    assert books[0] == books[1]


# ---------------------------------------------------------------------- TopOfBook


def test_a_top_is_the_top_its_class_makes() -> None:
    d = Decimal
    book = OrderBook("M", clock=lambda: 0.0)
    tops = [book.top()]
    book.apply_change("yes", d("0.30"), d("2"), seq=4)
    tops.append(book.top())
    book.apply_change("no", d("0.60"), d("3.5"), seq=5)
    tops.append(book.top())
    tops.append(book.snapshot().top())
    book.apply_change("yes", d("0.30"), d("-2"))
    tops.append(book.top())
    expected = [
        orderbook.TopOfBook(market_ticker="M", best_yes_bid=None, best_yes_bid_size=None,
                            best_yes_ask=None, best_yes_ask_size=None, last_seq=None),
        orderbook.TopOfBook(market_ticker="M", best_yes_bid=d("0.30"),
                            best_yes_bid_size=d("2"), best_yes_ask=None,
                            best_yes_ask_size=None, last_seq=4),
        orderbook.TopOfBook(market_ticker="M", best_yes_bid=d("0.30"),
                            best_yes_bid_size=d("2"), best_yes_ask=d("0.40"),
                            best_yes_ask_size=d("3.5"), last_seq=5),
    ]
    expected += [expected[2], orderbook.TopOfBook(
        market_ticker="M", best_yes_bid=None, best_yes_bid_size=None,
        best_yes_ask=d("0.40"), best_yes_ask_size=d("3.5"), last_seq=5)]
    assert [repr(t) for t in tops] == [repr(t) for t in expected]
    assert tops == expected
    python = _wire.constructor(orderbook.TopOfBook, compiled=False)
    assert [repr(python(t.market_ticker, t.best_yes_bid, t.best_yes_bid_size,
                        t.best_yes_ask, t.best_yes_ask_size, t.last_seq))
            for t in expected] == [repr(t) for t in expected]


# ---------------------------------------------------------------------- hostile caches and values


_HOSTILE_CACHE = """
import sys
from decimal import Decimal
from kalshi_ws import _compiled, _wire


class Replacer:
    # A key whose hash is that of "s": looking "s" up compares with it, and the
    # comparison replaces the cached value of "p" (freeing the Decimal it held).
    def __init__(self, cache):
        self.cache = cache

    def __hash__(self):
        return hash("s")

    def __eq__(self, other):
        self.cache["p"] = "replaced"
        return True


def read(ladder):
    _wire._decimals.clear()
    _wire._decimals["p"] = Decimal("0.123456789")  # held by the cache alone
    _wire._decimals[Replacer(_wire._decimals)] = Decimal(7)
    return repr(ladder([["p", "s"]]))


print(read(_wire._ladder_in_python))
print(read(lambda v: _compiled.speedups.ladder(v, _wire._decimals, _wire._level)))
"""


def _python_and_c_in_a_child(code: str) -> list[str]:
    """Run ``code`` (it prints the Python reader's result, then C's) in a child process
    under PYTHONMALLOC=debug, where using a freed object crashes; its two lines."""
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    done = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_a_cached_price_is_held_while_the_size_is_looked_up() -> None:
    # Looking the size up may run a key's __eq__ (any key of the cache dict), which
    # may drop the price found first: C must hold it as the Python local does.
    python, c = _python_and_c_in_a_child(_HOSTILE_CACHE)
    assert python == "((Decimal('0.123456789'), Decimal('7')),)"
    assert c == python


def test_the_size_is_looked_up_even_when_the_price_is_not_cached(saved_cache: None) -> None:
    # The Python loop looks both strings up before it asks _level; a lookup can be
    # seen (a key's __eq__ runs, here raising), so C makes it too: the error comes
    # before _level has cached the price.
    class Refused(Exception):
        pass

    class Key:
        def __hash__(self) -> int:
            return hash("5.00")

        def __eq__(self, other: object) -> bool:
            if type(other) is str:
                raise Refused(other)
            return False

    outcomes = []
    for read in (_wire._ladder_in_python,
                 lambda v: speedups.ladder(v, _wire._decimals, _wire._level)):
        _wire._decimals.clear()
        _wire._decimals[Key()] = Decimal(1)  # type: ignore[index]
        outcome = _outcome(read, [["0.5000", "5.00"]])
        outcomes.append((outcome, [k for k in _wire._decimals if type(k) is str]))
    assert outcomes[1] == outcomes[0]
    assert outcomes[0] == (("Refused", "5.00"), [])


def test_a_price_not_equal_to_itself_compares_as_python_compares_it() -> None:
    # `prices[i] == price` in Python calls __eq__ even for the same object, where a
    # NaN is not equal to itself; PyObject_RichCompareBool would say it is.
    d, nan = Decimal, Decimal("NaN")
    cases = [
        ((d("0.1"), nan), {d("0.1"): d(1), nan: d(1)}, nan, d(-1), 0),  # dict, last
        ((nan, d("0.1")), {d("0.1"): d(1), nan: d(1)}, nan, d(-1), 0),  # dict, bisected
        ((nan,), (d(1),), nan, d(1), 0),  # tuples: the level found
        ((nan,), (d(1),), nan, d(-1), 0),
    ]
    for traps in (True, False):
        with localcontext() as context:
            context.traps[InvalidOperation] = traps
            for prices, sizes, price, delta, edits in cases:
                python, c = _changed_both(prices, sizes, price, delta, edits)
                assert c == python, (prices, sizes, price, delta, traps)


def test_any_count_of_edits_is_compared_as_python_compares_it() -> None:
    # `edits >= _EDITS_BEFORE_DICT`: any int (past 64 bits too), or whatever compares.
    d = Decimal
    for edits in (2**63, 2**70, -(2**70), 20.0, 3.5, True, None, "0"):
        for sizes in ((d(1),), {d("0.1"): d(1)}):
            python, c = _changed_both((d("0.1"),), sizes, d("0.1"), d(1), edits)  # type: ignore[arg-type]
            assert c == python, edits


def test_a_none_value_reads_as_absent_as_get_reads_it(saved_cache: None) -> None:
    # The Python code looks values up with .get() and takes None for "not there".
    d = Decimal
    python, c = _changed_both((d("0.1"),), {d("0.1"): None}, d("0.1"), d(1), 0)
    assert c == python
    python, c = _changed_both((d("0.1"),), {d("0.1"): None}, d("0.1"), d(-1), 0)
    assert c == python
    cache: dict[str, Any] = {"0.5000": None, "5.00": d("5.00")}
    python, c = _wire_ladder_both([["0.5000", "5.00"], ["5.00", "0.5000"]], cache)
    assert c == python


_HOSTILE_PAIR = """
from decimal import Decimal
from kalshi_ws import _compiled, _wire

SIZE = "".join(["7", ".", "00"])  # made at run time: not a shared constant


class Clearer:
    # A key whose hash is that of the size string: looking the size up compares
    # with it, and the comparison empties the pair (freeing the string looked up).
    def __init__(self, pair):
        self.pair = pair

    def __hash__(self):
        return hash(SIZE)

    def __eq__(self, other):
        if type(other) is str:  # not when the next key is put in
            self.pair.clear()
        return False


class Watcher:
    # The next key of that hash: the lookup compares the string with it too.
    def __hash__(self):
        return hash(SIZE)

    def __eq__(self, other):
        return False


def read(ladder):
    pair = ["0.5000", "".join(["7", ".", "00"])]  # the size: held by the pair alone
    _wire._decimals.clear()
    _wire._decimals["0.5000"] = Decimal("0.5000")
    _wire._decimals[Clearer(pair)] = Decimal(1)
    _wire._decimals[Watcher()] = Decimal(2)
    try:
        return repr(ladder([pair]))
    except ValueError as exc:
        return repr(exc)


print(read(_wire._ladder_in_python))
print(read(lambda v: _compiled.speedups.ladder(v, _wire._decimals, _wire._level)))
"""


def test_a_pairs_strings_are_held_while_they_are_looked_up() -> None:
    # A lookup may run a key's __eq__, which may empty the pair: C must hold its
    # strings as the Python loop's unpacking does.
    python, c = _python_and_c_in_a_child(_HOSTILE_PAIR)
    assert python == "ValueError('expected a [price, size] pair, got []')"
    assert c == python


def test_changed_side_does_not_leak() -> None:
    # Every way out: each kind of change, and each error (a bad price, Inexact, a NaN
    # compared, a short tuple, bad arguments).
    d = Decimal
    prices, sizes = (d("0.10"), d("0.30"), d("0.50")), (d(1), d(2), d(3))
    args = (orderbook._ZERO, orderbook._ONE, orderbook._add, orderbook._bad_price,
            orderbook._EDITS_BEFORE_DICT)
    changes = [(p, dl) for p in (d("0.30"), d("0.50"), d("0.20"), d("0.90"), d("1.5"),
                                 d("NaN"))
               for dl in (d(1), d(-2), d(-9), d("1E+50"))]

    def work() -> None:
        for _ in range(400):
            for price, delta in changes:
                for edits in (0, 16):
                    _outcome(speedups.changed_side, *args, prices, sizes, price, delta, edits)
                    _outcome(speedups.changed_side, *args, prices,
                             dict(zip(prices, sizes, strict=True)), price, delta, edits)
            _outcome(speedups.changed_side, *args, prices, sizes[:1], d("0.50"), d(1), 0)
            _outcome(speedups.changed_side, *args, [], (), d(1), d(1), 0)
            _outcome(speedups.changed_side, *args, prices, sizes, d(1), d(1), None)

    _grows_less_than(64 * 1024, work)
