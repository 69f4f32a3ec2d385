"""audio_sim: how much a line's voice sounds like each candidate's currently labelled lines.

Per (line, candidate): mean of the top-k cosine similarities to the candidate's lines over
the whole drama, within the episode and within the scene (the line itself excluded), the
maximum, how many lines the candidate holds, similarity to the candidate's seed lines and
to its centroid, and those similarities normalised by the line's scores against a cohort of
the drama's lines (score normalisation, as in speaker verification); and the probability a
voice model of the drama (multinomial logistic regression on the standardised embeddings,
cross-fitted to the current labels) gives the candidate. A voice drifts from
scene to scene (same-character cosine ~0.50 inside a scene, ~0.39 across episodes), so the
scene-local match is the sharpest of these.
Similarities are computed in row blocks or per class, never as one N x N matrix; the
drama-wide top-k only for the (line, candidate) pairs read (`AudioTables.settle`).
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from dramasr.runtime import cores
from dramasr.tools.base import Context, Tool
from dramasr.tools.tables import DramaTables, find_sorted, unit_rows
from dramasr.tools.topk import FEWER, mark_stale, segment_top_mean

TOP_K = 5
LOCAL_TOP_K = 3
SCENE_TOP_K = 2
COHORT_SIZE = 4000  # lines drawn (fixed seed) from the drama for score normalisation
COHORT_TOP = 200
VOICE_MODEL_C = 0.1  # inverse L2 strength of the per-drama voice model
# a fixed L-BFGS budget per fit, not run to convergence; 30 steps give the training dramas' lines the
# voice model's answers of 100 within 0.1-0.2 points, at a third of the time (BENCHMARKS, issue 23)
VOICE_MODEL_ITERS = 30
VOICE_MODEL_FOLDS = 4  # cross-fitting folds of the voice model
# a label state refits the voice model only when more than this share of the voiced lines has
# another label than the last fit was given; below it the last fit is read again (issue 23)
VOICE_REFIT_SHARE = 0.02
BLOCK_ROWS = 1024  # rows of a block of similarities: keeps blocks and BLAS calls small
ENTRIES_APART = 1 << 22  # similarities to compute from which `_compute_entries` shares classes out among threads


@dataclass(frozen=True, eq=False)
class CohortStats:
    """Per line: mean and spread of its similarities to the cohort, and of its best COHORT_TOP."""

    mean: np.ndarray  # float32 [N]
    spread: np.ndarray
    top_mean: np.ndarray
    top_spread: np.ndarray


@dataclass(frozen=True, eq=False)
class AudioTables:
    """[N, C] voice tables of one label state (top / best / kth filled only where read, see
    `stale`), and [C] / [C, D] summaries."""

    label: np.ndarray  # int32 [N], the class ids they were built from
    typical: np.ndarray  # [C] mean top-k match of a class's own lines
    top: np.ndarray  # top-k mean over the drama
    best: np.ndarray  # best match over the drama
    count: np.ndarray  # [C] lines held
    local_top: np.ndarray  # top-k mean within the episode
    local_count: np.ndarray  # uint16 (float32 for an episode of 65,535 lines or more)
    scene_top: np.ndarray  # within the scene
    scene_max: np.ndarray
    scene_count: np.ndarray
    class_centroid: np.ndarray  # [C, D] unit centroids
    kth: np.ndarray  # the TOP_K-th best match over the drama (topk.FEWER: fewer lines): what a relabelling must beat
    # bool [N, C]: top / best / kth entries not computed for `label` yet: every entry of a
    # first build, then those a relabelling may have changed. `settle` computes them when
    # read: the reasoner reads a line's candidates and its own label, some 7 of ~100 classes.
    stale: np.ndarray
    unit: np.ndarray  # [N, D] the drama's unit embeddings (shared): what `settle` computes from
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def settle(self, lines: np.ndarray, classes: np.ndarray) -> None:
        """Bring the top / best / kth entries (lines[j], classes[j]) up to `label`, as a full
        build computes them. Call before reading them (`AudioSim.features` does)."""
        with self._lock:
            pending = self.stale[lines, classes]
            if not pending.any():
                return
            n_classes = self.stale.shape[1]
            keys = np.unique(np.asarray(lines, np.int64)[pending] * n_classes + np.asarray(classes)[pending])
            # one BLAS thread: its many small products leave the cores to the compiled top-k
            # pass, which multi-threaded BLAS's waiting threads slow down (about 2x here)
            with threadpool_limits(1, user_api="blas"):
                _compute_entries(self.unit, self.label, keys // n_classes, keys % n_classes, self.top,
                                 self.best, self.kth)
            self.stale[keys // n_classes, keys % n_classes] = False

    def centroid_of(self, lines: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Cosine of each line's voice to its class's voice centroid."""
        return np.einsum("ij,ij->i", self.unit[lines], self.class_centroid[classes])

    def settle_all(self) -> None:
        """Every entry up to date (for a reader of whole tables)."""
        lines, classes = np.nonzero(self.stale)
        self.settle(lines, classes)


