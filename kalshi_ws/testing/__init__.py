"""Offline testing tools shipped with kalshi_ws: a fake Kalshi server and a market simulator.

Use them in your own tests to run your bot against a real WebSocket server on
127.0.0.1 with no account and no network.
"""

try:
    import websockets as _websockets  # noqa: F401 - the extra this package needs
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "kalshi_ws.testing needs the 'testing' extra (the websockets library): "
        'pip install "kalshi-ws[testing]"', name=__name__) from _exc

from .server import FakeKalshiServer, ServerSession, ServerSubscription
from .simulation import Simulation, simulated
from .simulator import BookChange, MarketSimulator, TradePrint

__all__ = [
    "BookChange",
    "FakeKalshiServer",
    "MarketSimulator",
    "ServerSession",
    "ServerSubscription",
    "Simulation",
    "TradePrint",
    "simulated",
]
