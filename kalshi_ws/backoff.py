"""Pure backoff rules: the reconnect schedule, Retry-After, and what is worth retrying."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Iterator

from .config import Backoff
from .exceptions import AuthenticationError, HandshakeError

__all__ = ["END_OF_STREAM_CODE", "END_OF_STREAM_REASON", "backoff_ceiling", "backoff_delays",
           "is_end_of_stream", "is_retryable", "retry_after", "retry_delay"]

#: The close code and reason by which a server says its stream has ended for good: the
#: fake server closes with them at the end of a replayed recording. The client then ends
#: the stream with ``Closed`` instead of reconnecting. 4000-4999 is the private-use range
#: of RFC 6455; Kalshi documents no close codes, and the reason must match too, so no
#: close from Kalshi (1000, 1001 during deploys, 1011, ...) is taken for this one.
END_OF_STREAM_CODE = 4000
END_OF_STREAM_REASON = "end of stream"


def backoff_delays(backoff: Backoff, rng: random.Random | None = None,
                   start: int = 0) -> Iterator[float]:
    """Yield the wait before each attempt: full jitter over a doubling, capped ceiling.

    Attempt ``n`` waits ``uniform(0, min(cap, base * 2**n))`` seconds. The generator
    stops after ``backoff.max_attempts`` values (never, if None).

    Args:
        backoff: The schedule.
        rng: The random source (injectable for tests).
        start: The level of the first value: a client whose connections keep failing
            soon after they open goes on from where the last outage left off, rather
            than from the smallest wait (see ``ReconnectPolicy.healthy_after``).
    """
    uniform = (rng or random.Random()).uniform
    attempt = 0
    while backoff.max_attempts is None or attempt < backoff.max_attempts:
        yield uniform(0.0, backoff_ceiling(backoff, start + attempt))
        attempt += 1


def backoff_ceiling(backoff: Backoff, attempt: int) -> float:
    """The largest wait attempt ``attempt`` (from 0) may draw."""
    return backoff.cap if attempt >= 64 else min(backoff.cap, backoff.base * 2 ** attempt)


def is_retryable(error: BaseException) -> bool:
    """Whether a failed connection attempt may succeed if tried again.

    A refused key (401/403) will be refused again, so it is not retried; anything else
    (refused TCP, DNS, TLS hiccups, 429, 5xx, a dropped handshake) is.
    """
    return not isinstance(error, AuthenticationError)


def retry_after(error: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``), if it did.

    Read from a refused handshake (usually 429 or 503): either delay-seconds or an HTTP
    date. Anything unreadable, or a date in the past, counts as no request.

    Args:
        error: The failure of the last attempt.
        now: The wall clock, for HTTP dates (injectable for tests).
    """
    if not isinstance(error, HandshakeError):
        return None
    value = (error.headers or {}).get("retry-after")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) < 10 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        return None
    wait = when.timestamp() - now()
    return wait if wait > 0 else None


def retry_delay(delay: float, error: BaseException, backoff: Backoff) -> float:
    """The wait before the next attempt: the backoff's draw, or longer if the server
    asked for it with Retry-After, but never past the backoff's cap."""
    asked = retry_after(error)
    if asked is None:
        return delay
    return max(delay, min(asked, backoff.cap))


def is_end_of_stream(code: int | None, reason: str) -> bool:
    """Whether a server's close frame (``code``, ``reason``) ends the stream for good.

    True only for :data:`END_OF_STREAM_CODE` with :data:`END_OF_STREAM_REASON`; every
    other close, clean or not, is followed by reconnection when it is enabled.
    """
    return code == END_OF_STREAM_CODE and reason == END_OF_STREAM_REASON
