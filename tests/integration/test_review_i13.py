"""Review of issue 13 over real sockets: the reader's learned frame shapes deliver what
the general path delivers, whatever spelling a hostile server uses for a frame.

The hostile server (tests/hostile_server.py) writes each frame's exact text; the
reference is :class:`KalshiProtocol` fed the same texts through ``decode`` and
``receive`` only. Every spelling is followed by the plain compact frame, which by then
takes the fast path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kalshi_ws import KalshiStreamClient, StreamUpdate, _compiled
from kalshi_ws._wire import decode
from kalshi_ws.protocol import KalshiProtocol
from tests.hostile_server import HostileServer, frame
from tests.integration.test_hostile import (  # noqa: F401 - fixtures
    _ticker_client,
    reader_never_raises,
    ticker_msg,
)
from tests.timing import WAIT
from tests.unit.test_shapes import exact

pytestmark = pytest.mark.timeout(40)


@pytest.fixture(autouse=True, params=["C", "python"])
def reader_code(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with the optional C code (where built) and in Python alone."""
    if request.param == "C" and _compiled.speedups is None:
        pytest.skip("kalshi_ws._speedups is not built")
    monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, "0" if request.param == "C" else "1")
    return str(request.param)


def _spellings(sid: int) -> list[str]:
    plain = json.dumps({"type": "ticker", "sid": sid, "msg": ticker_msg()},
                       separators=(",", ":"))
    edits = [
        ('"price_dollars":"0.4800"', '"price_dollars": "0.4800"'),  # whitespace
        ('"market_id":"id-M"', '"market_id":"id-\\u004d"'),  # an escape
        ('"market_id":"id-M"', '"market_id":"id-\\"M"'),  # a quote inside
        ('"price_dollars":"0.4800"', '"price_dollars":"0.1","price_dollars":"0.2"'),  # twice
        ('"ts_ms":1669149841000', '"ts_ms":1234567890123456789012'),  # a huge int
        ('"ts_ms":1669149841000', '"ts_ms":-0'),
        ('"ts_ms":1669149841000', '"ts_ms":"2026-11-30T06:00:00.5Z"'),  # ISO 8601
        ('"price_dollars":"0.4800"', '"price_dollars":""'),  # empty: absent
        ('"price_dollars":"0.4800"', '"price_dollars":null'),
        ('"price_dollars":"0.4800"', '"price_dollars":48'),  # an int price
        ('"price_dollars":"0.4800"', '"price_dollars":0.48'),  # a JSON fraction
        ('"price_dollars":"0.4800"', '"price_dollars":"abc"'),  # degraded
        ('"volume_fp":"10.00"', '"volume_fp":NaN'),
        ('"volume_fp":"10.00"', '"volume_fp":"10.0"'),  # another exponent
        ('"volume_fp":"10.00"', '"volume_fp":"1E+1"'),
        ('"volume_fp":"10.00"', '"volume_fp":"10.00","Clock":7'),  # an unknown key
        ('"volume_fp":"10.00"', '"volume_fp":"10.00","Clock":null'),
        ('"market_id":"id-M"', '"market_id":"id-\u00e9\u2028"'),  # raw unicode
        ('"market_ticker":"M"', '"market_ticker":null'),  # malformed
        ('"type":"ticker"', '"type":"tick\\"er"'),  # a quote in the type
        ('"type":"ticker"', '"type":"ticker","type":"trade"'),
        (f'"sid":{sid}', f'"sid":{sid},"seq":1'),  # a seq on an unsequenced sid
    ]
    texts = [plain]
    for old, new in edits:
        assert old in plain
        texts += [plain.replace(old, new, 1), plain]
    return texts


def test_every_spelling_of_a_frame_is_delivered_as_the_general_path_reads_it(
        hostile: HostileServer,
        open_client: Callable[..., KalshiStreamClient]) -> None:
    client, seen, sid, conn = _ticker_client(hostile, open_client)
    texts = _spellings(sid)
    reference = KalshiProtocol()
    command_id, _ = reference.subscribe(["ticker"], ["M"], {})
    reference.receive({"id": command_id, "type": "subscribed",
                       "msg": {"channel": "ticker", "sid": sid}})
    reference.take_deliveries()
    for text in texts:
        reference.receive(decode(text))
    expected = [exact(u) for u in reference.take_deliveries() if isinstance(u, StreamUpdate)]
    conn.send_raw(b"".join(frame(text) for text in texts))

    def updates(items: list[Any]) -> list[Any]:
        return [i for i in items if isinstance(i, StreamUpdate)]

    seen.wait_for(lambda items: len(updates(items)) >= len(expected), timeout=WAIT)
    assert [exact(u) for u in updates(seen.items)] == expected
    assert client.state == "OPEN"
