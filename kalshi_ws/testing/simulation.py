"""One call for a complete offline setup: fake server, simulated markets, a config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import KalshiConfig
from .server import FakeKalshiServer

__all__ = ["Simulation", "simulated"]


class Simulation:
    """A fake Kalshi server whose markets move on their own, and a config that reaches it.

    A throwaway RSA key is generated; nothing leaves 127.0.0.1. Use it as a context
    manager in scripts and tests, or ``start()`` / ``stop()`` it in a REPL::

        with simulated() as sim, KalshiStreamClient.connect(sim.config) as client:
            client.subscribe(["ticker"])

    Args:
        markets: Extra market tickers to simulate (besides the simulator's own).
        interval: Seconds between simulated book changes.
        trades: Probability of a trade (and a ticker update) after each change.
        **server_options: Passed to :class:`FakeKalshiServer` (e.g. ``port=``).
    """

    def __init__(self, markets: Iterable[str] = (), *, interval: float = 0.02,
                 trades: float = 0.4, **server_options: Any) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.server = FakeKalshiServer(public_key=key.public_key(), **server_options)
        for market in markets:
            self.server.simulator.add_market(market)
        self._key = key
        self._interval = interval
        self._trades = trades
        self._config: KalshiConfig | None = None
        self._running = False

    @property
    def config(self) -> KalshiConfig:
        """A config that reaches the fake server (its throwaway key, its URL).

        Raises:
            RuntimeError: the simulation has not been started yet.
        """
        if self._config is None:
            raise RuntimeError("the simulation is not started: use `with simulated() as "
                               "simulation:` or `simulation = simulated().start()`")
        return self._config

    @property
    def running(self) -> bool:
        """Whether the simulation has been started and not stopped."""
        return self._running

    def start(self) -> Simulation:
        """Start the server and the market activity; returns self (config is then set)."""
        self.server.start()
        self.server.start_simulation(interval=self._interval, trades=self._trades)
        self._config = KalshiConfig("simulated-key", self._key, ws_url=self.server.url)
        self._running = True
        return self

    def stop(self) -> None:
        """Stop the server (connected clients see the connection close)."""
        self.server.stop()
        self._running = False

    def __repr__(self) -> str:
        where = self.server.url if self.running else \
            "stopped" if self._config is not None else "not started"
        return (f"<Simulation {where} markets={self.markets!r} "
                f"interval={self._interval:g}s trades={self._trades:g}>")

    @property
    def markets(self) -> list[str]:
        """The simulated market tickers."""
        return list(self.server.simulator.markets)

    def __enter__(self) -> Simulation:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def simulated(markets: Iterable[str] = (), **options: Any) -> Simulation:
    """A :class:`Simulation` (not started yet: use ``with`` or ``.start()``)."""
    return Simulation(markets, **options)
