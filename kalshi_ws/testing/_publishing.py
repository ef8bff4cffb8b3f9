"""The fake server's publishing: what tests and the market simulator send to subscribers,
and the data that follows a subscription, as a layer over the shell's sessions.

:class:`Publishing` is a base of :class:`~kalshi_ws.testing.FakeKalshiServer`; its
methods are the server's public publishing API. Frames are built and numbered by each
session's :class:`~kalshi_ws.testing.rules.KalshiRules`; sends run on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from ._replay import ReplayFrame, play, replay_contents
from ._session import ServerCore, ServerSession
from .rules import Outgoing, ServerSubscription
from .simulator import BookChange, MarketSimulator, TradePrint

__all__ = ["Publishing", "book_fingerprint"]


class Publishing(ServerCore):
    """The publishing methods of :class:`~kalshi_ws.testing.FakeKalshiServer`.

    Every method may be called from any thread but the server's event loop; each
    raises ``RuntimeError`` when the server is not running and ``TimeoutError`` when
    its event loop does not finish the work in time (10 seconds; 600 for the bulk
    methods :meth:`publish_many` and :meth:`step_market`).
    """

    simulator: MarketSimulator
    track_books: bool
    book_log: list[tuple[int, int, str, int]]
    replay_speed: float | None
    replay_close: bool
    _replay: list[ReplayFrame] | None
    _simulation: asyncio.Task[None] | None

    def publish(self, channel: str, wire_type: str, msg: Mapping[str, Any], *,
                market_ticker: str | None = None) -> int:
        """Send a message to every subscription of ``channel`` that wants it.

        Args:
            channel: The channel whose subscribers receive it.
            wire_type: The message ``type``.
            msg: The payload (Decimals are sent as strings).
            market_ticker: Deliver only to subscriptions covering this market
                (default: the payload's ``market_ticker``).

        Returns:
            How many frames were sent.

        Raises:
            RuntimeError: the server is not running.
        """
        market = market_ticker if market_ticker is not None else msg.get("market_ticker")
        return self._run_coroutine(self._publish(channel, wire_type, dict(msg), market))

    async def _publish(self, channel: str, wire_type: str, msg: dict[str, Any],
                       market: str | None) -> int:
        sent = 0
        for session, sub in self._receivers(channel, market):
            await session.send(session.frame(sub, wire_type, msg), sub)
            sent += 1
        return sent

    def publish_many(self, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Publish many (channel, type, msg) items in one go, in order.

        Returns:
            How many frames were sent.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> int:
            sent = 0
            for channel, wire_type, msg in items:
                sent += await self._publish(channel, wire_type, dict(msg),
                                            msg.get("market_ticker"))
            return sent
        return self._run_coroutine(run(), timeout=600)

    def send_raw(self, text: str) -> int:
        """Send ``text`` as one text frame to every connected client, as is.

        Returns:
            How many clients it went to.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> int:
            for session in list(self.sessions):
                await session.send_text(text)
            return len(self.sessions)
        return self._run_coroutine(run())

    # ------------------------------------------------------------------ the simulator

    def step_market(self, market: str | None = None, *, count: int = 1,
                    trades: float = 0.0) -> list[BookChange]:
        """Make ``count`` random book changes and stream them to subscribers.

        Args:
            market: Change this market only (default: random markets).
            count: How many changes.
            trades: Probability of a trade (and a ticker update) after each change.

        Returns:
            The changes, in order.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> list[BookChange]:
            changes = []
            for index in range(count):
                changes.append(await self._step(market, trades))
                if index % 32 == 31:
                    await asyncio.sleep(0)  # let commands in, as a real server would
            return changes
        return self._run_coroutine(run(), timeout=600)

    async def _step(self, market: str | None, trades: float) -> BookChange:
        simulator = self.simulator
        change = simulator.step(market)
        await self._broadcast_change(change)
        if trades and simulator.rng.random() < trades:
            await self._broadcast_trade(simulator.trade(change.market))
        return change

    async def _broadcast_change(self, change: BookChange) -> None:
        msgs: dict[bool, dict[str, Any]] = {}  # by use_yes_price, built when first needed
        for session, sub in self._receivers("orderbook_delta", change.market):
            yes = sub.use_yes_price
            if yes not in msgs:
                msgs[yes] = self.simulator.delta_msg(change, use_yes_price=yes)
            frame = session.frame(sub, "orderbook_delta", msgs[yes])
            self._log_book(session, frame, change.market)
            await session.send(frame, sub)

    async def _broadcast_trade(self, trade: TradePrint) -> None:
        await self._publish("trade", "trade", self.simulator.trade_msg(trade), trade.market)
        await self._publish("ticker", "ticker", self.simulator.ticker_msg(trade.market),
                            trade.market)

    def _log_book(self, session: ServerSession, frame: Mapping[str, Any], market: str) -> None:
        if self.track_books:
            book = self.simulator.book(market)
            self.book_log.append((session.number, frame["seq"], market,
                                  book_fingerprint(book["yes"].items(), book["no"].items())))

    def start_simulation(self, interval: float = 0.05, trades: float = 0.2) -> None:
        """Stream random market activity every ``interval`` seconds until stopped.

        Raises:
            RuntimeError: the server is not running.
        """
        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._step(None, trades)

        def start() -> None:
            if self._simulation is None or self._simulation.done():
                self._simulation = asyncio.ensure_future(run())
        self.call(start)

    def stop_simulation(self) -> None:
        """Stop the activity started by :meth:`start_simulation`.

        Raises:
            RuntimeError: the server is not running.
        """
        def stop() -> None:
            if self._simulation is not None:
                self._simulation.cancel()
        self.call(stop)

    def _initial_data(self, session: ServerSession, sub: ServerSubscription,
                      markets: list[str], command_id: int | None) -> list[Outgoing]:
        """The simulator's data after a subscribe, add_markets or get_snapshot (event loop).

        Nothing while replaying: the recording carries its own snapshots.
        """
        if self._replay is not None:
            return []
        if sub.channel == "orderbook_delta":
            return [self._snapshot(session, sub, market, command_id) for market in markets]
        if sub.channel == "ticker" and sub.initial_snapshot:
            return [(session.frame(sub, "ticker", self.simulator.ticker_msg(market)), sub)
                    for market in markets if market in self.simulator.books]
        return []

    def _snapshot(self, session: ServerSession, sub: ServerSubscription, market: str,
                  command_id: int | None) -> Outgoing:
        self.simulator.add_market(market)
        msg = self.simulator.snapshot_msg(market, use_yes_price=sub.use_yes_price)
        frame = session.frame(sub, "orderbook_snapshot", msg, command_id)
        self._log_book(session, frame, market)
        return frame, sub

    # ------------------------------------------------------------------ replay

    def replay_contents(self) -> tuple[list[str], list[str]]:
        """The channels and the markets of the recording being replayed (sorted).

        Any thread; both are empty without ``replay``.
        """
        return replay_contents(self._replay or [])

    def _start_replay(self, session: ServerSession) -> None:
        """Start playing the recording to ``session`` at its first subscription (event loop)."""
        if self._replay is not None and session.replaying is None and session.subscriptions:
            session.replaying = asyncio.ensure_future(
                play(session, self._replay, self.replay_speed, self.replay_close))


def book_fingerprint(yes: Iterable[tuple[Any, Any]], no: Iterable[tuple[Any, Any]]) -> int:
    """A fingerprint of a book's levels (prices and sizes as Decimal, NO side in NO terms)
    that compares books kept in any container or order."""
    return hash((tuple(sorted(yes)), tuple(sorted(no))))
