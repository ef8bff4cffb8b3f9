"""The kalshi_ws error tree.

Every exception the library raises derives from :class:`KalshiWSError`::

    KalshiWSError
    ├── ConfigurationError (also ValueError)      bad key, URL, option or variable
    ├── InvalidCommand (also ValueError)          a command we refuse to send
    ├── HandshakeError                            the opening handshake failed
    │   └── AuthenticationError                   401/403: the key was refused
    ├── ConnectionClosed                          the connection is closed
    │   ├── ConnectionClosedOK                    closed normally (by us or 1000/1001)
    │   └── ConnectionClosedError                 closed abnormally
    │       ├── ConnectionLost                    EOF, reset, idle or pong timeout
    │       └── SlowConsumerError                 updates were not consumed in time
    ├── CommandError                              the server answered with an error
    ├── CommandTimeout (also TimeoutError)        no answer in time
    ├── ProtocolError                             the server broke the protocol
    └── ConcurrencyError (also RuntimeError)      misuse across threads or processes

Exceptions raised because of another one are chained to it with ``from``.
Classes with their own ``__init__`` define ``__reduce__`` so they survive pickling
(multiprocessing, Celery, logging handlers in other processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AuthenticationError",
    "CommandError",
    "CommandTimeout",
    "ConcurrencyError",
    "ConfigurationError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionLost",
    "HandshakeError",
    "InvalidCommand",
    "KalshiWSError",
    "ProtocolError",
    "SlowConsumerError",
]


class KalshiWSError(Exception):
    """Root of every error raised by kalshi_ws."""


class ConfigurationError(KalshiWSError, ValueError):
    """A configuration value is unusable: a bad key, URL, option or environment variable.

    Raised at construction time, before any connection is attempted.
    """


class InvalidCommand(KalshiWSError, ValueError):
    """A command was refused on the client side, before anything was sent."""


class HandshakeError(KalshiWSError):
    """The WebSocket opening handshake failed.

    Attributes:
        status_code: The HTTP status the server answered with, or None when the
            failure happened before a response (DNS, TCP, TLS).
        headers: The response headers (lower-case names), possibly empty.
        body: The response body, decoded as text (may be empty).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.body = body

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (type(self), self.args, {"status_code": self.status_code,
                                     "headers": self.headers, "body": self.body}),
        )


class AuthenticationError(HandshakeError):
    """The server refused the credentials (HTTP 401 or 403).

    Retrying with the same key will fail again, so the client never retries these.
    """


class ConnectionClosed(KalshiWSError):
    """The connection is closed; the operation cannot go on.

    Attributes:
        code: The WebSocket close code if a close frame was exchanged, else None.
        reason: A human-readable reason.
    """

    def __init__(self, reason: str = "", *, code: int | None = None) -> None:
        suffix = f" (close code {code})"
        super().__init__(reason if code is None or reason.endswith(suffix)
                         else reason + suffix)
        self.code = code
        self.reason = reason

    def __reduce__(self) -> Any:
        return (_rebuild_closed, (type(self), self.reason, self.code))


class ConnectionClosedOK(ConnectionClosed):
    """The connection was closed normally: by us, or by the server with 1000/1001."""


class ConnectionClosedError(ConnectionClosed):
    """The connection was closed abnormally."""


class ConnectionLost(ConnectionClosedError):
    """The connection died: EOF, reset, idle or pong timeout, slow consumer, refused key.

    Raised to callers whose command could not complete, and also delivered on the
    update stream as a system message (it is registered as a
    :class:`kalshi_ws.SystemMessage`), so one name serves both.

    Attributes:
        reason: What happened, in words.
        code: The close code, if the server sent a close frame.
        will_reconnect: On the stream: True when the client is reconnecting; False when
            this is the last message of the stream.
    """

    def __init__(self, reason: str = "", *, code: int | None = None,
                 will_reconnect: bool = False) -> None:
        super().__init__(reason, code=code)
        self.will_reconnect = will_reconnect

    @property
    def error(self) -> BaseException:
        """The underlying error (the exception's cause, or itself)."""
        return self.__cause__ or self

    @property
    def final(self) -> bool:
        """As a stream item: True unless the client is reconnecting."""
        return not self.will_reconnect

    def __reduce__(self) -> Any:
        return (_rebuild_lost, (self.reason, self.code, self.will_reconnect))


class SlowConsumerError(ConnectionClosedError):
    """The client closed because updates were not consumed fast enough.

    Raised (and reported) instead of silently dropping updates of a channel whose
    overflow policy is ``"error"``.
    """


class CommandError(KalshiWSError):
    """The server answered a command with an ``error`` message.

    Attributes:
        code: Kalshi's numeric error code (see :class:`kalshi_ws.ErrorCode`).
        message: Kalshi's error text.
        command_id: The id of the command that failed, if the server echoed it.
        sid: The subscription the error is scoped to, if any.
        markets: The markets the error names (Kalshi's ``market_ticker`` /
            ``market_tickers``, e.g. those error 26 refused), else empty.
        sending_ts_ms: When Kalshi sent the error (unix ms), if it said so.
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        command_id: int | None = None,
        sid: int | None = None,
        markets: tuple[str, ...] = (),
        sending_ts_ms: int | None = None,
    ) -> None:
        where = f" (command {command_id})" if command_id is not None else ""
        named = f"; markets: {', '.join(markets)}" if markets else ""
        super().__init__(f"Kalshi error {code}: {message}{where}{named}")
        self.code = code
        self.message = message
        self.command_id = command_id
        self.sid = sid
        self.markets = tuple(markets)
        self.sending_ts_ms = sending_ts_ms

    def __reduce__(self) -> Any:
        return (
            _rebuild_command_error,
            (type(self), self.code, self.message, self.command_id, self.sid, self.markets,
             self.sending_ts_ms),
        )


class CommandTimeout(KalshiWSError, TimeoutError):
    """The server did not answer a command in time. A late answer is ignored."""


class ProtocolError(KalshiWSError):
    """The server broke the protocol in a way that makes the connection unusable."""


class ConcurrencyError(KalshiWSError, RuntimeError):
    """Misuse across threads or processes that would deadlock or corrupt state.

    Raised, for example, when a client created before ``os.fork()`` is used in the
    child process.
    """


def _rebuild(cls: type[Exception], args: tuple[Any, ...], attrs: dict[str, Any]) -> Exception:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(attrs)
    return exc


def _rebuild_closed(cls: type[ConnectionClosed], reason: str, code: int | None) -> Exception:
    return cls(reason, code=code)


def _rebuild_lost(reason: str, code: int | None, will_reconnect: bool) -> Exception:
    return ConnectionLost(reason, code=code, will_reconnect=will_reconnect)


def _rebuild_command_error(
    cls: type[CommandError], code: int, message: str, command_id: int | None, sid: int | None,
    markets: tuple[str, ...] = (), sending_ts_ms: int | None = None,
) -> Exception:
    return cls(code, message, command_id=command_id, sid=sid, markets=markets,
               sending_ts_ms=sending_ts_ms)
