"""The API reference: README's pdoc command builds it without warnings, every public name in it."""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.rst").read_text(encoding="utf-8")


def readme_pdoc_arguments() -> list[str]:
    """The arguments of the ``pdoc`` command README gives, without its ``-o`` target."""
    line = next(line for line in README.splitlines()
                if re.match(r"^ +\$ .*\[docs\].*&& pdoc ", line))
    words = shlex.split(line.split("&& ", 1)[1])
    assert words[0] == "pdoc" and words[words.index("-o") + 1] == "api"
    del words[words.index("-o"):words.index("-o") + 2]
    return words[1:]


def public_modules() -> list[ModuleType]:
    return [importlib.import_module(a) for a in readme_pdoc_arguments()
            if a.startswith("kalshi_ws")]


def undocumented(module: ModuleType) -> list[str]:
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{attr}" for attr, value in vars(obj).items()
                        if not attr.startswith("_")
                        and (inspect.isfunction(value) or isinstance(value, property))
                        and not (value.__doc__ or "").strip()]
    return missing


def test_every_public_class_function_and_method_has_a_docstring() -> None:
    modules = public_modules()
    assert {m.__name__ for m in modules} >= {"kalshi_ws", "kalshi_ws.testing"}
    missing = [f"{m.__name__}: {name}" for m in modules for name in undocumented(m)]
    assert not missing, missing


@pytest.mark.timeout(120)
def test_the_readme_command_builds_the_reference_without_warnings(tmp_path: Path) -> None:
    arguments = readme_pdoc_arguments()
    assert arguments[:2] == ["-d", "google"]
    result = subprocess.run([sys.executable, "-m", "pdoc", *arguments, "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=110, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # pdoc reports problems as warnings
    assert (tmp_path / "index.html").exists()
    for module in public_modules():
        page = tmp_path / (module.__name__.replace(".", "/") + ".html")
        html = page.read_text(encoding="utf-8")
        missing = [name for name in module.__all__ if f'id="{name}"' not in html]
        assert not missing, f"{page.name} lacks {missing}"
    html = (tmp_path / "kalshi_ws.html").read_text(encoding="utf-8")
    assert 'id="KalshiStreamClient.connect"' in html and 'id="StreamUpdate.msg_as"' in html
    assert '<h6 id="raises">Raises:</h6>' in html  # Google-style sections are parsed
