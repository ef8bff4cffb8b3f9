"""The kalshi-ws command, run as a real subprocess against the built-in simulator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws.recording import read_recording
from kalshi_ws.testing import FakeKalshiServer

ROOT = Path(__file__).resolve().parents[2]


def kalshi_ws(*args: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "KALSHI_PRIVATE_KEY"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "kalshi_ws", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT, check=False, **kwargs)


def test_stream_prints_one_line_per_update() -> None:
    result = kalshi_ws("stream", "ticker", "trade", "--simulate", "--limit", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20
    assert all((" ticker " in line) or (" trade " in line) for line in lines)
    assert "done: 20 update(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_stream_json_lines_keep_decimals_as_strings() -> None:
    result = kalshi_ws("stream", "orderbook_delta", "--simulate", "--limit", "8", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 8
    assert records[0]["type"] == "orderbook_snapshot"
    price, size = records[0]["msg"]["yes_dollars_fp"][0]
    assert isinstance(price, str) and isinstance(size, str)
    assert all(r["channel"] == "orderbook_delta" and r["seq"] == n
               for n, r in enumerate(records, 1))


def test_stream_stops_after_its_duration() -> None:
    result = kalshi_ws("stream", "ticker", "--simulate", "--duration", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= 1


def test_a_broken_pipe_exits_quietly() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pipeline = subprocess.run(
        f"{sys.executable} -m kalshi_ws stream ticker trade --simulate --duration 20 | head -n 3",
        shell=True, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False)
    assert pipeline.stdout.count("\n") == 3
    assert "Traceback" not in pipeline.stderr and "Error" not in pipeline.stderr


def test_ctrl_c_exits_within_a_second_with_a_summary() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "kalshi_ws", "stream", "ticker",
                                "--simulate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    first = process.stdout.readline()  # streaming has started
    assert " ticker " in first
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "interrupted:" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["stream", "bogus"], "invalid choice: 'bogus'"),
    (["stream", "ticker", "--limit", "0"], "must be at least 1"),
    (["nope"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_status_2(args: list[str], message: str) -> None:
    result = kalshi_ws(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_credentials_give_one_line_and_status_1() -> None:
    result = kalshi_ws("stream", "ticker")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "KALSHI_API_KEY_ID" in lines[0] and "--simulate" in lines[0]


def test_bad_key_file_gives_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    result = kalshi_ws("stream", "ticker", "--key-id", "abc", "--key-file", str(key))
    assert result.returncode == 1
    assert "not PEM" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def key_file(tmp_path: Path, private_key_pem: bytes) -> Path:
    """The test run's throwaway key, written where --key-file can read it."""
    path = tmp_path / "key.pem"
    path.write_bytes(private_key_pem)
    return path


def test_a_bad_url_gives_one_line_naming_the_flag(key_file: Path) -> None:
    result = kalshi_ws("stream", "ticker", "--key-id", "abc", "--key-file", str(key_file),
                       "--url", "ws://127.0.0.1:99999/")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kalshi-ws: error: --url: ") and "out of range" in line


def test_refused_credentials_give_one_line(key_file: Path,
                                           other_private_key: rsa.RSAPrivateKey) -> None:
    with FakeKalshiServer(public_key=other_private_key.public_key()) as server:
        result = kalshi_ws("stream", "ticker", "--key-id", "abc", "--key-file", str(key_file),
                           "--url", server.url, "--no-reconnect")
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_record_writes_a_replayable_file(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    result = kalshi_ws("record", str(path), "ticker", "trade", "--simulate", "--limit", "15")
    assert result.returncode == 0, result.stderr
    frames = list(read_recording(path))
    types = [json.loads(f.frame)["type"] for f in frames]
    assert types.count("subscribed") == 2
    assert len([t for t in types if t in ("ticker", "trade")]) >= 15
    assert f"to {path}" in result.stderr


def test_book_prints_plain_snapshots_when_piped() -> None:
    result = kalshi_ws("book", "SIM-ALPHA", "SIM-BRAVO", "--simulate", "--limit", "2",
                       "--interval", "0.3", "--depth", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("--- ") == 2 and "\x1b[" not in out  # plain text, no terminal codes
    assert out.count("SIM-ALPHA  synced") == 2 and out.count("SIM-BRAVO  synced") == 2
    header = "YES bids (price x size)"
    assert out.count(header) == 4
    first_book = out.split(header)[1].splitlines()[1:4]
    assert all(re.match(r"^\s+0\.\d{4} x\s+\d+\.\d{2}\s+0\.\d{4} x\s+\d+\.\d{2}$", line)
               for line in first_book), first_book


def test_book_redraws_in_place_in_a_terminal() -> None:
    """Run `kalshi-ws book` on a real pseudo-terminal and read what it draws."""
    import pty

    controller, terminal = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100",
           "LINES": "40"}
    process = subprocess.Popen([sys.executable, "-m", "kalshi_ws", "book", "SIM-ALPHA",
                                "--simulate", "--duration", "2", "--depth", "4"],
                               stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                               cwd=ROOT, close_fds=True)
    os.close(terminal)
    try:
        output = read_terminal(controller)
    finally:
        os.close(controller)
        process.wait(timeout=30)
    assert process.returncode == 0
    text = output.decode("utf-8", "replace")
    redraws = text.count("\x1b[H\x1b[2J")  # home + clear: an in-place redraw
    assert redraws >= 2, text[:500]
    assert "\x1b[?25l" in text and text.rstrip().endswith("\x1b[?25h")  # cursor restored
    last_frame = text.split("\x1b[H\x1b[2J")[-1]
    assert "kalshi-ws book" in last_frame and "SIM-ALPHA  synced" in last_frame
    rows = [line for line in last_frame.splitlines() if re.match(r"^\s+0\.\d{4} x", line)]
    assert len(rows) == 4  # --depth 4
    assert "Traceback" not in text


def read_terminal(controller: int) -> bytes:
    """Everything a process writes to a pseudo-terminal, until it closes."""
    import select

    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        if not ready:
            return output
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process exited
            return output
        if not chunk:
            return output
        output += chunk


def test_stream_shows_a_status_line_on_a_terminal() -> None:
    import pty

    controller, terminal = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "kalshi_ws", "stream", "ticker",
                                "trade", "--simulate", "--duration", "2.5"],
                               stdout=subprocess.PIPE, stderr=terminal, env=env, cwd=ROOT,
                               close_fds=True)
    os.close(terminal)
    try:
        status = read_terminal(controller).decode("utf-8", "replace")
    finally:
        os.close(controller)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out.count(b"\n") > 5  # the updates went to stdout, untouched
    assert re.search(r"\r\x1b\[K[\d,]+ msg/s \| [\d,]+ received \| 0 dropped \| "
                     r"0 reconnects", status), status
    assert "done:" in status


def test_python_dash_m_and_the_version_flag() -> None:
    result = kalshi_ws("--version")
    assert result.returncode == 0 and result.stdout.startswith("kalshi-ws ")
