"""How well each drama's voice embeddings alone tell its named characters apart (issue 22).

    python benchmarks/voice_separability.py [--drama NAME ...]

For 3,000 lines drawn at random (seed 0) among the lines of named characters that have a
voice, the truth's other lines are the reference: each line goes to the named character
whose 5 closest lines (cosine, the line itself left out) have the highest mean, as the
reasoner's `audio_top` column reads them. Characters with fewer than 6 lines are not
offered. Printed: the share right over all lines, over lines >= 2 s and over lines < 2 s
(each split drawn anew). It reads the truth of every line: a ceiling on what the voice
says, not a method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dramasr.data import load_drama

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"
DRAMAS = ("chen_mo_de_zhen_xiang", "kuang_biao", "ren_shi_jian", "zhen_huan_zhuan")
TOP = 5
QUERIES = 3000


def top_mean_accuracy(unit: np.ndarray, speaker: np.ndarray, usable: np.ndarray) -> float:
    """Share of drawn usable lines whose best top-5-mean character is their own."""
    lines = np.flatnonzero(usable)
    query = np.random.default_rng(0).choice(len(lines), min(QUERIES, len(lines)), replace=False)
    placed, _ = placed_by_voice(unit, speaker, lines, lines[query])
    return float(placed.mean())


def placed_by_voice(unit: np.ndarray, speaker: np.ndarray, reference: np.ndarray,
                    query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query line (all of them among `reference`): whether its best top-5-mean
    character over the reference lines (the query itself left out) is its own, and the
    top-5 mean of its own character's lines."""
    names, truth = np.unique(speaker[reference], return_inverse=True)
    at = np.searchsorted(reference, query)
    sims = unit[query] @ unit[reference].T
    sims[np.arange(len(query)), at] = -9.0  # not its own match
    scores = np.full((len(query), len(names)), -9.0)
    for c in range(len(names)):
        own = truth == c
        if own.sum() > TOP:
            scores[:, c] = np.sort(sims[:, own], axis=1)[:, -TOP:].mean(1)
    rows = np.arange(len(query))
    return scores.argmax(1) == truth[at], scores[rows, truth[at]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", nargs="+", default=list(DRAMAS))
    args = parser.parse_args()
    print("| drama | all | >= 2 s | < 2 s |\n|---|---:|---:|---:|")
    for name in args.drama:
        drama = load_drama(SHARED / name)
        emb = drama.lines.embedding.astype(np.float64)
        unit = (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)).astype(np.float32)
        named = drama.named_characters()
        speaker = np.asarray(drama.lines.speaker, object)
        usable = drama.lines.has_voice & np.fromiter((s in named for s in speaker), bool, len(speaker))
        long = drama.lines.duration >= 2
        cells = [top_mean_accuracy(unit, speaker, usable & m) for m in (True, long, ~long)]
        print(f"| {name} | " + " | ".join(f"{100 * c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