def _mask_self(sims: np.ndarray, columns: np.ndarray, lo: int, hi: int, value: float) -> None:
    """sims[rows lo:hi, columns = lines] -> `value` where a row's line is the column's line."""
    own = (columns >= lo) & (columns < hi)
    sims[columns[own] - lo, np.flatnonzero(own)] = value


def build_cohort_stats(unit: np.ndarray) -> CohortStats:
    """How a line's voice scores against a fixed cohort of the drama's lines, whoever speaks
    them: the mean and spread of all cohort similarities and of the best COHORT_TOP. A short,
    noisy line scores high or low against everyone alike; dividing it out (as score
    normalisation in speaker verification does) makes its matches comparable to other lines'.
    Label-free: built once per drama (`DramaTables.cohort`)."""
    n = len(unit)
    members = np.random.default_rng(0).choice(n, min(n, COHORT_SIZE), replace=False)
    cohort = unit[members]
    top_k = min(COHORT_TOP, len(cohort) - 1)  # a cohort member has one line less to compare with
    stats = CohortStats(*(np.zeros(n, np.float32) for _ in range(4)))
    for lo in range(0, n if top_k > 0 else 0, BLOCK_ROWS * 2):
        hi = min(n, lo + BLOCK_ROWS * 2)
        sims = unit[lo:hi] @ cohort.T
        _mask_self(sims, members, lo, hi, np.nan)  # a line is not its own cohort
        stats.mean[lo:hi], stats.spread[lo:hi] = np.nanmean(sims, 1), np.nanstd(sims, 1)
        best = np.partition(np.nan_to_num(sims, nan=-2.0), sims.shape[1] - top_k, axis=1)[:, -top_k:]
        stats.top_mean[lo:hi], stats.top_spread[lo:hi] = best.mean(1), best.std(1)
    return stats


def voice_model_of(tables: DramaTables, label: np.ndarray) -> np.ndarray:
    """The voice model of the labels `label` (`LabelTables.voice_model`): the drama's last fit
    when at most VOICE_REFIT_SHARE of the voiced lines have moved since the labels it was
    fitted to, else a new fit (`build_voice_model`). On zhen_huan_zhuan the label states after
    the first move 6.0 %, 0.8 %, 0.2 % and 0.04 % of the lines: 2 fits of about 5 s, not 5."""
    voiced = tables.drama.lines.has_voice
    if tables.last_voice_model is not None:
        fitted, probs = tables.last_voice_model
        if np.count_nonzero((fitted != label) & voiced) <= VOICE_REFIT_SHARE * np.count_nonzero(voiced):
            return probs
    tables.last_voice_model = None  # (its probabilities are freed once no label state reads them)
    probs = build_voice_model(tables, label)
    tables.last_voice_model = (label.copy(), probs)
    return probs


