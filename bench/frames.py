"""Deterministic, realistic Kalshi server frames for the benchmark.

A frame set imitates a busy market-data connection subscribed to ``orderbook_delta``
(sid 1), ``ticker`` (sid 2) and ``trade`` (sid 3) on a handful of markets, shaped as
Kalshi sends them today (compact JSON, fixed-point strings, see
``shared/kalshi-ws-protocol.md`` section 5):

* first one ``orderbook_snapshot`` per market (sid 1, seq 1..k), so books can be built;
* then about 70% ``orderbook_delta`` (sid 1, seq continuing), 20% ``ticker`` (sid 2,
  no ``seq``) and 10% ``trade`` (sid 3, its own seq from 1).

Deltas follow a model book per market (they change existing levels, open new ones and
remove levels exactly), so the frames also make sense to an order-book consumer.

Everything is generated from a seed with :mod:`random`, so a run is reproducible. The
frames are kept as (prefix, seq, suffix) pieces, which lets a longer stream be made
by replaying the base stream with every ``seq`` shifted (each replay starts with the
snapshots again, which reset the books, so a replay stays consistent).
"""

from __future__ import annotations

import random
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "CHANNEL_SIDS",
    "FrameSet",
    "build_frames",
    "build_scale_frames",
    "scale_markets",
    "server_frame",
    "stamped_trade_frame",
]

#: The sid the blast server answers for each channel (the frames use these).
CHANNEL_SIDS: dict[str, int] = {"orderbook_delta": 1, "ticker": 2, "trade": 3}

#: Markets of the stream: realistic tickers of busy Kalshi series.
MARKETS: tuple[str, ...] = (
    "KXHIGHNY-26NOV21-T58",
    "KXHIGHCHI-26NOV21-B44.5",
    "KXBTCD-26NOV2117-T98249.99",
    "KXETHD-26NOV2117-T3249.99",
    "KXINXU-26NOV21H1600-T6874.9999",
    "KXNBAGAME-26NOV21LALBOS-LAL",
    "KXNFLGAME-26NOV22KCBUF-KC",
    "KXFEDDECISION-26DEC-H0",
)

