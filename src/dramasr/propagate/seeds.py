"""Seeds: choosing them from the truth as the release does, and resolving a --seeds value to plain data.

`resolve_seeds` turns a seed-file key, a path or a "gt-..." mode into {character: [line, ...]}
and checks it against the drama, so the engine only ever sees resolved seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dramasr.data.model import DELETED_MARK, NARRATION_MARK
from dramasr.data.release import read_json
from dramasr.data.release_labels import parse_character_list
from dramasr.errors import DramaError
from dramasr.propagate.similarity import blocks, unit_rows

SEED_MODES = ("1pct", "1shot", "kshot")


def seed_target(mode: str, n_lines: int, k: int = 1) -> int:
    """How many seed lines a character with `n_lines` ground-truth lines gets."""
    if mode == "1pct":
        return max(int(n_lines * 0.01), 1)
    if mode == "1shot":
        return 1
    if mode == "kshot":
        if k < 1:
            raise DramaError(f"k must be >= 1 for k-shot seeds, got {k}", field="--seeds")
        return k
    raise DramaError(f"unknown seed mode {mode!r}", field="--seeds", hint="use one of " + ", ".join(SEED_MODES))


def _max_spanning_tree(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prim's algorithm on cosine similarity: (parent, child, weight) of n-1 edges."""
    n = len(emb)
    dense = emb @ emb.T if n <= 8000 else None
    key = np.full(n, -np.inf, np.float32)
    parent = np.full(n, -1, np.int64)
    in_tree = np.zeros(n, bool)
    v = 0
    src, dst, wts = [], [], []
    for _ in range(n - 1):
        in_tree[v] = True
        row = dense[v] if dense is not None else emb @ emb[v]
        better = (row > key) & ~in_tree
        key[better] = row[better]
        parent[better] = v
        cand = np.where(in_tree, -np.inf, key)
        v = int(np.argmax(cand))
        src.append(parent[v])
        dst.append(v)
        wts.append(key[v])
    return np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(wts, np.float32)


def _row_mean_similarity(emb: np.ndarray) -> np.ndarray:
    """Mean similarity of each line to all lines of the set, counting itself as 0 (release)."""
    n = len(emb)
    total = np.zeros(n, np.float64)
    for blk in blocks(n, n):
        sims = emb[blk] @ emb.T
        total[blk] = sims.sum(axis=1, dtype=np.float64) - np.einsum("ij,ij->i", emb[blk], emb[blk])
    return (total / n).astype(np.float32)