def build_voice_model(tables: DramaTables, label: np.ndarray) -> np.ndarray:
    """[N, C] class probabilities of each line's voice from a linear model of the drama
    fitted to the labels `label` (one per label state: `LabelTables.voice_model`). Unlike the nearest-lines matches
    it weighs the embedding dimensions that tell this drama's voices apart. Cross-fitted: the
    lines are split in VOICE_MODEL_FOLDS random folds (fixed seed) and a line's probabilities
    come from the model fitted to the other folds, so its own label never votes for itself.

    Each fit runs on one BLAS thread, the folds side by side on the machine's cores: on these
    shapes that is 3-5 times faster than one fit on multi-threaded BLAS, and since where L-BFGS
    stops (a tolerance or the step budget) depends on rounding, it also makes the result the
    same on any core count."""
    n, n_classes = len(tables.drama.lines), len(tables.classes)
    probs = np.zeros((n, n_classes), np.float32)
    fold = np.random.default_rng(0).integers(0, VOICE_MODEL_FOLDS, n)
    voiced = tables.drama.lines.has_voice  # a line without a voice embedding is neither fitted nor judged
    fits = []
    _ = tables.standard_scale  # computed here, once, before the fits' threads read it
    for k in range(VOICE_MODEL_FOLDS):
        test = fold == k
        known = np.unique(label[~test & voiced])
        if not test.any() or not len(known):
            continue
        if len(known) == 1:  # one voice only: nothing to tell apart
            probs[test, known[0]] = 1.0
        else:
            fits.append((test, known))

    def fit(job: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        test, _ = job
        train = ~test & voiced
        model = _fit_voice_model(tables.standard_unit(train), label[train])
        return model.predict_proba(tables.standard_unit(test))

    if fits:
        # warning filters are process-wide, so they are set here, around every thread's fit
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"), \
                ThreadPoolExecutor(min(len(fits), cores())) as pool:
            warnings.simplefilter("ignore", ConvergenceWarning)  # VOICE_MODEL_ITERS is a budget
            for (test, known), p in zip(fits, pool.map(fit, fits), strict=True):
                probs[np.ix_(test, known)] = p
    if not voiced.all():  # no voice, no say: the candidates' share of the labels (a lift of 0)
        counts = np.bincount(label, minlength=n_classes).astype(np.float32)
        probs[~voiced] = (counts + 1.0) / (counts.sum() + n_classes)
    return probs


def _fit_voice_model(z: np.ndarray, label: np.ndarray):  # -> LogisticRegression
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=VOICE_MODEL_C, max_iter=VOICE_MODEL_ITERS).fit(z, label)


