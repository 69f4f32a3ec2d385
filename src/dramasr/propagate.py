"""Seed selection and graph label propagation over voice embeddings, gated by faces in time.

Reproduces the DramaSR release's label propagation (its results, not its code) without a
dense lines x lines similarity matrix: similarities are computed in blocks, per character,
against that character's labelled lines only, and kept as running top-k pools.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dramasr.data.model import DELETED_MARK, NARRATION_MARK, NEW_CHARACTER_PREFIX, OTHER
from dramasr.data.predictions import rank_with_speaker
from dramasr.data.release import read_json, write_bytes_atomic
from dramasr.errors import DramaError

log = logging.getLogger(__name__)


UNLABELLED = -1
CODE_OTHER = -3

# How each line got its label (Propagation.stage).
STAGE_NONE, STAGE_SEED, STAGE_PROPAGATED, STAGE_COMPONENT, STAGE_NEW_CHARACTER, STAGE_OTHER = range(6)
STAGE_NAMES = ("none", "seed", "propagated", "component", "new_character", "other")

# The release places episodes end to end on one time axis, each padded by 10 s before its
# first and after its last line, so that the +-20 s gating window just reaches across.
EPISODE_PADDING_MS = 10_000

_BLOCK_ELEMENTS = 1 << 23  # similarity values per block (32 MiB of float32)


@dataclass(frozen=True)
class PropagationConfig:
    """Parameters of label propagation; the defaults are the release's."""

    threshold_high: float = 0.75  # first acceptance threshold
    threshold_low: float = 0.45  # last acceptance threshold
    threshold_step: float = 0.02
    new_character_margin: float = 0.08  # a local cluster must be this much tighter than the threshold
    face_radius_s: float = 20.0  # a character is a candidate within +-this of its face or labelled line
    face_score: float = 0.45  # faces below this recognition score are ignored
    min_cluster_size: int = 3  # smallest unlabelled cluster that can become a (new) character
    cluster_radius: int = 5  # cluster members lie within this many line indices of each other
    max_top: int = 50  # top-k cap for the mean similarity to a character's lines
    top_power: float = 0.4  # k = min(max_top, floor(n ** top_power))
    short_bonus: float = 0.2  # bonus = short_bonus * clip(1 - duration_s, 0, 0.5)
    min_new_labels: int = 5  # an inner pass that labels fewer lines ends a round
    length_unit_ms: int = 200  # reference lines of a character must be near its longest line...
    length_cap_ms: int = 800  # ...rounded down to this unit, at most this long
    discover_new_characters: bool = True
    blas_threads: int | None = 1  # the work is many mid-sized products: one BLAS thread is faster
    # (and immune to oversubscription on a busy machine); None leaves BLAS as configured


@dataclass(eq=False)
class Propagation:
    """Result of label propagation: a label and a ranked candidate list for every line."""

    characters: list[str]  # code -> name: the seed characters, then discovered ones
    is_known: np.ndarray  # bool [C]: a seed (named) character, not a discovered one
    is_global: np.ndarray  # bool [C]: narration-like: a candidate everywhere
    code: np.ndarray  # int32 [N]: character code, or CODE_OTHER
    is_seed: np.ndarray  # bool [N]
    stage: np.ndarray  # int8 [N]: STAGE_* that decided the label
    threshold: np.ndarray  # float32 [N]: acceptance threshold when labelled (nan for seeds/other)
    label_score: np.ndarray  # float32 [N]: score when labelled (1 for seeds/new characters)
    cand_offsets: np.ndarray  # int64 [N+1]: candidates of line i are cand_*[off[i]:off[i+1]]
    cand_code: np.ndarray  # int32 [K], best first
    cand_score: np.ndarray  # float32 [K] (float64 when read from a file: the values as written)
    utterance_lists: list[list[int]] = field(default_factory=list)  # per code, in labelling order
    episode: np.ndarray | None = None  # int32 [N] episode number, for predictions

    def __len__(self) -> int:
        return len(self.code)

    def name_of(self, code: int) -> str:
        return OTHER if code < 0 else self.characters[code]

    @property
    def labels(self) -> list[str]:
        names = self.characters
        return [OTHER if c < 0 else names[c] for c in self.code.tolist()]

    def candidates(self, line: int) -> list[tuple[str, float]]:
        lo, hi = self.cand_offsets[line], self.cand_offsets[line + 1]
        return [(self.characters[c], float(s)) for c, s in
                zip(self.cand_code[lo:hi].tolist(), self.cand_score[lo:hi].tolist(), strict=True)]

    def confidence(self) -> np.ndarray:
        """Score of each line's own label among its final candidates (0 when absent, e.g. Other)."""
        out = np.zeros(len(self.code), np.float32)
        counts = np.diff(self.cand_offsets)
        rows = np.repeat(np.arange(len(self.code)), counts)
        hit = self.cand_code == self.code[rows]
        out[rows[hit]] = self.cand_score[hit]
        return out


# --------------------------------------------------------------------------- helpers


def _top_count(n: int, cfg: PropagationConfig) -> int:
    # math.pow is C pow(), as in the release's C routines: keeps floor() identical at n = 32, 243...
    return int(min(cfg.max_top, math.floor(math.pow(n, cfg.top_power)))) if n > 0 else 0