def most_consistent_lines(embedding: np.ndarray, lines: Sequence[int], target: int) -> list[int]:
    """The release's seed choice: the largest voice-consistent group of at most `target` lines.

    Bisects a similarity threshold in [0.4, 1]; at each threshold the lines form connected
    components (edges: cosine >= threshold); the largest component (ties: highest mean
    similarity to all the character's lines) must not exceed `target` lines.
    """
    idx = np.asarray(lines, np.int64)
    if len(idx) == 0:
        return []
    emb = unit_rows(np.asarray(embedding)[idx])
    n = len(idx)
    if n == 1:
        return idx.tolist()
    src, dst, wts = _max_spanning_tree(emb)
    avg = _row_mean_similarity(emb)
    lo, hi = 0.4, 1.0
    chosen: np.ndarray | None = None
    while hi - lo >= 1e-8:
        mid = (lo + hi) / 2
        keep = wts >= np.float32(mid)
        graph = coo_matrix((np.ones(int(keep.sum()), np.int8), (src[keep], dst[keep])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        biggest = sizes.max()
        best, best_avg = None, -1.0
        # Components in order of their first line, as a flood fill from the first line finds them.
        firsts = np.unique(comp, return_index=True)[1]
        for c in comp[np.sort(firsts)].tolist():
            if sizes[c] != biggest:
                continue
            members = np.flatnonzero(comp == c)
            mean = float(np.mean(avg[members]))
            if best_avg < mean:
                best, best_avg = members, mean
        assert best is not None
        if len(best) <= target:
            chosen = best
            if len(best) == target:
                break
            hi = mid
        else:
            lo = mid
    if chosen is None:
        raise DramaError("no voice-consistent seed group found", field="seeds")
    return idx[chosen].tolist()


def ground_truth_characters(speaker: Sequence[str], named: Sequence[str] | frozenset[str] | set[str]
                            ) -> dict[str, list[int]]:
    """Lines of each named character (plus narration labels), most lines first (release order)."""
    named_set = set(named)
    lines: dict[str, list[int]] = {}
    for i, s in enumerate(speaker):
        if not s or DELETED_MARK in s:
            continue
        if s in named_set or NARRATION_MARK in s:
            lines.setdefault(s, []).append(i)
    order = sorted(lines, key=lambda name: -len(lines[name]))  # stable: first appearance breaks ties
    return {name: lines[name] for name in order}


def make_seeds(drama: Any = None, mode: str = "1pct", k: int = 1, *, embedding: np.ndarray | None = None,
               speaker: Sequence[str] | None = None, named: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Seed lines from ground truth, as the release builds init_seeds_<mode>.json.

    Pass a `Drama`, or the arrays `embedding`, `speaker` (truth per line) and `named` (the
    named characters: cast names seen in faces). mode: "1pct" (1% of each character's lines,
    at least 1), "1shot", or "kshot" with `k` lines. Deterministic.
    """
    if drama is not None:
        embedding = drama.lines.embedding
        speaker = drama.lines.speaker
        named = sorted(drama.named_characters())
    if embedding is None or speaker is None or named is None:
        raise DramaError("make_seeds needs a drama or embedding, speaker and named", field="seeds")
    if len(speaker) != len(embedding):
        raise DramaError("speaker and embedding lengths differ", field="speaker")
    seed_target(mode, 1, k)  # validates mode and k
    chars = ground_truth_characters(speaker, named)
    if not chars:
        raise DramaError("no named character speaks any line: cannot make seeds from ground truth",
                         field="speaker", hint="check the cast names in face_info.json and the line labels")
    return {name: most_consistent_lines(embedding, lines, seed_target(mode, len(lines), k))
            for name, lines in chars.items()}


def seeds_from_release(doc: Mapping[str, Any], source: str | Path | None = None) -> dict[str, list[int]]:
    """Seeds (character -> line indices, in code order) from a parsed init_seeds_*.json."""
    return {c.name: list(c.utterance_list) for c in parse_character_list(doc, source, require_utterances=True)}


def load_seeds(path: str | Path) -> dict[str, list[int]]:
    """Read a release `init_seeds_*.json` into {character: [line, ...]} (code order kept)."""
    return seeds_from_release(read_json(Path(path)), path)


def _seeds_of_key(drama: Any, key: str) -> tuple[dict[str, list[int]], str | Path]:
    """The seeds a --seeds value names, and the file (or the value) to cite in errors."""
    files = getattr(drama, "seed_files", {}) or {}
    if key in files:
        folder = getattr(drama, "source", None)
        source = Path(folder) / f"init_seeds_{key}.json" if folder else f"init_seeds_{key}.json"
        return seeds_from_release(files[key], source), source
    if key.startswith("gt-"):
        mode = key[3:]
        k = 1
        if mode.endswith("shot") and mode[:-4].isdigit():
            k, mode = int(mode[:-4]), "kshot"
        return make_seeds(drama, mode=mode, k=k), key
    if Path(key).suffix == ".json" or Path(key).is_file():
        return load_seeds(key), key
    raise DramaError(f"no seed file init_seeds_{key}.json in drama {getattr(drama, 'name', '?')}",
                     field="--seeds", hint="use a seed file the drama has, a path, or gt-1pct/gt-1shot/gt-5shot")


def resolve_seeds(drama: Any, seeds: Mapping[str, Sequence[int]] | str | Path) -> Mapping[str, Sequence[int]]:
    """Seeds as plain data ({character: [line, ...]}) from a key of the drama's seed files
    (e.g. "1pct"), a path to an init_seeds_*.json, "gt-1pct" / "gt-1shot" / "gt-<k>shot"
    (chosen from the truth as the release does), or a mapping (returned as it is)."""
    source: str | Path | None = None
    if isinstance(seeds, str | Path):
        seeds, source = _seeds_of_key(drama, str(seeds))
    n = len(drama.lines)
    owner: dict[int, str] = {}
    for name, lines in seeds.items():
        bad = [i for i in lines if not 0 <= int(i) < n]
        if bad:
            raise DramaError(f"seed line {bad[0]} of {name!r} is outside the drama's lines 0..{n - 1}",
                             file=source, field="utterance_list",
                             hint="the seed file belongs to another drama, or lists global line indices wrongly")
        for i in lines:
            other = owner.setdefault(int(i), name)
            if other != name:
                raise DramaError(f"seed line {int(i)} is given to both {other!r} and {name!r}", file=source,
                                 field="utterance_list", hint="a line has one speaker: keep it under one character")
    return seeds


def seedless_characters(drama: Any, seeds: Mapping[str, Sequence[int]]) -> list[str]:
    """Named characters of the drama with no seed line: propagation and the reasoner cannot
    name them (their lines go to Other or a new character) until they are given seeds."""
    seeded = {name for name, lines in seeds.items() if len(lines)}
    return sorted(name for name in drama.named_characters() if name not in seeded and NARRATION_MARK not in name)