def build_audio_tables(tables: DramaTables, label: np.ndarray) -> AudioTables:
    """Dense [N, C] tables from the labels `label` (one per label state: `LabelTables.audio`).

    What is rebuilt per pass (a refinement pass relabels lines, and the tables of the new
    labels are built from the last ones built for this drama, `DramaTables.last_audio`):
    - top / max (top-5 over the drama): computed per entry when first read
      (`AudioTables.settle`), never for the whole table: the reasoner reads a line's
      candidates and its own label's entry. A relabelling marks the (line, class) entries
      whose top 5 a moved line enters or leaves: a gained line that beats the entry's 5th
      best match, a lost one that was at or above it (`kth`); one product of every line
      against the moved lines finds them (7 % of them are read on zhen_huan_zhuan's first).
    - local / scene tables (within an episode): only episodes where some label changed, and
      there only the classes that gained or lost a line in that episode.
    - count, class_centroid, typical: every time (cheap, [C] or [C, D]).
    The similarity to a class's centroid and the best match among its seed lines are
    computed for the pairs read (`centroid_of`, `seed_best_of`), not kept as [N, C] tables.
    Each entry that is rebuilt is computed as a full build computes it (the same values, the
    top-k mean summed largest first); only the similarities of an update come from a product
    of another shape, which BLAS may round differently in the last float32 bit (at most 1e-6
    apart in the tests). Which entries are read, and so their products' shapes, can set that
    last bit: a reader of other pairs may see another rounding of the same value.
    The top-k means of a block come from one compiled pass over it (`tools/topk.py`).
    """
    unit = tables.unit_embedding
    n, n_classes = len(unit), len(tables.classes)
    previous = tables.last_audio
    reuse = tables.last_audio_released  # no state reads them: overwrite them instead of copies
    tables.last_audio, tables.last_audio_released = None, False
    moved = np.ones(n, bool) if previous is None else previous.label != label

    def start(name: str, dtype: type = np.float32) -> np.ndarray:
        if previous is None:
            return np.zeros((n, n_classes), dtype)
        return getattr(previous, name) if reuse else getattr(previous, name).copy()

    top, best, kth = start("top"), start("best"), start("kth")
    if previous is None:  # nothing computed yet: every entry is computed when first read
        stale = np.ones((n, n_classes), bool)
    else:
        stale = start("stale")
        _mark_global_top(unit, previous.label, label, kth, stale)
    bounds = np.searchsorted(np.sort(label), np.arange(n_classes + 1))
    counts = np.diff(bounds).astype(np.float32)

    # counts of lines within an episode: 16 bits where every episode is shorter than 65,535 lines
    longest = max((ep.line_stop - ep.line_start for ep in tables.drama.episodes), default=0)
    count_type = np.uint16 if longest < np.iinfo(np.uint16).max else np.float32
    local_top, local_count = start("local_top"), start("local_count", count_type)
    scene_top, scene_max, scene_count = start("scene_top"), start("scene_max"), start("scene_count", count_type)
    scene = tables.scene_id
    for ep in tables.drama.episodes:
        lo, hi = ep.line_start, ep.line_stop
        if hi <= lo or not moved[lo:hi].any():
            continue  # no label changed in the episode: its rows are as they were
        ep_label = label[lo:hi]
        redo = np.unique(ep_label) if previous is None else np.unique(np.concatenate(
            [previous.label[lo:hi][moved[lo:hi]], ep_label[moved[lo:hi]]]))
        for table in (local_top, local_count, scene_top, scene_max, scene_count):
            table[lo:hi, redo] = 0
        sims = unit[lo:hi] @ unit[lo:hi].T
        np.fill_diagonal(sims, -2.0)  # a line is no evidence for itself
        # the episode's columns sorted by class: one segment per class present
        order = np.argsort(ep_label, kind="stable")
        present, first = np.unique(ep_label[order], return_index=True)
        segments = np.append(first, len(order))
        sims = sims[:, order]
        local = segment_top_mean(sims, segments, LOCAL_TOP_K)
        same_scene = scene[lo:hi, None] == scene[None, lo + order]
        np.putmask(sims, ~same_scene, np.float32(-2.0))
        in_scene = segment_top_mean(sims, segments, SCENE_TOP_K)
        write = np.isin(present, redo)
        cols = present[write]
        local_top[lo:hi, cols] = local.mean[:, write]
        local_count[lo:hi, cols] = local.count[:, write]  # the line itself not counted (masked above)
        scene_top[lo:hi, cols] = in_scene.mean[:, write]
        scene_max[lo:hi, cols] = in_scene.best[:, write]
        scene_count[lo:hi, cols] = in_scene.count[:, write]

    centroid = np.zeros((n_classes, unit.shape[1]), np.float32)
    np.add.at(centroid, label, unit)
    centroid = unit_rows(centroid)
    typical = np.zeros(n_classes, np.float32)
    built = AudioTables(label.copy(), typical, top, best, counts, local_top, local_count, scene_top, scene_max,
                        scene_count, centroid, kth, stale, unit)
    # how well a class's own lines match it: a voice typical of the class scores near this
    everyone = np.arange(n)
    built.settle(everyone, label)
    np.add.at(typical, label, top[everyone, label])
    typical /= np.maximum(np.bincount(label, minlength=n_classes), 1)
    # the next label state of this drama starts from these (the arrays are shared, not copied:
    # a later build copies what it changes)
    tables.last_audio = built
    return built


