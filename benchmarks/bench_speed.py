"""`dramasr attribute` speed, old code against new, side by side (issue 23).

    git worktree add /tmp/base 44add92          # the code before issue 23
    python benchmarks/bench_speed.py --old /tmp/base --drama kuang_biao --repeats 1
    python benchmarks/bench_speed.py --old /tmp/base --drama chen_mo_de_zhen_xiang kuang_biao \
        zhen_huan_zhuan --repeats 3 --json speed.json

Each run is a fresh child process (`python -c`, PYTHONPATH = the version's src/) that loads
the drama, attributes it as `dramasr attribute` does (seeds init_seeds_1pct.json, the shipped
model) and writes each line's speaker, confidence and candidate scores. Old and new runs
alternate (old, new, old, new, ...), so a machine shared with other jobs slows both alike.
Reported per version: median wall time, user+sys CPU time and peak RSS of the whole child,
and the wall time per stage (exclusive: time inside a nested stage counts for that stage):
propagation, tables (audio_sim / voice_cluster tables, cohort), voice model (the cross-fitted
logistic regressions), trees (scoring the boosted trees), groups (the group stage itself),
rest (feature columns, candidates, records). Then, per drama, how many lines' speaker,
confidence or candidate scores differ between old and new (the record layout may differ).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "dramasr"

# (module, attribute, stage): wrapped in the child to time the stages
# (both names of a table builder: before issue 18 they were `audio_tables` etc., now `build_*`;
# a name a version lacks is skipped)
_STAGES = [
    ("dramasr.tools.audio_sim", "audio_tables", "tables"),
    ("dramasr.tools.audio_sim", "build_audio_tables", "tables"),
    ("dramasr.tools.audio_sim", "cohort_stats", "tables"),
    ("dramasr.tools.audio_sim", "build_cohort_stats", "tables"),
    ("dramasr.tools.voice_cluster", "cluster_tables", "tables"),
    ("dramasr.tools.voice_cluster", "build_cluster_tables", "tables"),
    ("dramasr.tools.audio_sim", "_compute_entries", "tables"),  # top-5 entries computed when read (issue 23)
    ("dramasr.tools.audio_sim", "voice_model", "voice model"),
    ("dramasr.tools.audio_sim", "build_voice_model", "voice model"),
    ("dramasr.reason.policy", "resolve_groups", "groups"),
]

_CHILD = r"""
import importlib, json, sys, time
from collections import defaultdict
import orjson
try:  # as the CLI does (a version without it: glibc's default arenas)
    from dramasr.runtime import one_malloc_arena
    one_malloc_arena()
except ImportError:
    pass
drama_dir, out = sys.argv[1], sys.argv[2]
spent = defaultdict(float)
stack = []

def timed(fn, stage):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        if stack:  # pause the enclosing stage
            spent[stack[-1][0]] += t - stack[-1][1]
        stack.append([stage, t])
        try:
            return fn(*args, **kwargs)
        finally:
            now = time.perf_counter()
            spent[stage] += now - stack.pop()[1]
            if stack:
                stack[-1][1] = now
    return wrapper

STAGES = json.loads(sys.argv[3])
for module, name, stage in STAGES:
    original = getattr(importlib.import_module(module), name, None)
    if original is None:
        continue
    wrapped = timed(original, stage)
    for mod in list(sys.modules.values()):  # every module that imported it by name
        if getattr(mod, "__name__", "").startswith("dramasr") and getattr(mod, name, None) is original:
            setattr(mod, name, wrapped)
from dramasr.reason import model as model_module
model_module.TreeEnsemble.decision_function = timed(model_module.TreeEnsemble.decision_function, "trees")
from dramasr.attribute import attribute
from dramasr.data import load_drama
t0 = time.perf_counter()
drama = load_drama(drama_dir)
load_s = time.perf_counter() - t0
result = attribute(drama, seeds="1pct")
rows = [{"line": r.line, "speaker": r.speaker, "confidence": r.confidence,
         "candidates": sorted([list(c) for c in r.candidates])} for r in result.records]
with open(out, "wb") as f:
    f.write(b"\n".join(orjson.dumps(r) for r in rows))
