"""The kalshi-ws command, run as a real subprocess against the built-in simulator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import _compiled
from kalshi_ws.recording import read_recording
from kalshi_ws.testing import FakeKalshiServer
from tests.timing import MS

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
        shell=True, capture_output=True, text=True, timeout=60_000 * MS, env=env, cwd=ROOT,
        check=False)
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
        _, err = process.communicate(timeout=5_000 * MS)
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
        process.wait(timeout=30_000 * MS)
    assert process.returncode == 0
    text = output.decode("utf-8", "replace")
    redraws = text.count("\x1b[H\x1b[2J")  # home + clear: an in-place redraw
    assert redraws >= 2, text[:500]
    assert "\x1b[?25l" in text  # cursor hidden, then restored before the summary:
    assert re.search(r"\x1b\[\?25hkalshi-ws: done: [\d,]+ update\(s\) applied to 1 book\(s\)",
                     text), text[-300:]
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
        out, _ = process.communicate(timeout=30_000 * MS)
    assert process.returncode == 0
    assert out.count(b"\n") > 5  # the updates went to stdout, untouched
    assert re.search(r"\r\x1b\[K[\d,]+ msg/s \| [\d,]+ received \| 0 dropped \| "
                     r"0 reconnects", status), status
    assert "done:" in status


def test_python_dash_m_and_the_version_flag() -> None:
    result = kalshi_ws("--version")
    assert result.returncode == 0 and result.stdout.startswith("kalshi-ws ")
    assert re.search(r"\(C speed-ups: (on|off)\)", result.stdout), result.stdout


# ---------------------------------------------------------------------- replay (issue 14.4)

SAMPLE = ROOT / "examples" / "data" / "sample_session.jsonl"


def test_replay_plays_a_recording_through_the_client_and_ends_at_its_end() -> None:
    result = kalshi_ws("replay", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(" trade " in line for line in lines) == 60
    assert sum(" ticker " in line for line in lines) == 60
    assert lines[-1].endswith("-- Closed code 4000: end of stream")
    assert "done: 120 update(s)" in result.stderr and "Traceback" not in result.stderr


def test_replay_plays_only_the_channels_asked_for_as_json() -> None:
    result = kalshi_ws("replay", str(SAMPLE), "trade", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records[:-1]] == list(range(1, 61))  # every trade, in order
    assert all(r["type"] == "trade" for r in records[:-1])
    assert records[-1] == {"system": "Closed", "code": 4000, "reason": "end of stream"}


@pytest.mark.skipif(_compiled.speedups is None, reason="kalshi_ws._speedups is not built")
def test_replay_prints_the_same_with_and_without_the_c_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded session through the whole client, with the optional C code and in
    Python alone: the same updates, field for field."""
    outputs = []
    for pure in ("0", "1"):
        monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, pure)
        result = kalshi_ws("replay", str(SAMPLE), "--json")
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 121 and '"price_dollars"' in outputs[0]


def test_replay_at_a_speed_keeps_the_recorded_pace() -> None:
    frames = list(read_recording(SAMPLE))
    span = frames[-1].t - frames[0].t
    assert span > 1.0  # the sample lasts long enough for pacing to show
    fast = kalshi_ws("replay", str(SAMPLE), "--speed", "2")
    assert fast.returncode == 0, fast.stderr
    elapsed = float(re.search(r"done: 120 update\(s\) in ([\d.]+) s", fast.stderr)[1])
    assert elapsed >= span / 2 - 0.1  # paced: never sooner than the recording allows


@pytest.mark.parametrize("content, message", [
    (None, "no such recording"),
    ("not json\n", "not a recorded frame"),
])
def test_replay_of_a_bad_file_gives_one_line(tmp_path: Path, content: str | None,
                                             message: str) -> None:
    path = tmp_path / "session.jsonl"
    if content is not None:
        path.write_text(content)
    result = kalshi_ws("replay", str(path))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert message in line