_BASE_TS_MS = 1_795_273_200_000  # 2026-11-21T15:00:00Z
_BASE_SECONDS_OF_DAY = 15 * 3600


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final WebSocket frame from a server (text by default)."""
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def stamped_trade_frame(seq: int, stamp_ns: int, market: str = MARKETS[0]) -> bytes:
    """A ``trade`` frame (sid 3) whose ``trade_id`` carries a send time in ns.

    The latency mode of the blast server sends only these; the receiver computes
    ``time.monotonic_ns() - int(trade_id)``.
    """
    payload = (
        f'{{"type":"trade","sid":3,"seq":{seq},"msg":{{"trade_id":"{stamp_ns}",'
        f'"market_ticker":"{market}","yes_price_dollars":"0.3400","no_price_dollars":"0.6600",'
        '"count_fp":"12.00","taker_side":"no","taker_outcome_side":"no",'
        '"taker_book_side":"ask","is_block_trade":false,"ts":1795273339,'
        '"ts_ms":1795273339874}}'
    ).encode()
    return server_frame(payload)


@dataclass
class FrameSet:
    """A stream of server frames, as JSON payload pieces.

    Attributes:
        seed: The seed the stream was generated from.
        markets: The markets the frames are about.
        pieces: Per frame ``(prefix, seq, suffix)``; the payload is
            ``prefix + str(seq) + suffix``, or just ``prefix`` when seq is None.
        sids: Per frame, the sid it travels on (its seq counter).
        kinds: Count of frames per wire type.
    """

    seed: int
    markets: tuple[str, ...]
    pieces: list[tuple[bytes, int | None, bytes]]
    sids: list[int]
    kinds: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def channels(self) -> list[str]:
        """The channels a client must subscribe to receive this stream."""
        return list(CHANNEL_SIDS)

    def payloads(self, count: int | None = None) -> Iterable[bytes]:
        """JSON payloads of the first ``count`` frames (default: all).

        Past the end of the base stream the stream is replayed with every sequenced
        frame's seq shifted by the seqs already used on its sid, so the seqs stay
        contiguous per sid.
        """
        total = len(self.pieces) if count is None else count
        per_pass: dict[int, int] = {}
        for sid, (_, seq, _) in zip(self.sids, self.pieces):
            if seq is not None:
                per_pass[sid] = per_pass.get(sid, 0) + 1
        produced = 0
        replay = 0
        while produced < total:
            for sid, (prefix, seq, suffix) in zip(self.sids, self.pieces):
                if produced >= total:
                    break
                if seq is None:
                    yield prefix
                else:
                    shifted = seq + replay * per_pass[sid]
                    yield b"%s%d%s" % (prefix, shifted, suffix)
                produced += 1
            replay += 1

    def encode(self, count: int | None = None) -> tuple[bytes, list[int]]:
        """Server frames of the first ``count`` frames, as one buffer.

        Returns:
            The bytes to write, and the size of each frame's payload (for statistics).
        """
        frames = []
        sizes = []
        for payload in self.payloads(count):
            frames.append(server_frame(payload))
            sizes.append(len(payload))
        return b"".join(frames), sizes


def _fp(hundredths: int) -> str:
    """A fixed-point count string with two decimals (``"45.50"``)."""
    sign = "-" if hundredths < 0 else ""
    hundredths = abs(hundredths)
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


def _dollars(cents: int) -> str:
    """A dollar string with four decimals (``"0.3400"``)."""
    return f"{cents // 100}.{cents % 100:02d}00"


def _iso(ts_ms: int) -> str:
    """RFC 3339 UTC time with milliseconds, for the deprecated ``ts``/``time`` fields."""
    offset = ts_ms - _BASE_TS_MS
    seconds_of_day = (_BASE_SECONDS_OF_DAY + offset // 1000) % 86400
    hours, rest = divmod(seconds_of_day, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"2026-11-21T{hours:02d}:{minutes:02d}:{seconds:02d}.{offset % 1000:03d}Z"


class _Market:
    """The generator's model of one market: its book and ticker counters."""

    def __init__(self, ticker: str, rng: random.Random) -> None:
        self.ticker = ticker
        self.market_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        mid = rng.randint(15, 85)
        self.book: dict[str, dict[int, int]] = {"yes": {}, "no": {}}
        for side, top in (("yes", mid - 1), ("no", 99 - mid)):
            for price in range(max(1, top - rng.randint(8, 25)), top + 1):
                if rng.random() < 0.8:
                    self.book[side][price] = rng.randint(1, 500) * 100 + rng.choice(
                        (0, 0, 0, 50, 25))
        self.last_price = mid
        self.volume = rng.randint(1_000, 500_000) * 100
        self.open_interest = self.volume // 3

    def best(self, side: str) -> tuple[int, int]:
        levels = self.book[side]
        if not levels:
            return 0, 0
        price = max(levels)
        return price, levels[price]


def _snapshot(market: _Market) -> bytes:
    sides = []
    for side in ("yes", "no"):
        levels = market.book[side]
        if levels:
            text = ",".join(f'["{_dollars(p)}","{_fp(levels[p])}"]' for p in sorted(levels))
            sides.append(f'"{side}_dollars_fp":[{text}]')
    body = ",".join([f'"market_ticker":"{market.ticker}"',
                     f'"market_id":"{market.market_id}"', *sides])
    return ('{"type":"orderbook_snapshot","sid":1,"seq":' + "\x00" + ',"msg":{' + body
            + "}}").encode()


