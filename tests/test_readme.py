"""README.rst: it renders cleanly, documents every public name, and its examples run."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import kalshi_ws
from kalshi_ws import KalshiConfig
from kalshi_ws.testing import simulated

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.rst").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    """The ``.. code-block:: python`` blocks, dedented, in order."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", text,
                             flags=re.MULTILINE):
        lines = match.group(1).rstrip("\n").splitlines()
        blocks.append("\n".join(line[4:] for line in lines))
    return blocks


def test_readme_renders_without_warnings() -> None:
    docutils_core = pytest.importorskip("docutils.core")
    warnings = io.StringIO()
    docutils_core.publish_doctree(README, settings_overrides={
        "warning_stream": warnings, "halt_level": 5, "report_level": 2})
    assert warnings.getvalue() == ""
    renderer = pytest.importorskip("readme_renderer.rst")
    stream = io.StringIO()
    assert renderer.render(README, stream=stream) is not None, stream.getvalue()


def test_readme_documents_every_public_name() -> None:
    missing = [name for name in kalshi_ws.__all__ if name != "__version__"
               and not re.search(rf"\b{re.escape(name)}\b", README)]
    assert not missing, f"README.rst does not mention {missing}"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    extracted = subprocess.run(
        ["bash", "-c", r"""grep -E '^ +\$ .*\[test\].*pytest' README.rst | head -n 1 |
                         sed -E 's/^ +\$ //'"""],
        capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert extracted == 'python -m pip install ".[test]" && python -m pytest'
    assert "grep -E '^ +\\$ .*\\[test\\].*pytest' README.rst" in (ROOT / ".ci/run").read_text()


@pytest.mark.timeout(120)
def test_every_python_example_in_the_readme_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(README)
    assert len(blocks) >= 10
    namespace: dict[str, Any] = {"__name__": "readme"}
    with simulated() as simulation:
        monkeypatch.setattr(KalshiConfig, "from_env", classmethod(
            lambda cls, environ=None: simulation.config))
        try:
            for number, block in enumerate(blocks, 1):
                try:
                    exec(compile(block, f"README.rst block {number}", "exec"), namespace)  # noqa: S102
                except Exception as exc:
                    raise AssertionError(f"README block {number} failed:\n{block}") from exc
        finally:
            started = namespace.get("simulation")
            if started is not None and started is not simulation:
                started.stop()
