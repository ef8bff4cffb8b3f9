"""``python -m kalshi_ws``: the ``kalshi-ws`` command."""

import sys

from .cli import main

sys.exit(main())
