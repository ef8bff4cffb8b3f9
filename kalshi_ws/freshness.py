"""Freshness: how old the data is, an opt-in alarm when a channel goes silent, and
which unsequenced channels may have lost data across a reconnect.

:class:`FreshnessTracker` keeps, per channel and per order-book market, the time of the
last message and a bounded window of recent latencies (receipt time minus Kalshi's
``sending_ts_ms``, else the payload's ``ts_ms``). Recording costs a few attribute updates
per message; medians are computed only when :meth:`FreshnessTracker.snapshot` is asked.

No clock and no thread here: every method takes the time as an argument, so the rules
are unit-testable. The client calls :meth:`observe` and :meth:`check` on the reader
thread and :meth:`snapshot` from any thread, always holding its ``_lock``.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Container, Iterable, Mapping
from typing import Any

import attrs

from ._wire import MESSAGE_CLASSES
from .exceptions import ConfigurationError
from .models import (
    USER_UNSEQUENCED,
    Channel,
    ChannelResumed,
    ChannelStale,
    Freshness,
    StreamUpdate,
    channel_of,
)

__all__ = ["CHANNEL_WINDOW", "MARKET_WINDOW", "FreshnessTracker", "insert_after",
           "stale_after_table", "unsequenced_channels"]

logger = logging.getLogger(__name__)

#: Latency samples kept per channel and per order-book market (the "recent" window).
CHANNEL_WINDOW = 1024
MARKET_WINDOW = 128

_BOOK = Channel.ORDERBOOK_DELTA
_UPDATE = StreamUpdate
# Message classes with a ``ts_ms`` field (asking the others would cost an exception).
_TIMED = frozenset(cls for cls in MESSAGE_CLASSES.values()
                   if any(f.name == "ts_ms" for f in attrs.fields(cls)))
_NOTHING = object()


class _Track:
    """The freshness state of one channel or one market."""

    __slots__ = ("last", "latencies", "stale", "stale_since", "watched", "window")

    def __init__(self, window: int) -> None:
        self.last: float | None = None  # monotonic time of the last message
        self.watched: float | None = None  # first seen subscribed by check()
        self.window = window
        # Made at the first sample (see FreshnessTracker.observe): an empty deque costs
        # 600 bytes, and most books of a large set are quiet.
        self.latencies: deque[int] | None = None
        self.stale = False
        self.stale_since: float | None = None  # the silence started (for silent_for)

    def freshness(self, now: float) -> Freshness:
        samples = sorted(self.latencies or ())
        count = len(samples)
        return Freshness(
            since_last=None if self.last is None else max(0.0, now - self.last),
            latency_median_ms=samples[(count - 1) // 2] if count else None,  # median_low
            latency_p99_ms=samples[max(0, -(-99 * count // 100) - 1)] if count else None,
            samples=count, stale=self.stale)


#: A book's latency samples are signed 64-bit integers in a bytearray (the collector
#: does not track a bytearray); a hostile timestamp is clamped to that range.
_SAMPLE = struct.Struct("q")
_SAMPLE_LIMIT = 2**63 - 1
_WINDOW_BYTES = MARKET_WINDOW * _SAMPLE.size


class _BookTimes:
    """Per order-book market: the time of its last message and its recent latencies.

    Held in flat dicts of floats and bytearrays, neither of which the garbage
    collector tracks: 100,000 books add no 100,000 objects that each full collection
    must walk (an object and a deque per market made a full collection cost the whole
    heap). Each market's samples are 64-bit integers appended to a bytearray; once it
    holds two windows' worth, the older window is cut off (one move per
    ``MARKET_WINDOW`` samples), and the window is its last ``MARKET_WINDOW`` samples.
    """

    __slots__ = ("last", "samples")

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.samples: dict[str, bytearray] = {}

    def freshness(self, market: str, now: float) -> Freshness:
        samples = sorted(memoryview(self.samples.get(market, b""))[-_WINDOW_BYTES:].cast("q"))
        count = len(samples)
        return Freshness(
            since_last=max(0.0, now - self.last[market]),
            latency_median_ms=samples[(count - 1) // 2] if count else None,  # median_low
            latency_p99_ms=samples[max(0, -(-99 * count // 100) - 1)] if count else None,
            samples=count, stale=False)

    def forget(self, keep: Container[str]) -> None:
        for market in [m for m in self.last if m not in keep]:
            del self.last[market]
            self.samples.pop(market, None)


def stale_after_table(value: Any) -> tuple[dict[str, float], float | None]:
    """Validate ``stale_after``: seconds for every channel, or a channel -> seconds mapping.

    Returns:
        (per-channel thresholds by wire name, the threshold for every other channel).

    Raises:
        ConfigurationError: not None, a positive number, or a mapping of them.
    """
    if value is None:
        return {}, None
    if isinstance(value, Mapping):
        table = {}
        for channel, seconds in value.items():
            table[str(channel_of(str(channel)))] = _seconds(seconds, f"stale_after[{channel}]")
        return table, None
    return {}, _seconds(value, "stale_after")


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


class FreshnessTracker:
    """Per channel and per book market: last message time, recent latency, staleness.

    Args:
        stale_after: As accepted by :func:`stale_after_table` (None: no alarms).

    Not thread-safe: the caller serialises every call.
    """

    def __init__(self, stale_after: Any = None) -> None:
        self._stale_after, self._stale_default = stale_after_table(stale_after)
        self.alarms_enabled = bool(self._stale_after) or self._stale_default is not None
        self._channels: dict[Any, _Track] = {}
        self._books = _BookTimes()

    def threshold(self, channel: Any) -> float | None:
        """Seconds of silence after which ``channel`` is stale, or None (no alarm)."""
        return self._stale_after.get(str(channel), self._stale_default)

    def observe(self, items: list[Any], received_ms: int, now: float) -> list[Any] | None:
        """Record a batch of delivered items, all received at the same time.

        Args:
            items: Stream items in delivery order (system messages are skipped).
            received_ms: Receipt time in unix milliseconds (wall clock).
            now: Receipt time on the monotonic clock (for silences).

        Returns:
            None; or, when a stale channel delivers again, a new list of the items with
            a :class:`ChannelResumed` right before that channel's first message.
        """
        resumed = None
        channel: Any = _NOTHING
        track: Any = None
        latencies: Any = None
        channels = self._channels
        book_last, book_samples = self._books.last, self._books.samples
        pack, two_windows = _SAMPLE.pack, 2 * _WINDOW_BYTES
        timed, update, book_channel = _TIMED, _UPDATE, _BOOK
        # type(x) rather than x.__class__: type() with one argument is a fast builtin.
        for item in items:
            if type(item) is not update:
                continue
            if item.channel is not channel:  # batches mostly hold runs of one channel
                channel = item.channel
                if not channel:  # an unreadable frame belongs to no channel
                    channel = _NOTHING
                    continue
                # Once per run: every item of the batch has the same times, and a stale
                # channel resumes at its first item.
                track = channels.get(channel) or self._track_of(channel)
                if track.stale:
                    resumed = resumed or []
                    resumed.append((item, self._resume(channel, track, now)))
                track.last = now
                latencies = track.latencies
            msg = item.msg
            sent = item.sending_ts_ms
            if sent is None and type(msg) in timed:
                sent = msg.ts_ms  # type: ignore[union-attr]  # _TIMED have it
            latency = None
            if type(sent) is int:
                latency = received_ms - sent  # pyright: ignore[reportOperatorIssue]
                if latencies is None:
                    latencies = track.latencies = deque(maxlen=track.window)
                latencies.append(latency)
            if channel is not book_channel:
                continue
            # Per book market: inlined (a call per delta would cost more than the work).
            market = getattr(msg, "market_ticker", None)
            if type(market) is not str and not isinstance(market, str):
                continue
            book_last[market] = now
            if latency is not None:
                try:
                    sample = pack(latency)
                except struct.error:  # a hostile timestamp: clamped
                    sample = pack(_SAMPLE_LIMIT if latency > 0 else -_SAMPLE_LIMIT)
                samples = book_samples.get(market)
                if samples is None:
                    book_samples[market] = bytearray(sample)
                else:
                    samples += sample
                    if len(samples) >= two_windows:
                        del samples[:_WINDOW_BYTES]
        return None if resumed is None else _insert_resumed(items, resumed)

    def _track_of(self, channel: Any) -> _Track:
        """The channel's track, made on first sight."""
        track = self._channels.get(channel)
        if track is None:
            track = self._channels[channel] = _Track(CHANNEL_WINDOW)
        return track

    @staticmethod
    def _resume(channel: Any, track: _Track, now: float) -> ChannelResumed:
        since = track.stale_since if track.stale_since is not None else now
        track.stale = False
        track.stale_since = None
        logger.info("channel %s delivers again after %.1f s of silence", channel, now - since)
        return ChannelResumed(channel=channel, silent_for=max(0.0, now - since))

    def check(self, subscribed: Iterable[Any], now: float) -> list[Any]:
        """Raise the staleness alarm of every subscribed channel silent for too long.

        A channel is watched from the first check that sees it subscribed. A channel no
        longer subscribed raises no alarm; if it was stale, its next message (after a new
        subscription) is announced by ChannelResumed.

        Args:
            subscribed: The channels of the live subscriptions.
            now: The monotonic time.

        Returns:
            New :class:`ChannelStale` messages, in the order of ``subscribed``.
        """
        if not self.alarms_enabled:
            return []
        alarms: list[Any] = []
        live = set()
        for channel in subscribed:
            if channel in live:
                continue
            live.add(channel)
            limit = self.threshold(channel)
            if limit is None:
                continue
            track = self._channels.get(channel)
            if track is None:
                track = self._channels[channel] = _Track(CHANNEL_WINDOW)
            if track.watched is None:
                track.watched = now  # silence counts from the first check at the latest
            since = track.watched if track.last is None else max(track.last, track.watched)
            silent = now - since
            if not track.stale and silent > limit:
                track.stale = True
                track.stale_since = since
                logger.warning("channel %s silent for %.1f s (stale_after=%g)", channel,
                               silent, limit)
                alarms.append(ChannelStale(channel=channel, silent_for=silent,
                                           stale_after=limit))
        for channel, track in self._channels.items():
            if channel not in live:
                # Unsubscribed: watched afresh if subscribed again. A stale one stays
                # stale, so that its next message, if any, is announced by ChannelResumed.
                track.watched = None
        return alarms

    def forget_markets(self, keep: Container[str]) -> None:
        """Drop the per-market records of books no longer subscribed (bounded memory)."""
        self._books.forget(keep)

    def snapshot(self, now: float, channels: Container[str] | None = None,
                 markets: Container[str] | None = None,
                 ) -> tuple[dict[str, Freshness], dict[str, Freshness]]:
        """(per channel, per book market) :class:`Freshness` at monotonic time ``now``.

        Args:
            now: The monotonic time.
            channels: Report only these channels (wire names): the live subscriptions.
            markets: Report only these book markets.
        """
        per_channel = {str(name): track.freshness(now)
                       for name, track in self._channels.items()
                       if (track.last is not None or track.latencies)
                       and (channels is None or str(name) in channels)}
        books = self._books
        per_market = {name: books.freshness(name, now) for name in books.last
                      if markets is None or name in markets}
        return dict(sorted(per_channel.items())), dict(sorted(per_market.items()))


def unsequenced_channels(subscriptions: Iterable[Any]) -> tuple[Channel | str, ...]:
    """The user channels without ``seq`` (fill, user_orders, market_positions) among
    ``subscriptions`` (objects with a ``channel``), each once, in wire-name order."""
    found = {str(s.channel): s.channel for s in subscriptions if s.channel in USER_UNSEQUENCED}
    return tuple(found[name] for name in sorted(found))


def insert_after(items: list[Any], anchor: Any, extra: list[Any]) -> list[Any]:
    """``items`` with ``extra`` right after ``anchor`` (found by identity; else at the end)."""
    if not extra:
        return items
    for index, item in enumerate(items):
        if item is anchor:
            return items[:index + 1] + extra + items[index + 1:]
    return items + extra


def _insert_resumed(items: list[Any], resumed: list[tuple[Any, Any]]) -> list[Any]:
    """``items`` with each ChannelResumed right before the item it was made for."""
    before = {id(item): message for item, message in resumed}
    result: list[Any] = []
    for item in items:
        message = before.get(id(item))
        if message is not None:
            result.append(message)
        result.append(item)
    return result
