"""The fast paths of `dramasr attribute` (issue 23) give exactly what the slow ones gave:
the compiled tree walk = the numpy traversal on the shipped model; audio tables rebuilt
only where labels changed = a full build; cluster candidates for all clusters at once =
one line at a time."""

from __future__ import annotations

import numpy as np
import pytest

from dramasr.attribute import propagate_labels
from dramasr.reason.features import candidate_pairs, feature_matrix
from dramasr.reason.model import TreeEnsemble, load_default_model, select
from dramasr.synth import synth_drama
from dramasr.tools import TOOLS, Context
from dramasr.tools.audio_sim import LOCAL_TOP_K, SCENE_TOP_K, TOP_K, VOICE_REFIT_SHARE, _mask_self, build_voice_model
from dramasr.tools.topk import FEWER, ROUNDING, mark_stale, segment_top_mean, versus_rival


@pytest.fixture(scope="module")
def synthetic():
    drama = synth_drama(seed=7, episodes=3, lines_per_episode=150, name="speed")
    return drama, propagate_labels(drama, "gt-1pct")


def _hard_inputs(trees: TreeEnsemble, n_features: int, rows: int = 3000) -> np.ndarray:
    """Random rows, some values NaN, some exactly at a split's threshold, some the float32
    next to it (where a float32 threshold would send the row the other way)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, n_features))
    X[rng.random(X.shape) < 0.05] = np.nan
    split = np.flatnonzero(~trees.is_leaf)
    for r in range(rows // 2):
        node = split[rng.integers(len(split))]
        value = trees.threshold[node]
        X[r, trees.feature[node]] = value if r % 2 else np.nextafter(np.float32(value), np.float32(np.inf))
    return X


def test_compiled_walk_scores_the_shipped_model_bit_for_bit():
    model = load_default_model()
    for name, stage in model._named_stages():
        trees = stage.trees
        X = _hard_inputs(trees, len(stage.feature_names))
        np.testing.assert_array_equal(trees.decision_function(X, chunk=1000), trees.reference_decision_function(X),
                                      err_msg=name)
        # float32 rows (what attribution passes) walk as their float64 values do
        X32 = X.astype(np.float32)
        np.testing.assert_array_equal(trees.leaves(X32), trees.leaves(X32.astype(np.float64)), err_msg=name)
        assert trees.leaves(X[:50]).max() < len(trees.feature)
        assert trees.is_leaf[trees.leaves(X[:50])].all()


def test_compiled_walk_scores_real_feature_rows_bit_for_bit(synthetic):
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    rows = candidate_pairs(ctx, np.flatnonzero(~ctx.state.is_seed))
    model = load_default_model()
    for stage in (model.cheap, model.full):
        X, names = feature_matrix(ctx, rows, stage.tools)
        X = X[:, select(names, stage.feature_names)]
        np.testing.assert_array_equal(stage.trees.predict_proba(X),
                                      1.0 / (1.0 + np.exp(-stage.trees.reference_decision_function(X))))


def test_compiled_walk_scores_as_the_fitted_sklearn_model():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(2)
    X = rng.normal(size=(800, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) > 0
    estimator = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=9, random_state=0).fit(X, y)
    trees = TreeEnsemble.from_sklearn(estimator)
    # the same leaves, so the same sum up to its order (scikit-learn adds tree after tree)
    np.testing.assert_allclose(trees.decision_function(X), estimator.decision_function(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(trees.decision_function(X), trees.reference_decision_function(X))


def _masked_top_mean(sub: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The numpy answer (as attribution computed it before the compiled kernel): mean of the
    k largest entries per row and the row max, ignoring entries < -1.5."""
    width = sub.shape[1]
    part = np.partition(sub, width - k, axis=1)[:, width - k:] if width > k else sub
    valid = part > -1.5
    count = valid.sum(1)
    mean = np.where(count > 0, np.where(valid, part, 0).sum(1) / np.maximum(count, 1), 0.0)
    best = np.where(count > 0, part.max(1), 0.0)
    return mean, best


