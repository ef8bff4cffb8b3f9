"""Acceptance audit (session 20): README promises that a tester reading only the README
would check, run against the real client, the fake server and the command."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import HealthConfig, KalshiConfig, KalshiStreamClient, UnknownMessage
from tests.conftest import Collector, SentCommands
from tests.hostile_server import HostileServer
from tests.integration.test_cli import kalshi_ws
from tests.timing import WAIT

QUIET = HealthConfig(ping_interval=None, idle_timeout=None)

pytestmark = pytest.mark.timeout(60)


def test_replay_without_a_file_names_only_the_file_as_missing() -> None:
    """README: ``replay FILE [CHANNEL...]`` (channels are optional) and "bad arguments ...
    give one line naming the flag to fix"; the error named CHANNEL as required too."""
    result = kalshi_ws("replay")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "required: FILE" in lines[0] and "CHANNEL" not in lines[0]


def test_stream_prints_a_count_the_decoder_reads_however_large(tmp_path: Path) -> None:
    """README: ``Decimal`` fields take strings such as ``"1E+2"``, and ``stream`` prints a
    line per update with contract counts at two decimals. A count of 10**26 or more made
    the printer's ``quantize`` overflow the default decimal context: a traceback, exit 1."""
    frames = [{"id": 1, "type": "subscribed", "msg": {"channel": "trade", "sid": 1}}]
    for seq, count in enumerate(["5", "1E+30", "0.125", "7"], 1):
        frames.append({"type": "trade", "sid": 1, "seq": seq, "msg": {
            "market_ticker": "SIM-ALPHA", "trade_id": f"t{seq}", "count_fp": count,
            "yes_price_dollars": "0.5000", "taker_side": "yes", "ts": 1}})
    recording = tmp_path / "big.jsonl"
    recording.write_text("".join(json.dumps({"t": 1.0 + n, "frame": json.dumps(frame)}) + "\n"
                                 for n, frame in enumerate(frames)), encoding="utf-8")
    result = kalshi_ws("replay", str(recording))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    trades = [line for line in result.stdout.splitlines() if " trade " in line]
    assert [line.split()[3] for line in trades] == [
        "5.00", "1000000000000000000000000000000.00", "0.125", "7.00"]


def test_odd_but_readable_book_levels_keep_the_book_synced(
        private_key: rsa.RSAPrivateKey, sent_commands: SentCommands) -> None:
    """README, Order books, the third rule for odd but readable books: a snapshot level of
    size zero or below is left out, a negative delta at a price without a level changes
    nothing, and neither unsyncs the book (no fresh snapshot is asked for)."""
    with HostileServer() as server:
        config = KalshiConfig("k", private_key, ws_url=server.url)
        with KalshiStreamClient.connect(config, health=QUIET) as client:
            stream = Collector()
            client.add_callback(stream)
            books = client.orderbooks(["A", "B"])
            assert books.wait_synced(timeout=WAIT)
            conn = server.connection(0)
            (sid,) = conn.subs
            conn.send(conn.data(sid, "orderbook_delta", {
                "market_ticker": "A", "side": "yes", "price_dollars": "0.5500",
                "delta_fp": "-3.00"}))
            conn.send(conn.data(sid, "orderbook_snapshot", {
                "market_ticker": "B", "yes_dollars_fp": [
                    ["0.3000", "0.00"], ["0.3100", "-2.00"], ["0.3200", "1.00"]]}))
            conn.send({"type": "audit_marker", "msg": {}})  # delivered after both
            stream.wait_for(lambda items: [u for u in stream.updates("audit_marker")
                                           if isinstance(u.msg, UnknownMessage)])
            assert books.get("A").yes_bids == ((Decimal("0.4000"), Decimal("10.00")),)
            assert books.get("B").yes_bids == ((Decimal("0.3200"), Decimal("1.00")),)
            assert books.is_synced("A") and books.is_synced("B")
            assert not [c for c in sent_commands.commands
                        if c["cmd"] == "update_subscription"]


def _strict_json(line: str) -> Any:
    def refuse(constant: str) -> NoReturn:
        raise ValueError(f"not JSON: {constant}")
    return json.loads(line, parse_constant=refuse)


def test_json_lines_stay_json_whatever_number_a_frame_holds(tmp_path: Path) -> None:
    """README: ``--json`` prints JSON lines (``| jq .msg``), and fields Kalshi adds are
    kept (in ``extra``). A frame's ``NaN`` or ``Infinity`` (Python's JSON reader takes
    them) came out as such, which is not JSON: ``jq`` stops at that line."""
    frames = [{"id": 1, "type": "subscribed", "msg": {"channel": "trade", "sid": 1}}]
    recording = tmp_path / "floats.jsonl"
    trade = ('{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"SIM-ALPHA",'
             '"trade_id":"t1","count_fp":"1.00","yes_price_dollars":"0.5000","ts":1,'
             '"score":0.125,"huge":Infinity,"nothing":NaN}}')
    recording.write_text(json.dumps({"t": 1.0, "frame": json.dumps(frames[0])}) + "\n"
                         + json.dumps({"t": 2.0, "frame": trade}) + "\n", encoding="utf-8")
    result = kalshi_ws("replay", str(recording), "--json")
    assert result.returncode == 0, result.stderr
    records = [_strict_json(line) for line in result.stdout.splitlines()]
    (update,) = [r for r in records if r.get("type") == "trade"]
    assert update["msg"]["extra"] == {"score": "0.125", "huge": "inf", "nothing": "nan"}
    assert records[-1] == {"system": "Closed", "code": 4000, "reason": "end of stream"}
