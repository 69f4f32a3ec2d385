"""Where one `attribute` job spends its time and memory, step by step (issue 23).

    python benchmarks/stage_trace.py --drama zhen_huan_zhuan

Loads the drama and attributes it as `dramasr attribute` does (one malloc arena, seeds
init_seeds_1pct.json, the shipped model), printing at the entry (>) and exit (<) of each
table build, tree scoring, the group stage and the records: wall seconds since start, CPU
seconds of the whole process (all threads), current RSS and peak RSS (MiB). CPU / wall
between two marks says how many cores a step keeps busy. Nested steps print inside their
parent; the timings are not exclusive.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"

# (module, function): the steps marked
STEPS = [
    ("dramasr.tools.audio_sim", "build_audio_tables"),
    ("dramasr.tools.audio_sim", "build_voice_model"),
    ("dramasr.tools.audio_sim", "build_cohort_stats"),
    ("dramasr.tools.voice_cluster", "build_cluster_tables"),
    ("dramasr.reason.policy", "stage_scores"),
    ("dramasr.reason.policy", "resolve_groups"),
    ("dramasr.attribute", "_records"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    args = parser.parse_args()

    from dramasr.runtime import one_malloc_arena

    one_malloc_arena()
    start = time.perf_counter()

    def mark(what: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
        print(f"{time.perf_counter() - start:7.1f} s  cpu {usage.ru_utime + usage.ru_stime:7.1f} s  "
              f"rss {rss:5d}  peak {usage.ru_maxrss // 1024:5d} MiB  {what}", flush=True)

    from dramasr.attribute import attribute
    from dramasr.data import load_drama

    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        step = getattr(module, name)

        def traced(*a, _step=step, _name=name, **k):
            mark(f"> {_name}")
            out = _step(*a, **k)
            mark(f"< {_name}")
            return out

        for loaded in list(sys.modules.values()):  # every module that imported it by name
            if loaded is not None and getattr(loaded, name, None) is step:
                setattr(loaded, name, traced)
    mark("imported")
    drama = load_drama(SHARED / args.drama)
    mark("loaded")
    seen: set[str] = set()

    def hook(step: str, done: int, total: int) -> None:
        name = step.split(" (")[0]  # "propagation (threshold 0.73)" -> one mark for propagation
        if name not in seen:
            seen.add(name)
            mark(f"step: {name}")

    attribute(drama, hook=hook)
    mark("done")


if __name__ == "__main__":
    main()
