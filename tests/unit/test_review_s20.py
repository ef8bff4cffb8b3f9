"""Review s20-04: the session lock's held-back log records under hostile handlers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kalshi_ws._locklog import SessionLock, defer_library_logs


class _Refuses(logging.Filter):
    """A user's handler filter that raises on one message (a bug of theirs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "bad":
            raise RuntimeError("the user's filter failed")
        return True


class _Keeps(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@pytest.fixture
def handler() -> Iterator[_Keeps]:
    defer_library_logs()
    logger = logging.getLogger("kalshi_ws.protocol")
    handler = _Keeps()
    handler.addFilter(_Refuses())
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_handler_raising_on_one_held_record_does_not_lose_the_others(
        handler: _Keeps) -> None:
    """Made one by one without the lock, only the failing record is lost; held back,
    the records after it were dropped with it (the flush stopped at the error)."""
    logger = logging.getLogger("kalshi_ws.protocol")
    lock = SessionLock()
    with pytest.raises(RuntimeError), lock:
        logger.warning("first")
        logger.warning("bad")
        logger.warning("after")
    assert handler.seen == ["first", "after"]
    assert not lock.locked()
    logger.warning("later")
    assert handler.seen == ["first", "after", "later"]
