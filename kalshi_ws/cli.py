"""The ``kalshi-ws`` command: stream, watch order books, record — live or simulated.

Examples::

    kalshi-ws stream ticker trade --simulate          # no account needed
    kalshi-ws stream orderbook_delta --market KXHIGHNY-26NOV21-T58 --json | jq .
    kalshi-ws book SIM-ALPHA SIM-BRAVO --simulate
    kalshi-ws record session.jsonl ticker trade --duration 60

Credentials come from the same variables as ``KalshiConfig.from_env()``
(``KALSHI_API_KEY_ID``, ``KALSHI_PRIVATE_KEY_PATH`` or ``KALSHI_PRIVATE_KEY``,
``KALSHI_ENV``, ``KALSHI_WS_URL``) or from ``--key-id``, ``--key-file``, ``--env``,
``--url``. ``--simulate`` runs everything against the built-in fake server and
market simulator instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn

import attrs

from ._version import __version__
from .client import KalshiStreamClient
from .config import HealthConfig, KalshiConfig, ReconnectPolicy
from .exceptions import KalshiWSError
from .models import (
    NO_EXTRA,
    Channel,
    ClientStats,
    Closed,
    MalformedMessage,
    StreamUpdate,
    SystemMessage,
    UnknownMessage,
)

__all__ = ["main"]

CHANNELS = [c.value for c in Channel if c.value != "multivariate"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, with one sub-command per job."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--simulate", action="store_true",
                       help="run against the built-in fake Kalshi server and market simulator")
    group.add_argument("--key-id", help="API key id (default: $KALSHI_API_KEY_ID)")
    group.add_argument("--key-file", help="PEM private key file "
                       "(default: $KALSHI_PRIVATE_KEY_PATH or $KALSHI_PRIVATE_KEY)")
    group.add_argument("--env", choices=["demo", "prod"],
                       help="Kalshi environment (default: $KALSHI_ENV or demo)")
    group.add_argument("--url", help="WebSocket URL, overriding --env (default: $KALSHI_WS_URL)")
    group.add_argument("--no-reconnect", action="store_true",
                       help="end on the first connection loss instead of reconnecting")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="log to stderr (-v info, -vv debug)")

    parser = _Parser(prog="kalshi-ws", description="Stream Kalshi's WebSocket API from a "
                     "terminal.", epilog="Add --simulate to any command to try it offline.")
    parser.add_argument("--version", action="version", version=f"kalshi-ws {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    stream = commands.add_parser("stream", parents=[common], help="print updates as they come",
                                 description="Print every update of the channels, one per line.")
    stream.add_argument("channels", nargs="+", metavar="CHANNEL", choices=CHANNELS,
                        help=f"one or more of: {', '.join(CHANNELS)}")
    _add_limits(stream)
    stream.add_argument("--market", action="append", default=[], metavar="TICKER",
                        help="only these markets (repeat the option); required for "
                        "orderbook_delta unless --simulate")
    stream.add_argument("--json", action="store_true",
                        help="JSON lines (Decimal values as strings) instead of text")
    stream.set_defaults(run=run_stream)

    book = commands.add_parser("book", parents=[common], help="a live top-of-book view",
                               description="Maintain order books and show their top levels. "
                               "Refreshes in place in a terminal; prints snapshots when piped.")
    book.add_argument("markets", nargs="+", metavar="MARKET")
    book.add_argument("--depth", type=_positive_int, default=5, help="levels per side (5)")
    book.add_argument("--interval", type=_positive_float, default=1.0,
                      help="seconds between snapshots when piped (1.0)")
    _add_limits(book, limit_help="stop after N snapshots")
    book.set_defaults(run=run_book)

    record = commands.add_parser("record", parents=[common], help="record frames to a file",
                                 description="Record every frame received, with its receive "
                                 "time, to a JSON-lines file that FakeKalshiServer(replay=...) "
                                 "plays back.")
    record.add_argument("file", metavar="FILE")
    record.add_argument("channels", nargs="+", metavar="CHANNEL", choices=CHANNELS)
    record.add_argument("--market", action="append", default=[], metavar="TICKER")
    _add_limits(record, limit_help="stop after N updates")
    record.set_defaults(run=run_record)
    return parser


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
    _configure_logging(args.verbose)
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
        print(f"kalshi-ws: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kalshi-ws: error: {exc}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so interpreter exit stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbosity < 2:
        logging.getLogger("websockets").setLevel(logging.WARNING)


class _Session:
    """The client (and, with --simulate, the fake server) for one command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.client: KalshiStreamClient | None = None
        self.started = time.monotonic()
        self.received = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Session:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def connect(self, **options: Any) -> KalshiStreamClient:
        config = self._simulated_config() if self.args.simulate else _config_from(self.args)
        reconnect = None if self.args.no_reconnect else ReconnectPolicy()
        client = KalshiStreamClient.connect(config, reconnect=reconnect or False,
                                            health=HealthConfig(), **options)
        self.client = client
        self._stack.callback(client.close, 1.0)
        return client

    def _simulated_config(self) -> KalshiConfig:
        try:
            from .testing import simulated
        except ImportError as exc:  # websockets is not installed
            raise KalshiWSError(f"--simulate needs the fake server: pip install "
                                f"'kalshi-ws[testing]' ({exc})") from None
        markets = getattr(self.args, "market", []) or getattr(self.args, "markets", [])
        simulation = self._stack.enter_context(simulated(markets))
        self.server = simulation.server
        return simulation.config

    def markets_for(self, channels: Sequence[str], markets: list[str]) -> list[str] | None:
        if markets:
            return markets
        if self.server is not None and Channel.ORDERBOOK_DELTA in channels:
            return list(self.server.simulator.markets)
        return None

    def summary(self, how: str) -> None:
        elapsed = time.monotonic() - self.started
        stats = self.client.stats().total() if self.client is not None else None
        dropped = f", {stats.dropped} dropped" if stats and stats.dropped else ""
        print(f"kalshi-ws: {how}: {self.received} update(s) in {elapsed:.1f} s{dropped}",
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
        text = str(exc)
        # Name the flag the user typed rather than the variable it stood in for.
        for variable, flag in (("KALSHI_PRIVATE_KEY_PATH", "key_file"), ("KALSHI_ENV", "env"),
                               ("KALSHI_WS_URL", "url")):
            if text.startswith(f"{variable}:") and getattr(args, flag):
                text = "--" + flag.replace("_", "-") + text[len(variable):]
        raise type(exc)(f"{text} (pass --key-id/--key-file, or --simulate to try it "
                        "without an account)") from None


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
    out = sys.stdout
    status = _StatusLine(session) if sys.stderr.isatty() else None
    render = _json_line if args.json else _text_line
    last: Any = None
    for item in _items(client, _Deadline(args.duration),
                       idle=status.refresh if status else None):
        out.write(render(item))
        out.write("\n")
        if client.updates.empty():
            out.flush()
        if status is not None:
            status.refresh()
        if type(item) is StreamUpdate:
            session.received += 1
            if args.limit and session.received >= args.limit:
                break
        last = item
    out.flush()
    if status is not None:
        status.clear()
    session.summary("done")
    return _exit_status(last if isinstance(last, SystemMessage) and last.final else None)


def _staleness(stats: ClientStats) -> str:
    """The status line's worst staleness: the channel silent the longest."""
    stalest = stats.stalest()
    if stalest is None:
        return ""
    channel, seconds = stalest
    return f" | stalest: {channel} {seconds:.1f} s"


class _StatusLine:
    """A one-line status on a terminal's stderr: rate, totals, drops, reconnects and the
    worst staleness."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.next = time.monotonic() + 1.0
        self.last_count = 0
        self.last_time = time.monotonic()

    def refresh(self) -> None:
        now = time.monotonic()
        if now < self.next or self.session.client is None:
            return
        stats = self.session.client.stats()
        count = self.session.received
        rate = (count - self.last_count) / (now - self.last_time)
        self.last_count, self.last_time, self.next = count, now, now + 1.0
        sys.stderr.write(f"\r\x1b[K{rate:,.0f} msg/s | {count:,} received | "
                         f"{stats.total().dropped} dropped | {stats.reconnects} reconnects"
                         f"{_staleness(stats)}")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def _plain(value: Any) -> Any:
    """JSON-ready form of a message: Decimals as strings, classes as dicts."""
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))
                if getattr(value, f.name) is not None and getattr(value, f.name) is not NO_EXTRA}
    if isinstance(value, Decimal):
        return str(value)
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
        return _plain(item)
    fields = {"reason": getattr(item, "reason", str(item)),
              "will_reconnect": getattr(item, "will_reconnect", False)}
    if getattr(item, "code", None) is not None:
        fields["code"] = item.code
    return fields


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def _text_line(item: Any) -> str:
    if type(item) is not StreamUpdate:
        fields = " ".join(f"{k}={v}" for k, v in _system_fields(item).items())
        return f"{_clock()} -- {type(item).__name__} {fields}"
    msg = item.msg
    describe = _DESCRIBE.get(item.type)
    text = describe(msg) if describe is not None and not isinstance(
        msg, (UnknownMessage, MalformedMessage)) else _generic(msg)
    return f"{_clock()} {item.type:<18} {text}"


def _size(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f}"


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
    return (f"{msg.market_ticker}  last {_price(msg.price_dollars)}  "
            f"bid {_price(msg.yes_bid_dollars)} x {_size(msg.yes_bid_size_fp)}  "
            f"ask {_price(msg.yes_ask_dollars)} x {_size(msg.yes_ask_size_fp)}  "
            f"vol {_size(msg.volume_fp)}")


def _describe_trade(msg: Any) -> str:
    side = msg.taker_outcome_side or msg.taker_side or "?"
    return (f"{msg.market_ticker}  {_size(msg.count_fp)} @ {_price(msg.yes_price_dollars)}  "
            f"taker {side}")


def _describe_snapshot(msg: Any) -> str:
    yes, no = msg.yes_levels(), msg.no_levels()
    best_yes = max(yes) if yes else None
    best_no = max(no) if no else None
    return (f"{msg.market_ticker}  snapshot  yes {len(yes)} levels best "
            f"{_level(best_yes)}  no {len(no)} levels best {_level(best_no)}")


def _level(level: tuple[Decimal, Decimal] | None) -> str:
    return "-" if level is None else f"{level[0]} x {_size(level[1])}"


def _describe_delta(msg: Any) -> str:
    change = msg.size_change()
    sign = "+" if change > 0 else ""
    return f"{msg.market_ticker}  {msg.side} {msg.level_price()} {sign}{_size(change)}"


def _describe_fill(msg: Any) -> str:
    return (f"{msg.market_ticker}  {_size(msg.count_fp)} @ {_price(msg.yes_price_dollars)}  "
            f"{msg.outcome_side or msg.side or '?'} {msg.book_side or ''}  "
            f"position {_size(msg.post_position_fp)}")


_DESCRIBE = {
    "ticker": _describe_ticker,
    "trade": _describe_trade,
    "orderbook_snapshot": _describe_snapshot,
    "orderbook_delta": _describe_delta,
    "fill": _describe_fill,
}


# ---------------------------------------------------------------------- record


def run_record(session: _Session, args: argparse.Namespace) -> int:
    client = session.connect(queue=True)
    recorder = client.start_recording(args.file)
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
        print(f"kalshi-ws: recorded {count} frame(s) to {args.file}", file=sys.stderr)
    return _exit_status(last if isinstance(last, SystemMessage) and last.final else None)


# ---------------------------------------------------------------------- book


def run_book(session: _Session, args: argparse.Namespace) -> int:
    from .bookview import BookView

    client = session.connect(queue=False)
    books = client.orderbooks(args.markets)
    view = BookView(books, args.markets, depth=args.depth,
                    live=sys.stdout.isatty(), out=sys.stdout)
    return view.run(_Deadline(args.duration).at, args.limit, args.interval, session)

