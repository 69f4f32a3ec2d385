"""Voice samples as seeds: the lines that sound like a character's sample (and clearly more like
it than like any other sample) become that character's seed lines, written as a release
`init_seeds_*.json`, so `dramasr attribute --seeds voice` starts from a cast list alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Voice seeds are chosen by confidence, not by count: every voiced line that is near a sample and
# clearly nearer to it than to any other sample. Capped at 2% of the lines (as hand seeds are), the
# LibriSpeech dialogue (no faces) scored 50.8% against 97.5% uncapped: propagation only offers a
# character near its faces or labelled lines, so without faces few seeds reach few lines. The
# seeds were 100% right either way on both benchmarks (BENCHMARKS.md).
VOICE_SEED_SHARE = 1.0  # at most this share of the drama's lines per character
SEED_SHARE = 0.02  # face seeds per character: this share of the drama's lines...
MIN_SEEDS = 3  # ...but at least this many
MIN_SIMILARITY = 0.35  # cosine (centred embeddings) to the character's mean sample
MIN_MARGIN = 0.15  # over the next-best character's sample


def voice_seeds(embedding: np.ndarray, prints: Mapping[str, np.ndarray], *, share: float = VOICE_SEED_SHARE,
                min_seeds: int = MIN_SEEDS, min_similarity: float = MIN_SIMILARITY,
                min_margin: float = MIN_MARGIN) -> dict[str, Any]:
    """Seeds {name: lines} in the release's init_seeds format, from normalised embeddings."""
    names = list(prints)
    centroids = np.stack([prints[n].mean(axis=0) for n in names]).astype(np.float64)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    emb = np.asarray(embedding, np.float64)
    voiced = np.abs(emb).sum(axis=1) > 0
    sims = emb @ centroids.T
    sims[~voiced] = -np.inf
    order = np.sort(sims, axis=1)
    best = np.argmax(sims, axis=1)
    margin = order[:, -1] - (order[:, -2] if len(names) > 1 else 0.0)
    per_character = max(min_seeds, int(round(share * len(emb))))
    chars = []
    for code, name in enumerate(names):
        mine = np.flatnonzero(voiced & (best == code) & (sims[:, code] >= min_similarity) & (margin >= min_margin))
        picked = mine[np.argsort(-sims[mine, code], kind="stable")][:per_character]
        chars.append({"name": name, "code": code, "is_known": True, "is_global": False,
                      "utterance_list": sorted(int(i) for i in picked)})
    return {"characters": names, "character_list": chars,
            "character_dict": {c["name"]: c["code"] for c in chars},
            "source": "voice samples (dramasr extract)"}


FACE_SEED_LIP = 0.5  # a line is a face seed when one named track speaks on screen this clearly...
FACE_SEED_LIP_MARGIN = 0.15  # ...and every other face in the line scores this much lower


def face_seeds(lip_rows: list[list[dict[str, Any]]], voiced: np.ndarray, names: list[str], *,
               share: float = SEED_SHARE, min_seeds: int = MIN_SEEDS) -> dict[str, Any]:
    """Seeds from what is seen: voiced lines where one named face's lips move clearly more than any other's.

    `lip_rows[i]` lists line i's lip scores ({"name", "score"}); the best-scoring lines per
    character become its seeds (when no voice sample names them).
    """
    per_character = max(min_seeds, int(round(share * len(lip_rows))))
    found: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
    for i, rows in enumerate(lip_rows):
        if not voiced[i] or not rows:
            continue
        ranked = sorted(rows, key=lambda r: -r["score"])
        top = ranked[0]
        runner = ranked[1]["score"] if len(ranked) > 1 else 0.0
        if top["name"] in found and top["score"] >= FACE_SEED_LIP and top["score"] - runner >= FACE_SEED_LIP_MARGIN:
            found[top["name"]].append((top["score"], i))
    chars = []
    for name in names:
        picked = sorted(found[name], key=lambda item: (-item[0], item[1]))[:per_character]
        if picked:
            chars.append({"name": name, "code": len(chars), "is_known": True, "is_global": False,
                          "utterance_list": sorted(i for _, i in picked)})
    return {"characters": [c["name"] for c in chars], "character_list": chars,
            "character_dict": {c["name"]: c["code"] for c in chars}, "source": "lip scores (dramasr extract)"}
