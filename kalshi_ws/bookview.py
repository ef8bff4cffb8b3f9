"""The text view behind ``kalshi-ws book``: top levels of live order books.

On a terminal it redraws in place (at most five times a second, only after a change);
when piped it prints a plain snapshot every ``interval`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any

from .bookset import OrderBookSet
from .orderbook import BookSnapshot, TopOfBook

__all__ = ["BookView", "render_book"]

_HOME_CLEAR = "\x1b[H\x1b[2J"
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_REDRAW_EVERY = 0.2


def _level(level: tuple[Decimal, Decimal] | None) -> str:
    if level is None:
        return " " * 19
    price, size = level
    return f"{price:>7} x {size:>9}"


def render_book(market: str, book: BookSnapshot, synced: bool, depth: int) -> list[str]:
    """Text lines showing one book: a status line, then YES bids beside YES asks."""
    state = "synced" if synced else "UNSYNCED (waiting for a snapshot)"
    spread = "-" if book.spread is None else str(book.spread)
    mid = "-" if book.mid is None else str(book.mid)
    seq = "-" if book.last_seq is None else str(book.last_seq)
    lines = [f"{market}  {state}  seq {seq}  spread {spread}  mid {mid}",
             f"  {'YES bids (price x size)':<21}  {'YES asks (price x size)':<21}"]
    levels = book.depth(depth)
    for index in range(depth):
        bid = levels.yes_bids[index] if index < len(levels.yes_bids) else None
        ask = levels.yes_asks[index] if index < len(levels.yes_asks) else None
        if bid is None and ask is None:
            if index == 0:
                lines.append("  (empty book)")
            break
        lines.append(f"  {_level(bid)}    {_level(ask)}")
    return lines


class BookView:
    """Shows order books on a stream, live (a terminal) or as snapshots (a pipe).

    Args:
        books: The books to show.
        markets: Their order on screen.
        depth: Levels per side.
        live: Redraw in place (True on a terminal).
        out: Where to write.
    """

    def __init__(self, books: OrderBookSet, markets: Sequence[str], *, depth: int,
                 live: bool, out: IO[str]) -> None:
        self.books = books
        self.markets = list(markets)
        self.depth = depth
        self.live = live
        self.out = out
        self._changed = threading.Event()
        #: Updates (snapshots and deltas) applied to the books so far.
        self.applied = 0
        books.on_change(self._note_change)

    def _note_change(self, market: str, _top: TopOfBook | None) -> None:
        # Called on the dispatcher thread after each snapshot or delta applied, and
        # when a book becomes unsynced (not an update: not counted).
        if self.books.is_synced(market):
            self.applied += 1
        self._changed.set()

    def render(self) -> str:
        """The whole view as text."""
        stamp = time.strftime("%H:%M:%S")
        lines = [f"kalshi-ws book  {stamp}  (Ctrl-C to quit)" if self.live
                 else f"--- {stamp}"]
        for market in self.markets:
            lines.extend(render_book(market, self.books.get(market),
                                     self.books.is_synced(market), self.depth))
            lines.append("")
        return "\n".join(lines)

    def run(self, deadline: float | None, limit: int | None, interval: float,
            session: Any) -> int:
        """Show the books until the deadline, ``limit`` snapshots, or the stream's end."""
        self.books.wait_synced(timeout=5)
        if self.live:
            self.out.write(_HIDE_CURSOR)
        try:
            shown = 0
            next_plain = time.monotonic()
            while deadline is None or time.monotonic() < deadline:
                if session.client is not None and session.client.closed:
                    break
                if self.live:
                    if self._changed.wait(_REDRAW_EVERY) or shown == 0:
                        self._changed.clear()
                        self.out.write(_HOME_CLEAR + self.render() + "\n")
                        self.out.flush()
                        shown += 1
                    continue
                wait = next_plain - time.monotonic()
                if wait > 0:
                    threading.Event().wait(min(wait, 0.2))
                    continue
                self.out.write(self.render() + "\n")
                self.out.flush()
                shown += 1
                next_plain += interval
                if limit is not None and shown >= limit:
                    break
        finally:
            if self.live:
                self.out.write(_SHOW_CURSOR)
                self.out.flush()
        return 0
