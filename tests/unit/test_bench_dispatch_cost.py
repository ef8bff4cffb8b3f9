"""bench/dispatch_cost.py runs, and two copies of one checkout agree on every result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_dispatch_cost_bench_compares_two_checkouts() -> None:
    # The script checks that both packages saw the same freshness snapshot and had the
    # updates delivered in posting order; a failed check exits non-zero.
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dispatch_cost.py"), "--updates", "2000",
         "--batch", "300", "--repeat", "2", "--against", str(ROOT)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line[2:19].strip() for line in done.stdout.splitlines()[1:]]
    assert rows == [row for row in ("freshness", "dispatch backlog", "dispatch live",
                                    "dispatch + queue") for _ in range(2)]  # both checkouts