def test_segment_top_mean_picks_what_partition_picks():
    rng = np.random.default_rng(5)
    sims = rng.uniform(-1, 1, (300, 400)).astype(np.float32)
    sims[rng.random(sims.shape) < 0.3] = -2.0  # masked entries
    sims[:, 50:60] = 0.25  # ties
    sims[7, :] = -2.0  # a row with nothing valid
    bounds = np.array([0, 1, 3, 3, 50, 58, 200, 203, 400])  # widths 1, 2, 0, 47, 8, 142, 3, 197
    for k in (1, 2, 3, 5):
        got = segment_top_mean(sims, bounds, k)
        mean, best, count = got.mean, got.best, got.count
        for s in range(len(bounds) - 1):
            sub = sims[:, bounds[s]:bounds[s + 1]]
            if sub.shape[1] == 0:
                assert (mean[:, s] == 0).all() and (best[:, s] == 0).all() and (count[:, s] == 0).all()
                continue
            want_mean, want_best = _masked_top_mean(sub, k)
            np.testing.assert_array_equal(best[:, s], want_best.astype(np.float32))
            np.testing.assert_array_equal(count[:, s], (sub > -1.5).sum(1))
            # the same values summed in another order: the float32 roundings of a sum of k values apart
            np.testing.assert_allclose(mean[:, s], want_mean.astype(np.float32), rtol=0, atol=5e-7)
            assert np.mean(mean[:, s] == want_mean.astype(np.float32)) > 0.5  # mostly the same bits


def _full_audio_tables(ctx: Context) -> dict[str, np.ndarray]:
    """The audio tables as built before issue 23 (every column, every pass), for comparison."""
    unit = np.asarray(ctx.drama.lines.embedding, np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-8)
    n, n_classes = len(unit), len(ctx.classes)
    label = ctx.label_class
    order = np.argsort(label, kind="stable")
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    bounds = np.searchsorted(label[order], np.arange(n_classes + 1))
    sorted_unit = np.ascontiguousarray(unit[order])
    out = {k: np.zeros((n, n_classes), np.float32) for k in (
        "top", "best", "local_top", "local_count", "scene_top", "scene_max", "scene_count", "seed_max")}
    for lo in range(0, n, 1024):
        hi = min(n, lo + 1024)
        sims = unit[lo:hi] @ sorted_unit.T
        sims[np.arange(hi - lo), position[lo:hi]] = -2.0
        for c in range(n_classes):
            if bounds[c + 1] > bounds[c]:
                out["top"][lo:hi, c], out["best"][lo:hi, c] = _masked_top_mean(sims[:, bounds[c]:bounds[c + 1]], TOP_K)
    scene = ctx.tables.scene_id
    for ep in ctx.drama.episodes:
        lo, hi = ep.line_start, ep.line_stop
        sims = unit[lo:hi] @ unit[lo:hi].T
        np.fill_diagonal(sims, -2.0)
        same_scene = scene[lo:hi, None] == scene[None, lo:hi]
        scene_sims = np.where(same_scene, sims, -2.0)
        for c in np.unique(label[lo:hi]):
            cols = np.flatnonzero(label[lo:hi] == c)
            out["local_top"][lo:hi, c] = _masked_top_mean(sims[:, cols], LOCAL_TOP_K)[0]
            out["local_count"][lo:hi, c] = len(cols)
            out["local_count"][lo + cols, c] -= 1
            out["scene_top"][lo:hi, c], out["scene_max"][lo:hi, c] = _masked_top_mean(scene_sims[:, cols], SCENE_TOP_K)
            out["scene_count"][lo:hi, c] = same_scene[:, cols].sum(1)
            out["scene_count"][lo + cols, c] -= 1
    seeds = np.flatnonzero(ctx.state.is_seed)
    sims = unit @ unit[seeds].T
    _mask_self(sims, seeds, 0, n, -2.0)
    for c in np.unique(label[seeds]):
        out["seed_max"][:, c] = np.maximum(sims[:, label[seeds] == c].max(1), 0.0)
    return out


def _same_table(updated: np.ndarray, full: np.ndarray, what: str) -> None:
    """An updated table against a full build: the entries an update recomputes come from a
    product of another shape, which BLAS may round differently in the last float32 bit."""
    np.testing.assert_allclose(updated, full, rtol=0, atol=1e-6, err_msg=what)
    if updated.ndim == 2:  # ([C] summaries: a few classes, each a mean of many entries)
        # most entries bit for bit; how many depends on the BLAS kernel the processor gets
        # (over 0.9 on one development machine, 0.84-0.92 on an AMD EPYC with OpenBLAS's
        # Haswell kernel, where entries differ by at most 3.6e-7)
        assert np.mean(updated == full) > 0.5, what