def test_stream_from_a_replaying_server_ends_at_the_end_of_the_replay(
        key_file: Path, private_key: rsa.RSAPrivateKey) -> None:
    """A clean end of a replay ends `stream`: no reconnect, no replay played again."""
    with FakeKalshiServer(public_key=private_key.public_key(), replay=SAMPLE) as server:
        result = kalshi_ws("stream", "ticker", "trade", "--key-id", "k", "--key-file",
                           str(key_file), "--url", server.url, timeout=60_000 * MS)
        handshakes = [status for _, status in server.handshakes]
    assert result.returncode == 0, result.stderr
    assert handshakes == [101]
    lines = result.stdout.splitlines()
    assert len(lines) == 121 and lines[-1].endswith("Closed code 4000: end of stream")
    assert "reconnect" not in result.stderr


# ---------------------------------------------------------------------- record (issue 14.5)


def test_record_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    path.write_text(SAMPLE.read_text())
    result = kalshi_ws("record", str(path), "ticker", "--simulate", "--limit", "3")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "exists; pass --force to overwrite it or --append to add to it" in line
    assert path.read_text() == SAMPLE.read_text()  # untouched


def test_record_force_overwrites_and_append_adds(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    path.write_text(SAMPLE.read_text())
    before = len(list(read_recording(path)))
    appended = kalshi_ws("record", str(path), "trade", "--simulate", "--limit", "3", "--append")
    assert appended.returncode == 0, appended.stderr
    after = list(read_recording(path))
    assert len(after) > before + 3 and after[:before] == list(read_recording(SAMPLE))
    assert "added" in appended.stderr
    forced = kalshi_ws("record", str(path), "trade", "--simulate", "--limit", "3", "--force")
    assert forced.returncode == 0, forced.stderr
    frames = list(read_recording(path))
    assert 4 <= len(frames) < before
    both = kalshi_ws("record", str(path), "trade", "--force", "--append")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


# ---------------------------------------------------------------------- details (issue 14.6)


def test_book_summary_counts_the_updates_applied() -> None:
    result = kalshi_ws("book", "SIM-ALPHA", "--simulate", "--duration", "1.5",
                       "--interval", "0.5")
    assert result.returncode == 0, result.stderr
    seqs = [int(s) for s in re.findall(r"SIM-ALPHA  synced  seq (\d+)", result.stdout)]
    assert seqs, result.stdout
    applied = int(re.search(r"done: ([\d,]+) update\(s\) applied to 1 book\(s\)",
                            result.stderr)[1].replace(",", ""))
    # Every frame of the book's subscription is a snapshot or a delta applied to it (the
    # subscription's seq counts them); the summary comes after the last snapshot printed.
    assert applied >= max(seqs) > 3


def visible_lines(text: str) -> list[str]:
    """The lines a terminal shows: what follows the last carriage return of each line,
    given that every line the CLI redraws starts by clearing it."""
    return [line.split("\r")[-1].replace("\x1b[K", "")
            for line in text.replace("\r\n", "\n").split("\n")]


def run_on_a_terminal(args: list[str],
                      steps: list[tuple[bytes, Callable[[], object] | None]]) -> tuple[str, int]:
    """Run kalshi-ws with stdout and stderr on one pseudo-terminal. Each step waits for
    its marker in the output, then runs its action (None: Ctrl-C). Returns the text and
    the exit status."""
    import pty
    import select

    controller, terminal = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "kalshi_ws", *args], stdin=terminal,
                               stdout=terminal, stderr=terminal, env=env, cwd=ROOT,
                               close_fds=True)
    os.close(terminal)
    output = b""
    waiting = list(steps)
    start = 0
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process exited
                break
            if not chunk:
                break
            output += chunk
            while waiting and waiting[0][0] in output[start:]:
                marker, action = waiting.pop(0)
                start = output.index(marker, start) + len(marker)
                if action is None:
                    process.send_signal(signal.SIGINT)
                else:
                    action()
    finally:
        os.close(controller)
        process.wait(timeout=30_000 * MS)
    return output.decode("utf-8", "replace"), process.returncode


STATUS = re.compile(r"^[\d,]+ msg/s \| [\d,]+ received \| [\d,]+ dropped \| [\d,]+ reconnects"
                    r"( \| stalest: \S+ [\d.]+ s)?$")
UPDATE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


