"""The text the kalshi-ws command prints, as pure functions (issue 14, point 7)."""

from __future__ import annotations

import re
from decimal import Decimal

from kalshi_ws import ConnectionLost, Reconnected, SequenceGap, StreamUpdate
from kalshi_ws._wire import build_message
from kalshi_ws.cli import _describe_system, _size, _TextLines
from kalshi_ws.models import Closed, Lagged


def ticker(market: str) -> StreamUpdate:
    payload = {"market_ticker": market, "price_dollars": "0.5500",
               "yes_bid_dollars": "0.5400", "yes_ask_dollars": "0.5600",
               "yes_bid_size_fp": "1435", "yes_ask_size_fp": "665.04", "volume_fp": "12.5"}
    msg = build_message("ticker", payload, {"type": "ticker", "sid": 1, "msg": payload})
    return StreamUpdate(channel="ticker", type="ticker", sid=1, seq=None, msg=msg)


def test_a_long_ticker_widens_the_market_column_instead_of_overflowing_it() -> None:
    lines = _TextLines()
    long_ticker = "KXMVENFLMULTIGAMEEXTENDED-S2026ABCDEF12345-0123456789A"
    texts = [lines.line(ticker(m)) for m in ("SIM-ALPHA", long_ticker, "SIM-BRAVO")]
    starts = [text.index("last ") for text in texts[1:]]
    assert starts[0] == starts[1]  # after a long ticker, the next line stays aligned
    assert f"{long_ticker}  last 0.5500" in texts[1]
    assert re.search(r"SIM-BRAVO +last", texts[2])
    given = _TextLines([long_ticker]).line(ticker("SIM-ALPHA"))
    assert given.index("last ") == texts[1].index("last ")  # --market sets the width at once


def test_sizes_print_at_one_precision() -> None:
    assert [_size(Decimal(v)) for v in ("1435", "665.04", "12.5", "0", "-3")] == \
        ["1435.00", "665.04", "12.50", "0.00", "-3.00"]
    assert _size(Decimal("0.001")) == "0.001"  # finer than Kalshi's cents: shown whole
    text = _TextLines().line(ticker("SIM-ALPHA"))
    assert "bid 0.5400 x 1435.00  ask 0.5600 x 665.04  vol 12.50" in text


def test_system_lines_are_sentences_without_raw_floats_or_dicts() -> None:
    reconnected = Reconnected(attempt=2, downtime=1.4478840879999666, sid_map={1: 3, 2: 4})
    assert _describe_system(reconnected) == (
        "Reconnected reconnected after 1.45 s (attempt 2); sids (old->new) 1->3, 2->4")
    lost = ConnectionLost("the connection was reset", code=None, will_reconnect=True)
    assert _describe_system(lost) == "ConnectionLost the connection was reset; reconnecting"
    assert _describe_system(Closed(code=4000, reason="end of stream")) == \
        "Closed code 4000: end of stream"
    assert _describe_system(SequenceGap(sid=1, channel="trade", expected=5, received=7)) == \
        "SequenceGap on sid 1 (trade): expected seq 5, received 7"
    assert _describe_system(Lagged(dropped=1200, channel="ticker")) == \
        "Lagged 1,200 ticker message(s) dropped: updates fell behind"
    for item in (reconnected, lost, Closed()):
        assert "{" not in _describe_system(item) and "=" not in _describe_system(item)
