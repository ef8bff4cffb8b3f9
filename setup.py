"""Shim for tools that still call setup.py; all metadata lives in setup.cfg.

The one thing setup.cfg cannot say: the optional C parser of learned frame shapes,
``kalshi_ws._speedups`` (see kalshi_ws/_shapes.py). It is built where a C compiler and
Python's headers are found; where the build fails, the install goes on without it and
the same shapes are read in Python, with the same results. Set KALSHI_WS_NO_EXTENSIONS
to anything but "" or "0" to skip the build.
"""

import hashlib
import os

from setuptools import Extension, setup

SKIP = os.environ.get("KALSHI_WS_NO_EXTENSIONS", "") not in ("", "0")
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kalshi_ws", "_speedups.c")
# The module says which C code it was built from; kalshi_ws uses no module built from
# other code (an editable install updated without a rebuild: see kalshi_ws/_compiled.py).
try:
    with open(SOURCE, "rb") as source:
        DIGEST = hashlib.sha256(source.read()).hexdigest()
except OSError:  # no C source: nothing to build (the optional build then fails quietly)
    DIGEST = ""

setup(
    ext_modules=[] if SKIP else [
        Extension("kalshi_ws._speedups", ["kalshi_ws/_speedups.c"], optional=True,
                  define_macros=[("SOURCE_DIGEST", f'"{DIGEST}"')]),
    ],
)
