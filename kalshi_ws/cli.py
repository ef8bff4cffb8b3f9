"""The ``kalshi-ws`` command: stream, watch order books, record — live or simulated.

Examples::

    kalshi-ws stream ticker trade --simulate          # no account needed
    kalshi-ws stream orderbook_delta --market KXHIGHNY-26NOV21-T58 --json | jq .
    kalshi-ws book SIM-ALPHA SIM-BRAVO --simulate
    kalshi-ws record session.jsonl ticker trade --duration 60
    kalshi-ws replay session.jsonl --speed 1            # play a recording back
    kalshi-ws plot session.jsonl -o session.png         # needs kalshi-ws[plot]

Credentials come from the same variables as ``KalshiConfig.from_env()``
(``KALSHI_API_KEY_ID``, ``KALSHI_PRIVATE_KEY_PATH`` or ``KALSHI_PRIVATE_KEY``,
``KALSHI_ENV``, ``KALSHI_WS_URL``) or from ``--key-id``, ``--key-file``, ``--env``,
``--url``. ``--simulate`` (or ``KALSHI_SIMULATE=1`` in the environment) runs
everything against the built-in fake server and market simulator instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any, NoReturn

import attrs

from . import _compiled
from ._version import __version__
from .client import KalshiStreamClient
from .config import HealthConfig, KalshiConfig, ReconnectPolicy
from .environment import simulating
from .exceptions import ConnectionLost, KalshiWSError
from .models import (
    NO_EXTRA,
    Channel,
    ClientStats,
    Closed,
    Lagged,
    MalformedMessage,
    Reconnected,
    Resubscribed,
    SequenceGap,
    StreamUpdate,
    SubscriptionError,
    SystemMessage,
    UnknownMessage,
    Unsubscribed,
)

__all__ = ["main"]

CHANNELS = [c.value for c in Channel if c.value != "multivariate"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, with one sub-command per job."""
    def add_logging(parser: argparse.ArgumentParser, default: Any) -> None:
        # Before or after the command; after it, the default must not undo a -v before it.
        group = parser.add_argument_group("logging")
        group.add_argument("-v", "--verbose", action="count", default=default,
                           help="log to stderr (-v info, -vv debug)")
        group.add_argument("--server-log", action="store_true", default=default,
                           help="also log the built-in fake server (with --simulate and "
                           "replay; off by default), at the -v level, marked [server]")

    logs = _Parser(add_help=False)
    add_logging(logs, argparse.SUPPRESS)

    common = _Parser(add_help=False, parents=[logs])
    group = common.add_argument_group("connection")
    group.add_argument("--simulate", action="store_true", default=_simulate_from_env(),
                       help="run against the built-in fake Kalshi server and market simulator "
                       "(default when KALSHI_SIMULATE=1)")
    group.add_argument("--key-id", help="API key id (default: $KALSHI_API_KEY_ID)")
    group.add_argument("--key-file", help="PEM private key file "
                       "(default: $KALSHI_PRIVATE_KEY_PATH or $KALSHI_PRIVATE_KEY)")
    group.add_argument("--env", choices=["demo", "prod"],
                       help="Kalshi environment (default: $KALSHI_ENV or demo)")
    group.add_argument("--url", help="WebSocket URL, overriding --env (default: $KALSHI_WS_URL)")
    group.add_argument("--no-reconnect", action="store_true",
                       help="end on the first connection loss instead of reconnecting")

    parser = _Parser(prog="kalshi-ws", description="Stream Kalshi's WebSocket API from a "
                     "terminal.", epilog="Add --simulate (or set KALSHI_SIMULATE=1) to try "
                     "any command offline.")
    parser.add_argument("--version", action="version", version=f"kalshi-ws {__version__} "
                        f"(C speed-ups: {'on' if _compiled.enabled() else 'off'})")
    add_logging(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    stream = commands.add_parser("stream", parents=[common], help="print updates as they come",
                                 description="Print every update of the channels, one per line.")
    stream.add_argument("channels", nargs="+", metavar="CHANNEL", choices=CHANNELS,
                        help=f"one or more of: {', '.join(CHANNELS)}")
    _add_output(stream)
    stream.set_defaults(run=run_stream)

    book = commands.add_parser("book", parents=[common], help="a live top-of-book view",
                               description="Maintain order books and show their top levels. "
                               "Refreshes in place in a terminal; prints snapshots when piped.")
    book.add_argument("markets", nargs="+", metavar="MARKET",
                      help="market tickers whose order books to show")
    book.add_argument("--depth", type=_positive_int, default=5, help="levels per side (5)")
    book.add_argument("--interval", type=_positive_float, default=1.0,
                      help="seconds between snapshots when piped (1.0)")
    _add_limits(book, limit_help="stop after N snapshots")
    book.set_defaults(run=run_book)

    record = commands.add_parser("record", parents=[common], help="record frames to a file",
                                 description="Record every frame received, with its receive "
                                 "time, to a JSON-lines file that `kalshi-ws replay` and "
                                 "FakeKalshiServer(replay=...) play back. An existing file "
                                 "is refused unless --force or --append is given.")
    record.add_argument("file", metavar="FILE", help="the recording to write (JSON lines)")
    record.add_argument("channels", nargs="+", metavar="CHANNEL", choices=CHANNELS,
                        help=f"one or more of: {', '.join(CHANNELS)}")
    _add_market(record)
    existing = record.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    existing.add_argument("--append", action="store_true",
                          help="add to the end of FILE if it exists")
    _add_limits(record, limit_help="stop after N updates")
    record.set_defaults(run=run_record)

    replay = commands.add_parser("replay", parents=[logs], help="play a recording back",
                                 description="Play a recording (from `kalshi-ws record`) "
                                 "through the client, printing it like `stream`, and end at "
                                 "its end. Runs offline on the built-in fake server.")
    replay.add_argument("file", metavar="FILE", help="the recording to play")
    # Checked by type=, not choices=: argparse checks an empty "*" list against choices.
    # A default, or argparse lists the optional CHANNEL as required when FILE is missing.
    replay.add_argument("channels", nargs="*", metavar="CHANNEL", type=_channel, default=[],
                        help="only these channels (default: every channel in FILE)")
    replay.add_argument("--speed", type=_positive_float, metavar="X",
                        help="pace: 1 plays at the recorded pace, 2 twice as fast "
                        "(default: as fast as possible)")
    _add_output(replay)
    replay.set_defaults(run=run_replay)

    plot = commands.add_parser("plot", parents=[logs], help="draw a recording as a PNG",
                               description="Draw a recorded session, one panel per market: "
                               "last price, best bid and ask, trades sized by count, and "
                               "book depth over time. Needs matplotlib: "
                               "pip install 'kalshi-ws[plot]'.")
    plot.add_argument("file", metavar="FILE", help="the recording to draw")
    plot.add_argument("-o", "--output", metavar="PNG",
                      help="the image to write (default: FILE with .png)")
    plot.add_argument("--market", action="append", default=[], metavar="TICKER",
                      help="only these markets (repeat the option; default: all)")
    plot.add_argument("--force", action="store_true", help="overwrite PNG if it exists")
    plot.set_defaults(run=run_plot)
    return parser


def _channel(text: str) -> str:
    if text not in CHANNELS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                         f"{', '.join(CHANNELS)})")
    return text


