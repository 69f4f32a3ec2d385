"""The propagation engine: labels spread from seed lines to similar voices, gated by faces in time.

Reproduces the DramaSR release's label propagation (its results, not its code) on plain arrays:
thresholds fall from high to low; in each round unlabelled lines join the character whose
labelled lines they resemble most, and tight clusters of unlabelled lines may become new
characters. Seeds come in resolved ({character: [line, ...]}); nothing here reads files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dramasr.data.model import NARRATION_MARK, NEW_CHARACTER_PREFIX
from dramasr.errors import DramaError
from dramasr.progress import Progress
from dramasr.propagate.config import PropagationConfig, reference_cut, top_count
from dramasr.propagate.pools import ReferencePools
from dramasr.propagate.result import (
    CODE_OTHER,
    STAGE_COMPONENT,
    STAGE_NEW_CHARACTER,
    STAGE_OTHER,
    STAGE_PROPAGATED,
    STAGE_SEED,
    UNLABELLED,
    Propagation,
)
from dramasr.propagate.similarity import blocks, mean_of_top, topk_mean, unit_rows
from dramasr.propagate.timeline import absolute_times, count_in_windows, windows
from dramasr.runtime import cores

log = logging.getLogger(__name__)


class _Engine:
    """State of one propagation run: labels, gating, and per-character top-k pools."""

    def __init__(self, emb: np.ndarray, line_start: np.ndarray, line_end: np.ndarray,
                 face_start: np.ndarray, face_end: np.ndarray, face_code: np.ndarray,
                 face_score: np.ndarray, characters: list[str], seeds: Mapping[str, Sequence[int]],
                 cfg: PropagationConfig) -> None:
        self.cfg = cfg
        self.emb = emb
        self.pool: ThreadPoolExecutor | None = None  # set by `_run` on a machine with several cores
        self.n = n = len(emb)
        radius = int(round(cfg.face_radius_s * 1000))
        self.length = (line_end - line_start).astype(np.int64)
        self.face_lo, self.face_hi = windows(line_start, line_end, face_start, face_end, radius)
        self.line_lo, self.line_hi = windows(line_start, line_end, line_start, line_end, radius)
        self.characters = list(characters)
        self.is_known = [True] * len(characters)
        self.is_global = [NARRATION_MARK in c for c in characters]
        strong = face_score >= np.float32(cfg.face_score)
        # Which characters may speak each line (`active_map`), kept up to date as lines get
        # labelled: a column per character, faces first (they never change), then the window
        # of every line labelled with it. Column-major, room for the new characters to come.
        self.active = np.zeros((n, max(8, 2 * len(characters))), bool, order="F")
        self.face_active: list[np.ndarray | None] = []  # faces never change: each once
        for c in range(len(characters)):
            flags = (face_code == c) & strong
            self.face_active.append(count_in_windows(flags, self.face_lo, self.face_hi) > 0 if flags.any() else None)
            if self.is_global[c]:
                self.active[:, c] = True
            elif self.face_active[c] is not None:
                self.active[:, c] = self.face_active[c]
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

    def _map(self, fn: Callable[[Any], np.ndarray], jobs: list[Any]) -> list[np.ndarray]:
        """fn of each job, in order; side by side on the pool's threads when there is one (the
        products, partitions and sorts inside let go of the GIL, each on one BLAS thread)."""
        if self.pool is None or len(jobs) < 2:
            return [fn(job) for job in jobs]
        return list(self.pool.map(fn, jobs))

    # ----- labels

    def _label(self, idx: np.ndarray, code: int, stage: int, threshold: float, score: Any,
               seed: bool = False) -> None:
        if len(idx) == 0:
            return
        idx = np.asarray(idx, np.int64)
        before = self.code[idx]
        self.code[idx] = code
        # a line a round both propagated and put in a cluster is labelled twice: the
        # character it leaves is active only where its remaining lines (or faces) say so
        left = before[(before >= 0) & (before != code)]
        for c in np.unique(left).tolist() if len(left) else ():
            self._recount(c)
        self.is_seed[idx] = seed
        self.stage[idx] = stage
        self.threshold[idx] = threshold
        self.label_score[idx] = score
        if code >= 0:
            self.utterance_lists[code].extend(idx.tolist())
            self.labelled_count += len(idx)
            self._near(idx, code)

    def _recount(self, code: int) -> None:
        """Character `code`'s column of `active` anew from its faces and its lines now."""
        if self.is_global[code]:
            return
        face = self.face_active[code]
        column = face.copy() if face is not None else np.zeros(self.n, bool)
        column |= count_in_windows(self.code == code, self.line_lo, self.line_hi) > 0
        self.active[:, code] = column

    def _near(self, idx: np.ndarray, code: int) -> None:
        """Mark character `code` active on every line whose window holds one of the lines
        `idx`: the lines i with line_lo[i] <= j < line_hi[i], a run of lines since both
        bounds rise with i."""
        if self.is_global[code]:
            return
        first = np.searchsorted(self.line_hi, idx, side="right")
        stop = np.searchsorted(self.line_lo, idx, side="right")
        column = self.active[:, code]
        if len(idx) == 1:
            column[first[0]:stop[0]] = True
            return
        runs = np.zeros(self.n + 1, np.int32)
        np.add.at(runs, first, 1)
        np.add.at(runs, stop, -1)
        column |= np.cumsum(runs[:-1]) > 0

    def _add_character(self, name: str) -> int:
        self.characters.append(name)
        self.is_known.append(False)
        self.is_global.append(False)
        if len(self.characters) > self.active.shape[1]:
            grown = np.zeros((self.n, 2 * self.active.shape[1]), bool, order="F")
            grown[:, :self.active.shape[1]] = self.active
            self.active = grown
        self.face_active.append(None)
        self.utterance_lists.append([])
        return len(self.characters) - 1

    def _next_new_name(self) -> str:
        taken = set(self.characters)
        i = 1
        while f"{NEW_CHARACTER_PREFIX}{i}" in taken:
            i += 1
        return f"{NEW_CHARACTER_PREFIX}{i}"

    def active_map(self) -> np.ndarray:
        """bool [N, C]: character c is a candidate for line i (face or labelled line nearby, or
        global). A view of the engine's table: it changes as lines are labelled."""
        return self.active[:, :len(self.characters)]

    # ----- one round at one threshold

    def _reference_set(self, members: np.ndarray) -> tuple[np.ndarray, int]:
        """Lines used as a character's references: those not much shorter than its longest line."""
        longest = int(self.length[members].max())
        cut = reference_cut(longest, self.cfg)
        return members[self.length[members] >= cut], longest

    def propagate_round(self, thr: float, amap: np.ndarray, pools: ReferencePools) -> list[tuple[int, int, float]]:
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
            jobs = []
            for c in range(n_roles):
                if not changed[c] or len(members[c]) == 0:
                    continue
                rows = act[c]
                rows = rows[open_[pos_of[rows]]]
                act[c] = rows
                changed[c] = False
                if len(rows):
                    jobs.append((c, rows, np.asarray(refs[c], np.int64)))
            # each character's scores depend on its own pool only: computed side by side, then
            # written in character order (the running maximum is the same in any order)
            for (c, rows, _), vals in zip(jobs, self._map(lambda job: pools.topk_mean(
                    job[0], job[1], job[2], top_count(len(job[2]), cfg)), jobs), strict=True):
                vals = vals + self.bonus[rows]
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
                cut = reference_cut(longest[c], cfg)
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
        for blk in blocks(len(all_lines), len(labelled_all)):
            sims = self.emb[all_lines[blk]] @ ref_emb.T
            for j in range(len(known)):
                part = sims[:, col_bounds[j]:col_bounds[j + 1]]
                avg_top[blk, j] = mean_of_top(part, top_count(part.shape[1], cfg))
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
        amap = self.active_map()
        n_roles = len(self.characters)
        rows_all, codes_all, scores_all = [], [], []
        jobs = []
        for c in range(n_roles):
            labelled = np.flatnonzero(code == c)
            if len(labelled):
                rows = np.flatnonzero(amap[:, c])
                if len(rows):
                    jobs.append((c, rows, labelled))
        scored = self._map(lambda job: topk_mean(self.emb, job[1], job[2], top_count(len(job[2]), cfg),
                                                 exclude_self=True), jobs)
        for (c, rows, _), score in zip(jobs, scored, strict=True):
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


