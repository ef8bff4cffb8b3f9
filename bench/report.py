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
    ("scale_flat", "deltas/s, 10k & 100k vs 10 markets >= 0.85", 0.85, ">="),
    ("scale_synced", "100,000 markets all synced <= 10 s", 10.0, "<="),
    ("scale_kib", "<= 6 KiB per book at 100,000 markets", 6.0, "<="),
    ("c_fast_ratio", "issue 13: (c) callback >= 1.5 x (a)", 1.5, ">="),
    ("d_fast_ratio", "issue 13: (d) queue >= 1.2 x (a)", 1.2, ">="),
    ("e_fast_ratio", "issue 13: (e) books >= 1.2 x (a)", 1.2, ">="),
    ("p999_5000", "issue 13: (c) p99.9 <= 1 ms at 5,000 msg/s", 1000.0, "<="),
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
        **_scale_measures(results.get("scale", {})),
        "c_fast_ratio": throughput.get("c", {}).get("ratio"),
        "d_fast_ratio": throughput.get("d", {}).get("ratio"),
        "e_fast_ratio": throughput.get("e", {}).get("ratio"),
        "p999_5000": latency.get("5000", {}).get("c", {}).get("p999_us"),
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


def _scale_measures(scale: dict[str, Any]) -> dict[str, float | None]:
    """The scale section's numbers that the targets compare (None when not measured)."""
    def extra(markets: int) -> dict[str, Any]:
        row = scale.get(str(markets), {})
        return row.get("extra", {}) if "error" not in row else {}

    ratios = [extra(m).get("vs_smallest") for m in (10_000, 100_000)]
    return {
        "scale_flat": None if None in ratios or str(10) not in scale
        else min(ratios),  # type: ignore[type-var]
        "scale_synced": extra(100_000).get("synced_s"),
        "scale_kib": extra(100_000).get("rss_per_book_kib"),
    }


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
    add(f"  {'row':<6} {'client':<52} {'median':>10} {'min-max':>21} {'vs (a)':>7} "
        f"{'CPU us/msg':>11}")
    for key, row in results["throughput"].items():
        label = row["label"]
        if row.get("skipped"):
            add(f"  {'(' + key + ')':<6} {label:<52} {'n/a':>10}   {row['skipped']}")
            continue
        if key == "s":
            ratio = "-"
        else:
            ratio = _num(row.get("ratio"), 2)
        span = f"{_num(row['min'])}-{_num(row['max'])}"
        flag = "" if row.get("complete", True) else "  (incomplete: see JSON)"
        cpu = _num(row.get("cpu_us_per_msg"), 1)
        add(f"  {'(' + key + ')':<6} {label:<52} {_num(row['median']):>10} {span:>21} "
            f"{ratio:>7} {cpu:>11}{flag}")
    parsers = {key: row["extra"][0].get("c_parser") for key, row in results["throughput"].items()
               if row.get("extra") and "c_parser" in row["extra"][0]}
    if parsers:
        add("  C speed-ups used (kalshi_ws._speedups): " + ", ".join(
            f"({key}) {'yes' if on else 'no'}" for key, on in parsers.items()))
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
    slow = results.get("slow_consumer")
    if slow:
        add("")
        lines.extend(_slow_lines(slow, config))
    scale = results.get("scale")
    if scale:
        add("")
        lines.extend(_scale_lines(scale, config))
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
        elif row["key"] == "scale_flat":
            shown = "-" if value is None else f"{value:.2f} x"
        elif row["key"] == "scale_synced":
            shown = "-" if value is None else f"{value:,.1f} s"
        elif row["key"] == "scale_kib":
            shown = "-" if value is None else f"{value:.1f} KiB"
        else:
            shown = "-" if value is None else f"{value:+.0f}"
        add(f"  {row['target']:<40} {shown:>12}  {verdict}")
    return "\n".join(lines)