def _simulate_from_env() -> bool:
    """KALSHI_SIMULATE=1 means --simulate: the rule of config_from_env() and the examples."""
    return simulating()


def _add_market(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--market", action="append", default=[], metavar="TICKER",
                        help="only these markets (repeat the option); required for "
                        "orderbook_delta unless --simulate")


def _add_output(parser: argparse.ArgumentParser) -> None:
    _add_market(parser)
    _add_limits(parser)
    parser.add_argument("--json", action="store_true",
                        help="JSON lines (Decimal values as strings) instead of text")


def _add_limits(parser: argparse.ArgumentParser, limit_help: str = "stop after N updates"
                ) -> None:
    parser.add_argument("--limit", type=_positive_int, metavar="N", help=limit_help)
    parser.add_argument("--duration", type=_positive_float, metavar="S",
                        help="stop after S seconds")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


# ---------------------------------------------------------------------- running


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _check_arguments(args)
    if problem is not None:
        print(f"kalshi-ws {args.command}: error: {problem} (see kalshi-ws {args.command} "
              "--help)", file=sys.stderr)
        return 2
    _configure_logging(args.verbose or 0, server_log=bool(args.server_log),
                       quiet_repeats=args.command in ("stream", "replay") and sys.stdout.isatty())
    session = _Session(args)
    try:
        with session:
            return int(args.run(session, args))
    except KeyboardInterrupt:
        session.summary("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KalshiWSError as exc:
        session.clear_status()
        print(f"kalshi-ws: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        session.clear_status()
        print(f"kalshi-ws: error: {_os_error(exc)}", file=sys.stderr)
        return 1


def _check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem argparse cannot see, in the CLI's words (None: fine)."""
    channels = getattr(args, "channels", None) or []
    if Channel.ORDERBOOK_DELTA in channels and not args.market and \
            not getattr(args, "simulate", True):
        return ("orderbook_delta needs --market TICKER (repeat it for more markets): Kalshi "
                "sends order books only for the markets you name")
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return _one_line(exc)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so interpreter exit stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


#: Loggers of the fake server (websockets and asyncio run only there): kept apart from
#: the client's log, and silent unless --server-log is given.
_SERVER_LOGGERS = ("kalshi_ws.testing", "websockets", "asyncio")

#: Warnings that repeat a system message the stream already prints (logger, format).
_REPEATED_ON_THE_STREAM = frozenset({
    ("kalshi_ws.client", "connection to %s lost (%s); reconnecting"),
    ("kalshi_ws.client", "connection to %s lost: %s"),
    ("kalshi_ws.protocol", "sequence gap on sid %d (%s): expected %d, received %d"),
    ("kalshi_ws.protocol", "Kalshi error %d on sid %d (%s): %s"),
    ("kalshi_ws.protocol", "Kalshi ended subscription %d (%s): error %d (%s)"),
    ("kalshi_ws.protocol", "malformed frame from server: %s"),
})


class _ClearStatusFirst(logging.Filter):
    """Takes the status line off the terminal before a log line is written there."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = _StatusLine.active
        if status is not None:
            status.clear()  # drawn again at its next refresh
        return True


class _NotShownTwice(logging.Filter):
    """Drops warnings about events that stdout, on the same terminal, shows already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name, record.msg) not in _REPEATED_ON_THE_STREAM


def _configure_logging(verbosity: int, *, server_log: bool = False,
                       quiet_repeats: bool = False) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if quiet_repeats and verbosity == 0:
            handler.addFilter(_NotShownTwice())
        handler.addFilter(_ClearStatusFirst())  # added last: runs once a record is kept
    server_handler: logging.Handler = logging.NullHandler()
    if server_log:
        server_handler = logging.StreamHandler(sys.stderr)
        server_handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [server] %(name)s: %(message)s"))
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.propagate = False
        server_logger.handlers = [server_handler]
        server_logger.setLevel(level if server_log else logging.CRITICAL + 1)


class _Session:
    """The client (and, with --simulate or replay, the fake server) for one command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.client: KalshiStreamClient | None = None
        self.started = time.monotonic()
        self.received = 0
        self.status: _StatusLine | None = None
        #: What the summary counts, after the number (``received`` unless replaced).
        self.counted = "update(s)"
        self.count: Callable[[], int] = lambda: self.received
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Session:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def connect(self, config: KalshiConfig | None = None, *, reconnect: bool = True,
                **options: Any) -> KalshiStreamClient:
        if config is None:
            config = self._simulated_config() if self.args.simulate else _config_from(self.args)
        reconnect = reconnect and not getattr(self.args, "no_reconnect", False)
        client = KalshiStreamClient.connect(config, reconnect=ReconnectPolicy() if reconnect
                                            else False, health=HealthConfig(), **options)
        self.client = client
        self._stack.callback(client.close, 1.0)
        return client

    def _testing(self) -> Any:
        try:
            from . import testing
        except ImportError as exc:  # websockets is not installed
            raise KalshiWSError(f"kalshi-ws {self.args.command} needs the fake server: pip "
                                f"install 'kalshi-ws[testing]' ({exc})") from None
        return testing

    def _simulated_config(self) -> KalshiConfig:
        markets = getattr(self.args, "market", []) or getattr(self.args, "markets", [])
        simulation = self._stack.enter_context(self._testing().simulated(markets))
        self.server = simulation.server
        config: KalshiConfig = simulation.config
        return config

    def replay_config(self, path: str, speed: float | None) -> KalshiConfig:
        """Start a fake server that plays ``path``; the config that reaches it."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        testing = self._testing()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # throwaway
        try:
            server = testing.FakeKalshiServer(public_key=key.public_key(), replay=path,
                                              replay_speed=speed)
        except ValueError as exc:  # a line that is not a recorded frame
            raise KalshiWSError(f"{exc}; is it a recording from kalshi-ws record?") from None
        self.server = self._stack.enter_context(server)
        return KalshiConfig("replay", key, ws_url=server.url)

    def markets_for(self, channels: Sequence[str], markets: list[str]) -> list[str] | None:
        if markets:
            return markets
        if self.server is not None and Channel.ORDERBOOK_DELTA in channels:
            return list(self.server.simulator.markets)
        return None

    def clear_status(self) -> None:
        """Take the status line off the terminal, so that what follows has its own line."""
        if self.status is not None:
            self.status.clear()

    def summary(self, how: str) -> None:
        self.clear_status()
        if how == "interrupted" and sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # the terminal's echoed ^C: the summary's own line
        elapsed = time.monotonic() - self.started
        stats = self.client.stats().total() if self.client is not None else None
        dropped = f", {stats.dropped} dropped" if stats and stats.dropped else ""
        print(f"kalshi-ws: {how}: {self.count():,} {self.counted} in {elapsed:.1f} s{dropped}",
              file=sys.stderr)


def _config_from(args: argparse.Namespace) -> KalshiConfig:
    environ = dict(os.environ)
    if args.key_id:
        environ["KALSHI_API_KEY_ID"] = args.key_id
    if args.key_file:
        environ["KALSHI_PRIVATE_KEY_PATH"] = args.key_file
    if args.env:
        environ["KALSHI_ENV"] = args.env
    if args.url:
        environ["KALSHI_WS_URL"] = args.url
    try:
        return KalshiConfig.from_env(environ)
    except KalshiWSError as exc:
        text = _cli_words(str(exc), args)
        if "key" in text.lower():  # a credentials problem: say where credentials come from
            text += " (pass --key-id/--key-file, or --simulate to try it without an account)"
        raise type(exc)(text) from None


def _cli_words(text: str, args: argparse.Namespace) -> str:
    """A configuration error in the command line's words: flags, not Python names."""
    # Name the flag the user typed rather than the variable it stood in for.
    for variable, flag in (("KALSHI_PRIVATE_KEY_PATH", "key_file"), ("KALSHI_ENV", "env"),
                           ("KALSHI_WS_URL", "url")):
        if text.startswith(f"{variable}:") and getattr(args, flag):
            text = "--" + flag.replace("_", "-") + text[len(variable):]
    pasted_a_path = "KALSHI_PRIVATE_KEY_PATH or --key-file" if text.startswith(
        "KALSHI_PRIVATE_KEY:") else "check the file"
    for python, cli in (("(did you pass a file path? use KalshiConfig.from_key_file)",
                         f"(a file path? {pasted_a_path})"),
                        ("pass allow_insecure=True (KALSHI_ALLOW_INSECURE=1)",
                         "set KALSHI_ALLOW_INSECURE=1"),
                        ("private_key", "the key"), ("ws_url", "the URL"),
                        ("api_key_id", "the key id"), ("environment must be", "must be")):
        text = text.replace(python, cli)
    return text


def _subscribe(session: _Session, client: KalshiStreamClient, channels: list[str],
               markets: list[str]) -> None:
    result = client.subscribe(channels, session.markets_for(channels, markets))
    for failure in result.failed:
        print(f"kalshi-ws: {failure.channel}: refused by Kalshi (error {failure.code}: "
              f"{failure.message})", file=sys.stderr)
    if not result.successful:
        raise KalshiWSError("no channel could be subscribed")


class _Deadline:
    def __init__(self, duration: float | None) -> None:
        self.at = None if duration is None else time.monotonic() + duration

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def _items(client: KalshiStreamClient, deadline: _Deadline,
           idle: Any = None) -> Iterator[Any]:
    """Yield stream items until the stream ends or the deadline passes."""
    updates = client.updates
    while not deadline.passed():
        try:
            item = updates.get(timeout=0.2)
        except queue.Empty:
            if idle is not None:
                idle()
            continue
        yield item
        if isinstance(item, SystemMessage) and item.final:
            return


def _exit_status(item: Any) -> int:
    return 0 if item is None or isinstance(item, Closed) else 1


# ---------------------------------------------------------------------- stream


def run_stream(session: _Session, args: argparse.Namespace) -> int:
    client = session.connect(queue=True)
    _subscribe(session, client, args.channels, args.market)
    return _print_stream(session, client, args)


def _print_stream(session: _Session, client: KalshiStreamClient,
                  args: argparse.Namespace) -> int:
    """Print the stream (stream and replay) until it ends, --limit or --duration."""
    out = sys.stdout
    status = session.status = _StatusLine(session, shared=out.isatty()) \
        if sys.stderr.isatty() else None
    render = _json_line if args.json else _TextLines(args.market).line
    last: Any = None
    for item in _items(client, _Deadline(args.duration),
                       idle=status.show if status else None):
        if status is not None:
            status.hide()
        out.write(render(item))
        out.write("\n")
        if client.updates.empty():
            out.flush()
            if status is not None:
                status.show()
        if type(item) is StreamUpdate:
            session.received += 1
            if args.limit and session.received >= args.limit:
                break
        last = item
    out.flush()
    session.summary("done")
    return _exit_status(last if isinstance(last, SystemMessage) and last.final else None)


def _staleness(stats: ClientStats) -> list[str]:
    """The status line's worst staleness: the channel silent the longest (if any)."""
    stalest = stats.stalest()
    if stalest is None:
        return []
    channel, seconds = stalest
    return [f"stalest: {channel} {seconds:.1f} s"]


class _StatusLine:
    """A one-line status on a terminal's stderr: rate, totals, drops, reconnects and the
    worst staleness.

    When stdout is a terminal too (``shared``), the line is taken off before updates
    are printed and drawn again after them, so the two never share a line.
    """

    active: _StatusLine | None = None  # the line on screen now, for log records to clear

    def __init__(self, session: _Session, *, shared: bool) -> None:
        _StatusLine.active = self
        self.session = session
        self.shared = shared
        self.text = ""
        self.shown = False
        self.next = time.monotonic() + 1.0
        self.last_count = 0
        self.last_time = time.monotonic()

    def fields(self, rate: float, stats: ClientStats) -> list[str]:
        """The parts of the status line, in order (add a part here)."""
        return [f"{rate:,.0f} msg/s", f"{self.session.received:,} received",
                f"{stats.total().dropped:,} dropped", f"{stats.reconnects:,} reconnects",
                *_staleness(stats)]

    def show(self) -> None:
        """Draw the line (again), with fresh numbers once a second."""
        now = time.monotonic()
        client = self.session.client
        if now >= self.next and client is not None:
            count = self.session.received
            rate = (count - self.last_count) / (now - self.last_time)
            self.last_count, self.last_time, self.next = count, now, now + 1.0
            self.text = " | ".join(self.fields(rate, client.stats()))
        elif self.shown or not self.text:
            return
        self.shown = True  # first: a Ctrl-C during the write must still clear it
        sys.stderr.write(f"\r\x1b[K{self.text}")
        sys.stderr.flush()

    def hide(self) -> None:
        """Before printing updates: take the line off a shared terminal."""
        if self.shared and self.shown:
            self.clear()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def _plain(value: Any) -> Any:
    """JSON-ready form of a message: Decimals as strings, classes as dicts."""
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))
                if getattr(value, f.name) is not None and getattr(value, f.name) is not NO_EXTRA}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        # A frame's NaN or Infinity (Python's JSON reads them) as "nan", "inf": JSON has
        # no such numbers, and a line that is not JSON stops `| jq`.
        return round(value, 3) if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value


