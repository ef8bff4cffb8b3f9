"""Type checkers accept the package and the documented patterns, as written.

The README's python blocks (each in a file of its own) and ``examples/*.py`` must pass
``mypy --strict`` and ``pyright`` in strict mode, with kalshi_ws seen as an installed,
typed package. A deliberately wrong snippet proves the checks can fail. The package
itself must pass ``mypy --strict`` and pyright (its default, "standard" mode), with no
error at all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kalshi_ws import StreamUpdate, Ticker, Trade

from .test_readme import BLOCKS

ROOT = Path(__file__).resolve().parents[1]
DJANGO = ROOT / "examples" / "django_project"
EXAMPLES = sorted((ROOT / "examples").glob("*.py")) + sorted(DJANGO.rglob("*.py"))

# An unchecked msg access: must be refused (every message class lacks some field).
WRONG = """\
from kalshi_ws import KalshiStreamClient, StreamUpdate, config_from_env

with KalshiStreamClient.connect(config_from_env()) as client:
    for update in client.iter_updates(timeout=5):
        if isinstance(update, StreamUpdate):
            print(update.msg.market_ticker)
"""



@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The README blocks written to files, the examples, and the wrong snippet."""
    work = tmp_path_factory.mktemp("typing")
    files = []
    for number, block in enumerate(BLOCKS, 1):
        path = work / f"readme_block_{number:02d}.py"
        path.write_text(block + "\n", encoding="utf-8")
        files.append(path)
    (work / "wrong").mkdir()
    wrong = work / "wrong" / "unchecked_msg.py"
    wrong.write_text(WRONG, encoding="utf-8")
    return work, [*files, *EXAMPLES, wrong]


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **env}, check=False)


@pytest.mark.timeout(150)
def test_readme_and_examples_pass_mypy_strict(sources: tuple[Path, list[Path]]) -> None:
    work, files = sources
    config = work / "mypy.ini"
    config.write_text(f"[mypy]\nstrict = True\ncache_dir = {work / 'mypy-cache'}\n"
                      "[mypy-kalshi_ws.*]\nfollow_imports = silent\n"
                      "[mypy-django.*]\nignore_missing_imports = True\n")
    result = run([sys.executable, "-m", "mypy", "--config-file", str(config),
                  *map(str, files)], cwd=work, MYPYPATH=os.pathsep.join([str(ROOT), str(DJANGO)]))
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors, result.stdout + result.stderr  # the wrong snippet must be refused
    wrong = [line for line in errors if "unchecked_msg.py:6:" in line]
    assert wrong and all('has no attribute "market_ticker"' in line for line in wrong)
    assert not [line for line in errors if line not in wrong], result.stdout


@pytest.mark.timeout(150)
def test_readme_and_examples_pass_pyright_strict(sources: tuple[Path, list[Path]]) -> None:
    work, files = sources
    # Django ships no type information: its own calls are unknown to pyright, not ours.
    (work / "pyrightconfig.json").write_text(json.dumps({
        "typeCheckingMode": "strict", "extraPaths": [str(ROOT)], "pythonVersion": "3.10",
        "executionEnvironments": [{"root": str(DJANGO), "extraPaths": [str(ROOT), str(DJANGO)],
                                   "reportMissingTypeStubs": False,
                                   "reportUnknownMemberType": False,
                                   "reportUnknownVariableType": False,
                                   "reportUnknownArgumentType": False}]}))
    result = run([sys.executable, "-m", "pyright", "--outputjson",
                  "-p", str(work / "pyrightconfig.json"), *map(str, files)], cwd=work,
                 PYRIGHT_PYTHON_IGNORE_WARNINGS="1")  # no version check over the network
    report = json.loads(result.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    wrong = [d for d in errors if d["file"].endswith("unchecked_msg.py")]
    assert any('attribute "market_ticker"' in d["message"] for d in wrong), wrong
    assert all(d["range"]["start"]["line"] == 5 for d in wrong), wrong
    others = [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
              for d in errors if d not in wrong]
    assert not others, "\n".join(others)


@pytest.mark.timeout(150)
def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "mypy", "--strict", "--cache-dir",
                  str(tmp_path / "cache"), "-p", "kalshi_ws"], cwd=ROOT)
    errors = [line for line in result.stdout.splitlines() if re.search(r": error:", line)]
    assert not errors, "\n".join(errors)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(150)
def test_the_package_passes_pyright(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "pyright", "--outputjson", str(ROOT / "kalshi_ws")],
                 cwd=tmp_path, PYRIGHT_PYTHON_IGNORE_WARNINGS="1")
    report = json.loads(result.stdout)
    errors = [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
              for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert not errors, "\n".join(errors)
    assert report["summary"]["filesAnalyzed"] >= 20


def test_msg_as_narrows_to_the_class_or_none() -> None:
    ticker = Ticker(market_ticker="SIM-ALPHA")
    update = StreamUpdate(channel="ticker", type="ticker", sid=1, seq=None, msg=ticker)
    assert update.msg_as(Ticker) is ticker
    assert update.msg_as(Trade) is None