def _mark_global_top(unit: np.ndarray, old: np.ndarray, label: np.ndarray, kth: np.ndarray,
                     stale: np.ndarray) -> None:
    """Mark the top / best / kth entries that `old` labels brought to `label` may change: an
    entry (line, class) changes only if a line the class gained matches the line better than
    its TOP_K-th best match, or a line the class lost matched it at least as well (it may have
    been among the best). One product against the moved lines finds them; they are computed
    when read (`AudioTables.settle`). An entry already stale stays so: its kth is out of date."""
    n = len(unit)
    moved = np.flatnonzero(old != label)
    for m in range(0, len(moved), BLOCK_ROWS * 4):  # [BLOCK_ROWS, 4 * BLOCK_ROWS] values at a time
        these = moved[m:m + BLOCK_ROWS * 4]
        gained, lost = label[these], old[these]
        moved_unit = np.ascontiguousarray(unit[these])
        for lo in range(0, n, BLOCK_ROWS):
            hi = min(n, lo + BLOCK_ROWS)
            sims = unit[lo:hi] @ moved_unit.T
            _mask_self(sims, these, lo, hi, -2.0)  # a line is no evidence for itself
            mark_stale(sims, lo, kth, gained, lost, stale)


def _compute_entries(unit: np.ndarray, label: np.ndarray, lines: np.ndarray, classes: np.ndarray, top: np.ndarray,
                     best: np.ndarray, kth: np.ndarray) -> None:
    """top / best / kth of the entries (lines[j], classes[j]) (distinct, sorted by line within
    a class) from the class's lines under `label`, class by class. On several cores the
    classes are shared out among threads (each class's products and top-k pass whole in one
    thread, on one BLAS thread: the same values as one thread computing them all)."""
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(top.shape[1] + 1))
    by_class = np.argsort(classes, kind="stable")
    jobs = []
    for c, first, count in zip(*np.unique(classes[by_class], return_index=True, return_counts=True), strict=True):
        rows = lines[by_class[first:first + count]]
        members = order[bounds[c]:bounds[c + 1]]  # ascending: a stable sort keeps line order
        if not len(members):  # the class holds no line
            top[rows, c], best[rows, c], kth[rows, c] = 0.0, 0.0, FEWER
        else:
            jobs.append((int(c), rows, members))
    workers = min(cores(), len(jobs))
    if workers < 2 or sum(len(rows) * len(members) for _, rows, members in jobs) < ENTRIES_APART:
        for c, rows, members in jobs:
            _class_entries(unit, c, rows, members, top, best, kth, parallel=True)
        return
    shares: list[list[tuple[int, np.ndarray, np.ndarray]]] = [[] for _ in range(workers)]
    load = [0] * workers
    for job in sorted(jobs, key=lambda j: -len(j[1]) * len(j[2])):  # largest first, to the least loaded
        w = load.index(min(load))
        shares[w].append(job)
        load[w] += len(job[1]) * len(job[2])

    def run(share: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        for c, rows, members in share:
            _class_entries(unit, c, rows, members, top, best, kth, parallel=False)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, shares))