def _json_line(item: Any) -> str:
    if type(item) is StreamUpdate:
        data = {"channel": str(item.channel), "type": item.type, "sid": item.sid,
                "seq": item.seq, "msg": _plain(item.msg)}
        if isinstance(item.msg, (UnknownMessage, MalformedMessage)):
            data["msg"] = {"unparsed": True, **_plain(item.msg)}
    else:
        data = {"system": type(item).__name__, **_system_fields(item)}
    return json.dumps(data, separators=(",", ":"), default=str)


def _system_fields(item: Any) -> dict[str, Any]:
    if attrs.has(type(item)):
        fields: dict[str, Any] = _plain(item)
        return fields
    fields = {"reason": getattr(item, "reason", str(item)),
              "will_reconnect": getattr(item, "will_reconnect", False)}
    if getattr(item, "code", None) is not None:
        fields["code"] = item.code
    return fields


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


class _TextLines:
    """Text lines for stream items; the market column is as wide as the longest ticker
    seen so far (and given with --market), so a long ticker never pushes text aside."""

    def __init__(self, markets: Sequence[str] = ()) -> None:
        self.width = max([12, *(len(m) for m in markets)])

    def line(self, item: Any) -> str:
        if type(item) is not StreamUpdate:
            return f"{_clock()} -- {_describe_system(item)}"
        msg = item.msg
        describe = _DESCRIBE.get(item.type)
        if describe is None or isinstance(msg, (UnknownMessage, MalformedMessage)):
            return f"{_clock()} {item.type:<18} {_generic(msg)}"
        market = str(getattr(msg, "market_ticker", "") or "-")
        self.width = max(self.width, len(market))
        return f"{_clock()} {item.type:<18} {market:<{self.width}}  {describe(msg)}"


