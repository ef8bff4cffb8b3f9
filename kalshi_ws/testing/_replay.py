"""Replaying a recording through the fake server: reading it, and playing it to one session.

A recording (:mod:`kalshi_ws.recording`) is read once into its data frames; each
session that subscribes gets its own playback, remapped to its own sids and sequence
numbers by its :class:`~kalshi_ws.testing.rules.KalshiRules`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from .._wire import TYPE_CHANNELS
from ..reconnect import END_OF_STREAM_CODE, END_OF_STREAM_REASON
from ..recording import read_recording
from ._session import ServerSession

__all__ = ["ReplayFrame", "load_replay", "play", "replay_contents"]

#: One recorded data frame: (time, channel, type, msg).
ReplayFrame = tuple[float, str, str, dict[str, Any]]


def load_replay(path: str | os.PathLike[str]) -> list[ReplayFrame]:
    """Read a recording: its data frames as (time, channel, type, msg).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a recording.
    """
    channels: dict[Any, str] = {}
    frames = []
    for recorded in read_recording(path):
        frame = _decode(recorded.frame)
        wire_type = frame.get("type")
        if wire_type == "subscribed" and isinstance(frame.get("msg"), dict):
            channels[frame["msg"].get("sid")] = str(frame["msg"].get("channel"))
            continue
        if wire_type in ("unsubscribed", "ok", "error") or not isinstance(wire_type, str):
            continue
        channel = channels.get(frame.get("sid")) or str(TYPE_CHANNELS.get(wire_type, wire_type))
        msg = frame.get("msg")
        frames.append((recorded.t, channel, wire_type, msg if isinstance(msg, dict) else {}))
    return frames


def _decode(text: str) -> dict[str, Any]:
    """A recorded frame as a JSON object ({} when it is not one)."""
    try:
        frame = json.loads(text)
    except ValueError:
        return {}
    return frame if isinstance(frame, dict) else {}


def replay_contents(frames: list[ReplayFrame]) -> tuple[list[str], list[str]]:
    """The channels and the markets of a recording's frames (sorted)."""
    channels = sorted({channel for _, channel, _, _ in frames})
    markets = sorted({msg["market_ticker"] for _, _, _, msg in frames
                      if isinstance(msg, dict) and isinstance(msg.get("market_ticker"), str)})
    return channels, markets


async def play(session: ServerSession, frames: list[ReplayFrame], speed: float | None,
               close: bool) -> None:
    """Stream a recording to one session, remapping sids and sequence numbers.

    Runs on the server's event loop. ``speed`` None plays as fast as possible (letting
    the session's commands through every 256 frames); ``close`` ends the connection with
    code 4000 "end of stream" at the end.
    """
    started = time.monotonic()
    first = frames[0][0] if frames else 0.0
    for index, (t, channel, wire_type, msg) in enumerate(frames):
        if speed:
            delay = (t - first) / speed - (time.monotonic() - started)
            if delay > 0:
                await asyncio.sleep(delay)
        elif index % 256 == 0:
            await asyncio.sleep(0)  # let the session's commands through
        market = msg.get("market_ticker") if isinstance(msg, dict) else None
        for sub in session.rules.receivers(channel, market):
            await session.send(session.frame(sub, wire_type, msg), sub)
    if close:
        await session.ws.close(END_OF_STREAM_CODE, END_OF_STREAM_REASON)
