"""Shared helpers for the benchmarks: run a snippet in a fresh process, report wall time and peak RSS;
read the `--line-runs` option."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

_RUNNER = r"""
import json, resource, sys, time
started = time.perf_counter()
result = {}
exec(sys.argv[1])
result["wall_s"] = time.perf_counter() - started
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT" + json.dumps(result))
"""


def run_measured(code: str, repeats: int = 3) -> dict:
    """Run `code` (which may fill the dict `result`) `repeats` times; medians of wall and RSS."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", _RUNNER, code], capture_output=True, text=True, check=True)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
        runs.append(json.loads(line[len("RESULT"):]))
    out = dict(runs[-1])
    out["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    out["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    out["wall_runs"] = [round(r["wall_s"], 2) for r in runs]
    return out


def run_widths(option: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """The `--line-runs` option: comma-separated run widths in episodes, 0 for none, None for `default`."""
    if option is None:
        return default
    return tuple(int(w) for w in option.split(",") if int(w))


def cached_predictions(drama, path: Path | None):  # noqa: ANN001, ANN201 - a Drama -> Predictions
    """The drama's predictions (`attribute` from its 1pct seeds), read from `path` when it
    exists, else computed and written there (when given)."""
    from dramasr.attribute import attribute
    from dramasr.data.predictions import Predictions, load_any_predictions, write_predictions

    if path is not None and path.exists():
        return load_any_predictions(path, drama)
    pred = Predictions.from_records(attribute(drama, seeds="1pct").records, drama)
    if path is not None:
        write_predictions(path, pred)
    return pred