def test_audio_tables_rebuilt_in_part_equal_a_full_build(synthetic):
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    rng = np.random.default_rng(3)
    names = ctx.classes
    released_top = None
    for step in range(4):
        tables = ctx.labels.audio  # step 0 a full build, then only what the relabelling touched
        tables.settle_all()  # the entries it marked stale, computed
        if released_top is not None:  # built in the released state's arrays, not in copies
            assert np.shares_memory(tables.top, released_top)
        reference = _full_audio_tables(ctx)
        everyone = np.repeat(np.arange(len(ctx.label_class)), len(ctx.classes))
        every_class = np.tile(np.arange(len(ctx.classes)), len(ctx.label_class))
        seed_max = ctx.tables.seed_best_of(everyone, every_class).reshape(reference["seed_max"].shape)
        np.testing.assert_allclose(seed_max, reference.pop("seed_max"), rtol=0, atol=1e-6)  # products of other shapes
        for key, expected in reference.items():
            if key in ("top", "best"):  # computed per class: products of other shapes (see _same_table)
                np.testing.assert_allclose(getattr(tables, key), expected, rtol=0, atol=1e-6,
                                           err_msg=f"{key} after {step} relabellings")
            elif key in ("top", "local_top", "scene_top"):  # the same values summed in another order
                np.testing.assert_allclose(getattr(tables, key), expected, rtol=0, atol=3e-7,
                                           err_msg=f"{key} after {step} relabellings")
            else:
                np.testing.assert_array_equal(getattr(tables, key), expected,
                                              err_msg=f"{key} after {step} relabellings")
        fresh = Context.build(drama, ctx.state, ctx.classes[:-1]).labels.audio  # new tables: a full build
        fresh.settle_all()
        for key, value in vars(fresh).items():
            if isinstance(value, np.ndarray) and key != "unit":
                _same_table(getattr(tables, key), value, key)
        label = list(ctx.state.label)
        # a few lines move (the last step: none, as when a pass changes nothing)
        for i in rng.choice(len(label), 0 if step == 2 else 6 * (step + 1), replace=False):
            label[i] = names[rng.integers(len(names))]
        # every other step as attribution relabels: the old state is released and the new
        # one builds its tables in the old arrays (the reference was computed before)
        released_top = tables.top if step % 2 == 0 else None
        ctx = ctx.relabel(label, replace=step % 2 == 0)


def test_stale_voice_entries_are_computed_only_when_read(synthetic):
    """A relabelling marks the entries it may change; reading some pairs computes those (as
    a full build does) and leaves the others marked."""
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    first = ctx.labels.audio
    assert first.stale.all(axis=1).sum() == 0 and first.stale.any()  # only the entries read are computed
    first.settle_all()  # as if every entry had been read
    label = list(ctx.state.label)
    named = np.flatnonzero(ctx.label_class != ctx.other)
    moved = np.random.default_rng(5).choice(named[~ctx.state.is_seed[named]], 30, replace=False)
    for i in moved.tolist():
        label[i] = ctx.classes[(ctx.label_class[i] + 1) % ctx.other]
    ctx = ctx.relabel(label, replace=True)
    tables = ctx.labels.audio
    everyone = np.arange(len(label))
    assert not tables.stale[everyone, ctx.label_class].any()  # `typical` read every line's own class
    rows = candidate_pairs(ctx, np.flatnonzero(~ctx.state.is_seed)[:200])
    before = int(tables.stale.sum())
    read = tables.stale[rows.line, rows.cls].copy()
    assert read.any() and before > read.sum()  # some read entries are stale, and some others
    values = TOOLS["audio_sim"].features(ctx, rows.line, rows.cls)
    assert not tables.stale[rows.line, rows.cls].any()
    assert int(tables.stale.sum()) == before - len(np.unique(rows.line[read] * len(ctx.classes) + rows.cls[read]))
    fresh = Context.build(drama, ctx.state, ctx.classes[:-1])  # new tables: a full build
    want = TOOLS["audio_sim"].features(fresh, rows.line, rows.cls)
    for key in ("audio_top", "audio_max", "audio_top_vs_typical"):
        np.testing.assert_allclose(values[key], want[key], rtol=0, atol=1e-6, err_msg=key)


