"""examples/django_project runs: with Django's test client, and under gunicorn --preload.

Like the Flask example: no client exists at import time, the first request of each
process connects (``PerProcessClient``), and each pre-forked worker gets its own client.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kalshi_ws import environment

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "django_project"


@pytest.fixture
def django_site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("KALSHI_SIMULATE", "1")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "kalshi_site.settings")
    monkeypatch.syspath_prepend(str(PROJECT))
    import django

    django.setup()
    from markets import kalshi

    yield kalshi
    kalshi.kalshi.close()
    shared, environment._shared = environment._shared, None
    if shared is not None:
        shared[1].stop()


def test_django_views_serve_prices_from_a_lazily_created_client(django_site: Any) -> None:
    from django.test import Client

    assert not django_site.kalshi.created, "no client may exist before the first request"
    web = Client()
    response = web.get("/markets", {"wait": "5"})
    assert response.status_code == 200
    body = response.json()
    assert body["pid"] == os.getpid() and body["markets"]
    ticker = next(iter(body["markets"].values()))
    assert set(ticker) == {"price", "yes_bid", "yes_ask", "volume"}
    assert re.fullmatch(r"0\.\d{4}", ticker["price"])  # a Decimal, as text
    health = web.get("/health").json()
    assert health["state"] == "OPEN" and health["dropped"] == 0
    client = django_site.kalshi.get()
    assert django_site.kalshi.get() is client  # one client per process
    django_site.kalshi.close()
    assert client.closed


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def get(path: Path, url: str) -> tuple[int, dict[str, Any]]:
    connection = UnixHTTPConnection(path)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.timeout(90)
def test_each_gunicorn_worker_connects_its_own_client(tmp_path: Path) -> None:
    """gunicorn --preload imports the project in the master, then forks two workers."""
    sock = tmp_path / "gunicorn.sock"
    env = {**os.environ, "KALSHI_SIMULATE": "1", "PYTHONPATH": os.pathsep.join(
        [str(PROJECT), str(ROOT)])}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", f"unix:{sock}",
         "--graceful-timeout", "10", "kalshi_site.wsgi"],
        cwd=PROJECT, env=env, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    try:
        assert server.stderr is not None
        workers: set[int] = set()
        while len(workers) < 2:  # gunicorn logs each worker as it boots
            line = server.stderr.readline()
            assert line, "gunicorn exited:\n" + "".join(log)
            log.append(line)
            match = re.search(r"Booting worker with pid: (\d+)", line)
            if match:
                workers.add(int(match.group(1)))
        answered: set[int] = set()
        for _ in range(6):
            status, body = get(sock, "/markets?wait=5")
            assert status == 200, body
            assert body["pid"] in workers and body["pid"] != server.pid
            assert body["markets"], body
            answered.add(body["pid"])
            status, health = get(sock, "/health")
            assert status == 200 and health["state"] == "OPEN", health
        assert answered <= workers
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, rest = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, rest = server.communicate()
        log.append(rest or "")
    text = "".join(log)
    assert server.returncode == 0, text
    assert "Traceback" not in text and "ConcurrencyError" not in text, text
