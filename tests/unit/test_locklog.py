"""Log records made under a session lock reach their handlers after its release."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from kalshi_ws._locklog import SessionLock, defer_library_logs


class Recorder(logging.Handler):
    """Records what it handles, and whether the lock was free when it did."""

    def __init__(self, lock: SessionLock) -> None:
        super().__init__(logging.DEBUG)
        self.session_lock = lock
        self.handled: list[tuple[str, bool, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.handled.append((record.getMessage(), self.session_lock.locked(), record.lineno))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    defer_library_logs()
    logger = logging.getLogger("kalshi_ws.protocol")
    recorder = Recorder(SessionLock())
    logger.addHandler(recorder)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)


def test_a_record_made_under_the_lock_is_handled_after_its_release(
        recorder: Recorder) -> None:
    logger = logging.getLogger("kalshi_ws.protocol")
    with recorder.session_lock:
        logger.warning("first %d", 1)
        logger.info("second")
        assert recorder.handled == []
    assert [(text, locked) for text, locked, _ in recorder.handled] == [
        ("first 1", False), ("second", False)]


def test_the_record_keeps_the_callers_line(recorder: Recorder) -> None:
    logger = logging.getLogger("kalshi_ws.protocol")
    with recorder.session_lock:
        line = sys._getframe().f_lineno + 1
        logger.warning("here")
    assert recorder.handled[0][2] == line


def test_a_record_without_the_lock_is_handled_at_once(recorder: Recorder) -> None:
    logging.getLogger("kalshi_ws.protocol").warning("now")
    assert [text for text, _, _ in recorder.handled] == ["now"]


def test_nested_locks_hold_records_until_the_outermost_is_released(
        recorder: Recorder) -> None:
    logger = logging.getLogger("kalshi_ws.protocol")
    other = SessionLock()
    with recorder.session_lock:
        other.acquire()
        logger.warning("inside both")
        other.release()
        assert recorder.handled == []
    assert [text for text, _, _ in recorder.handled] == ["inside both"]


def test_records_are_handled_even_when_the_block_raises(recorder: Recorder) -> None:
    logger = logging.getLogger("kalshi_ws.protocol")
    with pytest.raises(ValueError), recorder.session_lock:
        logger.error("before the error")
        raise ValueError("boom")
    assert [text for text, _, _ in recorder.handled] == ["before the error"]
    assert not recorder.session_lock.locked()


def test_the_lock_acts_as_a_lock() -> None:
    lock = SessionLock()
    assert lock.acquire() and lock.locked()
    assert not lock.acquire(blocking=False)
    assert not lock.acquire(timeout=0.001)
    lock.release()
    assert not lock.locked()
