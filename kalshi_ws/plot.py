"""``kalshi-ws plot``: a picture of a recorded session, one row per market.

Each row has two panels over the session's time: prices (last price, best YES bid and
ask, and trades as dots sized by their count) and depth (contracts resting on the bid
and on the ask side of the book). Depth comes from the order books when the recording
has ``orderbook_delta`` frames, otherwise from the sizes at the top of the book that
``ticker`` messages carry (the panel says which).

:func:`session_series` reads a recording into plain series and needs nothing else;
:func:`plot_recording` draws them and needs matplotlib (``pip install
'kalshi-ws[plot]'``), imported only when it is called.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

from ._wire import build_message, decode
from .models import OrderbookDelta, OrderbookSnapshot
from .orderbook import OrderBook
from .recording import read_recording

__all__ = ["MarketSeries", "plot_recording", "session_series"]


@attrs.define
class MarketSeries:
    """One market's series from a recording; times are seconds since the session began."""

    market: str
    #: (time, last traded price) from ticker and trade messages.
    last: list[tuple[float, Decimal]] = attrs.Factory(list)
    #: (time, best YES bid or None, best YES ask or None).
    quotes: list[tuple[float, Decimal | None, Decimal | None]] = attrs.Factory(list)
    #: (time, YES price, count) of each trade.
    trades: list[tuple[float, Decimal, Decimal]] = attrs.Factory(list)
    #: (time, contracts on the bid side, contracts on the ask side).
    depth: list[tuple[float, Decimal, Decimal]] = attrs.Factory(list)
    #: "book" (whole order book) or "ticker" (top of book only), or "" when none.
    depth_source: str = ""


def session_series(path: str | os.PathLike[str]) -> tuple[float, dict[str, MarketSeries]]:
    """Read a recording into per-market series.

    Returns:
        The session's start (unix seconds) and the series by market ticker.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line is not a recorded frame (its line number is given).
    """
    series: dict[str, MarketSeries] = {}
    books: dict[str, OrderBook] = {}
    start: float | None = None

    def of(market: str) -> MarketSeries:
        found = series.get(market)
        if found is None:
            found = series[market] = MarketSeries(market)
        return found

    for recorded in read_recording(path):
        if start is None:
            start = recorded.t
        t = recorded.t - start
        try:
            frame = decode(recorded.frame)
        except ValueError:
            continue
        if not isinstance(frame, dict) or not isinstance(frame.get("msg"), dict):
            continue
        wire_type = frame.get("type")
        msg = build_message(str(wire_type), frame["msg"], frame)
        market = getattr(msg, "market_ticker", None)
        if not isinstance(market, str):
            continue
        if wire_type == "ticker":
            row = of(market)
            if msg.price_dollars is not None:
                row.last.append((t, msg.price_dollars))
            row.quotes.append((t, msg.yes_bid_dollars, msg.yes_ask_dollars))
            if row.depth_source != "book" and (msg.yes_bid_size_fp is not None
                                               or msg.yes_ask_size_fp is not None):
                row.depth_source = "ticker"
                row.depth.append((t, msg.yes_bid_size_fp or Decimal(0),
                                  msg.yes_ask_size_fp or Decimal(0)))
        elif wire_type == "trade":
            row = of(market)
            if msg.yes_price_dollars is not None and msg.count_fp is not None:
                row.trades.append((t, msg.yes_price_dollars, msg.count_fp))
                row.last.append((t, msg.yes_price_dollars))
        elif isinstance(msg, (OrderbookSnapshot, OrderbookDelta)):
            book = books.get(market)
            if book is None:
                if not isinstance(msg, OrderbookSnapshot):
                    continue  # a delta before any snapshot: nothing to apply it to
                book = books[market] = OrderBook(market)
            try:
                if isinstance(msg, OrderbookSnapshot):
                    book.apply_snapshot(msg)
                else:
                    book.apply_delta(msg)
            except (TypeError, ValueError, ArithmeticError):
                del books[market]  # inconsistent: wait for the next snapshot
                continue
            row = of(market)
            if row.depth_source == "ticker":
                row.depth.clear()  # the whole book beats the ticker's top sizes
            row.depth_source = "book"
            row.depth.append((t, _total(book.yes_bids), _total(book.yes_asks)))
            row.quotes.append((t, book.best_yes_bid, book.best_yes_ask))
    return (start or 0.0), dict(sorted(series.items()))


