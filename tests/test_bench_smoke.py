"""The benchmark still runs (a few seconds, tiny sizes, no thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    done = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--no-peers",
                           "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=140, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert all(results["throughput"][row]["complete"] for row in "abcde")
    assert results["memory"]["messages"] == results["config"]["memory_messages"]
    assert "Targets" in done.stdout
