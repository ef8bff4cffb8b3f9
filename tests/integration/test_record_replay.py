"""Record a session, then replay it through FakeKalshiServer to another client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Backoff,
    Closed,
    ConnectionLost,
    KalshiConfig,
    KalshiStreamClient,
    Reconnected,
    ReconnectPolicy,
    StreamUpdate,
)
from kalshi_ws.reconnect import END_OF_STREAM_CODE, END_OF_STREAM_REASON
from kalshi_ws.recording import Recorder, read_recording
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector
from tests.timing import WAIT

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "sample_session.jsonl"


def record_session(server: FakeKalshiServer, config: KalshiConfig, path: Path) -> list:
    with KalshiStreamClient.connect(config) as client:
        collector = Collector()
        client.add_callback(collector)
        recorder = client.start_recording(path)
        client.subscribe(["orderbook_delta", "trade", "ticker"], ["SIM-ALPHA", "SIM-BRAVO"])
        server.step_market(count=40, trades=0.5)
        assert len(server.subscriptions()[0]) == 3
        server.publish("ticker", "ticker", {"market_ticker": "SIM-ALPHA",
                                            "price_dollars": "0.4242"})
        collector.wait_for(lambda items: any(
            isinstance(i, StreamUpdate) and i.type == "ticker"
            and str(i.msg.price_dollars) == "0.4242" for i in items))
        count = client.stop_recording()
        assert count == recorder.count > 10
    return [u for u in collector.items if isinstance(u, StreamUpdate)]


def test_a_recorded_session_replays_identically(server: FakeKalshiServer, config: KalshiConfig,
                                                private_key: rsa.RSAPrivateKey,
                                                tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    live = record_session(server, config, path)
    recorded = list(read_recording(path))
    assert [json.loads(r.frame)["type"] for r in recorded].count("subscribed") == 3
    assert all(r.t > 1_700_000_000 for r in recorded)

    with FakeKalshiServer(public_key=private_key.public_key(), replay=path) as replayer:
        replay_config = KalshiConfig("k", private_key, ws_url=replayer.url)
        with KalshiStreamClient.connect(replay_config) as client:
            client.subscribe(["orderbook_delta", "trade", "ticker"], ["SIM-ALPHA", "SIM-BRAVO"])
            items = list(client.iter_updates(timeout=WAIT))
    assert items[-1] == Closed(code=END_OF_STREAM_CODE, reason=END_OF_STREAM_REASON)
    replayed = [u for u in items if isinstance(u, StreamUpdate)]
    assert [(u.type, u.msg) for u in replayed] == [(u.type, u.msg) for u in live]


def test_replay_at_recorded_pace_keeps_the_spacing(private_key: rsa.RSAPrivateKey,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    frames = [json.dumps({"type": "trade", "sid": 9, "seq": n + 1,
                          "msg": {"market_ticker": "M", "trade_id": str(n)}}) for n in range(3)]
    with Recorder(path) as recorder:
        for n, frame in enumerate(frames):
            recorder.write(1000.0 + 0.2 * n, [frame.encode()])
    with FakeKalshiServer(public_key=private_key.public_key(), replay=path,
                          replay_speed=1.0) as replayer:
        config = KalshiConfig("k", private_key, ws_url=replayer.url)
        with KalshiStreamClient.connect(config) as client:
            started = time.monotonic()
            client.subscribe(["trade"])
            items = list(client.iter_updates(timeout=WAIT))
            elapsed = time.monotonic() - started
    assert [u.msg.trade_id for u in items if isinstance(u, StreamUpdate)] == ["0", "1", "2"]
    assert [u.seq for u in items if isinstance(u, StreamUpdate)] == [1, 2, 3]
    assert elapsed >= 0.4  # the recorded spacing, never faster


def test_a_broken_recording_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 1, "frame": "{}"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        list(read_recording(path))


FAST = ReconnectPolicy(backoff=Backoff(base=0.01, cap=0.05))


def test_the_end_of_a_replay_ends_a_reconnecting_client(private_key: rsa.RSAPrivateKey) -> None:
    """The replay's closing frame is final: no reconnect, no replay restarted."""
    with FakeKalshiServer(public_key=private_key.public_key(), replay=SAMPLE) as replayer:
        replay_config = KalshiConfig("k", private_key, ws_url=replayer.url)
        with KalshiStreamClient.connect(replay_config, reconnect=FAST) as client:
            client.subscribe(["trade", "ticker"])
            items = []
            for item in client.iter_updates(timeout=WAIT):
                items.append(item)
                if isinstance(item, (ConnectionLost, Reconnected)):
                    break  # the old behaviour: a reconnect, and the replay again
        assert [status for _, status in replayer.handshakes] == [101]
    assert items[-1] == Closed(code=END_OF_STREAM_CODE, reason=END_OF_STREAM_REASON)
    assert sum(isinstance(i, StreamUpdate) for i in items) == 120  # the recording, once


def test_a_4000_close_with_another_reason_is_still_followed_by_a_reconnect(
        server: FakeKalshiServer, config: KalshiConfig) -> None:
    with KalshiStreamClient.connect(config, reconnect=FAST) as client:
        client.subscribe(["ticker"])
        server.close_connections(END_OF_STREAM_CODE, "maintenance")
        items = client.iter_updates(timeout=WAIT)
        lost = next(items)
        assert isinstance(lost, ConnectionLost) and lost.will_reconnect
        assert isinstance(next(items), Reconnected)
