"""The series behind `kalshi-ws plot`, read from recordings (no matplotlib needed)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from kalshi_ws.plot import session_series

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "sample_session.jsonl"


def test_the_sample_session_gives_prices_trades_and_top_sizes_per_market() -> None:
    start, series = session_series(SAMPLE)
    assert start > 1_700_000_000
    assert list(series) == ["SIM-ALPHA", "SIM-BRAVO", "SIM-CHARLIE"]
    assert sum(len(s.trades) for s in series.values()) == 60
    alpha = series["SIM-ALPHA"]
    assert alpha.trades[0] == (alpha.trades[0][0], Decimal("0.2200"), Decimal("491.00"))
    assert alpha.depth_source == "ticker" and alpha.depth[0][1:] == (Decimal("466.00"),
                                                                     Decimal("204.29"))
    assert all(t >= 0 for t, _, _ in alpha.quotes)


def test_order_book_frames_give_the_depth_of_the_whole_book(tmp_path: Path) -> None:
    frames = [
        {"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": {
            "market_ticker": "M", "yes_dollars_fp": [["0.40", "10.00"], ["0.41", "5.00"]],
            "no_dollars_fp": [["0.55", "7.00"]]}},
        {"type": "orderbook_delta", "sid": 1, "seq": 2, "msg": {
            "market_ticker": "M", "price_dollars": "0.41", "delta_fp": "-5.00",
            "side": "yes"}},
    ]
    path = tmp_path / "book.jsonl"
    path.write_text("".join(json.dumps({"t": 1795283134.0 + n, "frame": json.dumps(f)}) + "\n"
                            for n, f in enumerate(frames)))
    _, series = session_series(path)
    book = series["M"]
    assert book.depth_source == "book"
    assert book.depth == [(0.0, Decimal("15.00"), Decimal("7.00")),
                          (1.0, Decimal("10.00"), Decimal("7.00"))]
    assert book.quotes[-1] == (1.0, Decimal("0.40"), Decimal("0.45"))