def test_stream_status_line_shows_on_a_terminal_and_ctrl_c_summary_has_its_own_line() -> None:
    text, status = run_on_a_terminal(["stream", "ticker", "trade", "--simulate"],
                                     [(b" reconnects", None)])
    assert status == 130, text[-500:]
    # The status line is drawn at the bottom, and taken off before anything else is
    # printed: it never shares a line with an update, and the summary has its own line.
    drawn = re.findall(r"\r\x1b\[K([\d,]+ msg/s [^\r\n]*?reconnects(?: \| stalest: "
                       r"\S+ [\d.]+ s)?)(.?)", text)
    assert drawn and all(STATUS.match(status) and after == "\r" for status, after in drawn), \
        text[-500:]
    lines = [line for line in visible_lines(text) if line]
    assert all(UPDATE.match(line) or line.startswith("kalshi-ws: ") for line in lines), \
        [line for line in lines if not UPDATE.match(line)]
    assert re.match(r"^kalshi-ws: interrupted: [\d,]+ update\(s\) in ", lines[-1]), lines[-3:]


def test_orderbook_delta_without_a_market_names_the_flag() -> None:
    result = kalshi_ws("stream", "orderbook_delta", "--key-id", "abc")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "orderbook_delta needs --market TICKER" in line and "market_tickers" not in line


def test_a_key_path_in_the_key_text_variable_names_the_cli_way_out(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KALSHI_API_KEY_ID": "abc",
           "KALSHI_PRIVATE_KEY": str(tmp_path / "key.pem")}
    env.pop("KALSHI_PRIVATE_KEY_PATH", None)
    result = subprocess.run([sys.executable, "-m", "kalshi_ws", "stream", "ticker"],
                            capture_output=True, text=True, timeout=60_000 * MS, env=env,
                            cwd=ROOT, check=False)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "KALSHI_PRIVATE_KEY_PATH or --key-file" in line
    assert "KalshiConfig" not in line and "private_key" not in line


