"""One client per process, for web apps under pre-forking servers (gunicorn, uWSGI).

Threads do not survive ``fork()``: a client created in a master process is dead in its
workers (and raises :class:`ConcurrencyError` there instead of hanging). The rule is
therefore "never at import time; lazily, once per process", which this class packages::

    kalshi = PerProcessClient(lambda: KalshiStreamClient.connect(config, reconnect=True))

    def view(request):
        client = kalshi.get()   # created on the first request of each worker
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from .client import KalshiStreamClient

__all__ = ["PerProcessClient"]

logger = logging.getLogger(__name__)


class PerProcessClient:
    """Creates a client on first use in each process and closes it at interpreter exit.

    Args:
        factory: Connects and sets up a client (subscriptions, callbacks). Called at
            most once per process at a time, on the first :meth:`get`, and again if the
            client ended (closed, or lost for good).

    Thread-safe: any number of request threads may call :meth:`get` at once.
    """

    def __init__(self, factory: Callable[[], KalshiStreamClient]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: KalshiStreamClient | None = None
        self._pid: int | None = None
        self._exit_hook_pid: int | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_inherited)

    def _forget_inherited(self) -> None:
        """In a forked child: drop the parent's client (its threads are gone) and lock."""
        self._lock = threading.Lock()
        self._client = None
        self._pid = os.getpid()

    def get(self) -> KalshiStreamClient:
        """The client of this process, connecting it first if needed.

        Blocks while the factory connects. Raises whatever the factory raises.
        """
        pid = os.getpid()
        client = self._client
        if client is not None and self._pid == pid and not client.closed:
            return client
        with self._lock:
            if self._pid != pid:
                self._client = None  # inherited (fork without hooks): leave it alone
                self._pid = pid
            client = self._client
            if client is None or client.closed:
                client = self._factory()
                self._client = client
                if self._exit_hook_pid != pid:
                    atexit.register(self.close)
                    self._exit_hook_pid = pid
                logger.info("process %d connected its Kalshi client", pid)
            return client

    @property
    def created(self) -> bool:
        """Whether this process has a client (no connection is made to find out)."""
        return self._client is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Close this process's client, if it has one. Safe to call more than once."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            self._client = None
            client.close()