def _total(levels: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((size for _, size in levels), Decimal(0))


def plot_recording(path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                   markets: Iterable[str] | None = None) -> list[str]:
    """Draw a recording to a PNG file; returns the markets drawn.

    Args:
        path: The recording.
        output: The PNG to write (overwritten).
        markets: Only these markets (default: every market in the recording).

    Raises:
        ImportError: matplotlib is not installed.
        OSError: a file cannot be read or written.
        ValueError: the recording is unreadable, or has none of the markets.
    """
    import matplotlib  # type: ignore[import-not-found,unused-ignore]  # the plot extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    start, series = session_series(path)
    if markets is not None:
        wanted = list(markets)
        missing = [m for m in wanted if m not in series]
        if missing:
            raise ValueError(f"{os.fspath(path)}: no updates for {', '.join(missing)}")
        series = {m: series[m] for m in wanted}
    if not series:
        raise ValueError(f"{os.fspath(path)}: the recording holds no market updates to draw")

    rows = len(series)
    figure, axes = plt.subplots(rows, 2, figsize=(13, 3.2 * rows + 0.8), squeeze=False,
                                gridspec_kw={"width_ratios": [3, 2]})
    began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start))
    figure.suptitle(f"{os.path.basename(os.fspath(path))}: session from {began}",
                    fontsize=12)
    biggest = max((float(c) for s in series.values() for _, _, c in s.trades), default=1.0)
    for row, item in enumerate(series.values()):
        _draw_prices(axes[row][0], item, biggest)
        _draw_depth(axes[row][1], item)
    for cell in axes[-1]:
        cell.set_xlabel(f"seconds since {began}")
    handles = [h for cell in axes[0] for h in cell.get_legend_handles_labels()[0]]
    labels = [t for cell in axes[0] for t in cell.get_legend_handles_labels()[1]]
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9,
                  bbox_to_anchor=(0.5, 1 - 0.45 / figure.get_figheight()), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.75 / figure.get_figheight()))
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return list(series)


def _draw_prices(ax: Any, item: MarketSeries, biggest: float) -> None:
    ax.set_title(f"{item.market}: prices", loc="left", fontsize=10)
    if item.quotes:
        times = [t for t, _, _ in item.quotes]
        bids = [_f(b) for _, b, _ in item.quotes]
        asks = [_f(a) for _, _, a in item.quotes]
        ax.fill_between(times, bids, asks, step="post", color="0.85", label="bid-ask spread")
        ax.step(times, bids, where="post", color="tab:green", linewidth=1.2,
                label="best YES bid")
        ax.step(times, asks, where="post", color="tab:red", linewidth=1.2,
                label="best YES ask")
    if item.last:
        ax.step([t for t, _ in item.last], [float(p) for _, p in item.last], where="post",
                color="black", linewidth=0.9, linestyle="--", label="last price")
    if item.trades:
        ax.scatter([t for t, _, _ in item.trades], [float(p) for _, p, _ in item.trades],
                   s=[12 + 220 * float(c) / biggest for _, _, c in item.trades],
                   color="tab:blue", alpha=0.45, edgecolors="none", zorder=3,
                   label="trades (area ~ count)")
    ax.set_ylabel("YES price ($)")
    ax.margins(y=0.15)
    ax.grid(alpha=0.3)


def _draw_depth(ax: Any, item: MarketSeries) -> None:
    what = {"book": "book depth (contracts resting)",
            "ticker": "top-of-book size (from ticker)"}.get(item.depth_source, "no depth data")
    ax.set_title(f"{item.market}: {what}", loc="left", fontsize=10)
    if item.depth:
        times = [t for t, _, _ in item.depth]
        ax.step(times, [float(b) for _, b, _ in item.depth], where="post", color="tab:green",
                label="contracts bid")
        ax.step(times, [float(a) for _, _, a in item.depth], where="post", color="tab:red",
                label="contracts offered")
    ax.set_ylabel("contracts")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _f(value: Decimal | None) -> float:
    return float("nan") if value is None else float(value)
