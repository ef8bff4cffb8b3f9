"""Stay connected: reconnect with backoff and restore every subscription.

With ``--simulate`` the example kills the fake Kalshi server in the middle of the
stream (a TCP reset, no goodbye), restarts it on the same port a second later, and
shows the client announcing the loss, reconnecting, restoring its subscriptions on the
new connection and carrying on. Sids belong to a connection: the restored
subscriptions get the sids the new connection hands out, and ``Reconnected.sid_map``
maps old to new. This fake server numbers each connection's sids from 1, so here the
map reads ``{1: 1, 2: 2}``; Kalshi may hand out other numbers::

    python examples/stream_reconnect.py --simulate

Against Kalshi it simply streams with reconnection on until you press Ctrl-C::

    python examples/stream_reconnect.py KXHIGHNY-26NOV21-T58
"""

from __future__ import annotations

import argparse
import threading

from kalshi_ws import (
    Backoff,
    Channel,
    ConnectionLost,
    KalshiConfig,
    KalshiStreamClient,
    Reconnected,
    ReconnectPolicy,
    StreamUpdate,
)


def show(item: object) -> None:
    if isinstance(item, StreamUpdate):
        print(f"  {item.type:<18} sid {item.sid} {getattr(item.msg, 'market_ticker', '')}")
    elif isinstance(item, ConnectionLost):
        print(f"!! connection lost: {item.reason} (reconnecting: {item.will_reconnect})")
    elif isinstance(item, Reconnected):
        print(f"!! reconnected after {item.downtime:.2f} s (attempt {item.attempt}); "
              f"sid map (old -> new) {dict(item.sid_map)}")
    else:
        print(f"-- {item!r}")


def simulate(updates_each_side: int) -> int:
    from kalshi_ws.testing import FakeKalshiServer, simulated

    policy = ReconnectPolicy(backoff=Backoff(base=0.25, cap=2.0))
    with simulated() as simulation:
        server = simulation.server
        client = KalshiStreamClient.connect(simulation.config, reconnect=policy)
        try:
            client.subscribe([Channel.TICKER, Channel.TRADE])
            before = client.subscriptions()
            updates = client.iter_updates(timeout=10)
            for _ in range(updates_each_side):
                show(next(updates))

            print("== killing the server ==")
            port, key = server.port, simulation.config.public_key_pem()
            server.stop(abrupt=True)
            threading.Event().wait(1.0)
            print("== restarting the server on the same port ==")
            with FakeKalshiServer(public_key=key, port=port) as restarted:
                restarted.start_simulation(interval=0.02, trades=0.4)
                seen = 0
                reconnected = False
                for item in updates:  # updates queued before the kill come first
                    show(item)
                    reconnected = reconnected or isinstance(item, Reconnected)
                    seen += reconnected and isinstance(item, StreamUpdate)
                    if seen >= updates_each_side:
                        break
                print(f"subscriptions before: {[(Channel(s.channel).value, s.sid) for s in before]}")
                print(f"subscriptions after:  "
                      f"{[(Channel(s.channel).value, s.sid) for s in client.subscriptions()]}")
                client.close()
        finally:
            client.close()
    return 0


def live(markets: list[str]) -> int:
    with KalshiStreamClient.connect(KalshiConfig.from_env(), reconnect=True) as client:
        client.subscribe([Channel.TICKER, Channel.TRADE], markets or None)
        try:
            for item in client.iter_updates():
                show(item)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("markets", nargs="*")
    parser.add_argument("--simulate", action="store_true", help="demonstrate with a fake server")
    parser.add_argument("--updates", type=int, default=5, help="updates shown on each side")
    args = parser.parse_args(argv)
    return simulate(args.updates) if args.simulate else live(args.markets)


if __name__ == "__main__":
    raise SystemExit(main())
