"""The command half of the client's facade: subscribe, unsubscribe, update, list.

:class:`CommandMethods` is a base of :class:`~kalshi_ws.client.KalshiStreamClient`.
Each method checks its arguments, lets the protocol build the command under the
session lock, sends it and blocks the calling thread until Kalshi answers (see
:meth:`kalshi_ws._session.Session.command`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._session import Session
from .config import check_timeout
from .exceptions import ConcurrencyError
from .models import Channel, SubscribeResult, SubscriptionInfo
from .protocol import KalshiProtocol

__all__ = ["CommandMethods"]


class CommandMethods:
    """Commands of one client (see KalshiStreamClient). Any thread but the reader's."""

    _session: Session

    # ------------------------------------------------------------------ commands

    def subscribe(
        self,
        channels: Iterable[Channel | str] | Channel | str,
        market_tickers: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SubscribeResult:
        """Subscribe to channels and wait until Kalshi answers for every one.

        Args:
            channels: :class:`Channel` members or wire names.
            market_tickers: Market filter (required for ``orderbook_delta``).
            timeout: Seconds to wait (default: the client's command timeout).
            **options: Kalshi's subscribe parameters: ``send_initial_snapshot``,
                ``skip_ticker_ack``, ``use_yes_price``, ``market_ids``,
                ``shard_factor``, ``shard_key``, ``user_filter``, ``index_ids``,
                ``underlying_tickers``. Each is checked before sending.
            extra_params: Parameters this library does not know (a new Kalshi option),
                sent as given and unchecked, and again when the subscription is restored.
                A known option here is refused: pass it as a keyword.

        Returns:
            One :class:`Subscription` per accepted channel in ``successful`` and one
            :class:`SubscribeFailure` per refused channel in ``failed``.

        Raises:
            InvalidCommand: refused before sending (e.g. orderbook_delta without markets,
                or a timeout that is not a positive number).
            CommandTimeout: no complete answer in time.
            ConnectionClosed: the connection ended first.
        """
        result: SubscribeResult = self._command(
            lambda p: p.subscribe(channels, market_tickers, options, extra_params), timeout)
        return result

    def unsubscribe(self, sids: Iterable[int] | int, *, timeout: float | None = None,
                    ) -> list[int]:
        """Unsubscribe one or more sids and wait for each ``unsubscribed`` reply.

        Returns:
            The sids unsubscribed.

        Raises:
            CommandError: Kalshi refused (e.g. code 7, unknown sid).
            InvalidCommand, CommandTimeout, ConnectionClosed: as for :meth:`subscribe`.
        """
        done: list[int] = self._command(lambda p: p.unsubscribe(sids), timeout)
        return done

    def update_subscription(
        self,
        sid: int,
        action: str | None = None,
        market_tickers: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> list[str]:
        """Change a subscription and wait for Kalshi's answer.

        Args:
            sid: The subscription.
            action: ``add_markets``, ``delete_markets``, ``get_snapshot``,
                ``subscribe_indices``, ``unsubscribe_indices``, ``indexlist``,
                ``subscribe_underlyings``, ``unsubscribe_underlyings``,
                ``underlying_list``; None when ``extra_params`` carries an action this
                library does not know.
            market_tickers: The markets the action concerns.
            timeout: Seconds to wait (default: the client's command timeout).
            extra_params: Parameters, and an ``"action"``, this library does not know,
                sent as given and unchecked (``{"action": "new_action", "x": 1}``).
            **params: Other parameters (``market_ids``, ``index_ids``,
                ``underlying_tickers``, ``send_initial_snapshot``), checked.

        Returns:
            The list Kalshi reports: the subscription's markets after add/delete, the
            markets snapshotted, or the indices / underlyings.

        Raises:
            CommandError: Kalshi refused (e.g. 13, action not supported by the channel).
            InvalidCommand, CommandTimeout, ConnectionClosed: as for :meth:`subscribe`.
        """
        reported: list[str] = self._command(
            lambda p: p.update_subscription(sid, action, market_tickers, params, extra_params),
            timeout)
        return reported

    def add_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                    timeout: float | None = None, **params: Any) -> list[str]:
        """Add markets to a subscription; returns its market list afterwards."""
        return self.update_subscription(sid, "add_markets", market_tickers,
                                        timeout=timeout, **params)

    def remove_markets(self, sid: int, market_tickers: Iterable[str] | str, *,
                       timeout: float | None = None) -> list[str]:
        """Remove markets from a subscription (wire action ``delete_markets``)."""
        return self.update_subscription(sid, "delete_markets", market_tickers, timeout=timeout)

    def get_snapshot(self, sid: int, market_tickers: Iterable[str] | str, *,
                     timeout: float | None = None) -> list[str]:
        """Ask for fresh order-book snapshots on an ``orderbook_delta`` subscription.

        Returns once the snapshots (or Kalshi's ``ok``) have arrived; the snapshots
        themselves are delivered on the stream, in order.
        """
        return self.update_subscription(sid, "get_snapshot", market_tickers, timeout=timeout)

    def list_subscriptions(self, *, timeout: float | None = None) -> list[SubscriptionInfo]:
        """Ask Kalshi which subscriptions this connection has."""
        infos: list[SubscriptionInfo] = self._command(lambda p: p.list_subscriptions(),
                                                      timeout)
        return infos

    def _command(self, build: Callable[[KalshiProtocol], tuple[int, str]],
                 timeout: float | None) -> Any:
        session = self._session
        session.check_process()
        if threading.current_thread() is session.reader:
            raise ConcurrencyError("commands cannot be sent from the reader thread")
        check_timeout(timeout)
        return session.command(build, session.options.command_timeout if timeout is None
                               else timeout)
