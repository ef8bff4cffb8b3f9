"""Small measuring helpers: memory from /proc, percentiles, medians with spread."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["compare_checkouts", "memory_kb", "percentile", "spread", "summarize_latency"]


def memory_kb() -> dict[str, int]:
    """This process's resident set now (``rss``) and at its peak (``hwm``), in KiB.

    Read from ``/proc/self/status`` (Linux); zeros where it is not available.
    """
    values = {"rss": 0, "hwm": 0}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    values["rss"] = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    values["hwm"] = int(line.split()[1])
    except OSError:
        pass
    return values


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of already sorted values, by nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarize_latency(samples_ns: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and max of latency samples, in microseconds."""
    ordered = sorted(samples_ns)
    result = {"samples": float(len(ordered))}
    for name, fraction in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)):
        result[f"{name}_us"] = percentile(ordered, fraction) / 1000.0
    return result


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of a few measurements (NaN when there are none)."""
    if not values:
        nan = float("nan")
        return {"median": nan, "min": nan, "max": nan}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare_checkouts(subject: Callable[[str], Any], against: Path | None, repeat: int,
                      unit: str, run_size: str) -> None:
    """Time this checkout's package and, with ``against``, another checkout's, and print
    the best and median of each.

    ``subject(package)`` makes an object with ``name`` and ``run()`` (nanoseconds of
    CPU per ``unit``, over ``run_size``) for the package named ``package``. The other checkout's
    ``kalshi_ws`` is copied under the name ``kalshi_ws_against``, so both live in one
    process, and the runs alternate, so drift of the machine hits both alike.
    """
    subjects = [subject("kalshi_ws")]
    with tempfile.TemporaryDirectory() as scratch:
        if against is not None:
            shutil.copytree(against / "kalshi_ws", Path(scratch) / "kalshi_ws_against")
            sys.path.insert(0, scratch)
            subjects.append(subject("kalshi_ws_against"))
        times: dict[str, list[float]] = {s.name: [] for s in subjects}
        for rep in range(repeat):
            for one in subjects if rep % 2 == 0 else subjects[::-1]:
                times[one.name].append(one.run())
    for one in subjects:
        runs = times[one.name]
        label = "this checkout" if one.name == "kalshi_ws" else str(against)
        print(f"{label}: best {min(runs):.0f} ns/{unit}, median {statistics.median(runs):.0f} "
              f"({len(runs)} runs of {run_size})")
