"""config_from_env(): your Kalshi key from the environment, or the simulator on request.

Scripts, the README's examples and the ``examples/`` directory start with one line::

    config = kalshi_ws.config_from_env()

With real credentials in the environment this is exactly
:meth:`KalshiConfig.from_env`. With ``KALSHI_SIMULATE=1`` it starts the built-in
simulated exchange (a fake Kalshi server on 127.0.0.1 with a throwaway key; needs the
``testing`` extra) once per process, stops it at interpreter exit, and returns a
config that reaches it, so the same code runs offline unchanged.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import KalshiConfig

if TYPE_CHECKING:
    from .testing import Simulation

__all__ = ["config_from_env", "simulating"]

logger = logging.getLogger(__name__)

_OFF = frozenset({"", "0", "false", "no", "off"})
_lock = threading.Lock()
_shared: tuple[int, Simulation] | None = None  # (pid, simulation) of this process


def simulating(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``KALSHI_SIMULATE`` asks for the simulator (set, and not 0/false/no/off)."""
    env = os.environ if environ is None else environ
    return env.get("KALSHI_SIMULATE", "").strip().lower() not in _OFF


def config_from_env(environ: Mapping[str, str] | None = None) -> KalshiConfig:
    """The config to use: the simulator's with ``KALSHI_SIMULATE=1``, else your key's.

    Without ``KALSHI_SIMULATE`` this is :meth:`KalshiConfig.from_env` (it reads
    ``KALSHI_API_KEY_ID``, ``KALSHI_PRIVATE_KEY_PATH`` and the rest). With it, a
    simulated exchange is started on first use in this process (the same one is
    returned afterwards, a new one in a forked child) and stopped at interpreter exit.
    May be called from any thread.

    Args:
        environ: The variables to read (default ``os.environ``).

    Raises:
        ConfigurationError: a credential variable is missing or unusable.
        ImportError: ``KALSHI_SIMULATE`` is set but the ``testing`` extra is missing.
    """
    if not simulating(environ):
        return KalshiConfig.from_env(environ)
    return _process_simulation().config


def _process_simulation() -> Simulation:
    global _shared
    with _lock:
        if _shared is not None and _shared[0] == os.getpid():
            return _shared[1]
        from .testing import simulated

        simulation = simulated().start()
        _shared = (os.getpid(), simulation)
        atexit.register(simulation.stop)
    # Logged outside the lock: a handler (user code) may call config_from_env() too.
    logger.info("KALSHI_SIMULATE is set: using the simulated exchange at %s",
                simulation.server.url)
    return simulation
