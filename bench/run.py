"""Run the kalshi_ws benchmark: throughput, latency and memory against a blast server.

From the repository root::

    python bench/run.py                  # full run, about 4-5 minutes on 2 cores
    python bench/run.py --smoke          # a few seconds, tiny sizes (the test suite runs it)
    python bench/run.py --plot bench/results/latest.png
    python bench/run.py --setup-peers    # once: a venv with pykalshi for row (f)

Prints a table and writes JSON (``bench/results/latest.json`` by default). See
``bench/README.md`` for what each row means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.blast_server import BlastServer
from bench.measure import spread
from bench.report import evaluate_targets, format_table, plot, write_json
from bench.runners import LATENCY, MEMORY, SCALE, SLOW, THROUGHPUT, Runner

DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
SMOKE_JSON = Path(tempfile.gettempdir()) / "kalshi-bench-smoke.json"
PEER_VENV = ROOT / "bench" / ".peers"
PEER_PACKAGES = ("pykalshi",)
PEER_HINT = ("row (f) needs pykalshi in a separate venv: python bench/run.py --setup-peers "
             "(or: python -m venv bench/.peers && bench/.peers/bin/pip install pykalshi), "
             "or pass --peer-python PATH")

#: Sizes of the full and smoke runs. A full run takes about 4-5 minutes on 2 cores.
#: slow_*: the slow-consumer row (g); scale_*: the scale section (markets, deltas, runs
#: of each market count, and the seconds after which one case is reported as not
#: finished).
FULL = {"frames": 200_000, "rounds": 5, "latency": ((1000, 4.0), (5000, 2.0)),
        "memory_messages": 1_000_000, "mark_at": 100_000,
        "slow_max_pending": 65_536, "slow_timeout": 60.0,
        "scale_markets": (10, 1_000, 10_000, 100_000), "scale_deltas": 100_000,
        "scale_rounds": 3, "scale_timeout": 60.0}
SMOKE = {"frames": 2_000, "rounds": 1, "latency": ((1000, 0.2), (5000, 0.1)),
         "memory_messages": 10_000, "mark_at": 2_000,
         "slow_max_pending": 500, "slow_timeout": 30.0,
         "scale_markets": (10, 200), "scale_deltas": 2_000, "scale_rounds": 1,
         "scale_timeout": 30.0}
#: The slow-consumer row: server batch size (whole frames; replies wait at most one
#: batch) and the interval between list_subscriptions commands.
SLOW_BATCH = 64 * 1024
COMMAND_EVERY = 0.05
MAX_PENDING = 2_000_000  # inbox and queue bound for kalshi_ws: a blast must not overflow
CHILD_TIMEOUT = 180.0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"platform": f"{platform.system()} {platform.release()} {platform.machine()}",
            "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "implementation": platform.python_implementation(), "load_before": _load()}


def _load() -> float | None:
    """The 1-minute load average: other work on the machine moves every number."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _versions(peer_python: str | None) -> dict[str, str]:
    from kalshi_ws import __version__

    versions = {"kalshi_ws": __version__, "websocket-client": _version("websocket-client"),
                "websockets": _version("websockets")}
    if peer_python:
        try:
            code = "from importlib.metadata import version; print(version('pykalshi'))"
            out = subprocess.run([peer_python, "-c", code], capture_output=True, text=True,
                                 timeout=30, check=False)
            if out.returncode == 0:
                versions["pykalshi (peer)"] = out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return versions


