"""The optional C module, ``kalshi_ws._speedups``, and whether to use it.

The C module reads the frames of learned shapes (see :mod:`kalshi_ws._shapes`), cuts
the common WebSocket frames out of a read (see :mod:`kalshi_ws._transport`), makes
``StreamUpdate`` objects (see :func:`kalshi_ws._wire.constructor`), reads the sides of
order-book snapshots (``kalshi_ws._wire._ladder``), checks and splits them into a
book's ladders (``kalshi_ws.orderbook._load_side``), changes a ladder by a delta
(``kalshi_ws.orderbook._changed_side``) and makes a book's ``TopOfBook``, with the same
results as the Python code beside it. It is built at install time where a C compiler
and Python's headers are found (see setup.py), and absent otherwise.

The first three are chosen for each client when it is created; the others are shared
by every client (and by books of no client), so they are chosen once, at import.

Any thread may read this module's names.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["API_VERSION", "PURE_PYTHON_VARIABLE", "enabled", "speedups"]

logger = logging.getLogger(__name__)

#: Set this environment variable (to anything but "" or "0") before creating a client
#: to run its reader in Python alone even where the C module is built; before kalshi_ws
#: is imported, to run everything in Python (the order-book steps read it then).
PURE_PYTHON_VARIABLE = "KALSHI_WS_PURE_PYTHON"


#: The version of the C module's interface that this Python code needs. The C module
#: says which it implements (``_speedups.API_VERSION``); a module built from another
#: release of kalshi_ws (an editable install updated without a rebuild) is not used.
API_VERSION = 2

#: The C source installed beside this module. The C module carries the SHA-256 of the
#: source it was built from (``_speedups.SOURCE_DIGEST``, set by setup.py): one built
#: from other C code, even with the same interface, is not used either.
_SOURCE = Path(__file__).with_name("_speedups.c")


def _source_digest() -> str | None:
    """The SHA-256 (hex) of the C source beside this module, or None where it is absent."""
    try:
        return hashlib.sha256(_SOURCE.read_bytes()).hexdigest()
    except OSError:
        return None


def _import() -> Any:
    try:
        module = importlib.import_module(__name__.rpartition(".")[0] + "._speedups")
    except ImportError:
        return None
    if getattr(module, "API_VERSION", None) != API_VERSION:
        logger.warning("kalshi_ws._speedups was built from another version of kalshi_ws "
                       "(interface %s, this one needs %s): kalshi_ws runs in Python alone; "
                       "reinstall it (pip install) to rebuild the C speed-ups",
                       getattr(module, "API_VERSION", "unknown"), API_VERSION)
        return None
    digest = _source_digest()
    if digest is not None and getattr(module, "SOURCE_DIGEST", None) != digest:
        logger.warning("kalshi_ws._speedups was built from other C code than %s: kalshi_ws "
                       "runs in Python alone; reinstall it (pip install) to rebuild the C "
                       "speed-ups", _SOURCE)
        return None
    return module


#: The C module, or None where it is not built.
speedups: Any = _import()


def enabled() -> bool:
    """Whether new clients use the C module: it is built, and
    :data:`PURE_PYTHON_VARIABLE` is not set."""
    return speedups is not None and os.environ.get(PURE_PYTHON_VARIABLE, "") in ("", "0")
