"""Turning a run's results into the table, the JSON file and the optional plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["evaluate_targets", "format_table", "plot", "write_json"]

#: The issue's targets: measured and reported, never asserted.
TARGETS = (
    ("c_ratio", "(c) callback >= 0.80 x (a)", 0.80, ">="),
    ("d_ratio", "(d) queue >= 0.70 x (a)", 0.70, ">="),
    ("p99_1000", "(c) p99 < 1 ms at 1,000 msg/s", 1000.0, "<"),
    ("p99_5000", "(c) p99 < 5 ms at 5,000 msg/s", 5000.0, "<"),
    ("growth", "RSS growth after warm-up < 10 MB", 10 * 1024.0, "<"),
    ("threads", "no thread growth after close", 0.0, "<="),
)


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare the measurements with the issue's targets."""
    throughput = results.get("throughput", {})
    latency = results.get("latency", {})
    memory = results.get("memory", {}).get("extra", {})
    measured: dict[str, float | None] = {
        "c_ratio": throughput.get("c", {}).get("ratio"),
        "d_ratio": throughput.get("d", {}).get("ratio"),
        "p99_1000": latency.get("1000", {}).get("c", {}).get("p99_us"),
        "p99_5000": latency.get("5000", {}).get("c", {}).get("p99_us"),
        "growth": memory.get("growth_after_mark_kb"),
        "threads": (memory["threads_after_close"] - memory["threads_before"]
                    if "threads_before" in memory else None),
    }
    rows = []
    for key, text, limit, op in TARGETS:
        value = measured[key]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            met = None
        elif op == ">=":
            met = value >= limit
        elif op == "<":
            met = value < limit
        else:
            met = value <= limit
        rows.append({"key": key, "target": text, "limit": limit, "measured": value,
                     "met": met})
    return rows