def _slow_lines(slow: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Row (g): the stuck callback, its full buffer, and commands meanwhile."""
    lines = [(f"Slow consumer: (g) {slow.get('label', '')}: a callback stuck until the end "
              f"of the stream, max_pending {config.get('slow_max_pending', 0):,}, mixed blast")]
    if "error" in slow or "skipped" in slow:
        lines.append(f"  failed: {slow.get('error') or slow.get('skipped')}")
        return lines
    extra = slow.get("extra", {})
    state = "whole blast read" if extra.get("finished") else \
        f"did not finish in {extra.get('timeout_s', 0):.0f} s"
    lines.append(f"  reader: {slow['messages']:,} of {extra.get('expected', 0):,} messages in "
                 f"{slow['seconds']:.2f} s ({state}); "
                 f"{_num(extra.get('per_message_us_overall'), 1)} us per message overall, "
                 f"{_num(extra.get('per_message_us_full'), 1)} us once the buffer was full "
                 f"(after {_num(extra.get('full_after_s'), 2)} s)")
    lines.append(f"  dropped {extra.get('dropped', 0):,}, held back (books awaiting a "
                 f"snapshot) {extra.get('held_back', 0):,}; connection end: "
                 f"{extra.get('connection_end') or 'open'}")
    failures = extra.get("command_failures") or []
    lines.append(f"  list_subscriptions every {config.get('command_every', 0) * 1000:.0f} ms "
                 f"meanwhile: {extra.get('commands', 0):,} round trips, p50 "
                 f"{_num(extra.get('rtt_p50_ms'), 1)} ms, p99 {_num(extra.get('rtt_p99_ms'), 1)}"
                 f" ms, max {_num(extra.get('rtt_max_ms'), 1)} ms"
                 + (f"; failures: {', '.join(sorted(set(failures)))}" if failures else ""))
    return lines


def _scale_lines(scale: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The scale section: one row per market count."""
    lines = [(f"Scale: client.orderbooks(M markets), one 20-levels-a-side snapshot per "
              f"market, then {config.get('scale_deltas', 0):,} deltas spread evenly"),
             (f"  {'markets':>9} {'subscribe':>10} {'all synced':>11} {'deltas/s':>10} "
              f"{'vs first':>9} {'KiB/book':>9}  notes")]
    for markets, row in scale.items():
        count = int(markets)
        if "error" in row or "skipped" in row:
            lines.append(f"  {count:>9,} failed: {row.get('error') or row.get('skipped')}")
            continue
        extra = row.get("extra", {})
        notes = []
        if not extra.get("finished"):
            notes.append(f"did not finish in {extra.get('timeout_s', 0):.0f} s "
                         f"({extra.get('snapshots_seen', 0):,} snapshots, "
                         f"{extra.get('deltas_seen', 0):,} deltas seen)")
        if extra.get("error"):
            notes.append(extra["error"])
        moved = extra.get("rss_per_book_after_deltas_kib") if count >= 1000 else None
        if moved is not None:
            notes.append(f"{moved:,.1f} KiB/book after the deltas")
        command = (row.get("server") or {}).get("subscribe_bytes")
        if command:
            size = f"{command / 1e6:,.2f} MB" if command >= 1e6 else f"{command / 1e3:,.1f} kB"
            notes.append(f"subscribe command {size}")
        rates = extra.get("deltas_per_s_runs") or []
        if len(rates) > 1:
            notes.append(f"median of {len(rates)} runs: {min(rates) / 1e3:,.0f}k to "
                         f"{max(rates) / 1e3:,.0f}k deltas/s")
        per_book = extra.get("rss_per_book_kib") if count >= 1000 else None
        synced = extra.get("synced_s")
        lines.append(
            f"  {count:>9,} {_secs(extra.get('subscribe_s')):>10} {_secs(synced):>11} "
            f"{_num(extra.get('deltas_per_s')):>10} {_num(extra.get('vs_smallest'), 2):>9} "
            f"{_num(per_book, 1):>9}  {'; '.join(notes)}")
    lines.append("  (all synced: from the subscribe until wait_synced() returned; deltas/s: sent "
                 "once synced, until the last was applied; each row is the run with the "
                 "median deltas/s; KiB/book: RSS growth / M once synced, shown from 1,000 "
                 "markets)")
    return lines


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} s"


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
    figure, axes = plt.subplots(2, 2, figsize=(12, 9))
    (left, right), (bottom_left, bottom_right) = axes
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
    _plot_scale(bottom_left, results.get("scale", {}))
    _plot_slow(bottom_right, results.get("slow_consumer", {}))
    figure.suptitle(f"kalshi_ws benchmark {results['date']} ({results['machine']['cpus']} "
                    f"CPUs, Python {results['machine']['python']})", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"


def _plot_scale(axis: Any, scale: dict[str, Any]) -> None:
    """Deltas/s into books per market count, annotated with the time to all synced."""
    axis.set_title("Scale: deltas/s into books by market count")
    if not scale:
        axis.text(0.5, 0.5, "not run", ha="center", va="center", transform=axis.transAxes)
        return
    names, rates, notes = [], [], []
    for markets, row in scale.items():
        extra = row.get("extra", {})
        names.append(f"{int(markets):,}")
        rates.append((extra.get("deltas_per_s") or 0) / 1000)
        if extra.get("finished"):
            notes.append(f"synced {extra.get('synced_s', 0):.1f} s")
        else:
            notes.append(f"did not finish\nin {extra.get('timeout_s', 0):.0f} s")
    bars = axis.bar(names, rates, color="#55a868")
    for bar, note in zip(bars, notes):
        axis.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8)
    axis.set_xlabel("markets in one OrderBookSet")
    axis.set_ylabel("thousand deltas/s")


def _plot_slow(axis: Any, slow: dict[str, Any]) -> None:
    """Row (g): command round trips while the callback is stuck."""
    axis.set_title("(g) Stuck callback: list_subscriptions round trip")
    extra = slow.get("extra", {})
    if not extra:
        axis.text(0.5, 0.5, slow.get("error", "not run"), ha="center", va="center",
                  transform=axis.transAxes, wrap=True)
        return
    names = ["p50", "p99", "max"]
    values = [extra.get(f"rtt_{n}_ms") or 0 for n in names]
    bars = axis.bar(names, values, color="#8172b3")
    for bar, value in zip(bars, values):
        axis.annotate(f"{value:,.1f} ms", (bar.get_x() + bar.get_width() / 2, value),
                      ha="center", va="bottom", fontsize=8)
    axis.set_ylabel("milliseconds")
    state = "" if extra.get("finished") else " (did not finish)"
    axis.set_xlabel(f"reader: {_num(extra.get('per_message_us_full'), 1)} us/message with the "
                    f"buffer full{state}; {extra.get('commands', 0):,} commands")
