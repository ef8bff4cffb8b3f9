"""The reader's pure parts: liveness rules, the ReadEnd record, and ClientOptions."""

from __future__ import annotations

import pytest

from kalshi_ws import (
    Channel,
    ConfigurationError,
    ConnectStrategy,
    HealthConfig,
    ReconnectPolicy,
)
from kalshi_ws._reader import Liveness, ReadEnd
from kalshi_ws.exceptions import ConnectionClosedOK
from kalshi_ws.options import ClientOptions


def test_liveness_pings_on_schedule_and_expects_a_pong() -> None:
    live = Liveness(HealthConfig(ping_interval=10, pong_timeout=5, idle_timeout=None), 100.0)
    assert not live.ping_due(109.9)
    assert live.ping_due(110.0)
    assert not live.ping_due(110.1)  # the next one is 10 s later
    live.pinged(110.0)
    assert live.failure(115.0) is None
    assert "pong timeout" in (live.failure(115.1) or "")
    live.pong_deadline = None  # a pong came
    assert live.failure(200.0) is None
    assert live.ping_due(120.0)


def test_a_second_ping_does_not_move_the_pong_deadline() -> None:
    live = Liveness(HealthConfig(ping_interval=1, pong_timeout=5, idle_timeout=None), 0.0)
    live.pinged(1.0)
    live.pinged(2.0)
    assert live.pong_deadline == 6.0


def test_liveness_idle_timeout_counts_from_the_last_frame() -> None:
    live = Liveness(HealthConfig(ping_interval=None, idle_timeout=30), 0.0)
    assert not live.ping_due(1000.0)  # pings off
    live.last_frame = 50.0
    assert live.failure(80.0) is None
    assert "idle timeout" in (live.failure(80.5) or "")


def test_read_end_is_a_record_not_an_exception() -> None:
    end = ReadEnd(ConnectionClosedOK("bye", code=1000), 1000, "bye")
    assert not isinstance(end, BaseException)
    assert (end.close_code, end.close_reason, end.restored) == (1000, "bye", False)
    assert ReadEnd(None, restored=True).error is None


def test_client_options_normalise_and_are_immutable() -> None:
    options = ClientOptions.build(reconnect=True, overflow={Channel.TICKER: "error"},
                                  strategy=ConnectStrategy.SIMPLE)
    assert isinstance(options.reconnect, ReconnectPolicy)
    assert isinstance(options.health, HealthConfig)
    assert options.overflow_policy("ticker") == "error"  # its default is drop_oldest
    assert options.overflow_policy("trade") == "error"
    assert ClientOptions.build().overflow_policy("ticker") == "drop_oldest"
    assert ClientOptions.build(overflow="drop_oldest").overflow_policy("fill") == "drop_oldest"
    with pytest.raises(AttributeError):
        options.timeout = 1  # type: ignore[misc]


@pytest.mark.parametrize(("values", "named"), [
    ({"timeout": 0}, "timeout"),
    ({"max_pending": True}, "max_pending"),
    ({"max_message_size": 0}, "max_message_size"),
    ({"reconnect": "yes"}, "reconnect"),
    ({"overflow": "sometimes"}, "overflow"),
    ({"queue": 1}, "queue"),
    ({"on_error": 3}, "on_error"),
    ({"ssl_context": object()}, "ssl_context"),
])
def test_client_options_name_the_bad_option(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        ClientOptions.build(**values)  # type: ignore[arg-type]