def _delta(market: _Market, rng: random.Random, ts_ms: int) -> bytes:
    side, other = ("yes", "no") if rng.random() < 0.5 else ("no", "yes")
    levels = market.book[side]
    depth = len(levels)
    roll = rng.random()
    # Keep each ladder around 15-40 levels: open levels when thin, remove when deep.
    p_new = 0.35 if depth < 15 else 0.15 if depth < 40 else 0.02
    p_remove = 0.02 if depth < 15 else 0.12 if depth < 40 else 0.30
    if not levels or roll < p_new:
        # Open a level below the opposite side's implied ask (never cross the book).
        other_levels = market.book[other]
        ceiling = 99 - max(other_levels) if other_levels else 98
        price = max(1, ceiling - int(rng.expovariate(0.12)))
        delta = rng.randint(1, 200) * 100
    elif roll < p_new + p_remove:
        price = rng.choice(list(levels))
        delta = -levels[price]
    else:
        # Change a level near the top: the busiest part of a real book.
        best = max(levels)
        price = best - int(rng.expovariate(0.5))
        if price not in levels:
            price = best
        held = levels[price]
        if held > 1 and rng.random() < 0.45:
            delta = -rng.randint(1, held - 1)
        else:
            delta = rng.randint(1, 300) * 100 + rng.choice((0, 0, 50))
    new = levels.get(price, 0) + delta
    if new > 0:
        levels[price] = new
    else:
        levels.pop(price, None)
    body = (f'"market_ticker":"{market.ticker}","market_id":"{market.market_id}",'
            f'"price_dollars":"{_dollars(price)}","delta_fp":"{_fp(delta)}","side":"{side}",'
            f'"ts":"{_iso(ts_ms)}","ts_ms":{ts_ms}')
    return ('{"type":"orderbook_delta","sid":1,"seq":\x00,"msg":{' + body + "}}").encode()


def _ticker(market: _Market, ts_ms: int) -> bytes:
    bid, bid_size = market.best("yes")
    no_bid, ask_size = market.best("no")
    ask = 100 - no_bid if no_bid else 100
    body = (f'"market_id":"{market.market_id}","market_ticker":"{market.ticker}",'
            f'"price_dollars":"{_dollars(market.last_price)}",'
            f'"yes_bid_dollars":"{_dollars(bid)}","yes_ask_dollars":"{_dollars(ask)}",'
            f'"yes_bid_size_fp":"{_fp(bid_size)}","yes_ask_size_fp":"{_fp(ask_size)}",'
            f'"last_trade_size_fp":"12.00","volume_fp":"{_fp(market.volume)}",'
            f'"open_interest_fp":"{_fp(market.open_interest)}",'
            f'"dollar_volume":{market.volume // 250},'
            f'"dollar_open_interest":{market.open_interest // 250},'
            f'"ts":{ts_ms // 1000},"ts_ms":{ts_ms},"time":"{_iso(ts_ms)}"')
    return ('{"type":"ticker","sid":2,"msg":{' + body + "}}").encode()


def _trade(market: _Market, rng: random.Random, ts_ms: int) -> bytes:
    price = max(1, min(99, market.last_price + rng.randint(-2, 2)))
    market.last_price = price
    count = rng.randint(1, 250) * 100 + (rng.choice((0, 37, 50)) if rng.random() < 0.17 else 0)
    market.volume += count
    market.open_interest += count // 2
    outcome = "yes" if rng.random() < 0.5 else "no"
    body = (f'"trade_id":"{uuid.UUID(int=rng.getrandbits(128), version=4)}",'
            f'"market_ticker":"{market.ticker}",'
            f'"yes_price_dollars":"{_dollars(price)}","no_price_dollars":"{_dollars(100 - price)}",'
            f'"count_fp":"{_fp(count)}","taker_side":"{outcome}",'
            f'"taker_outcome_side":"{outcome}",'
            f'"taker_book_side":"{"bid" if outcome == "yes" else "ask"}",'
            f'"is_block_trade":false,"ts":{ts_ms // 1000},"ts_ms":{ts_ms}')
    return ('{"type":"trade","sid":3,"seq":\x00,"msg":{' + body + "}}").encode()