def _normalise(embedding: np.ndarray) -> np.ndarray:
    emb = np.asarray(embedding, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = emb / norm
    out[~np.isfinite(out)] = 0.0  # a zero embedding is similar to nothing (the release's nan -> 0)
    return np.ascontiguousarray(out, dtype=np.float32)


def _blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, min(n_rows, _BLOCK_ELEMENTS // max(1, n_cols)))
    for lo in range(0, n_rows, step):
        yield slice(lo, min(n_rows, lo + step))


def _top_pool(sims: np.ndarray, width: int) -> np.ndarray:
    """The `width` largest values of each row, sorted descending (rows x width)."""
    if sims.shape[1] > width:
        sims = np.partition(sims, sims.shape[1] - width, axis=1)[:, -width:]
    return -np.sort(-sims, axis=1)


def _topk_mean(emb: np.ndarray, rows: np.ndarray, refs: np.ndarray, k: int,
               exclude_self: bool = False) -> np.ndarray:
    """Mean of the k highest similarities of each row line to the reference lines (blockwise)."""
    out = np.empty(len(rows), np.float32)
    if len(rows) == 0:
        return out
    ref_emb = emb[refs]
    for blk in _blocks(len(rows), len(refs)):
        sims = emb[rows[blk]] @ ref_emb.T
        if exclude_self:  # the release's similarity matrix has a zero diagonal
            pos = np.searchsorted(refs, rows[blk])
            pos_c = np.minimum(pos, len(refs) - 1)
            hit = np.nonzero(refs[pos_c] == rows[blk])[0]
            sims[hit, pos_c[hit]] = 0.0
        if k < sims.shape[1]:
            sims = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        out[blk] = sims.sum(axis=1, dtype=np.float32) / np.float32(k)
    return out


def _absolute_times(episode: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray,
                    face_episode: np.ndarray, face_start_ms: np.ndarray, face_end_ms: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines and faces on one time axis (ms), episodes end to end as the release lays them out.

    Returns line start, line end, face start, face end and a mask of faces that could be placed
    (faces of episodes without lines cannot).
    """
    n = len(episode)
    if n and np.any(np.diff(episode) < 0):
        raise DramaError("lines must be ordered by episode", field="episode")
    offset = {}
    total = 0
    bounds = np.flatnonzero(np.diff(episode)) + 1 if n else np.zeros(0, np.int64)
    starts = np.concatenate([[0], bounds]).astype(np.int64) if n else np.zeros(0, np.int64)
    stops = np.concatenate([bounds, [n]]).astype(np.int64) if n else np.zeros(0, np.int64)
    line_shift = np.zeros(n, np.int64)
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        ep_start = int(start_ms[lo]) - EPISODE_PADDING_MS
        ep_end = int(end_ms[hi - 1]) + EPISODE_PADDING_MS
        offset[int(episode[lo])] = total - ep_start
        line_shift[lo:hi] = total - ep_start
        total += ep_end - ep_start
    face_shift = np.array([offset.get(int(e), 0) for e in face_episode.tolist()], np.int64)
    face_ok = np.array([int(e) in offset for e in face_episode.tolist()], bool)
    return (start_ms + line_shift, end_ms + line_shift, face_start_ms + face_shift,
            face_end_ms + face_shift, face_ok)


def _windows(line_start: np.ndarray, line_end: np.ndarray, item_start: np.ndarray, item_end: np.ndarray,
             radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Index range [lo, hi) of time-ordered items within +-radius of each line.

    Same semantics as a two-pointer sweep over the lines in order (what the release does):
    an item enters once its start is <= line end + radius and leaves once its end is
    < line start - radius, pointers never moving back.
    """
    if len(item_start) == 0:
        zero = np.zeros(len(line_start), np.int64)
        return zero, zero
    upper = np.maximum.accumulate(line_end + radius)
    lower = np.maximum.accumulate(line_start - radius)
    hi = np.searchsorted(np.maximum.accumulate(item_start), upper, side="right")
    lo = np.searchsorted(np.maximum.accumulate(item_end), lower, side="left")
    return lo.astype(np.int64), hi.astype(np.int64)


def _count_in_windows(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return csum[hi] - csum[lo]


# --------------------------------------------------------------------------- engine


class _Engine:
    """State of one propagation run: labels, gating, and per-character top-k pools."""

    def __init__(self, emb: np.ndarray, line_start: np.ndarray, line_end: np.ndarray,
                 face_start: np.ndarray, face_end: np.ndarray, face_code: np.ndarray,
                 face_score: np.ndarray, characters: list[str], seeds: Mapping[str, Sequence[int]],
                 cfg: PropagationConfig) -> None:
        self.cfg = cfg
        self.emb = emb
        self.n = n = len(emb)
        radius = int(round(cfg.face_radius_s * 1000))
        self.length = (line_end - line_start).astype(np.int64)
        self.face_lo, self.face_hi = _windows(line_start, line_end, face_start, face_end, radius)
        self.line_lo, self.line_hi = _windows(line_start, line_end, line_start, line_end, radius)
        self.characters = list(characters)
        self.is_known = [True] * len(characters)
        self.is_global = [NARRATION_MARK in c for c in characters]
        strong = face_score >= np.float32(cfg.face_score)
        # Faces never change: which characters each line sees within the window, once.
        self.face_active: list[np.ndarray] = []
        for c in range(len(characters)):
            flags = (face_code == c) & strong
            if flags.any():
                self.face_active.append(_count_in_windows(flags, self.face_lo, self.face_hi) > 0)
            else:
                self.face_active.append(np.zeros(n, bool))
        self.code = np.full(n, UNLABELLED, np.int32)
        self.is_seed = np.zeros(n, bool)
        self.stage = np.zeros(n, np.int8)
        self.threshold = np.full(n, np.nan, np.float32)
        self.label_score = np.zeros(n, np.float32)
        self.utterance_lists: list[list[int]] = [[] for _ in characters]
        self.labelled_count = 0  # the release counts list entries, relabelled lines twice
        for c, name in enumerate(characters):
            idx = np.asarray(sorted(set(int(i) for i in seeds.get(name, ()))), np.int64)
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise DramaError(f"seed line index out of range 0..{n - 1} for character {name!r}",
                                 field="seeds")
            if len(idx) and np.any(self.code[idx] >= 0):
                raise DramaError(f"a seed line of {name!r} is also a seed of another character",
                                 field="seeds")
            self._label(idx, c, STAGE_SEED, np.nan, 1.0, seed=True)
        bonus = np.minimum(np.maximum(np.float32(1) - self.length.astype(np.float32) / np.float32(1000), 0.0),
                           0.5) * cfg.short_bonus
        self.bonus = bonus.astype(np.float32)

    # ----- labels

    def _label(self, idx: np.ndarray, code: int, stage: int, threshold: float, score: Any,
               seed: bool = False) -> None:
        if len(idx) == 0:
            return
        idx = np.asarray(idx, np.int64)
        self.code[idx] = code
        self.is_seed[idx] = seed
        self.stage[idx] = stage
        self.threshold[idx] = threshold
        self.label_score[idx] = score
        if code >= 0:
            self.utterance_lists[code].extend(idx.tolist())
            self.labelled_count += len(idx)

    def _add_character(self, name: str) -> int:
        self.characters.append(name)
        self.is_known.append(False)
        self.is_global.append(False)
        self.face_active.append(np.zeros(self.n, bool))
        self.utterance_lists.append([])
        return len(self.characters) - 1

    def _next_new_name(self) -> str:
        taken = set(self.characters)
        i = 1
        while f"{NEW_CHARACTER_PREFIX}{i}" in taken:
            i += 1
        return f"{NEW_CHARACTER_PREFIX}{i}"

    def active_map(self, code: np.ndarray) -> np.ndarray:
        """bool [N, C]: character c is a candidate for line i (face or labelled line nearby, or global)."""
        n_roles = len(self.characters)
        amap = np.zeros((self.n, n_roles), bool)
        order = np.argsort(code, kind="stable")
        sorted_codes = code[order]
        for c in range(n_roles):
            if self.is_global[c]:
                amap[:, c] = True
                continue
            col = self.face_active[c].copy()
            lo, hi = np.searchsorted(sorted_codes, [c, c + 1])
            if hi > lo:
                col |= _count_in_windows(code == c, self.line_lo, self.line_hi) > 0
            amap[:, c] = col
        return amap

    # ----- one round at one threshold

    def _reference_set(self, members: np.ndarray) -> tuple[np.ndarray, int]:
        """Lines used as a character's references: those not much shorter than its longest line."""
        longest = int(self.length[members].max())
        cut = min(longest // self.cfg.length_unit_ms * self.cfg.length_unit_ms, self.cfg.length_cap_ms)
        return members[self.length[members] >= cut], longest

    def propagate_round(self, thr: float, amap: np.ndarray, pools: _Pools) -> list[tuple[int, int, float]]:
        """Label unlabelled lines whose best gated score reaches `thr`; returns (line, code, score)."""
        cfg = self.cfg
        thr32 = np.float32(thr)
        code = self.code
        n_roles = len(self.characters)
        unl = np.flatnonzero(code == UNLABELLED)
        if len(unl) == 0:
            return []
        pos_of = np.full(self.n, -1, np.int64)
        pos_of[unl] = np.arange(len(unl))
        sim_avg = np.zeros((len(unl), n_roles), np.float32)
        sim_max = np.full(len(unl), -1.0, np.float32)
        open_ = np.ones(len(unl), bool)  # still unlabelled in this round
        act = [unl[amap[unl, c]] for c in range(n_roles)]
        members = [np.flatnonzero(code == c) for c in range(n_roles)]
        refs: list[np.ndarray] = []
        longest: list[int] = []
        for c in range(n_roles):
            if len(members[c]):
                r, lg = self._reference_set(members[c])
            else:
                r, lg = np.zeros(0, np.int64), 0
            refs.append(list(r.tolist()))
            longest.append(lg)
        changed = [True] * n_roles
        out: list[tuple[int, int, float]] = []
        while True:
            for c in range(n_roles):
                if not changed[c] or len(members[c]) == 0:
                    continue
                rows = act[c]
                rows = rows[open_[pos_of[rows]]]
                act[c] = rows
                changed[c] = False
                if len(rows) == 0:
                    continue
                ref = np.asarray(refs[c], np.int64)
                k = _top_count(len(ref), cfg)
                vals = pools.topk_mean(c, rows, ref, k) + self.bonus[rows]
                p = pos_of[rows]
                sim_avg[p, c] = vals
                sim_max[p] = np.maximum(sim_max[p], vals)
            cand = np.flatnonzero(open_ & (sim_max >= thr32))
            if len(cand) == 0:
                break
            block = sim_avg[cand]
            masked = np.where(block >= thr32, block, -np.inf)
            best = np.argmax(masked, axis=1)
            best_score = masked[np.arange(len(cand)), best]
            # A line whose remembered best score no longer passes any character falls to code 0
            # with score 0: the release's behaviour, kept for parity.
            none = ~np.isfinite(best_score)
            best[none] = 0
            best_score[none] = 0.0
            open_[cand] = False
            sim_max[cand] = -1.0
            lines = unl[cand]
            for line, c in zip(lines.tolist(), best.tolist(), strict=True):
                length = int(self.length[line])
                changed[c] = True
                # Reference set bookkeeping exactly as the release's inner loop does it.
                if length > longest[c]:
                    if refs[c] and longest[c] < cfg.length_cap_ms:
                        if longest[c] // cfg.length_unit_ms < length // cfg.length_unit_ms:
                            refs[c] = []
                    longest[c] = int(length)
                cut = min(longest[c] // cfg.length_unit_ms * cfg.length_unit_ms, cfg.length_cap_ms)
                if length >= cut:
                    refs[c].append(line)
            for c in set(best.tolist()):
                members[c] = np.concatenate([members[c], lines[best == c]])
            out.extend(zip(lines.tolist(), best.tolist(), best_score.tolist(), strict=True))
            if len(cand) < cfg.min_new_labels:
                break
        return out

    def local_clusters(self, thr: float, amap: np.ndarray) -> list[tuple[np.ndarray, str | None, float, bool]]:
        """Tight clusters of nearby unlabelled lines, each with its best matching character.

        Returns (lines, character or None, similarity, uncertain) per cluster, largest first.
        """
        cfg = self.cfg
        unl = np.flatnonzero(self.code == UNLABELLED)
        m = len(unl)
        if m < cfg.min_cluster_size:
            return []
        edge_thr = np.float32(thr + cfg.new_character_margin)
        src, dst = [], []
        for off in range(1, cfg.cluster_radius + 1):
            if off >= m:
                break
            a, b = unl[:-off], unl[off:]
            near = (b - a) <= cfg.cluster_radius
            if not near.any():
                continue
            ia, ib = np.flatnonzero(near), np.flatnonzero(near) + off
            sims = np.einsum("ij,ij->i", self.emb[unl[ia]], self.emb[unl[ib]])
            ok = sims >= edge_thr
            src.append(ia[ok])
            dst.append(ib[ok])
        if not src:
            return []
        src_a, dst_a = np.concatenate(src), np.concatenate(dst)
        graph = coo_matrix((np.ones(len(src_a), np.int8), (src_a, dst_a)), shape=(m, m))
        n_comp, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp, minlength=n_comp)
        first = np.full(n_comp, m, np.int64)
        np.minimum.at(first, comp, np.arange(m))
        keep = np.flatnonzero(sizes >= cfg.min_cluster_size)
        if len(keep) == 0:
            return []
        keep = keep[np.lexsort((first[keep], -sizes[keep]))]
        clusters = [unl[comp == k] for k in keep.tolist()]
        all_lines = np.concatenate(clusters)
        bounds = np.cumsum([0] + [len(c) for c in clusters])
        n_roles = len(self.characters)
        known = np.unique(self.code[self.code >= 0])
        mean_top = np.zeros((len(clusters), n_roles), np.float32)
        active_count = np.zeros((len(clusters), n_roles), np.int64)
        seg = bounds[:-1]
        lens = np.diff(bounds)
        # One product against all labelled lines, grouped by character so each is a column slice.
        labelled_all = np.flatnonzero(self.code >= 0)
        labelled_all = labelled_all[np.argsort(self.code[labelled_all], kind="stable")]
        col_bounds = np.searchsorted(self.code[labelled_all], np.concatenate([known, [known[-1] + 1]]))
        avg_top = np.empty((len(all_lines), len(known)), np.float32)
        ref_emb = self.emb[labelled_all]
        for blk in _blocks(len(all_lines), len(labelled_all)):
            sims = self.emb[all_lines[blk]] @ ref_emb.T
            for j in range(len(known)):
                part = sims[:, col_bounds[j]:col_bounds[j + 1]]
                k = _top_count(part.shape[1], cfg)
                if k < part.shape[1]:
                    part = np.partition(part, part.shape[1] - k, axis=1)[:, -k:]
                avg_top[blk, j] = part.sum(axis=1, dtype=np.float32) / np.float32(k)
        act_sel = amap[all_lines][:, known].astype(np.int64)
        for j, c in enumerate(known.tolist()):
            mean_top[:, c] = np.add.reduceat(avg_top[:, j], seg, dtype=np.float32) / lens.astype(np.float32)
            active_count[:, c] = np.add.reduceat(act_sel[:, j], seg)
        ratio = active_count / lens[:, None]
        base, delta = np.float32(thr), np.float32(cfg.new_character_margin)
        high = ((ratio >= 0.5) & (mean_top >= base)) | ((ratio > 0) & (mean_top >= base + delta))
        result = []
        for i, lines in enumerate(clusters):
            sel = [c for c in known.tolist() if active_count[i, c] > 0 or high[i, c]]
            name, similarity, uncertain = None, 0.0, False
            if sel:
                scores = np.array([mean_top[i, c] for c in sel], np.float32)
                order = np.argsort(-scores, kind="stable")
                n_high = int(sum(bool(high[i, c]) for c in sel))
                if n_high > 0:
                    name = self.characters[sel[order[0]]]
                similarity = float(scores[order[0]])
                uncertain = n_high != 1
            result.append((lines, name, similarity, uncertain))
        return result

    def finalize(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ranked candidates with scores for every line (CSR arrays)."""
        cfg = self.cfg
        code = self.code
        amap = self.active_map(code)
        n_roles = len(self.characters)
        rows_all, codes_all, scores_all = [], [], []
        for c in range(n_roles):
            labelled = np.flatnonzero(code == c)
            if len(labelled) == 0:
                continue
            rows = np.flatnonzero(amap[:, c])
            if len(rows) == 0:
                continue
            k = max(1, min(cfg.max_top, int(len(labelled) ** cfg.top_power)))
            score = _topk_mean(self.emb, rows, labelled, k, exclude_self=True)
            pos = score > 0
            rows_all.append(rows[pos])
            codes_all.append(np.full(int(pos.sum()), c, np.int32))
            scores_all.append(score[pos])
        if rows_all:
            rows = np.concatenate(rows_all)
            codes = np.concatenate(codes_all)
            scores = np.concatenate(scores_all)
        else:
            rows, codes, scores = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
        order = np.lexsort((codes, -scores, rows))
        rows, codes, scores = rows[order], codes[order], scores[order]
        offsets = np.zeros(self.n + 1, np.int64)
        offsets[1:] = np.cumsum(np.bincount(rows, minlength=self.n))
        return offsets, codes.astype(np.int32), scores.astype(np.float32)


class _Pools:
    """Top-k similarity of candidate lines to each character's reference lines.

    A character's reference set mostly grows; for each (line, character) pair we keep the
    `max_top` highest similarities seen, sorted, so that adding references costs only the
    new columns, not the whole set again. Rows of lines labelled since are compacted away.
    """

    def __init__(self, emb: np.ndarray, cfg: PropagationConfig) -> None:
        self.emb = emb
        self.n = len(emb)
        self.width = cfg.max_top
        self.state: dict[int, _Pool] = {}

    def topk_mean(self, c: int, rows: np.ndarray, refs: np.ndarray, k: int) -> np.ndarray:
        if k <= 0 or len(refs) == 0:
            return np.zeros(len(rows), np.float32)
        st = self.state.get(c)
        if st is not None and int(st.ref_mask[refs].sum()) != st.n_refs:
            st = None  # a reference line was dropped: rebuild this character's pools
        if st is None:
            st = self.state[c] = _Pool(self.n)
        emb = self.emb
        extra = refs[~st.ref_mask[refs]]
        if len(extra):
            width = min(self.width, st.n_refs + len(extra))
            if len(st.rows):
                ref_emb = emb[extra]
                grown = np.empty((len(st.rows), width), np.float32)
                for blk in _blocks(len(st.rows), len(extra) + st.pool.shape[1]):
                    sims = emb[st.rows[blk]] @ ref_emb.T
                    grown[blk] = _top_pool(np.concatenate([st.pool[blk], sims], axis=1), width)
                st.pool = grown
            else:
                st.pool = np.zeros((0, width), np.float32)
            st.ref_mask[extra] = True
            st.refs = np.concatenate([st.refs, extra])
            st.n_refs += len(extra)
        missing = rows[st.slot[rows] < 0]
        if len(missing):
            width = st.pool.shape[1]
            add = np.empty((len(missing), width), np.float32)
            ref_emb = emb[st.refs]
            for blk in _blocks(len(missing), len(st.refs)):
                add[blk] = _top_pool(emb[missing[blk]] @ ref_emb.T, width)
            st.slot[missing] = np.arange(len(st.rows), len(st.rows) + len(missing))
            st.rows = np.concatenate([st.rows, missing])
            st.pool = np.concatenate([st.pool, add])
        sel = st.pool[st.slot[rows]]
        if len(st.rows) > 2 * len(rows) + 256:  # most stored lines got labelled: drop them
            st.slot[st.rows] = -1
            st.slot[rows] = np.arange(len(rows))
            st.rows, st.pool = rows.copy(), sel
        return sel[:, :k].sum(axis=1, dtype=np.float32) / np.float32(k)


class _Pool:
    def __init__(self, n: int) -> None:
        self.ref_mask = np.zeros(n, bool)
        self.refs = np.zeros(0, np.int64)
        self.n_refs = 0
        self.slot = np.full(n, -1, np.int64)
        self.rows = np.zeros(0, np.int64)
        self.pool = np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------- public API


def propagate(embedding: np.ndarray, episode: np.ndarray, start: np.ndarray, end: np.ndarray,
              face_episode: np.ndarray, face_start: np.ndarray, face_end: np.ndarray,
              face_name: Sequence[str], face_score: np.ndarray,
              seeds: Mapping[str, Sequence[int]], config: PropagationConfig | None = None,
              progress: Callable[[str, float], None] | None = None) -> Propagation:
    """Label every line from a few seed lines per character.

    Times are seconds within each episode; lines are in global order (episodes ascending).
    `seeds` maps each named character to its seed line indices; its key order fixes the
    character codes (and breaks ties), as the release's seed files do. Characters with no
    seed lines are kept as candidates-to-be but never gain lines. Faces gate which
    characters may speak a line: a character is a candidate only within +-20 s of one of its
    face tracks (score >= 0.45) or of a line already labelled with it.
    """
    cfg = config or PropagationConfig()
    emb = np.asarray(embedding)
    n = len(emb)
    if emb.ndim != 2:
        raise DramaError("embedding must be a 2-D array (lines x dims)", field="embedding")
    if not (len(episode) == len(start) == len(end) == n):
        raise DramaError(f"episode/start/end/embedding lengths differ ({len(episode)}, {len(start)}, "
                         f"{len(end)}, {n})", field="lines")
    if not (len(face_episode) == len(face_start) == len(face_end) == len(face_name) == len(face_score)):
        raise DramaError("face columns have different lengths", field="faces")
    characters = [str(c) for c in seeds]
    if not characters:
        raise DramaError("no seed characters: propagation needs at least one labelled line",
                         field="seeds", hint="pass --seeds 1pct (release seeds) or make seeds from ground truth")
    if not any(len(v) for v in seeds.values()):
        raise DramaError("all seed characters have zero seed lines", field="seeds")
    if len(set(characters)) != len(characters):
        raise DramaError("duplicate character names in seeds", field="seeds")
    if n == 0:
        raise DramaError("empty drama: no lines to label", field="lines")
    episode = np.asarray(episode, np.int64)
    start_ms = np.rint(np.asarray(start, np.float64) * 1000).astype(np.int64)
    end_ms = np.rint(np.asarray(end, np.float64) * 1000).astype(np.int64)
    f_ep = np.asarray(face_episode, np.int64)
    order = np.argsort(f_ep, kind="stable")  # episodes in order, file order within
    f_ep = f_ep[order]
    f_start = np.rint(np.asarray(face_start, np.float64)[order] * 1000).astype(np.int64)
    f_end = np.rint(np.asarray(face_end, np.float64)[order] * 1000).astype(np.int64)
    f_score = np.asarray(face_score, np.float32)[order]
    code_of = {name: i for i, name in enumerate(characters)}
    names = [face_name[i] for i in order.tolist()]
    f_code = np.array([code_of.get(nm, -1) for nm in names], np.int32)

    if cfg.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=cfg.blas_threads, user_api="blas"):
            return _run(emb, episode, start_ms, end_ms, f_ep, f_start, f_end, f_code, f_score, characters,
                        seeds, cfg, progress)
    return _run(emb, episode, start_ms, end_ms, f_ep, f_start, f_end, f_code, f_score, characters, seeds, cfg,
                progress)


def _run(emb: np.ndarray, episode: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray, f_ep: np.ndarray,
         f_start: np.ndarray, f_end: np.ndarray, f_code: np.ndarray, f_score: np.ndarray, characters: list[str],
         seeds: Mapping[str, Sequence[int]], cfg: PropagationConfig,
         progress: Callable[[str, float], None] | None) -> Propagation:
    n = len(emb)
    ls, le, fs, fe, f_ok = _absolute_times(episode, start_ms, end_ms, f_ep, f_start, f_end)
    fs, fe, f_code, f_score = fs[f_ok], fe[f_ok], f_code[f_ok], f_score[f_ok]
    norm = _normalise(emb)
    eng = _Engine(norm, ls, le, fs, fe, f_code, f_score, characters, seeds, cfg)
    pools = _Pools(norm, cfg)
    thr = cfg.threshold_high
    total = n
    while True:
        if eng.labelled_count == total:
            break
        amap = eng.active_map(eng.code)
        items = eng.propagate_round(thr, amap, pools)
        clusters = eng.local_clusters(thr, amap) if cfg.discover_new_characters else []
        if progress:
            progress(f"threshold {thr:.2f}", float(np.mean(eng.code >= 0)))
        finished = True
        for line, c, score in items:
            eng._label(np.array([line]), c, STAGE_PROPAGATED, thr, score)
        for lines, name, similarity, uncertain in clusters:
            if name is not None and not uncertain:
                eng._label(lines, eng.characters.index(name), STAGE_COMPONENT, thr, similarity)
        for lines, name, similarity, _uncertain in clusters:
            if name is None and similarity + cfg.new_character_margin < thr:
                c = eng._add_character(eng._next_new_name())
                eng._label(lines, c, STAGE_NEW_CHARACTER, thr, 1.0)
                finished = False
        log.debug("threshold %.2f: %d propagated, %d clusters, %d/%d labelled", thr, len(items),
                  len(clusters), int((eng.code >= 0).sum()), n)
        if finished:
            thr -= cfg.threshold_step
            if thr <= cfg.threshold_low - 1e-6:
                break
    rest = np.flatnonzero(eng.code == UNLABELLED)
    eng._label(rest, CODE_OTHER, STAGE_OTHER, np.nan, 0.0)
    offsets, cand_code, cand_score = eng.finalize()
    return Propagation(
        characters=eng.characters, is_known=np.array(eng.is_known, bool),
        is_global=np.array(eng.is_global, bool), code=eng.code, is_seed=eng.is_seed, stage=eng.stage,
        threshold=eng.threshold, label_score=eng.label_score, cand_offsets=offsets, cand_code=cand_code,
        cand_score=cand_score, utterance_lists=eng.utterance_lists,
        episode=np.asarray(episode, np.int32),
    )


def seeds_from_release(doc: Mapping[str, Any], source: str | Path | None = None) -> dict[str, list[int]]:
    """Seeds (character -> line indices, in code order) from a parsed init_seeds_*.json."""
    try:
        chars = sorted(doc["character_list"], key=lambda c: int(c["code"]))
        seeds = {str(c["name"]): [int(i) for i in c["utterance_list"]] for c in chars}
    except (KeyError, TypeError, ValueError) as exc:
        raise DramaError(f"not a release seed/label file: {exc!r}", file=source, field="character_list") from exc
    return seeds


def load_seeds(path: str | Path) -> dict[str, list[int]]:
    """Read a release `init_seeds_*.json` into {character: [line, ...]} (code order kept)."""
    return seeds_from_release(read_json(Path(path)), path)


def resolve_seeds(drama: Any, seeds: Mapping[str, Sequence[int]] | str | Path) -> Mapping[str, Sequence[int]]:
    """Seeds as plain data ({character: [line, ...]}) from a key of the drama's seed files
    (e.g. "1pct"), a path to an init_seeds_*.json, "gt-1pct" / "gt-1shot" / "gt-<k>shot"
    (chosen from the truth as the release does), or a mapping (returned as it is)."""
    if isinstance(seeds, str | Path):
        key = str(seeds)
        files = getattr(drama, "seed_files", {}) or {}
        if key in files:
            folder = getattr(drama, "source", None)
            seeds = seeds_from_release(files[key], Path(folder) / f"init_seeds_{key}.json" if folder
                                       else f"init_seeds_{key}.json")
        elif key.startswith("gt-"):
            mode = key[3:]
            k = 1
            if mode.endswith("shot") and mode[:-4].isdigit():
                k, mode = int(mode[:-4]), "kshot"
            seeds = make_seeds(drama, mode=mode, k=k)
        elif Path(key).suffix == ".json" or Path(key).is_file():
            seeds = load_seeds(key)
        else:
            raise DramaError(f"no seed file init_seeds_{key}.json in drama {getattr(drama, 'name', '?')}",
                             field="--seeds",
                             hint="use a seed file the drama has, a path, or gt-1pct/gt-1shot/gt-5shot")
        folder = getattr(drama, "source", None)
        source = (Path(folder) / f"init_seeds_{key}.json" if folder else f"init_seeds_{key}.json") if key in files \
            else key
    else:
        source = None
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


def propagate_drama(drama: Any, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
                    config: PropagationConfig | None = None,
                    progress: Callable[[str, float], None] | None = None) -> Propagation:
    """Label propagation on a loaded `dramasr.data.Drama`.

    `seeds` is a dict, a path to an init_seeds_*.json, or a key: "1pct" (the drama's own
    init_seeds_1pct.json if it has one), or "gt-1pct" / "gt-1shot" / "gt-<k>shot" to select
    seeds from ground truth as the release does.
    """
    seeds = resolve_seeds(drama, seeds)
    lines, faces = drama.lines, drama.faces
    return propagate(lines.embedding, lines.episode, lines.start_ms / 1000.0, lines.end_ms / 1000.0,
                     faces.episode, faces.start_ms / 1000.0, faces.end_ms / 1000.0, faces.name, faces.score,
                     seeds, config, progress)


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
    for blk in _blocks(n, n):
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
    emb = _normalise(np.asarray(embedding)[idx])
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


# --------------------------------------------------------------------------- release files and predictions


def release_labels_doc(prop: Propagation) -> dict[str, Any]:
    """The release's prop_labels_*.json document for a propagation result."""
    chars = prop.characters
    character_list = [{
        "name": name, "code": c, "is_known": bool(prop.is_known[c]), "is_global": bool(prop.is_global[c]),
        "utterance_list": [int(i) for i in (prop.utterance_lists[c] if c < len(prop.utterance_lists) else [])],
    } for c, name in enumerate(chars)]
    off = prop.cand_offsets.tolist()
    cc, cs = prop.cand_code.tolist(), prop.cand_score.tolist()
    labels = []
    for i, (code, seed) in enumerate(zip(prop.code.tolist(), prop.is_seed.tolist(), strict=True)):
        names = [chars[c] for c in cc[off[i]:off[i + 1]]]
        labels.append({"code": int(code), "is_gt": bool(seed), "rel_info": {
            "_list": names, "_dict": dict(zip(names, cs[off[i]:off[i + 1]], strict=True))}})
    return {"characters": len(chars), "character_list": character_list,
            "character_dict": {name: c for c, name in enumerate(chars)}, "utterance_label": labels}


def write_release_labels(prop: Propagation, path: str | Path) -> None:
    """Write the release's prop_labels_*.json (same keys, order and JSON spacing)."""
    write_bytes_atomic(Path(path), json.dumps(release_labels_doc(prop), ensure_ascii=False).encode("utf-8"))


def read_release_labels(path: str | Path, episode: np.ndarray | None = None) -> Propagation:
    """Read a release prop_labels_*.json (or init_seeds_*.json) into a `Propagation`."""
    return release_labels_from_doc(read_json(Path(path)), path, episode)


def release_labels_from_doc(doc: Any, path: str | Path | None = None,
                            episode: np.ndarray | None = None) -> Propagation:
    """A parsed release label document as a `Propagation` (candidate scores kept as written)."""
    try:
        chars = sorted(doc["character_list"], key=lambda c: int(c["code"]))
        names = [str(c["name"]) for c in chars]
        code_of = {n: i for i, n in enumerate(names)}
        labels = doc["utterance_label"]
        n = len(labels)
        code = np.array([int(u["code"]) for u in labels], np.int32)
        is_seed = np.array([bool(u["is_gt"]) for u in labels], bool)
        offsets = np.zeros(n + 1, np.int64)
        cand_code: list[int] = []
        cand_score: list[float] = []
        for i, u in enumerate(labels):
            rel = u.get("rel_info") or {}
            lst = rel.get("_list", []) if isinstance(rel, dict) else []
            dct = rel.get("_dict", {}) if isinstance(rel, dict) else {}
            for name in lst:
                cand_code.append(code_of[name])
                cand_score.append(float(dct[name]))
            offsets[i + 1] = len(cand_code)
    except (KeyError, TypeError, ValueError) as exc:
        raise DramaError(f"not a release label file: {exc!r}", file=path) from exc
    if np.any(code >= len(names)) or np.any((code < 0) & (code != UNLABELLED) & (code != CODE_OTHER)
                                            & (code != -2) & (code != -4)):
        raise DramaError("label code out of range", file=path, field="utterance_label")
    stage = np.where(is_seed, STAGE_SEED, np.where(code >= 0, STAGE_PROPAGATED,
                                                   np.where(code == CODE_OTHER, STAGE_OTHER, STAGE_NONE)))
    return Propagation(
        characters=names, is_known=np.array([bool(c.get("is_known", True)) for c in chars], bool),
        is_global=np.array([bool(c.get("is_global", False)) for c in chars], bool),
        code=code, is_seed=is_seed, stage=stage.astype(np.int8), threshold=np.full(n, np.nan, np.float32),
        label_score=np.zeros(n, np.float32), cand_offsets=offsets, cand_code=np.array(cand_code, np.int32),
        cand_score=np.array(cand_score, np.float64),
        utterance_lists=[[int(i) for i in c.get("utterance_list", [])] for c in chars],
        episode=None if episode is None else np.asarray(episode, np.int32),
    )


def to_predictions(prop: Propagation) -> Iterator[dict[str, Any]]:
    """One prediction record per line, in the toolkit's predictions (JSONL) format."""
    conf = prop.confidence()
    off = prop.cand_offsets.tolist()
    cc, cs = prop.cand_code.tolist(), prop.cand_score.tolist()
    chars = prop.characters
    episode = prop.episode.tolist() if prop.episode is not None else [None] * len(prop.code)
    for i, code in enumerate(prop.code.tolist()):
        thr = float(prop.threshold[i])
        evidence: dict[str, Any] = {"stage": STAGE_NAMES[int(prop.stage[i])], "seed": bool(prop.is_seed[i]),
                                    "label_score": float(prop.label_score[i])}
        if not math.isnan(thr):
            evidence["threshold"] = round(thr, 4)
        speaker = OTHER if code < 0 else chars[code]
        ranked = [(chars[c], s) for c, s in zip(cc[off[i]:off[i + 1]], cs[off[i]:off[i + 1]], strict=True)]
        candidates, runner_up = rank_with_speaker(speaker, ranked, float(prop.label_score[i]))
        yield {
            "line": i, "episode": episode[i], "speaker": speaker, "confidence": float(conf[i]),
            "runner_up": runner_up, "candidates": [list(c) for c in candidates], "evidence": evidence,
        }


def write_predictions(prop: Propagation, path: str | Path) -> None:
    """Write `to_predictions` as JSONL (atomically)."""
    from dramasr.data.predictions import write_predictions as write_records

    write_records(path, to_predictions(prop))