def _describe_system(item: Any) -> str:
    """One readable sentence for a system message, led by its class name."""
    name = type(item).__name__
    if isinstance(item, Reconnected):
        sids = ", ".join(f"{old}->{new}" for old, new in sorted(item.sid_map.items()))
        text = (f"reconnected after {item.downtime:.2f} s (attempt {item.attempt}); "
                f"sids (old->new) {sids or 'none'}")
        failed = "; ".join(f"sid {sid}: {why}" for sid, why in item.failed)
        return f"{name} {text}" + (f"; not restored: {failed}" if failed else "")
    if isinstance(item, ConnectionLost):
        then = "reconnecting" if item.will_reconnect else "giving up"
        code = f" (close code {item.code})" if item.code is not None else ""
        return f"{name} {item.reason or 'connection lost'}{code}; {then}"
    if isinstance(item, Closed):
        code = "" if item.code is None else f" code {item.code}"
        return f"{name}{code}" + (f": {item.reason}" if item.reason else "")
    if isinstance(item, SequenceGap):
        return (f"{name} on sid {item.sid} ({item.channel}): expected seq {item.expected}, "
                f"received {item.received}")
    if isinstance(item, Lagged):
        return (f"{name} {item.dropped:,} {item.channel} message(s) dropped: "
                f"{item.consumer} fell behind")
    if isinstance(item, Resubscribed):
        return (f"{name} {item.channel}: sid {item.old_sid} -> {item.new_sid} "
                f"({item.reason})")
    if isinstance(item, SubscriptionError):
        return f"{name} on sid {item.sid} ({item.channel}): error {item.code}: {item.message}"
    if isinstance(item, Unsubscribed):
        return f"{name} sid {item.sid} ({item.channel}): {item.reason}"
    fields = " ".join(f"{k}={_readable(v)}" for k, v in _system_fields(item).items())
    return f"{name} {fields}".rstrip()


