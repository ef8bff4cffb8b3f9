"""Recording received frames to a JSON-lines file, and reading them back.

Each line of a recording is one text frame as Kalshi sent it, with the time it was
received::

    {"t": 1795273337.418203, "frame": "{\\"type\\":\\"ticker\\",\\"sid\\":1,...}"}

Record a real session once (``kalshi-ws record FILE ...`` or
``client.start_recording(FILE)``), then replay it to your bot offline as often as you
like with ``FakeKalshiServer(replay=FILE)``.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from typing import IO

import attrs

__all__ = ["RecordedFrame", "Recorder", "read_recording"]


@attrs.frozen
class RecordedFrame:
    """One recorded frame: when it was received (unix seconds) and its text."""

    t: float
    frame: str


class Recorder:
    """Appends received frames to a JSON-lines file.

    The client's reader thread calls :meth:`write`; it only formats and writes to a
    buffered file. Call :meth:`close` (or close the client) to flush.

    Args:
        target: A path (the file is created or truncated) or a text file object.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[str]) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._file: IO[str] = open(target, "w", encoding="utf-8",  # noqa: SIM115
                                       buffering=io.DEFAULT_BUFFER_SIZE * 16)
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self.count = 0
        self._closed = False
        self._lock = threading.Lock()  # write() and close() may race across threads

    def write(self, received_at: float, frames: list[bytes]) -> None:
        """Record frames received together at ``received_at`` (time.time()).

        Raises:
            OSError: the file could not be written.
        """
        encode = json.dumps
        lines = []
        for frame in frames:
            text = frame.decode("utf-8", "surrogateescape") if isinstance(frame, bytes) \
                else frame
            lines.append(f'{{"t": {received_at:.6f}, "frame": {encode(text)}}}\n')
        with self._lock:
            if self._closed:
                return
            self._file.write("".join(lines))
            self.count += len(frames)

    def close(self) -> None:
        """Flush, and close the file if the recorder opened it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._file.flush()
            if self._owned:
                self._file.close()

    def __enter__(self) -> Recorder:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_recording(path: str | os.PathLike[str]) -> Iterator[RecordedFrame]:
    """Yield the frames of a recording, in order.

    Raises:
        ValueError: a line is not a recorded frame (its line number is given).
    """
    with open(path, encoding="utf-8") as handle:
        lines = enumerate(handle, 1)
        number = 0
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}:{number + 1}: not a recording (not "
                                 f"UTF-8 text: {exc.reason})") from None
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                yield RecordedFrame(t=float(entry["t"]), frame=str(entry["frame"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{os.fspath(path)}:{number}: not a recorded frame "
                                 f"({exc})") from None