def _write_key(folder: Path) -> Path:
    """A throwaway RSA key for the handshake signature (the server does not check it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "bench-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def find_peer_python(explicit: str | None) -> str | None:
    """The interpreter for peer rows: --peer-python, $KALSHI_BENCH_PEER_PYTHON,
    bench/.peers, or None."""
    for candidate in (explicit, os.environ.get("KALSHI_BENCH_PEER_PYTHON"),
                      str(PEER_VENV / "bin" / "python")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def setup_peers() -> int:
    """Create bench/.peers and install the peer clients into it (needs PyPI)."""
    _log(f"creating {PEER_VENV} and installing {', '.join(PEER_PACKAGES)} ...")
    venv.create(PEER_VENV, with_pip=True, clear=True)
    python = PEER_VENV / "bin" / "python"
    return subprocess.call([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES])


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} us"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} s"


def _k(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:,.0f}k"


def _num1(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def run_child(python: str, name: str, target: dict[str, Any],
              timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """Run one runner in a fresh interpreter and return its result dict."""
    command = [python, "-m", "bench.runners", name, json.dumps(target)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or b""
        text = out.decode() if isinstance(out, bytes) else out
        for line in text.splitlines():  # a result printed before the child hung
            if line.startswith("RESULT "):
                return dict(json.loads(line[len("RESULT "):]))
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def _scale_text(markets: int, outcome: dict[str, Any]) -> str:
    """One scale run, for the progress log."""
    if "error" in outcome or "skipped" in outcome:
        return f"{markets:,} markets: {outcome.get('error') or outcome['skipped']}"
    extra = outcome.get("extra", {})
    done = "" if extra.get("finished") else \
        f" (did not finish in {extra.get('timeout_s', 0):.0f} s)"
    return (f"{markets:,} markets: subscribe {_s(extra.get('subscribe_s'))}, synced "
            f"{_s(extra.get('synced_s'))}, {_k(extra.get('deltas_per_s'))} deltas/s, "
            f"{_num1(extra.get('rss_per_book_kib'))} KiB/book{done}")


def _median_run(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median deltas/s among the finished ones (else the last run),
    with every run's deltas/s and time to synced added to its ``extra``."""
    finished = [o for o in outcomes if "error" not in o and "skipped" not in o
                and o.get("extra", {}).get("finished")]
    if not finished:
        return outcomes[-1]
    finished.sort(key=lambda o: o["extra"]["deltas_per_s"])
    chosen = finished[(len(finished) - 1) // 2]
    chosen["extra"]["runs"] = len(outcomes)
    chosen["extra"]["deltas_per_s_runs"] = [o["extra"]["deltas_per_s"] for o in finished]
    chosen["extra"]["synced_s_runs"] = sorted(o["extra"].get("synced_s") or 0.0
                                              for o in finished)
    return chosen


class Bench:
    """One benchmark run: a blast server, then every runner in fresh processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = SMOKE if args.smoke else FULL
        self.frames = args.frames or self.sizes["frames"]
        self.rounds = args.rounds or self.sizes["rounds"]
        self.python = sys.executable
        self.peer_python = None if args.no_peers else find_peer_python(args.peer_python)
        self.only = set(args.only.split(",")) if args.only else None
        self.started = time.monotonic()
        self.key_path = Path()

    def target(self, server: BlastServer, url: str, expected: int, channels: list[str],
               **more: Any) -> dict[str, Any]:
        return {"url": url, "expected": expected, "channels": channels,
                "markets": server.info["markets"], "key_path": str(self.key_path),
                "max_pending": MAX_PENDING, **more}

    def runners(self) -> list[Runner]:
        chosen = [r for r in THROUGHPUT if self.only is None or r.key in self.only]
        return [r for r in chosen if not (r.peer and self.args.no_peers)]

    def throughput(self, server: BlastServer) -> dict[str, Any]:
        runners = self.runners()
        if not runners:
            return {}
        rates: dict[str, list[float]] = {r.key: [] for r in runners}
        extras: dict[str, list[Any]] = {r.key: [] for r in runners}
        complete: dict[str, bool] = {r.key: True for r in runners}
        skipped: dict[str, str] = {}
        errors: dict[str, str] = {}
        for round_number in range(self.rounds):
            shift = round_number % len(runners)  # alternate the order between rounds
            order = runners[shift:] + runners[:shift]
            summary = []
            for runner in order:
                if runner.key in skipped or runner.key in errors:
                    continue
                python = self.python
                if runner.peer:
                    if self.peer_python is None:
                        skipped[runner.key] = "n/a (pykalshi not installed: see note)"
                        continue
                    python = self.peer_python
                url = server.url("blast", n=self.frames)
                target = self.target(server, url, self.frames,
                                     list(server.info["channels"]))
                outcome = run_child(python, f"throughput.{runner.key}", target)
                if "skipped" in outcome:
                    skipped[runner.key] = outcome["skipped"]
                    summary.append(f"{runner.key}: {skipped[runner.key]}")
                    continue
                if "error" in outcome:
                    errors[runner.key] = outcome["error"]
                    summary.append(f"{runner.key}: FAILED {errors[runner.key]}")
                    continue
                rate = outcome["messages"] / outcome["seconds"]
                rates[runner.key].append(rate)
                extras[runner.key].append(outcome["extra"])
                if outcome["messages"] != self.frames:
                    complete[runner.key] = False
                    outcome["extra"]["messages"] = outcome["messages"]
                summary.append(f"{runner.key} {rate / 1000:,.0f}k")
            _log(f"  round {round_number + 1}/{self.rounds}: " + ", ".join(summary))
        rows: dict[str, Any] = {}
        ceiling = spread(rates.get("a", []))["median"]
        for runner in runners:
            row: dict[str, Any] = {"label": runner.label}
            if runner.key in errors:
                row["error"] = errors[runner.key]
            if not rates[runner.key]:
                row["skipped"] = skipped.get(runner.key) or "failed: " + errors[runner.key]
            else:
                stats = spread(rates[runner.key])
                row.update(stats)
                row["rates"] = rates[runner.key]
                row["ratio"] = None if math.isnan(ceiling) else stats["median"] / ceiling
                row["complete"] = complete[runner.key]
                row["extra"] = extras[runner.key]
                # CPU of the client's process per message (all its threads): the
                # machine's noise moves it less than the rate.
                cpu = [e["cpu_s"] / max(1, self.frames) * 1e6
                       for e in extras[runner.key] if e.get("cpu_s")]
                row["cpu_us_per_msg"] = statistics.median(cpu) if cpu else None
            rows[runner.key] = row
        return rows

    def latency(self, server: BlastServer) -> dict[str, Any]:
        table: dict[str, Any] = {}
        for rate, seconds in self.sizes["latency"]:
            count = max(10, int(rate * seconds))
            row: dict[str, Any] = {}
            for runner in LATENCY:
                url = server.url("paced", rate=rate, n=count)
                outcome = run_child(self.python, f"latency.{runner.key}",
                                    self.target(server, url, count, ["trade"]))
                if "error" in outcome or "skipped" in outcome:
                    row[runner.key] = {"label": runner.label,
                                       "error": outcome.get("error") or outcome["skipped"]}
                    continue
                row[runner.key] = {"label": runner.label, "messages": outcome["messages"],
                                   **outcome["extra"]}
            _log(f"  latency at {rate:,} msg/s: " + ", ".join(
                f"{k} p99 {v.get('p99_us', float('nan')):,.0f} us" for k, v in row.items()))
            table[str(rate)] = row
        return table

    def memory(self, server: BlastServer) -> dict[str, Any]:
        count = self.sizes["memory_messages"]
        url = server.url("blast", n=count)
        target = self.target(server, url, count, list(server.info["channels"]),
                             mark_at=self.sizes["mark_at"])
        outcome = run_child(self.python, f"memory.{MEMORY.key}", target)
        _log(f"  memory: {count:,} messages done")
        return outcome

    def wanted(self, key: str) -> bool:
        """Whether --only (if given) names this section ("g" slow row, "scale")."""
        return self.only is None or key in self.only

    def slow(self, server: BlastServer) -> dict[str, Any]:
        """Row (g): a stuck callback with a full buffer under a mixed blast."""
        count = self.frames
        limit = self.sizes["slow_timeout"]
        url = server.url("blast", n=count, batch=SLOW_BATCH, hold=limit + 30)
        target = self.target(server, url, count, list(server.info["channels"]),
                             slow_max_pending=self.sizes["slow_max_pending"],
                             slow_timeout=limit, command_every=COMMAND_EVERY)
        outcome = run_child(self.python, f"slow.{SLOW.key}", target, timeout=limit + 90)
        row: dict[str, Any] = {"label": SLOW.label, **outcome}
        extra = outcome.get("extra", {})
        if "error" not in outcome:
            state = "done" if extra.get("finished") else f"did not finish in {limit:.0f} s"
            _log(f"  (g) {outcome['messages']:,}/{count:,} messages read, {state}; "
                 f"{_us(extra.get('per_message_us_full'))} per message once full; "
                 f"list_subscriptions p99 {_ms(extra.get('rtt_p99_ms'))}")
        else:
            _log(f"  (g) FAILED {outcome['error']}")
        return row

    def scale(self, server: BlastServer) -> dict[str, Any]:
        """The scale section: order books for 10 ... 100,000 markets.

        Each market count runs ``scale_rounds`` times, the counts alternating; a row is
        the run with the median deltas/s among those that finished, and keeps every
        run's deltas/s and time to synced (one run of 100,000 deltas moves by a fifth
        on a noisy machine, and the flat-cost ratio divides two of them).
        """
        counts = self.args.scale_markets or self.sizes["scale_markets"]
        runs: dict[int, list[dict[str, Any]]] = {markets: [] for markets in counts}
        for round_number in range(self.sizes["scale_rounds"]):
            for markets in counts:
                outcome = self._scale_run(server, markets)
                runs[markets].append(outcome)
                _log(f"  round {round_number + 1}: {_scale_text(markets, outcome)}")
        rows = {str(markets): _median_run(outcomes) for markets, outcomes in runs.items()}
        base = rows.get(str(min(counts)), {}).get("extra", {}).get("deltas_per_s")
        for row in rows.values():
            rate = row.get("extra", {}).get("deltas_per_s")
            if base and rate and row.get("extra", {}).get("finished"):
                row["extra"]["vs_smallest"] = rate / base
        return rows

    def _scale_run(self, server: BlastServer, markets: int) -> dict[str, Any]:
        """One run of the scale section for ``markets`` markets, in a fresh process."""
        deltas = self.sizes["scale_deltas"]
        limit = self.sizes["scale_timeout"]
        url = server.url("scale", m=markets, n=deltas, hold=limit + 30)
        target = self.target(server, url, deltas, ["orderbook_delta"],
                             markets_count=markets, deltas=deltas, scale_timeout=limit)
        target["markets"] = []  # the runner builds the tickers (argv has a size limit)
        server.drain()
        outcome = run_child(self.python, f"scale.{SCALE.key}", target, timeout=limit + 60)
        report = server.last_result(timeout=15.0) or {}
        # The subscribe command as the server received it (all M tickers in one frame).
        outcome["server"] = {k: report.get(k) for k in (
            "subscribe_bytes", "subscribe_markets", "build_seconds", "send_seconds")}
        return outcome

    def run(self) -> dict[str, Any]:
        mode = "smoke" if self.args.smoke else "full"
        _log(f"kalshi_ws benchmark ({mode}): starting the blast server "
             f"({self.frames:,} frames) ...")
        with tempfile.TemporaryDirectory(prefix="kalshi-bench-") as folder:
            self.key_path = _write_key(Path(folder))
            with BlastServer(self.frames, seed=self.args.seed) as server:
                results: dict[str, Any] = {
                    "schema": 1,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                    "machine": _machine(),
                    "versions": _versions(self.peer_python),
                    "config": {"mode": mode, "frames": self.frames, "rounds": self.rounds,
                               "seed": self.args.seed, "max_pending": MAX_PENDING,
                               "queue_maxsize": MAX_PENDING,
                               "latency": [list(x) for x in self.sizes["latency"]],
                               "memory_messages": self.sizes["memory_messages"],
                               "slow_max_pending": self.sizes["slow_max_pending"],
                               "slow_timeout": self.sizes["slow_timeout"],
                               "slow_batch": SLOW_BATCH, "command_every": COMMAND_EVERY,
                               "scale_markets": list(self.args.scale_markets
                                                     or self.sizes["scale_markets"]),
                               "scale_deltas": self.sizes["scale_deltas"],
                               "scale_rounds": self.sizes["scale_rounds"],
                               "scale_timeout": self.sizes["scale_timeout"]},
                    "frames": server.info,
                }
                _log("throughput:")
                results["throughput"] = self.throughput(server)
                if self.peer_python is None and not self.args.no_peers:
                    results["peer_hint"] = PEER_HINT
                if not self.args.no_latency:
                    _log("latency:")
                    results["latency"] = self.latency(server)
                if not self.args.no_memory:
                    _log("memory:")
                    results["memory"] = self.memory(server)
                if self.wanted("g"):
                    _log("slow consumer:")
                    results["slow_consumer"] = self.slow(server)
                if self.wanted("scale"):
                    _log("scale:")
                    results["scale"] = self.scale(server)
        results["machine"]["load_after"] = _load()
        results["targets"] = evaluate_targets(results)
        results["runtime_seconds"] = round(time.monotonic() - self.started, 1)
        return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one round: a few seconds, numbers meaningless")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help=f"where to write the results (default: "
                             f"{DEFAULT_JSON.relative_to(ROOT)}; with --smoke: {SMOKE_JSON})")
    parser.add_argument("--plot", type=Path, metavar="PATH",
                        help="also draw a PNG (needs matplotlib)")
    parser.add_argument("--frames", type=int, help="frames per throughput run")
    parser.add_argument("--rounds", type=int, help="throughput rounds")
    parser.add_argument("--seed", type=int, default=20261121, help="frame generator seed")
    parser.add_argument("--only", metavar="KEYS",
                        help="throughput rows to run, e.g. a,c,d (default: all); 'g' is the "
                             "slow-consumer row and 'scale' the scale section, which run "
                             "only when named once --only is given")
    parser.add_argument("--scale-markets", metavar="COUNTS",
                        type=lambda text: tuple(int(x) for x in text.split(",")),
                        help="market counts of the scale section, e.g. 10,10000")
    parser.add_argument("--peer-python", metavar="PATH",
                        help="interpreter with pykalshi installed, for row (f)")
    parser.add_argument("--no-peers", action="store_true", help="skip row (f)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory run")
    parser.add_argument("--setup-peers", action="store_true",
                        help=f"create {PEER_VENV.relative_to(ROOT)} with pykalshi and exit")
    args = parser.parse_args(argv)
    if args.smoke and args.peer_python is None:
        args.no_peers = True  # the smoke run must not depend on another venv
    if args.json is None:  # a smoke run never overwrites the tracked results
        args.json = SMOKE_JSON if args.smoke else DEFAULT_JSON
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup_peers:
        return setup_peers()
    results = Bench(args).run()
    print(format_table(results))
    write_json(results, args.json)
    print(f"\nresults written to {args.json}")
    if args.plot:
        print(plot(results, args.plot))
    failed = [k for k, row in results["throughput"].items()
              if "error" in row or not row.get("complete", True)]
    failed += [f"latency {rate} {k}" for rate, rows in results.get("latency", {}).items()
               for k, row in rows.items() if "error" in row]
    if "error" in results.get("memory", {}):
        failed.append("memory")
    if "error" in results.get("slow_consumer", {}):
        failed.append("slow consumer")
    failed += [f"scale {m}" for m, row in results.get("scale", {}).items() if "error" in row]
    if failed:
        print(f"failed or incomplete: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