def test_audio_tables_updated_when_a_character_loses_every_line_then_gains_again(synthetic):
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    first = ctx.labels.audio
    seeded = np.unique(ctx.label_class[ctx.state.is_seed])  # a seed keeps its label
    held = np.bincount(ctx.label_class, minlength=len(ctx.classes))
    held[seeded] = 0
    gone = int(held.argmax())  # the unseeded character with the most lines
    assert held[gone] > 10
    lines = np.flatnonzero(ctx.label_class == gone)
    other = ctx.classes[(gone + 1) % len(ctx.classes)]
    for step, back in enumerate((0, len(lines) // 2)):  # every line away; then half of them back
        label = list(ctx.state.label)
        for k, i in enumerate(lines.tolist()):
            label[i] = ctx.classes[gone] if k < back else other
        ctx = ctx.relabel(label, replace=True)
        tables = ctx.labels.audio
        assert np.shares_memory(tables.top, first.top)  # updated in place, not rebuilt
        tables.settle_all()
        fresh = Context.build(drama, ctx.state, ctx.classes[:-1]).labels.audio  # (build adds OTHER again)
        fresh.settle_all()
        for key in ("top", "best", "kth", "local_top", "local_count", "scene_top", "scene_max", "scene_count"):
            _same_table(getattr(tables, key), getattr(fresh, key), f"{key}, step {step}")
        if back == 0:
            assert (tables.top[:, gone] == 0).all() and (tables.kth[:, gone] == FEWER).all()
        else:
            assert (tables.top[:, gone] > 0).any()


def test_cluster_candidates_at_once_equal_line_by_line(synthetic):
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    cluster, n_clusters = ctx.labels.new_character_clusters
    assert n_clusters > 0
    table = ctx.labels.cluster_candidates(2)
    sim = ctx.labels.clusters.sim
    for g in range(n_clusters):
        assert table[g].tolist() == [int(c) for c in np.argsort(-sim[g, :ctx.other], kind="stable")[:2]]
    rows = candidate_pairs(ctx, np.flatnonzero(cluster >= 0))
    assert len(rows) > 0


def test_stage_scores_by_blocks_of_lines_equal_one_matrix(synthetic):
    # attribution scores a block of lines at a time to bound memory: the scores, and a
    # subset of lines (the full stage's) read through the rows' kept propagation columns,
    # must be those of one matrix built for all rows
    from dramasr.reason.model import normalise
    from dramasr.reason.policy import stage_scores, subset_rows

    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    model = load_default_model()
    rows = candidate_pairs(ctx, np.flatnonzero(~ctx.state.is_seed))
    X, names = feature_matrix(ctx, candidate_pairs(ctx, rows.lines), model.full.tools)  # fresh rows, one matrix
    whole = normalise(model.full.trees.predict_proba(X[:, select(names, model.full.feature_names)]), rows.starts)
    for block in (7, 100, 10**6):
        np.testing.assert_array_equal(stage_scores(ctx, rows, model.full, block_lines=block), whole)
    keep = np.arange(len(rows.lines)) % 3 == 0
    sub, position = subset_rows(rows, keep)  # rows has its propagation columns now: sub reads them
    fresh = candidate_pairs(ctx, rows.lines[keep])
    np.testing.assert_array_equal(stage_scores(ctx, sub, model.full, block_lines=50),
                                  stage_scores(ctx, fresh, model.full))
    assert np.array_equal(sub.line, fresh.line) and np.array_equal(rows.line[position], fresh.line)


def test_propagation_side_by_side_equals_one_thread(synthetic, monkeypatch):
    """Propagation scores its characters on one thread per core; on one core it runs them one
    after the other. Both give the same labels, candidates and scores, bit for bit."""
    import dramasr.propagate.engine as engine
    from dramasr.propagate import propagate_drama

    drama, _ = synthetic
    monkeypatch.setattr(engine, "cores", lambda: 4)
    parallel = propagate_drama(drama, "gt-1pct")
    monkeypatch.setattr(engine, "cores", lambda: 1)
    serial = propagate_drama(drama, "gt-1pct")
    assert parallel.characters == serial.characters
    for name in ("code", "stage", "threshold", "label_score", "cand_offsets", "cand_code", "cand_score"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name), err_msg=name)


def test_mark_stale_marks_what_the_comparisons_mark():
    """The compiled marking of (line, class) entries a relabelling may change: a moved line
    beats the k-th value of the class it joined, or is at or above that of the class it left
    (ties included, a class with fewer than k lines, a masked own entry)."""
    rng = np.random.default_rng(3)
    n, n_classes, m, lo = 40, 6, 30, 12
    kth = rng.choice(np.array([-0.2, 0.1, 0.3, FEWER], np.float32), (n, n_classes))
    sims = rng.choice(np.array([-0.5, -0.2, 0.1, 0.3, 0.6, -2.0], np.float32), (20, m))
    gained, lost = rng.integers(0, n_classes, m), rng.integers(0, n_classes, m)
    stale = np.zeros((n, n_classes), bool)
    mark_stale(sims, lo, kth, gained, lost, stale)
    want = np.zeros_like(stale)
    rows, cols = np.nonzero(sims + ROUNDING > kth[lo:lo + 20][:, gained])
    want[lo + rows, gained[cols]] = True
    rows, cols = np.nonzero(sims + ROUNDING >= kth[lo:lo + 20][:, lost])
    want[lo + rows, lost[cols]] = True
    assert want.any() and not want.all()
    np.testing.assert_array_equal(stale, want)


def _versus_rival_by_sorting(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The numpy way (one lexsort): what `versus_rival` replaced."""
    counts = np.diff(starts)
    line_of_row = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((-values, line_of_row))
    first = order[starts[:-1]]
    best = values[first]
    second = np.where(counts > 1, values[order[np.minimum(starts[:-1] + 1, len(values) - 1)]], best)
    rival = np.repeat(best, counts)
    is_first = np.zeros(len(values), bool)
    is_first[first] = True
    rival[is_first] = second
    return np.where(np.repeat(counts > 1, counts), values - rival, 0.0).astype(np.float32)


def test_versus_rival_equals_the_sorting_way():
    """Each row less the best of the other rows of its line, bit for bit: ties (the first of
    them is the best), NaN (below every number), -0.0, lines of one row and all-NaN lines."""
    rng = np.random.default_rng(11)
    counts = rng.integers(1, 9, 4000)
    starts = np.concatenate([[0], np.cumsum(counts)])
    values = rng.choice(np.array([-1.5, -0.0, 0.0, 0.25, 0.5, 0.7, np.nan], np.float32), starts[-1])
    spread = rng.random(len(values)) < 0.3  # and some values without ties
    values[spread] = rng.normal(size=int(spread.sum())).astype(np.float32)
    values[starts[5]:starts[6]] = np.nan
    got = versus_rival(values, starts)
    want = _versus_rival_by_sorting(values, starts)
    assert np.isnan(want).any() and (want != 0).any()
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()


def test_voice_model_refitted_only_when_enough_lines_moved(synthetic):
    drama, labels = synthetic
    ctx = Context.build(drama, labels)
    first = ctx.labels.voice_model
    movable = np.flatnonzero(~ctx.state.is_seed & drama.lines.has_voice)
    limit = int(VOICE_REFIT_SHARE * np.count_nonzero(drama.lines.has_voice))
    rng = np.random.default_rng(2)

    def moved(ctx: Context, k: int) -> Context:
        label = list(ctx.state.label)
        for i in rng.choice(movable, k, replace=False).tolist():
            label[i] = ctx.classes[(ctx.label_class[i] + 1) % ctx.other]
        return ctx.relabel(label)

    few = moved(ctx, limit)
    assert few.labels.voice_model is first  # read again, not refitted
    many = moved(few, limit + 1)  # more than the share since the fit (a line may move twice)
    refit = many.labels.voice_model
    assert refit is not first
    np.testing.assert_array_equal(refit, build_voice_model(many.tables, many.label_class))


def test_compiled_top_two_picks_as_a_stable_sort_does():
    """Best row = the first of a line's highest scores (what a stable sort by -score puts
    first, ties included), runner-up = the next score in that order."""
    from dramasr.reason.model import top_two

    rng = np.random.default_rng(5)
    for trial in range(200):
        counts = rng.integers(1, 7, rng.integers(1, 40))
        starts = np.concatenate([[0], np.cumsum(counts)])
        score = (rng.integers(0, 4, starts[-1]) / 4 if trial % 2 else rng.random(starts[-1])).astype(np.float32)
        line_of_row = np.repeat(np.arange(len(counts)), counts)
        order = np.lexsort((-score, line_of_row))
        best_row, best, second = top_two(score, starts)
        np.testing.assert_array_equal(best_row, order[starts[:-1]])
        np.testing.assert_array_equal(best, score[order[starts[:-1]]])
        expect = np.where(counts > 1, score[order[np.minimum(starts[:-1] + 1, len(score) - 1)]], 0.0)
        np.testing.assert_array_equal(second, expect)