def build_frames(count: int, seed: int = 20261121,
                 markets: tuple[str, ...] = MARKETS) -> FrameSet:
    """Generate ``count`` frames (at least one snapshot per market).

    Args:
        count: Total frames, snapshots included.
        seed: Seed of the generator: the same seed gives the same bytes.
        markets: The market tickers.

    Returns:
        The frame set.
    """
    rng = random.Random(seed)
    models = [_Market(ticker, rng) for ticker in markets]
    # Busy markets are busier: weights falling off like a real mix.
    weights = [1.0 / (rank + 1) for rank in range(len(models))]
    pieces: list[tuple[bytes, int | None, bytes]] = []
    sids: list[int] = []
    kinds: dict[str, int] = {}
    seqs = {1: 0, 3: 0}
    ts_ms = _BASE_TS_MS

    def add(kind: str, sid: int, payload: bytes) -> None:
        kinds[kind] = kinds.get(kind, 0) + 1
        sids.append(sid)
        if sid in seqs:
            seqs[sid] += 1
            prefix, _, suffix = payload.partition(b"\x00")
            pieces.append((prefix, seqs[sid], suffix))
        else:
            pieces.append((payload, None, b""))

    for model in models:
        add("orderbook_snapshot", 1, _snapshot(model))
    while len(pieces) < count:
        ts_ms += rng.randint(0, 3)
        market = rng.choices(models, weights)[0]
        roll = rng.random()
        if roll < 0.70:
            add("orderbook_delta", 1, _delta(market, rng, ts_ms))
        elif roll < 0.90:
            add("ticker", 2, _ticker(market, ts_ms))
        else:
            add("trade", 3, _trade(market, rng, ts_ms))
    return FrameSet(seed=seed, markets=tuple(markets), pieces=pieces, sids=sids, kinds=kinds)


# ---------------------------------------------------------------------- the scale section

#: Levels per side of a scale snapshot.
SCALE_LEVELS = 20


def scale_markets(count: int) -> list[str]:
    """The ``count`` market tickers of the scale section (server and client agree)."""
    return [f"KXSCALE-26NOV21-M{i:06d}" for i in range(count)]


def build_scale_frames(markets: int, deltas: int,
                       levels: int = SCALE_LEVELS) -> tuple[bytes, list[int]]:
    """The scale stream: one snapshot per market, then ``deltas`` deltas round-robin.

    Everything travels on sid 1 (``orderbook_delta``) with contiguous seqs: snapshots
    1..M, then the deltas. Each snapshot has ``levels`` levels a side (yes and no prices
    0.01 up to ``levels`` cents: the book never crosses); the k-th delta goes to market
    ``k % M`` and moves one level by 5.00 contracts, up on its first visit and back down
    40 visits later, so no level ever empties. Built fast and deterministically (no
    random numbers): 100,000 markets take a few seconds.

    Returns:
        The encoded server frames as one buffer, and each frame's payload size.
    """
    tickers = scale_markets(markets)
    prices = [_dollars(cents) for cents in range(1, levels + 1)]
    # A few ladders of quantities, so that books differ a little.
    ladders = []
    for variant in range(8):
        side = ",".join(f'["{p}","{_fp((100 + 37 * ((i + variant) % 11)) * 100)}"]'
                        for i, p in enumerate(prices))
        ladders.append(f"[{side}]")
    frames: list[bytes] = []
    sizes: list[int] = []
    ids = [f"{i:08x}-5ca1-4e00-8000-{i:012x}" for i in range(markets)]
    for i, ticker in enumerate(tickers):
        payload = (f'{{"type":"orderbook_snapshot","sid":1,"seq":{i + 1},"msg":{{'
                   f'"market_ticker":"{ticker}","market_id":"{ids[i]}",'
                   f'"yes_dollars_fp":{ladders[i % 8]},"no_dollars_fp":{ladders[(i + 3) % 8]}'
                   f"}}}}").encode()
        frames.append(server_frame(payload))
        sizes.append(len(payload))
    ts_ms = _BASE_TS_MS
    for k in range(deltas):
        i, visit = k % markets, k // markets
        side = "yes" if visit % 2 == 0 else "no"
        price = prices[(visit // 2) % levels]
        delta = "5.00" if (visit // (2 * levels)) % 2 == 0 else "-5.00"
        ts_ms += k % 2
        payload = (f'{{"type":"orderbook_delta","sid":1,"seq":{markets + k + 1},"msg":{{'
                   f'"market_ticker":"{tickers[i]}","market_id":"{ids[i]}",'
                   f'"price_dollars":"{price}","delta_fp":"{delta}","side":"{side}",'
                   f'"ts":"{_iso(ts_ms)}","ts_ms":{ts_ms}}}}}').encode()
        frames.append(server_frame(payload))
        sizes.append(len(payload))
    return b"".join(frames), sizes