def format_table(results: dict[str, Any]) -> str:
    """The fixed-width report printed at the end of a run."""
    lines: list[str] = []
    add = lines.append
    machine = results["machine"]
    config = results["config"]
    add(f"kalshi_ws benchmark  {results['date']}  ({config['mode']}: "
        f"{config['frames']:,} frames x {config['rounds']} round(s), "
        f"{results.get('runtime_seconds', 0):.0f} s)")
    add(f"machine: {machine['platform']}, {machine['cpus']} CPU(s), {machine['cpu']}, "
        f"Python {machine['python']}; load average {machine.get('load_before')} before, "
        f"{machine.get('load_after')} after")
    add("versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    frames = results["frames"]
    kinds = dict(frames["kinds"])
    snapshots = kinds.pop("orderbook_snapshot", 0)
    total = sum(kinds.values())
    mix = ", ".join(f"{name} {100 * count / total:.1f}%" for name, count in kinds.items())
    add(f"frames: {mix} (after {snapshots} orderbook_snapshot) on {len(frames['markets'])} "
        f"markets; payload {frames['bytes_min']}-{frames['bytes_max']} B, "
        f"mean {frames['bytes_mean']:.0f} B; seed {frames['seed']}")
    add("")
    add(f"Throughput, messages/s (median of {config['rounds']} round(s), min-max; "
        "each run in a fresh process)")
    add(f"  {'row':<4} {'client':<52} {'median':>10} {'min-max':>21} {'vs (a)':>7}")
    for key, row in results["throughput"].items():
        label = row["label"]
        if row.get("skipped"):
            add(f"  ({key}) {label:<52} {'n/a':>10}   {row['skipped']}")
            continue
        if key == "s":
            ratio = "-"
        else:
            ratio = _num(row.get("ratio"), 2)
        span = f"{_num(row['min'])}-{_num(row['max'])}"
        flag = "" if row.get("complete", True) else "  (incomplete: see JSON)"
        add(f"  ({key}) {label:<52} {_num(row['median']):>10} {span:>21} {ratio:>7}{flag}")
    if results.get("peer_hint"):
        add(f"  note: {results['peer_hint']}")
    latency = results.get("latency", {})
    if latency:
        add("")
        add("Latency, server send -> delivery, microseconds (server stamps each trade frame "
            "with time.monotonic_ns())")
        add(f"  {'row':<4} {'delivery':<34} {'msg/s':>7} {'p50':>8} {'p99':>8} "
            f"{'p99.9':>8} {'max':>8}")
        for rate, rows in latency.items():
            for key, row in rows.items():
                if "error" in row:
                    add(f"  ({key}) {row['label']:<34} {int(rate):>7,}  failed: {row['error']}")
                    continue
                add(f"  ({key}) {row['label']:<34} {int(rate):>7,} {_num(row.get('p50_us')):>8} "
                    f"{_num(row.get('p99_us')):>8} {_num(row.get('p999_us')):>8} "
                    f"{_num(row.get('max_us')):>8}")
    memory = results.get("memory")
    if memory:
        extra = memory.get("extra", {})
        add("")
        if memory.get("error") or not extra:
            add(f"Memory: {memory.get('error') or 'not measured'}")
        else:
            mib = 1024.0
            add(f"Memory, (c) over {memory['messages']:,} messages "
                f"({memory['messages'] / memory['seconds']:,.0f} msg/s)")
            add(f"  RSS after connect {extra['rss_after_connect_kb'] / mib:.1f} MiB, after "
                f"{extra['mark_at']:,} messages {extra['rss_at_mark_kb'] / mib:.1f} MiB, at end "
                f"{extra['rss_at_end_kb'] / mib:.1f} MiB (growth "
                f"{_num((extra['growth_after_mark_kb'] or 0) / mib, 1)} MiB), peak "
                f"{extra['peak_rss_kb'] / mib:.1f} MiB")
            add(f"  threads: {extra['threads_before']} before connect, "
                f"{extra['threads_after_close']} after close; peak callback backlog "
                f"{extra['peak_backlog']:,}")
    add("")
    smoke = config["mode"] == "smoke"
    add("Targets (measured, not asserted)" + (
        ": a smoke run is too small to judge them" if smoke else ""))
    for row in results.get("targets", []):
        verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        if smoke:
            verdict = "(smoke)"
        value = row["measured"]
        if row["key"].endswith("ratio"):
            shown = _num(value, 2)
        elif row["key"] == "growth":
            shown = "-" if value is None else f"{value / 1024:.1f} MiB"
        elif row["key"].startswith("p99"):
            shown = "-" if value is None else f"{value:,.0f} us"
        else:
            shown = "-" if value is None else f"{value:+.0f}"
        add(f"  {row['target']:<40} {shown:>12}  {verdict}")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the results (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def plot(results: dict[str, Any], path: Path) -> str:
    """Draw throughput ratios and latency percentiles to a PNG; returns a message.

    Needs matplotlib (``pip install kalshi-ws[bench]``); without it, says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return ("--plot needs matplotlib, which is not installed: pip install matplotlib "
                "(or pip install -e '.[bench]'); the table and JSON were written")
    rows = [(k, r) for k, r in results["throughput"].items()
            if k != "s" and not r.get("skipped") and r.get("ratio") is not None]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [f"({k})" for k, _ in rows]
    ratios = [r["ratio"] for _, r in rows]
    bars = left.bar(names, ratios, color=["#888888"] + ["#3b75af"] * (len(rows) - 1))
    for bar, (_, row) in zip(bars, rows):
        left.annotate(f"{row['median'] / 1000:.0f}k/s", (bar.get_x() + bar.get_width() / 2,
                      bar.get_height()), ha="center", va="bottom", fontsize=8)
    left.axhline(0.8, color="#c44e52", linestyle="--", linewidth=1, label="target (c) 0.8")
    left.axhline(0.7, color="#dd8452", linestyle=":", linewidth=1, label="target (d) 0.7")
    left.set_ylabel("throughput / (a) websocket-client")
    left.set_title("Throughput relative to the bare websocket-client loop")
    left.legend(fontsize=8, loc="lower right", framealpha=0.95)
    latency = results.get("latency", {})
    groups = [(rate, key, row) for rate in latency for key, row in latency[rate].items()]
    labels = [f"({key})\n{int(rate):,}/s" for rate, key, _ in groups]
    width = 0.27
    for index, (name, field) in enumerate((("p50", "p50_us"), ("p99", "p99_us"),
                                           ("p99.9", "p999_us"))):
        values = [row.get(field) or 0 for _, _, row in groups]
        right.bar([i + (index - 1) * width for i in range(len(groups))], values, width,
                  label=name)
    right.set_xticks(range(len(groups)))
    right.set_xticklabels(labels, fontsize=8)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    right.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_ylabel("microseconds, send -> delivery")
    right.set_title("Latency percentiles")
    right.legend(fontsize=8)
    figure.suptitle(f"kalshi_ws benchmark {results['date']} ({results['machine']['cpus']} "
                    f"CPUs, Python {results['machine']['python']})", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"
