"""Calibration of dramasr.synth against the released dramas: statistics side by side.

    python benchmarks/calibrate_synth.py                 # real dramas vs a synthetic one
    python benchmarks/calibrate_synth.py --tables        # also the quantile tables synth.py hard-codes
    python benchmarks/calibrate_synth.py --scale         # time and memory of a 60K-line synthetic drama

The real dramas are read from ../shared/dramasr (or --data); each one missing is skipped.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from dramasr.data import load_drama
from dramasr.synth import QUANTILE_LEVELS, SCENE_BREAK_GAP_S, drama_statistics, synth_drama

ROOT = Path(__file__).resolve().parents[1]
REAL = ("chen_mo_de_zhen_xiang", "kuang_biao", "ren_shi_jian")
SHORT = {"chen_mo_de_zhen_xiang": "chen_mo", "kuang_biao": "kuang_biao", "ren_shi_jian": "ren_shi_jian"}


def quantile_tables(drama) -> dict[str, np.ndarray]:  # noqa: ANN001 - a Drama
    """The inverse-CDF tables of synth.py, measured on one drama."""
    lines, faces = drama.lines, drama.faces
    same, turn, scene_break = [], [], []
    for ep in drama.episodes:
        start = lines.start_ms[ep.line_start:ep.line_stop]
        end = lines.end_ms[ep.line_start:ep.line_stop]
        gap = (start[1:] - end[:-1]) / 1000.0
        speaker = np.array(lines.speaker[ep.line_start:ep.line_stop], dtype=object)
        same_speaker = speaker[1:] == speaker[:-1]
        inside = gap < SCENE_BREAK_GAP_S
        same.append(gap[same_speaker & inside])
        turn.append(gap[~same_speaker & inside])
        scene_break.append(gap[~inside])
    unknown = np.array([name[:4].isdigit() and "_pro" in name for name in faces.name])
    cast = set(drama.cast)
    known = np.array([name in cast for name in faces.name])
    unknown_scores = faces.score[unknown]
    samples = {
        "DURATION_S": lines.duration,
        "GAP_SAME_S": np.concatenate(same), "GAP_TURN_S": np.concatenate(turn),
        "GAP_BREAK_S": np.concatenate(scene_break),
        "SCORE_KNOWN": faces.score[known], "SCORE_UNKNOWN": unknown_scores[unknown_scores < 0.999],
        "EMBEDDING_NORM": np.linalg.norm(lines.embedding, axis=1),
    }
    return {key: np.quantile(values, QUANTILE_LEVELS) for key, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "dramasr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--lines-per-episode", type=int, default=800)
    parser.add_argument("--tables", action="store_true", help="print the quantile tables synth.py hard-codes")
    parser.add_argument("--scale", action="store_true", help="time a 60-episode x 1000-line synthetic drama")
    args = parser.parse_args()

    if args.scale:
        start = time.perf_counter()
        drama = synth_drama(seed=args.seed, episodes=60, lines_per_episode=1000)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"synth_drama(episodes=60, lines_per_episode=1000): {len(drama.lines)} lines, "
              f"{len(drama.faces)} face detections, {wall:.2f} s, peak RSS {peak_mb:.0f} MB")
        return 0

    columns: dict[str, dict[str, float]] = {}
    tables: dict[str, list[np.ndarray]] = {}
    for name in REAL:
        folder = args.data / name
        if not folder.is_dir():
            print(f"skipping {name}: {folder} not found", file=sys.stderr)
            continue
        drama = load_drama(folder)
        columns[SHORT[name]] = drama_statistics(drama)
        for key, table in quantile_tables(drama).items():
            tables.setdefault(key, []).append(table)
    real = list(columns)
    synth = synth_drama(seed=args.seed, episodes=args.episodes, lines_per_episode=args.lines_per_episode)
    columns["synthetic"] = drama_statistics(synth)

    keys = list(columns["synthetic"])
    for column in columns.values():
        keys += [k for k in column if k not in keys]
    header = f"{'statistic':38s}" + "".join(f"{c:>14s}" for c in real) + f"{'real mean':>12s}{'synthetic':>12s}"
    print(header)
    print("-" * len(header))
    for key in keys:
        values = [columns[c].get(key, float("nan")) for c in real]
        mean = float(np.nanmean(values)) if real else float("nan")
        row = f"{key:38s}" + "".join(f"{_fmt(v):>14s}" for v in values)
        print(row + f"{_fmt(mean):>12s}{_fmt(columns['synthetic'].get(key, float('nan'))):>12s}")
    if args.tables and tables:
        print("\n# quantile tables (per-drama average) at QUANTILE_LEVELS, as hard-coded in synth.py")
        for key, found in tables.items():
            digits = 3 if key.startswith("SCORE") else 2
            print(f"{key} = {np.round(np.mean(found, axis=0), digits).tolist()}")
    return 0


def _fmt(value: float) -> str:
    if value != value:  # nan
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
