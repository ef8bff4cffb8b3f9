"""Every example runs to completion against the fake server."""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kalshi_ws import ConcurrencyError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT, check=False)


def test_stream_ticker() -> None:
    result = run_example("stream_ticker.py", "--simulate", "--count", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("subscribed")
    assert len([line for line in lines if " last " in line]) == 10


def test_multi_channel_subscribe() -> None:
    result = run_example("multi_channel_subscribe.py", "--simulate", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    assert "refused    ticker_v2: error 8" in result.stdout
    assert "subscribed orderbook_delta" in result.stdout
    assert re.search(r"trade\s+received\s+[1-9]", result.stdout)


def test_stream_reconnect_survives_a_server_restart() -> None:
    result = run_example("stream_reconnect.py", "--simulate", "--updates", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("== killing the server ==") < out.index("!! connection lost") \
        < out.index("!! reconnected")
    assert "subscriptions after:  [('ticker'" in out


def test_orderbook() -> None:
    result = run_example("orderbook.py", "--simulate", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(" bid 0." in line and line.endswith("synced") for line in lines)
    assert sum(line.startswith("SIM-") and ": spread " in line for line in lines) == 3


def test_the_replay_example_test_passes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(EXAMPLES / "test_bot_with_replay.py")], capture_output=True,
                            text=True, timeout=120, env=env, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_repl_walkthrough_runs_as_written() -> None:
    results = doctest.testfile(str(EXAMPLES / "repl.md"), module_relative=False,
                               optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 15
    assert results.failed == 0


def test_the_django_guide_quotes_the_runnable_project() -> None:
    text = (EXAMPLES / "django_app.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    project = "".join(p.read_text() for p in (EXAMPLES / "django_project").rglob("*.py"))
    for block in blocks:
        assert block in project, f"django_app.md quotes code the project does not have:\n{block}"
    assert "PerProcessClient" in text and "AppConfig.ready()" in text


def load_flask_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_app_example", EXAMPLES / "flask_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def flask_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("flask")
    monkeypatch.setenv("KALSHI_SIMULATE", "1")
    module = load_flask_example()
    yield module
    module.shutdown()


def test_flask_app_creates_its_client_lazily_and_serves_tickers(flask_app: Any) -> None:
    assert not flask_app.kalshi.created, "no client may exist at import time"
    web = flask_app.app.test_client()
    response = web.get("/markets?wait=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["pid"] == os.getpid() and body["markets"]
    ticker = next(iter(body["markets"].values()))
    assert set(ticker) == {"price", "yes_bid", "yes_ask", "volume"}
    assert flask_app.kalshi.created
    health = web.get("/health").get_json()
    assert health["state"] == "OPEN" and health["dropped"] == 0
    client = flask_app.kalshi.get()
    assert flask_app.kalshi.get() is client  # one client per process
    flask_app.shutdown()
    assert client.closed


def test_flask_app_gives_each_forked_worker_its_own_client(flask_app: Any) -> None:
    web = flask_app.app.test_client()
    assert web.get("/health").status_code == 200
    parent_client = flask_app.kalshi.get()
    pid = os.fork()
    if pid == 0:  # a pre-forked worker
        code = 0
        try:
            try:
                parent_client.list_subscriptions(timeout=1)
                code = 3  # the inherited client must refuse, not hang
            except ConcurrencyError:
                pass
            if code == 0:
                child_client = flask_app.kalshi.get()
                code = 4 if child_client is parent_client else 0
                if code == 0 and web.get("/health").get_json()["state"] != "OPEN":
                    code = 5
                flask_app.shutdown()
        except BaseException:  # noqa: BLE001
            code = 6
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not parent_client.closed