def _class_entries(unit: np.ndarray, c: int, rows: np.ndarray, members: np.ndarray, top: np.ndarray,
                   best: np.ndarray, kth: np.ndarray, parallel: bool) -> None:
    """top / best / kth of the entries (rows, c) from the class's lines `members` (ascending)."""
    member_unit = np.ascontiguousarray(unit[members])
    step = max(1, (BLOCK_ROWS * 4096) // len(members))  # rows per product: at most ~4M values
    for a in range(0, len(rows), step):
        part = rows[a:a + step]
        sims = unit[part] @ member_unit.T
        hit, mine = find_sorted(members, part)
        sims[np.flatnonzero(mine), hit[mine]] = -2.0  # a line is no evidence for itself
        got = segment_top_mean(sims, np.array([0, len(members)]), TOP_K, parallel=parallel)
        top[part, c], best[part, c], kth[part, c] = got.mean[:, 0], got.best[:, 0], got.kth[:, 0]


def seed_best_of(unit: np.ndarray, seeds: np.ndarray, seed_class: np.ndarray, lines: np.ndarray,
                 classes: np.ndarray) -> np.ndarray:
    """Each (lines[j], classes[j]) pair's best match among the class's seed lines (0 at
    worst; a line is no evidence for itself); seeds and their labels never change between
    passes. The pairs' lines against the seeds, BLOCK_ROWS * 4 lines at a time."""
    out = np.zeros(len(lines), np.float32)
    if not len(seeds) or not len(lines):
        return out
    seed_unit = np.ascontiguousarray(unit[seeds].T)
    seeded = np.isin(classes, seed_class)
    distinct, row = np.unique(lines, return_inverse=True)
    for lo in range(0, len(distinct), BLOCK_ROWS * 4):
        hi = min(len(distinct), lo + BLOCK_ROWS * 4)
        sims = unit[distinct[lo:hi]] @ seed_unit
        is_seed, own = find_sorted(seeds, distinct[lo:hi])
        sims[np.flatnonzero(own), is_seed[own]] = -2.0
        here = np.flatnonzero(seeded & (row >= lo) & (row < hi))
        for c in np.unique(classes[here]).tolist():
            pairs = here[classes[here] == c]
            out[pairs] = np.maximum(sims[row[pairs] - lo][:, seed_class == c].max(1), 0.0)
    return out


class AudioSim(Tool):
    name = "audio_sim"
    description = (
        "Voice similarity of the line to each candidate's currently labelled lines: mean of the top-5 "
        "cosine similarities over the drama and within the episode, the top-2 mean and best match among its "
        "lines in the same scene (no 6 s silence between) and how many it holds there, the best match, how "
        "many lines the candidate holds, similarity to its seed lines and to its voice centroid; the main "
        "similarities also normalised by how the line scores against a fixed cohort of the drama's lines; and the "
        "log-probability of the candidate under a linear voice model of the drama fitted to the current labels, "
        "also less the log of the candidate's share of those labels (the voice's own say, without the prior)."
    )
    cost = 1.0

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        t = ctx.labels.audio
        t.settle(pair_line, pair_class)
        own = ctx.label_class[pair_line] == pair_class
        count = t.count[pair_class] - own  # the line's own label is not evidence for it
        cohort = ctx.tables.cohort
        centre, spread = cohort.top_mean[pair_line], np.maximum(cohort.top_spread[pair_line], 1e-3)
        values = {
            "audio_top": t.top[pair_line, pair_class],
            "audio_max": t.best[pair_line, pair_class],
            "audio_top_vs_typical": t.top[pair_line, pair_class] - t.typical[pair_class],
            "audio_log_count": np.log1p(np.maximum(count, 0)),
            "audio_local_top": t.local_top[pair_line, pair_class],
            "audio_local_count": t.local_count[pair_line, pair_class].astype(np.float32),
            "audio_scene_top": t.scene_top[pair_line, pair_class],
            "audio_scene_max": t.scene_max[pair_line, pair_class],
            "audio_scene_count": t.scene_count[pair_line, pair_class].astype(np.float32),
            "audio_seed_max": ctx.tables.seed_best_of(pair_line, pair_class),
            "audio_centroid": t.centroid_of(pair_line, pair_class),
            "voice_cohort_mean": cohort.mean[pair_line],
            "voice_cohort_spread": cohort.spread[pair_line],
            "voice_cohort_top_mean": centre,
            "audio_model_logp": np.log(ctx.labels.voice_model[pair_line, pair_class] + 1e-6),
        }
        prior = (t.count + 1.0) / (t.count.sum() + len(t.count))
        values["audio_model_lift"] = values["audio_model_logp"] - np.log(prior[pair_class]).astype(np.float32)
        for name in ("audio_top", "audio_max", "audio_scene_top", "audio_centroid", "audio_local_top"):
            values[name + "_norm"] = (values[name] - centre) / spread
        return values

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        ranked = sorted(values.items(), key=lambda kv: -kv[1]["audio_top"])
        return "voice similarity (top-5 mean / best / lines held): " + "; ".join(
            f"{name} {v['audio_top']:.2f}/{v['audio_max']:.2f}/{int(np.expm1(v['audio_log_count']))}"
            for name, v in ranked
        )