stages = dict(spent)
stages["propagation"] = result.timings["propagation_s"]
stages["rest"] = result.timings["reasoning_s"] - sum(v for k, v in spent.items())
stages["load"] = load_s
print("STAGES" + json.dumps(stages))
"""


def run_child(version: str, src: Path, drama: str, out: Path) -> dict:
    """One child run; its own CPU time and peak RSS (os.wait4: RUSAGE_CHILDREN's peak would be
    the largest of every child so far, so a smaller run after a larger one would read high)."""
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = os.times().elapsed
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(SHARED / drama), str(out), json.dumps(_STAGES)],
                                env=env, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = os.times().elapsed - t0
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read(), stderr.read()
    if proc.returncode:
        raise SystemExit(f"{version} run on {drama} failed:\n{errors[-3000:]}")
    stages = json.loads(next(x for x in text.splitlines() if x.startswith("STAGES"))[len("STAGES"):])
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stages": stages}


def differences(old: Path, new: Path) -> dict:
    import orjson

    a = [orjson.loads(x) for x in old.read_bytes().splitlines()]
    b = [orjson.loads(x) for x in new.read_bytes().splitlines()]
    if [r["line"] for r in a] != [r["line"] for r in b]:
        return {"error": "different lines"}
    return {"lines": len(a),
            "speaker": sum(x["speaker"] != y["speaker"] for x, y in zip(a, b, strict=True)),
            "confidence": sum(x["confidence"] != y["confidence"] for x, y in zip(a, b, strict=True)),
            # the layout of `candidates` changed (issue 17: the chosen speaker first), so the
            # scores of the candidates both list are compared
            "candidate_scores": sum(_scores_differ(x["candidates"], y["candidates"])
                                    for x, y in zip(a, b, strict=True))}


def _scores_differ(a: list, b: list) -> bool:
    x, y = dict(map(tuple, a)), dict(map(tuple, b))
    return any(x[k] != y[k] for k in x.keys() & y.keys())


def median_run(runs: list[dict]) -> dict:
    stages = sorted({k for r in runs for k in r["stages"]})
    return {"wall_s": statistics.median(r["wall_s"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "wall_runs": [round(r["wall_s"], 1) for r in runs],
            "stages": {k: statistics.median(r["stages"].get(k, 0.0) for r in runs) for k in stages}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout of the old code (a git worktree)")
    parser.add_argument("--new", type=Path, default=ROOT, help="checkout of the new code (default: this one)")
    parser.add_argument("--drama", nargs="+", default=["chen_mo_de_zhen_xiang", "kuang_biao"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    report: dict = {"cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0], "dramas": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for drama in args.drama:
            runs: dict[str, list[dict]] = {"old": [], "new": []}
            for k in range(args.repeats):
                for version, checkout in (("old", args.old), ("new", args.new)):
                    out = Path(tmp) / f"{drama}_{version}_{k}.jsonl"
                    runs[version].append(run_child(version, checkout / "src", drama, out))
                    r = runs[version][-1]
                    print(f"{drama} {version} run {k + 1}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, "
                          f"peak RSS {r['peak_rss_mb']:.0f} MB, load {os.getloadavg()[0]:.1f}", flush=True)
            entry = {v: median_run(runs[v]) for v in runs}
            entry["differences"] = differences(Path(tmp) / f"{drama}_old_0.jsonl", Path(tmp) / f"{drama}_new_0.jsonl")
            report["dramas"][drama] = entry
            print(json.dumps({drama: entry}, indent=1), flush=True)
    report["load_after"] = os.getloadavg()[0]
    print("\n| drama | version | wall s (median) | user+sys CPU s | peak RSS MB | " +
          " | ".join(["propagation", "tables", "voice model", "trees", "groups", "rest"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for drama, entry in report["dramas"].items():
        for version in ("old", "new"):
            e = entry[version]
            st = e["stages"]
            cells = [f"{e['wall_s']:.1f}", f"{e['cpu_s']:.1f}", f"{e['peak_rss_mb']:.0f}"] + [
                f"{st.get(k, 0.0):.1f}" for k in ("propagation", "tables", "voice model", "trees", "groups", "rest")]
            print(f"| {drama} | {version} | " + " | ".join(cells) + " |")
        print(f"differences on {drama}: {entry['differences']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