def _readable(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}->{_readable(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_readable(v) for v in value) or "none"
    return str(value)


def _size(value: Decimal | None) -> str:
    """A contract count at Kalshi's precision: two decimals (more only if it has more)."""
    if value is None:
        return "-"
    text = f"{value:.2f}"  # formatting and comparing are exact: no decimal context limit
    if Decimal(text) == value:
        return text
    return f"{value:f}".rstrip("0")


def _price(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def _generic(msg: Any) -> str:
    if isinstance(msg, MalformedMessage):
        return f"MALFORMED {msg.type or 'frame'}: {msg.error}"
    if isinstance(msg, UnknownMessage):
        return f"unknown type {msg.type!r}: {json.dumps(_plain(msg.raw))[:160]}"
    data = _plain(msg)
    return " ".join(f"{k}={v}" for k, v in list(data.items())[:8])


def _describe_ticker(msg: Any) -> str:
    return (f"last {_price(msg.price_dollars)}  "
            f"bid {_price(msg.yes_bid_dollars)} x {_size(msg.yes_bid_size_fp)}  "
            f"ask {_price(msg.yes_ask_dollars)} x {_size(msg.yes_ask_size_fp)}  "
            f"vol {_size(msg.volume_fp)}")


def _describe_trade(msg: Any) -> str:
    side = msg.taker_outcome_side or msg.taker_side or "?"
    return f"{_size(msg.count_fp)} @ {_price(msg.yes_price_dollars)}  taker {side}"


def _describe_snapshot(msg: Any) -> str:
    yes, no = msg.yes_levels(), msg.no_levels()
    best_yes = max(yes) if yes else None
    best_no = max(no) if no else None
    return (f"snapshot  yes {len(yes)} levels best {_level(best_yes)}  "
            f"no {len(no)} levels best {_level(best_no)}")


def _level(level: tuple[Decimal, Decimal] | None) -> str:
    return "-" if level is None else f"{level[0]} x {_size(level[1])}"


def _describe_delta(msg: Any) -> str:
    change = msg.size_change()
    sign = "+" if change > 0 else ""
    return f"{msg.side} {msg.level_price()} {sign}{_size(change)}"


def _describe_fill(msg: Any) -> str:
    return (f"{_size(msg.count_fp)} @ {_price(msg.yes_price_dollars)}  "
            f"{msg.outcome_side or msg.side or '?'} {msg.book_side or ''}  "
            f"position {_size(msg.post_position_fp)}")


_DESCRIBE = {
    "ticker": _describe_ticker,
    "trade": _describe_trade,
    "orderbook_snapshot": _describe_snapshot,
    "orderbook_delta": _describe_delta,
    "fill": _describe_fill,
}


# ---------------------------------------------------------------------- replay


def _check_recording_path(path: str) -> None:
    if os.path.isdir(path):
        raise KalshiWSError(f"{path} is a directory, not a recording")
    if not os.path.isfile(path):
        raise KalshiWSError(f"{path}: no such recording")


def run_replay(session: _Session, args: argparse.Namespace) -> int:
    _check_recording_path(args.file)
    config = session.replay_config(args.file, args.speed)
    recorded_channels, recorded_markets = session.server.replay_contents()
    channels = args.channels or recorded_channels
    if not channels:
        raise KalshiWSError(f"{args.file}: the recording holds no updates to replay")
    markets = args.market or (recorded_markets if Channel.ORDERBOOK_DELTA in channels
                              else [])
    # The replay ends with a close that ends the stream: reconnecting would only start
    # the recording again.
    client = session.connect(config, reconnect=False, queue=True)
    _subscribe(session, client, channels, markets)
    return _print_stream(session, client, args)


# ---------------------------------------------------------------------- record


def _check_appendable(path: str) -> None:
    """--append only adds to a recording, and starts on a line of its own."""
    from .recording import read_recording

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        first = next(iter(read_recording(path)), None)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise KalshiWSError(f"{path} is not a recording, so --append would spoil it: "
                            f"{exc}") from None
    if first is None:
        return
    with open(path, "rb+") as existing:
        existing.seek(-1, os.SEEK_END)
        if existing.read(1) != b"\n":  # a last line cut short: end it before adding
            existing.write(b"\n")


def run_record(session: _Session, args: argparse.Namespace) -> int:
    mode = "a" if args.append else "w" if args.force else "x"
    if os.path.isdir(args.file):
        raise KalshiWSError(f"{args.file} is a directory; name a file to record to")
    if args.append:
        _check_appendable(args.file)
    try:
        target = open(args.file, mode, encoding="utf-8",  # noqa: SIM115
                      buffering=io.DEFAULT_BUFFER_SIZE * 16)
    except FileExistsError:
        raise KalshiWSError(f"{args.file} exists; pass --force to overwrite it or --append "
                            "to add to it") from None
    with target:
        return _record(session, args, target)


def _record(session: _Session, args: argparse.Namespace, target: IO[str]) -> int:
    client = session.connect(queue=True)
    recorder = client.start_recording(target)
    _subscribe(session, client, args.channels, args.market)
    tty = sys.stderr.isatty()
    last: Any = None
    try:
        for item in _items(client, _Deadline(args.duration)):
            if type(item) is StreamUpdate:
                session.received += 1
                if tty and session.received % 100 == 0:
                    sys.stderr.write(f"\r\x1b[K{recorder.count:,} frames recorded")
                    sys.stderr.flush()
                if args.limit and session.received >= args.limit:
                    break
            last = item
    finally:
        count = client.stop_recording()
        if tty:
            sys.stderr.write("\r\x1b[K")
        added = "added" if args.append else "recorded"
        print(f"kalshi-ws: {added} {count:,} frame(s) to {args.file}", file=sys.stderr)
    return _exit_status(last if isinstance(last, SystemMessage) and last.final else None)


# ---------------------------------------------------------------------- book


def run_book(session: _Session, args: argparse.Namespace) -> int:
    from .bookview import BookView

    client = session.connect(queue=False)
    books = client.orderbooks(args.markets)
    view = BookView(books, args.markets, depth=args.depth,
                    live=sys.stdout.isatty(), out=sys.stdout)
    session.counted = f"update(s) applied to {len(args.markets)} book(s)"
    session.count = lambda: view.applied
    status = view.run(_Deadline(args.duration).at, args.limit, args.interval, session)
    session.summary("done")
    return status


# ---------------------------------------------------------------------- plot


def run_plot(session: _Session, args: argparse.Namespace) -> int:
    from .plot import plot_recording

    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError as exc:
        raise KalshiWSError(f"kalshi-ws plot needs matplotlib: pip install "
                            f"'kalshi-ws[plot]' ({exc})") from None
    _check_recording_path(args.file)
    output = args.output or os.path.splitext(args.file)[0] + ".png"
    if os.path.exists(output) and not args.force:
        raise KalshiWSError(f"{output} exists; pass --force to overwrite it")
    try:
        markets = plot_recording(args.file, output, markets=args.market or None)
    except ValueError as exc:
        raise KalshiWSError(str(exc)) from None
    print(f"kalshi-ws: drew {len(markets)} market(s) to {output}", file=sys.stderr)
    return 0