def test_a_bad_key_file_error_speaks_the_cli(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    result = kalshi_ws("stream", "ticker", "--key-id", "abc", "--key-file", str(key))
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kalshi-ws: error: --key-file: the key is not PEM")
    assert "KalshiConfig" not in line and "private_key" not in line


@pytest.mark.parametrize("command, names", [
    ("book", ["MARKET ", "market tickers whose order books to show"]),
    ("record", ["FILE ", "the recording to write", "CHANNEL ", "--force", "--append"]),
    ("replay", ["FILE ", "the recording to play", "CHANNEL ", "--speed X"]),
])
def test_positional_arguments_have_help(command: str, names: list[str]) -> None:
    result = kalshi_ws(command, "--help")
    assert result.returncode == 0
    positional = result.stdout.split("positional arguments:")[1]
    assert all(name in positional for name in names), positional


def test_kalshi_simulate_in_the_environment_means_simulate() -> None:
    env_result = subprocess.run(
        [sys.executable, "-m", "kalshi_ws", "stream", "ticker", "--limit", "3"],
        capture_output=True, text=True, timeout=60_000 * MS, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KALSHI_SIMULATE": "1"})
    assert env_result.returncode == 0, env_result.stderr
    assert len(env_result.stdout.splitlines()) == 3


# ---------------------------------------------------------------------- output (issue 14.7)


def test_a_system_event_shows_once_on_a_terminal(key_file: Path,
                                                 private_key: rsa.RSAPrivateKey) -> None:
    with FakeKalshiServer(public_key=private_key.public_key()) as server:
        server.start_simulation(interval=0.02, trades=0.5)
        text, _ = run_on_a_terminal(
            ["stream", "ticker", "--key-id", "k", "--key-file", str(key_file), "--url",
             server.url], [(b" ticker ", server.drop_connections), (b"Reconnected", None)])
    lines = [line for line in visible_lines(text) if line]
    lost = [line for line in lines if "lost" in line or "reset" in line]
    assert len(lost) == 1, lost
    assert re.search(r"-- ConnectionLost the connection was reset \(by the server or the "
                     r"network\), without a close frame; reconnecting$", lost[0]), lost
    assert not any("WARNING" in line for line in lines)


# ---------------------------------------------------------------------- logs (issue 14.9)

SIGNATURE_VALUE = re.compile(r"SIGNATURE\W*[A-Za-z0-9+/=]{16,}", re.IGNORECASE)


def test_debug_logs_keep_the_simulator_out_unless_asked() -> None:
    result = kalshi_ws("-vv", "stream", "ticker", "--simulate", "--limit", "3")  # as in #14
    assert result.returncode == 0, result.stderr
    assert "DEBUG kalshi_ws.client: > " in result.stderr  # the client's own debug log
    assert "[server]" not in result.stderr and "websockets" not in result.stderr
    assert "kalshi_ws.testing" not in result.stderr and "asyncio" not in result.stderr
    assert "KALSHI-ACCESS" not in result.stderr


def test_server_log_shows_the_simulator_apart_and_never_a_signature() -> None:
    result = kalshi_ws("stream", "ticker", "--simulate", "--limit", "3", "-vv", "--server-log")
    assert result.returncode == 0, result.stderr
    server_lines = [line for line in result.stderr.splitlines() if " [server] " in line]
    assert any("KALSHI-ACCESS-KEY" in line for line in server_lines)  # headers are logged...
    assert "KALSHI-ACCESS-SIGNATURE: [redacted]" in result.stderr  # ...but not the signature
    assert not SIGNATURE_VALUE.search(result.stderr)
    assert all(" [server] websockets" not in line for line in result.stderr.splitlines())


# ---------------------------------------------------------------------- plot (issue 14, beyond)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_draws_a_recording_to_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="kalshi-ws plot needs the 'plot' extra "
                        "(matplotlib), which the test extra does not install")
    output = tmp_path / "sample.png"
    result = kalshi_ws("plot", str(SAMPLE), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert f"drew 3 market(s) to {output}" in result.stderr
    # The picture in README is this command's output for the same file.
    assert png_size(output) == png_size(SAMPLE.with_suffix(".png"))
    again = kalshi_ws("plot", str(SAMPLE), "-o", str(output))
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
    one = kalshi_ws("plot", str(SAMPLE), "-o", str(output), "--market", "SIM-BRAVO",
                    "--force")
    assert one.returncode == 0 and "drew 1 market(s)" in one.stderr
    assert png_size(output)[1] < png_size(SAMPLE.with_suffix(".png"))[1]  # one row


def test_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "matplotlib"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    result = subprocess.run([sys.executable, "-m", "kalshi_ws", "plot", str(SAMPLE), "-o",
                             str(tmp_path / "x.png")], capture_output=True, text=True,
                            timeout=60_000 * MS, cwd=ROOT, check=False,
                            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "pip install 'kalshi-ws[plot]'" in line


def test_append_ends_a_cut_last_line_and_refuses_what_is_not_a_recording(
        tmp_path: Path) -> None:
    """Review of issue 14: --append glued its first frame onto a last line without a
    newline, and added frames to any file at all."""
    path = tmp_path / "cut.jsonl"
    path.write_text(SAMPLE.read_text().rstrip("\n"))  # the last newline is missing
    before = len(list(read_recording(path)))
    appended = kalshi_ws("record", str(path), "trade", "--simulate", "--limit", "2", "--append")
    assert appended.returncode == 0, appended.stderr
    assert len(list(read_recording(path))) > before + 2  # still readable, nothing lost
    other = tmp_path / "notes.txt"
    other.write_text("not a recording\n")
    refused = kalshi_ws("record", str(other), "trade", "--simulate", "--limit", "2", "--append")
    assert refused.returncode != 0 and "not a recording" in refused.stderr
    assert other.read_text() == "not a recording\n"
    folder = kalshi_ws("record", str(tmp_path), "trade", "--simulate", "--limit", "2")
    assert folder.returncode != 0 and "is a directory" in folder.stderr


def test_an_insecure_url_error_names_the_cli_way_out(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    result = kalshi_ws("stream", "ticker", "--key-id", "k", "--key-file", str(key),
                       "--url", "ws://example.com/trade-api/ws/v2")
    assert result.returncode != 0
    assert "KALSHI_ALLOW_INSECURE=1" in result.stderr and "allow_insecure=True" not in \
        result.stderr


def test_replay_and_plot_name_a_directory_and_a_file_that_is_not_text(tmp_path: Path) -> None:
    """Review of issue 14: a directory was 'no such recording'; bad bytes had no name."""
    folder = kalshi_ws("replay", str(tmp_path))
    assert folder.returncode != 0 and "is a directory" in folder.stderr
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe garbage\n")
    bad = kalshi_ws("replay", str(binary))
    assert bad.returncode != 0 and f"{binary}:1: not a recording" in bad.stderr
