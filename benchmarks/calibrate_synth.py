"""Calibration of dramasr.synth against the released dramas: statistics side by side.

    python benchmarks/calibrate_synth.py                 # real dramas vs a synthetic one
    python benchmarks/calibrate_synth.py --tables        # also the quantile tables synth.py hard-codes
    python benchmarks/calibrate_synth.py --scale         # time and memory of a 60K-line synthetic drama
    python benchmarks/calibrate_synth.py --separability  # only how hard the voices are: LP, centroids, drift

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
from dramasr.propagate import propagate_drama
from dramasr.score import DURATION_BUCKETS, duration_ms, score_lines
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


def separability_statistics(drama, sample_seed: int = 0) -> dict[str, float]:  # noqa: ANN001 - a Drama
    """How hard the voices are: LP accuracy, nearest-centroid accuracy, within-character drift.

    Measured the same way on real and synthetic dramas; buckets are score.DURATION_BUCKETS.
    """
    lines = drama.lines
    named = drama.named_characters()
    stats: dict[str, float] = {}
    start = time.perf_counter()
    prop = propagate_drama(drama, "1pct")
    stats["lp_wall_s"] = time.perf_counter() - start
    score = score_lines(lines.speaker, prop.labels, lines.duration, lines.episode, named)
    stats["lp_acc"] = score.overall.accuracy
    for bucket in DURATION_BUCKETS:
        stats[f"lp_acc_{bucket.label}"] = score.by_duration[bucket.label].accuracy
    stats["lp_acc_open_set"] = score.open_set.accuracy

    # nearest centroid: one centroid per named character over all its lines
    emb = lines.embedding.astype(np.float64)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1), 1e-9)[:, None]
    names = sorted({s for s in lines.speaker if s in named})
    code_of = {s: k for k, s in enumerate(names)}
    code = np.array([code_of.get(s, -1) for s in lines.speaker])
    is_named = code >= 0
    centroid = np.zeros((len(names), unit.shape[1]))
    np.add.at(centroid, code[is_named], unit[is_named])
    centroid /= np.maximum(np.linalg.norm(centroid, axis=1), 1e-9)[:, None]
    sims = unit[is_named] @ centroid.T
    nearest = sims.argmax(1) == code[is_named]
    own = sims[np.arange(len(sims)), code[is_named]]
    dur = duration_ms(lines.duration)[is_named]
    stats["centroid_acc"] = float(nearest.mean())
    for bucket in DURATION_BUCKETS:
        mask = bucket.contains(dur)
        stats[f"centroid_acc_{bucket.label}"] = float(nearest[mask].mean()) if mask.any() else float("nan")
    # heavy tail: how far the worst lines sit from their own character
    stats |= {f"own_centroid_cos_q{q}": float(np.quantile(own, q / 100)) for q in (5, 25, 50)}
    counts = np.bincount(code[is_named], minlength=len(names))
    big = np.flatnonzero(counts >= 20)
    if len(big) > 1:  # confusable pairs: how close each character's nearest neighbour is
        pair = centroid[big] @ centroid[big].T
        np.fill_diagonal(pair, -1.0)
        stats["centroid_nearest_cos_mean"] = float(pair.max(1).mean())
        stats["centroid_nearest_cos_max"] = float(pair.max())

    # shape of the voice space: residuals around the centroids and the centroids themselves
    residual = unit[is_named] - centroid[code[is_named]] * (unit[is_named] @ centroid.T)[
        np.arange(int(is_named.sum())), code[is_named]][:, None]
    eig = np.linalg.eigvalsh(residual.T @ residual / len(residual))[::-1]
    stats["residual_participation_dims"] = float(eig.sum() ** 2 / (eig**2).sum())
    if len(big) > 2:
        spread = centroid[big] - centroid[big].mean(0)
        _, singular, directions = np.linalg.svd(spread, full_matrices=False)
        stats["centroid_participation_dims"] = float((singular**2).sum() ** 2 / (singular**4).sum())
        top = directions[: min(20, len(directions))]
        stats["residual_share_in_centroid_top20"] = float(((residual @ top.T) ** 2).sum() / (residual**2).sum())

    # drift: the same character in the same scene vs in different episodes
    rng = np.random.default_rng(sample_seed)
    gap = (lines.start_ms[1:] - lines.end_ms[:-1]) / 1000.0
    breaks = np.concatenate([[True], (lines.episode[1:] != lines.episode[:-1]) | (gap >= SCENE_BREAK_GAP_S)])
    scene = np.cumsum(breaks)
    same_scene, same_episode, other_episode = [], [], []
    for k in big:
        rows = np.flatnonzero(code == k)
        a, b = rng.choice(rows, 4000), rng.choice(rows, 4000)
        keep = a != b
        a, b = a[keep], b[keep]
        cos = (unit[a] * unit[b]).sum(1)
        other_episode.append(cos[lines.episode[a] != lines.episode[b]])
        same_episode.append(cos[(lines.episode[a] == lines.episode[b]) & (scene[a] != scene[b])])
        # same-scene pairs are rare among random pairs: draw them within the scene's rows
        row_scene = scene[rows]
        order = np.argsort(row_scene, kind="stable")
        rows, row_scene = rows[order], row_scene[order]
        first = np.searchsorted(row_scene, row_scene, "left")
        size = np.searchsorted(row_scene, row_scene, "right") - first
        pick = np.flatnonzero(size >= 2)
        if len(pick):
            a = rng.choice(pick, 2000)
            b = first[a] + (rng.random(len(a)) * size[a]).astype(int)
            keep = rows[a] != rows[b]
            same_scene.append((unit[rows[a][keep]] * unit[rows[b][keep]]).sum(1))
    for key, found in (("same_scene", same_scene), ("same_episode_other_scene", same_episode),
                       ("other_episode", other_episode)):
        values = np.concatenate(found) if found else np.array([])
        stats[f"within_cos_{key}"] = float(values.mean()) if len(values) else float("nan")
    stats["drift_scene_minus_episode"] = stats["within_cos_same_scene"] - stats["within_cos_other_episode"]
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "dramasr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--lines-per-episode", type=int, default=800)
    parser.add_argument("--tables", action="store_true", help="print the quantile tables synth.py hard-codes")
    parser.add_argument("--scale", action="store_true", help="time a 60-episode x 1000-line synthetic drama")
    parser.add_argument("--separability", action="store_true",
                        help="only the separability statistics (LP, nearest centroid, drift), also on a default-size "
                             "synthetic drama")
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
        columns[SHORT[name]] = {} if args.separability else drama_statistics(drama)
        columns[SHORT[name]] |= {f"sep_{k}": v for k, v in separability_statistics(drama).items()}
        if args.separability:
            continue
        for key, table in quantile_tables(drama).items():
            tables.setdefault(key, []).append(table)
    real = list(columns)
    synth = synth_drama(seed=args.seed, episodes=args.episodes, lines_per_episode=args.lines_per_episode)
    columns["synthetic"] = {} if args.separability else drama_statistics(synth)
    columns["synthetic"] |= {f"sep_{k}": v for k, v in separability_statistics(synth).items()}
    extra = []
    if args.separability:  # the demo's size: 3 episodes x 300 lines, one seed per character
        small = synth_drama(seed=args.seed)
        columns["synth 3x300"] = {f"sep_{k}": v for k, v in separability_statistics(small).items()}
        extra = ["synth 3x300"]

    keys = list(columns["synthetic"])
    for column in columns.values():
        keys += [k for k in column if k not in keys]
    header = (f"{'statistic':38s}" + "".join(f"{c:>14s}" for c in real) + f"{'real mean':>12s}{'synthetic':>12s}"
              + "".join(f"{c:>12s}" for c in extra))
    print(header)
    print("-" * len(header))
    for key in keys:
        values = [columns[c].get(key, float("nan")) for c in real]
        mean = float(np.nanmean(values)) if real else float("nan")
        row = f"{key:38s}" + "".join(f"{_fmt(v):>14s}" for v in values)
        row += f"{_fmt(mean):>12s}{_fmt(columns['synthetic'].get(key, float('nan'))):>12s}"
        print(row + "".join(f"{_fmt(columns[c].get(key, float('nan'))):>12s}" for c in extra))
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