def propagate(embedding: np.ndarray, episode: np.ndarray, start: np.ndarray, end: np.ndarray,
              face_episode: np.ndarray, face_start: np.ndarray, face_end: np.ndarray,
              face_name: Sequence[str], face_score: np.ndarray,
              seeds: Mapping[str, Sequence[int]], config: PropagationConfig | None = None,
              progress: Progress | None = None) -> Propagation:
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
         progress: Progress | None) -> Propagation:
    ls, le, fs, fe, f_ok = absolute_times(episode, start_ms, end_ms, f_ep, f_start, f_end)
    fs, fe, f_code, f_score = fs[f_ok], fe[f_ok], f_code[f_ok], f_score[f_ok]
    norm = unit_rows(emb)
    eng = _Engine(norm, ls, le, fs, fe, f_code, f_score, characters, seeds, cfg)
    workers = cores()
    if workers < 2:
        return _rounds(eng, episode, cfg, progress)
    # the characters' scores of a round are independent of each other: one thread per core
    with ThreadPoolExecutor(workers) as eng.pool:
        return _rounds(eng, episode, cfg, progress)


def _rounds(eng: _Engine, episode: np.ndarray, cfg: PropagationConfig, progress: Progress | None) -> Propagation:
    """Thresholds from high to low, each round labelling lines and finding new characters; then
    every line's ranked candidates."""
    n = eng.n
    pools = ReferencePools(eng.emb, cfg)
    thr = cfg.threshold_high
    total = n
    while True:
        if eng.labelled_count == total:
            break
        amap = eng.active_map()
        items = eng.propagate_round(thr, amap, pools)
        clusters = eng.local_clusters(thr, amap) if cfg.discover_new_characters else []
        if progress:
            progress(f"propagation (threshold {thr:.2f})", int(np.count_nonzero(eng.code >= 0)), len(eng.code))
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
