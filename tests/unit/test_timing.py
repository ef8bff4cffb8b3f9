"""README's promise about the tests' time unit: KALSHI_WS_TEST_TIME_FACTOR stretches every
bound on a wait, and pytest-timeout's limits with it; a factor below 1 is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
import pytest

@pytest.mark.timeout(7)
def test_marked(request):
    print("LIMIT", request.node.get_closest_marker("timeout").kwargs["timeout"])

def test_unmarked(request):
    from tests.timing import MS, WAIT
    print("UNIT", MS, WAIT)
    print("LIMIT", request.node.get_closest_marker("timeout").kwargs["timeout"])
'''


def _run_probe(tmp_path: Path, factor: str) -> subprocess.CompletedProcess[str]:
    probe = ROOT / "tests" / "unit" / f"test_zz_timing_probe_{os.getpid()}.py"
    probe.write_text(PROBE)
    try:
        env = dict(os.environ, KALSHI_WS_TEST_TIME_FACTOR=factor)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(probe)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        probe.unlink()


@pytest.mark.timeout(240)
def test_the_factor_stretches_waits_and_timeouts(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LIMIT 21.0" in result.stdout  # the test's own mark, times 3
    assert "LIMIT 180.0" in result.stdout  # the configured 60 s, times 3
    assert "UNIT 0.003 30.0" in result.stdout


@pytest.mark.timeout(240)
def test_a_factor_below_one_is_refused(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "0.5")
    assert result.returncode != 0
    assert "KALSHI_WS_TEST_TIME_FACTOR must be a number >= 1" in result.stdout + result.stderr
