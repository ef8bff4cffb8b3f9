"""README.rst: it renders cleanly, documents every public name, and its examples run."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kalshi_ws

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
    assert extracted == 'python -m pip install -e ".[test]" && python -m pytest'
    assert "grep -E '^ +\\$ .*\\[test\\].*pytest' README.rst" in (ROOT / ".ci/run").read_text()


BLOCKS = python_blocks(README)


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 12


@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1))
def test_each_readme_example_runs_alone_in_a_fresh_interpreter(number: int,
                                                                tmp_path: Path) -> None:
    """Paste one block into a new file and run it: no name may come from another block."""
    script = tmp_path / f"readme_block_{number}.py"
    script.write_text(BLOCKS[number - 1] + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("KALSHI_")}
    env.update(KALSHI_SIMULATE="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=50, env=env, cwd=tmp_path, check=False)
    assert result.returncode == 0, f"README block {number} failed alone:\n" \
        f"{BLOCKS[number - 1]}\n--- stderr ---\n{result.stderr}"


def test_readme_examples_need_credentials_without_the_simulator(tmp_path: Path) -> None:
    """Without KALSHI_SIMULATE the quick start reads the real key variables, nothing else."""
    script = tmp_path / "quickstart.py"
    script.write_text(BLOCKS[0] + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("KALSHI_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=50, env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "ConfigurationError: missing environment variable(s): KALSHI_API_KEY_ID" \
        in result.stderr
