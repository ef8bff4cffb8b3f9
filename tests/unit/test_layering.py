"""The architecture's import rules, checked on the source (see ARCHITECTURE: Layers)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kalshi_ws"

# Modules in layer order: a module may import only modules listed before it.
LAYERS = ["exceptions", "_speedups", "_compiled", "models", "_wire", "_shapes", "_protocol_params", "_protocol_tables",
          "_protocol_sequencing", "_protocol_update", "_protocol_subscribe", "_protocol_restore",
          "_protocol_replies", "protocol", "freshness", "auth", "config", "backoff", "orderbook",
          "_transport", "_dispatch", "_locklog", "options", "recording", "_session", "_reader", "reconnect",
          "_client_commands", "_client_delivery", "bookset", "bookview", "client", "per_process"]
PURE = ["exceptions", "_speedups", "_compiled", "models", "_wire", "_shapes", "_protocol_params", "_protocol_tables",
        "_protocol_sequencing", "_protocol_update", "_protocol_subscribe", "_protocol_restore",
        "_protocol_replies", "protocol", "freshness", "auth", "config", "backoff", "orderbook"]
# Modules written in C (their source imports only Python.h): optional, see setup.py.
COMPILED = {"_speedups"}
LAYERS = [m for m in LAYERS if (PACKAGE / f"{m}.py").exists() or
          (m in COMPILED and (PACKAGE / f"{m}.c").exists())]
PURE = [m for m in PURE if m in LAYERS]
# The sans-I/O protocol's modules: time comes in as an argument.
PROTOCOL = [m for m in LAYERS if m == "protocol" or m.startswith("_protocol_")]
IO_MODULES = {"socket", "ssl", "threading", "asyncio", "selectors", "websocket",
              "websockets", "queue", "multiprocessing", "subprocess"}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:`` (type-only imports)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
                node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(module: str) -> set[str]:
    if module in COMPILED:
        return set()
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the package
                base = node.module or ""
                names.update(f".{base}" if base else f".{alias.name}" for alias in node.names)
            else:
                names.add(node.module or "")
    return names


def uses_sleep(module: str) -> bool:
    if module in COMPILED:
        return "sleep" in (PACKAGE / f"{module}.c").read_text()
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    return any(isinstance(n, ast.Attribute) and n.attr == "sleep" for n in ast.walk(tree))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    top = {name.split(".")[0] for name in imports_of(module) if not name.startswith(".")}
    assert not top & IO_MODULES, f"{module} imports {top & IO_MODULES}"
    assert not uses_sleep(module), f"{module} sleeps"


@pytest.mark.parametrize("module", sorted(COMPILED & set(LAYERS)))
def test_compiled_modules_include_only_python_and_the_c_library(module: str) -> None:
    """A C module does pure work under the GIL: Python's and C's own headers only, and
    it never lets go of the GIL (nothing else may run while it fills a message)."""
    source = (PACKAGE / f"{module}.c").read_text()
    assert set(re.findall(r"#include\s*[<\"]([^>\"]+)", source)) <= {"Python.h", "stddef.h", "string.h"}
    assert "ALLOW_THREADS" not in source and "PyGILState" not in source


@pytest.mark.parametrize("module", PROTOCOL)
def test_protocol_does_not_even_read_the_clock(module: str) -> None:
    top = {name.split(".")[0] for name in imports_of(module)}
    assert "time" not in top


@pytest.mark.parametrize("module", [m for m in LAYERS if m != "_transport"])
def test_only_the_transport_imports_websocket_client(module: str) -> None:
    assert "websocket" not in {n.split(".")[0] for n in imports_of(module)}


@pytest.mark.parametrize("module", LAYERS)
def test_imports_point_down_the_layers(module: str) -> None:
    own = {name.lstrip(".").split(".")[0] for name in imports_of(module) if name.startswith(".")}
    allowed = set(LAYERS[: LAYERS.index(module)])
    assert own <= allowed, f"{module} imports {own - allowed} from a higher layer"


def test_library_code_never_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id == "print"]
        assert not calls, f"print() in {path.name}"


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in LAYERS (or be a known top-level tool)."""
    tools = {"__init__", "__main__", "_version", "cli", "plot", "environment"}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - tools
    assert modules <= set(LAYERS) | _protocol_family(), sorted(modules - set(LAYERS))


def _protocol_family() -> set[str]:
    """Modules the protocol is split into (named after it), if any: part of its layer."""
    return {p.stem for p in PACKAGE.glob("*.py") if p.stem.startswith("_protocol")}


def test_the_reader_and_the_supervisor_never_import_the_facade() -> None:
    for module in ("_session", "_reader", "reconnect"):
        own = {n.lstrip(".").split(".")[0] for n in imports_of(module) if n.startswith(".")}
        assert not own & {"client", "_client_commands", "_client_delivery", "bookset"}, module


def test_order_books_use_the_client_through_its_public_seam_only() -> None:
    """bookset.py imports no client module, even for type checking, and touches no
    private member of the client."""
    source = (PACKAGE / "bookset.py").read_text()
    tree = ast.parse(source)
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"client", "_client_commands", "_client_delivery", "_session"}
    private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and n.attr.startswith("_") and not n.attr.startswith("__")
               and ((isinstance(n.value, ast.Attribute) and n.value.attr == "_client")
                    or (isinstance(n.value, ast.Name) and n.value.id == "client"))]
    assert not private, private


# Names that Python added after 3.10, the oldest version setup.cfg declares.
_NEWER_THAN_310 = re.compile(r"\bdatetime\.UTC\b|\bStrEnum\b|\btomllib\b|\bExceptionGroup\b|"
                             r"\btyping\.Self\b|from typing import [^\n]*\bSelf\b|\bTaskGroup\b")


def test_the_package_and_its_tests_use_nothing_newer_than_python_310() -> None:
    """setup.cfg declares Python 3.10 to 3.13: nothing may need a newer one (datetime.UTC
    made ``import kalshi_ws`` fail on 3.10)."""
    root = PACKAGE.parent
    assert "python_requires = >=3.10" in (root / "setup.cfg").read_text()
    found = [f"{path.relative_to(root)}: {match.group(0)}"
             for folder in (PACKAGE, root / "tests", root / "examples", root / "bench")
             for path in sorted(folder.rglob("*.py")) if path.name != "test_layering.py"
             for match in _NEWER_THAN_310.finditer(path.read_text())]
    assert not found, found
