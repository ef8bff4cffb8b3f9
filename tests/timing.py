"""Time in the tests, in one unit that a slow machine can stretch.

Every bound a test puts on a wait (a join, a ``wait_for``, an event's timeout, a pause that
simulates a slow consumer) is written as a multiple of :data:`MS`. On a loaded or slow
machine, run the suite with ``KALSHI_WS_TEST_TIME_FACTOR=4`` (any number >= 1) and every
such bound grows four times; pytest-timeout's limits grow with it (see tests/conftest.py).

Values that are part of the behaviour under test (an idle timeout, a backoff, Kalshi's
rules about time) are not written in this unit: scaling them would change what is tested.
Nothing here makes a test sleep: these are upper bounds on waits for events, or the
length of a deliberate pause.
"""

from __future__ import annotations

import os

_VARIABLE = "KALSHI_WS_TEST_TIME_FACTOR"


def _factor() -> float:
    text = os.environ.get(_VARIABLE, "1")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{_VARIABLE} must be a number >= 1, not {text!r}") from None
    if not value >= 1:  # also refuses NaN
        raise ValueError(f"{_VARIABLE} must be a number >= 1, not {text!r}")
    return value


#: How much every time bound of the tests is stretched (``KALSHI_WS_TEST_TIME_FACTOR``).
FACTOR: float = _factor()

#: One millisecond of test time, in seconds: the unit of every bound on a wait.
MS: float = 0.001 * FACTOR

#: The usual bound on a wait for something that should happen at once (10 s of test time).
WAIT: float = 10_000 * MS
