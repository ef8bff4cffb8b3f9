"""bench/reader_path.py runs, against a second copy of the checkout too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_reader_path_bench_compares_two_checkouts() -> None:
    # Each run asserts that every frame was delivered; a failed check exits non-zero.
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reader_path.py"), "--frames", "3000",
         "--repeat", "2", "--against", str(ROOT)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["this checkout", str(ROOT)]
    assert all("ns/frame" in line for line in lines)
