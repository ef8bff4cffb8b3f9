"""The benchmark still runs (a few seconds, tiny sizes, no thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kalshi_ws import _compiled

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
    # The client process's CPU per message (all its threads), beside the rate.
    assert all(results["throughput"][row]["cpu_us_per_msg"] > 0 for row in "abcde")
    # Side by side: (c) to (e) with the C code wherever it is built, and the -py rows
    # with none of it, not even the order-book steps that kalshi_ws picks at import.
    used = {row: results["throughput"][row]["extra"][0]["c_parser"]
            for row in ("c", "d", "e", "c-py", "d-py", "e-py")}
    built = _compiled.speedups is not None
    assert used == {"c": built, "d": built, "e": built,
                    "c-py": False, "d-py": False, "e-py": False}
    assert results["memory"]["messages"] == results["config"]["memory_messages"]
    slow = results["slow_consumer"]  # row (g): the whole blast read past a stuck callback
    assert slow["messages"] == results["config"]["frames"] and slow["extra"]["finished"]
    assert slow["extra"]["callback_stuck"] and slow["extra"]["dropped"] > 0
    # Replies were sent during the blast: they landed between frames, the stream stayed whole.
    assert slow["extra"]["commands"] >= 1 and slow["extra"]["command_failures"] == []
    assert slow["extra"]["connection_end"] is None
    scale = results["scale"]
    assert list(scale) == [str(m) for m in results["config"]["scale_markets"]]
    assert all(row["extra"]["finished"] for row in scale.values()), scale
    assert "Slow consumer" in done.stdout and "Scale" in done.stdout
    assert "Targets" in done.stdout
