"""Fitting the attribution model on training dramas, and cross-validating it by episode blocks.

Training rows are the (line, candidate) pairs of every non-seed, non-deleted line, with
context features read from propagation's labels (what the model sees at inference on its
first pass); the target is "this candidate is the true speaker" (OTHER for extras).
The same rows are also taken from propagation over runs of the drama's episodes taken as
dramas of their own (`TrainingSettings.line_run_episodes`, seeded by `run_seeds`): the regime of a short
drama, with fewer labelled lines per character and weaker propagation.
The refinement stages (passes after the first) are trained on the same pairs with context
read from out-of-fold first-pass labels (what they see at inference): first-pass labels
are better than propagation's, and the label-fitted evidence (the voice model above all)
is worth more on them.
`train_model` also fits on a copy of each training drama whose voices are degraded with
noise (`voice_degraded`, `TrainingSettings.voice_noise`), so the model learns how far to
trust a weaker voice than the training dramas' own.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from dramasr.attribute import propagate_labels
from dramasr.data.model import Drama
from dramasr.errors import DramaError
from dramasr.progress import Progress
from dramasr.reason.features import PairRows, candidate_pairs, feature_table
from dramasr.reason.groups import FEATURES as GROUP_FEATURES
from dramasr.reason.groups import TOOLS as GROUP_TOOLS
from dramasr.reason.groups import GroupRows, group_rows, group_targets, without_faces
from dramasr.reason.model import AttributionModel, Stage, TreeEnsemble, normalise, top_two
from dramasr.tools import Context, LabelState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSettings:
    """Every choice training makes; passed to the functions that read it, never read from globals.

    The values were chosen by cross-validation on the training drama (benchmarks/cv_attribute.py,
    benchmarks/small_drama_check.py); the model file records them (`AttributionModel.info`).
    """

    # the tools the first (cheap) stage reads, and those every later stage reads
    cheap_tools: tuple[str, ...] = ("audio_sim", "dialogue_context", "voice_cluster")
    full_tools: tuple[str, ...] = ("audio_sim", "dialogue_context", "voice_cluster", "faces_on_screen",
                                   "name_mentions", "char_relation", "scene_caption")
    # the line stages' boosted trees
    tree_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({
        "max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 40,
        "l2_regularization": 1.0, "early_stopping": False, "random_state": 0,
    }))
    margin_threshold: float = 0.5  # a line whose cheap-stage margin is below this reads every tool
    # the group stage (dramasr.reason.groups): its trees, its decision threshold, and the runs
    # of episodes taken as small dramas of their own for its training groups
    group_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({
        "max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20, "random_state": 0,
    }))
    group_threshold: float = 0.5
    group_block_episodes: tuple[int, ...] = (12, 6)
    # how a run of episodes is seeded for its characters without seeds (`run_seeds`): the
    # protocol's share of each character's lines, and the shortest line it prefers
    seed_rate: float = 0.01
    seed_min_s: float = 1.5
    # runs of episodes whose propagation also gives the line stages training rows (the regime
    # of a small drama: fewer seeds, weaker propagation); () for the whole drama only
    line_run_episodes: tuple[int, ...] = (12,)
    passes: int = 3
    # after the group stage, one more pass (the last pass's stages) re-reads the lines the
    # group stage left alone in the context of its decisions
    final_pass: bool = True
    refine_folds: int = 4  # episode blocks for the out-of-fold first-pass labels the refinement stages read
    # `train_model` also trains on a copy of each training drama whose voice embeddings are
    # degraded by this much noise (`voice_degraded`), one copy per level; () for none. Both
    # training dramas' voices are cleaner than the test dramas' (benchmarks/voice_separability.py),
    # and a model that only saw clean voices left named characters unnamed when the voice weakened
    voice_noise: tuple[float, ...] = (0.9,)


DEFAULT_SETTINGS = TrainingSettings()


@dataclass
class TrainingRows:
    drama: Drama
    ctx: Context
    rows: PairRows
    X: np.ndarray
    feature_names: list[str]
    owner: list[str]  # tool of each column
    y: np.ndarray  # bool [P]
    row_episode: np.ndarray  # int32 [P]


def training_rows(drama: Drama, state: LabelState, tools: Sequence[str] = DEFAULT_SETTINGS.full_tools) -> TrainingRows:
    return context_rows(Context.build(drama, state), tools)


def context_rows(ctx: Context, tools: Sequence[str] = DEFAULT_SETTINGS.full_tools) -> TrainingRows:
    """The (line, candidate) pairs of every non-seed, non-deleted line of a context's drama,
    with the tools' features and the truth (the context's tables are shared, not rebuilt)."""
    drama = ctx.drama
    lines = np.flatnonzero(~ctx.state.is_seed & ~drama.lines.deleted)
    rows = candidate_pairs(ctx, lines)
    X, names, owner = feature_table(ctx, rows, tools)
    truth_class = ctx.classes_of(drama.lines.speaker)
    y = truth_class[rows.line] == rows.cls
    return TrainingRows(drama, ctx, rows, X, names, owner, y, drama.lines.episode[rows.line])


def fit_trees(X: np.ndarray, y: np.ndarray, params: Mapping[str, Any]) -> TreeEnsemble:
    from sklearn.ensemble import HistGradientBoostingClassifier

    estimator = HistGradientBoostingClassifier(**params)
    estimator.fit(X, y)
    return TreeEnsemble.from_sklearn(estimator)


def _columns(owner: list[str], tools: Sequence[str]) -> list[int]:
    """Columns from the base features or the given tools."""
    keep = {"base", *tools}
    return [k for k, o in enumerate(owner) if o in keep]


def stage_from(data: TrainingRows, tools: Sequence[str], params: Mapping[str, Any],
               mask: np.ndarray | None = None) -> Stage:
    cols = _columns(data.owner, tools)
    X = data.X[:, cols] if mask is None else data.X[mask][:, cols]
    y = data.y if mask is None else data.y[mask]
    return Stage(list(tools), [data.feature_names[k] for k in cols], fit_trees(X, y, params))


@dataclass
class TrainingSet:
    """What every stage is fitted on, whichever tools it reads: the training rows of each
    drama and of its runs of episodes (`parts`, concatenated in `data`), and the group stage."""
    dramas: list[str]
    parts: list[TrainingRows]
    data: TrainingRows
    groups: Stage | None
    line_runs: tuple[int, ...]


def training_set(dramas: Sequence[Drama], states: Sequence[LabelState],
                 settings: TrainingSettings = DEFAULT_SETTINGS, hook: Progress | None = None) -> TrainingSet:
    """Training rows from the training dramas (their propagation labels as context) and from
    propagation over runs of `settings.line_run_episodes` of their episodes taken as dramas of
    their own (`small_drama_contexts`); the group stage fitted on `group_training_rows`."""
    wholes = []
    for k, (drama, state) in enumerate(zip(dramas, states, strict=True)):
        if hook:
            hook(f"features of {drama.name}", k, len(dramas))
        wholes.append(training_rows(drama, state, settings.full_tools))
    line_runs = settings.line_run_episodes
    runs = [context_rows(small, settings.full_tools) for part in wholes
            for small in (small_drama_contexts(part.ctx, line_runs, settings) if line_runs else [])]
    parts = wholes + runs
    if hook:
        hook("training groups for the group stage", len(dramas), len(dramas))
    groups = group_stage(*group_training_rows([part.ctx for part in wholes], settings)[:2], settings.group_params)
    data = parts[0] if len(parts) == 1 else _concat(parts)
    return TrainingSet([d.name for d in dramas], parts, data, groups, tuple(line_runs))


def fit_model(train_set: TrainingSet, settings: TrainingSettings = DEFAULT_SETTINGS,
              tools: Sequence[str] | None = None, hook: Progress | None = None) -> AttributionModel:
    """The line stages fitted on a training set, reading `tools` (default: every tool of the
    settings; the cheap stage those of them in `settings.cheap_tools`), with the training
    set's group stage."""
    tools = settings.full_tools if tools is None else tools
    cheap_tools = tuple(t for t in settings.cheap_tools if t in tools)
    full_tools = tuple(t for t in settings.full_tools if t in tools)
    params = settings.tree_params
    data = train_set.data
    steps = 4 if settings.passes > 1 else 2
    if hook:
        hook("fitting the cheap stage", 0, steps)
    cheap = stage_from(data, cheap_tools, params)
    if hook:
        hook("fitting the full stage", 1, steps)
    full = stage_from(data, full_tools, params)
    refine_cheap = refine_full = None
    if settings.passes > 1:
        if hook:
            hook("out-of-fold first-pass labels for the refinement stages", 2, steps)
        second = [refinement_rows(part, settings, cheap_tools=cheap_tools, full_tools=full_tools)
                  for part in train_set.parts]
        if all(part is not None for part in second):
            refined = second[0] if len(second) == 1 else _concat(second)  # type: ignore[arg-type]
            if hook:
                hook("fitting the refinement stages", 3, steps)
            refine_cheap = stage_from(refined, cheap_tools, params)
            refine_full = stage_from(refined, full_tools, params)
        else:
            log.warning("a training drama has fewer than 2 episodes: every pass uses the first-pass stages")
    if hook:
        hook("trained", steps, steps)
    import sklearn

    info = {"trained_on": train_set.dramas, "pairs": len(data.y), "sklearn": sklearn.__version__,
            "params": dict(params), "group_params": dict(settings.group_params),
            "group_block_episodes": list(settings.group_block_episodes),
            "line_run_episodes": list(train_set.line_runs)}
    return AttributionModel(cheap, full, settings.margin_threshold, settings.passes, info, refine_cheap, refine_full,
                            train_set.groups, settings.group_threshold, settings.final_pass)


def train(dramas: Sequence[Drama], states: Sequence[LabelState], settings: TrainingSettings = DEFAULT_SETTINGS,
          hook: Progress | None = None) -> AttributionModel:
    """The attribution model on the training dramas: `training_set`, then `fit_model` with every tool."""
    return fit_model(training_set(dramas, states, settings, hook=hook), settings, hook=hook)


def episode_blocks(drama: Drama, widths: Sequence[int]) -> list[tuple[int, int]]:
    """(first, last) episode numbers of consecutive runs of `width` episodes, for each width
    (a drama with no more episodes than the width gives none)."""
    numbers = [ep.number for ep in drama.episodes]
    return [(numbers[k], numbers[min(k + w, len(numbers)) - 1])
            for w in widths if len(numbers) > w for k in range(0, len(numbers), w)]


def small_drama_contexts(ctx: Context, widths: Sequence[int],
                         settings: TrainingSettings = DEFAULT_SETTINGS) -> list[Context]:
    """Contexts of propagation over runs of the drama's episodes taken as dramas of their
    own, each seeded as the protocol seeds a drama (`run_seeds`). A run's context is kept in
    the drama's tables, so the line stages and the group stage propagate it once."""
    runs = ctx.tables.episode_runs
    out = []
    for first, last in episode_blocks(ctx.drama, widths):
        if (first, last) not in runs:
            runs[first, last] = _run_context(ctx, first, last, settings)
        if (run := runs[first, last]) is not None:
            out.append(run)
    return out


def _run_context(ctx: Context, first: int, last: int, settings: TrainingSettings) -> Context | None:
    """Propagation over episodes first..last of the drama from `run_seeds` (None: no seeds)."""
    small = ctx.drama.episode_range(first, last)
    lo = next(ep.line_start for ep in ctx.drama.episodes if ep.number == first)
    inherited: dict[str, list[int]] = {}
    for i in np.flatnonzero(ctx.state.is_seed[lo:lo + len(small.lines)]).tolist():
        inherited.setdefault(ctx.state.label[lo + i], []).append(i)
    seeds = run_seeds(small, inherited, draw=first, settings=settings)
    return Context.build(small, propagate_labels(small, seeds)) if seeds else None


def run_seeds(run: Drama, inherited: dict[str, list[int]], draw: int = 0,
              settings: TrainingSettings = DEFAULT_SETTINGS) -> dict[str, list[int]]:
    """Seeds of a run of a training drama's episodes taken as a drama of its own, as the
    protocol seeds a whole drama: every named character who speaks in it has some.

    The release's seeds come in clumps (a few scenes per character, mostly lines of 1.5 s
    or more), so a run of episodes keeps the drama's seeds that fall in it (`inherited`,
    {name: [line of the run]}) and leaves many characters without any: their lines could
    never be named. Each such character gets a clump of max(1, round(seed_rate x n)) of its n lines
    in the run, from a random line of theirs on (generator seeded by `draw`), lines of
    `seed_min_s` or more first. Reads the run's truth: for training dramas only."""
    seeds = {name: sorted(lines) for name, lines in inherited.items() if lines}
    speaker = np.asarray(run.lines.speaker, dtype=object)
    usable = ~run.lines.deleted
    rng = np.random.default_rng(draw)
    for name in sorted(run.named_characters()):
        own = np.flatnonzero((speaker == name) & usable)
        if name in seeds or not len(own):
            continue
        k = max(1, int(round(settings.seed_rate * len(own))))
        start = int(rng.integers(len(own)))
        order = np.concatenate([own[start:], own[:start]])
        longer = order[run.lines.duration[order] >= settings.seed_min_s]
        seeds[name] = sorted((longer if len(longer) >= k else order)[:k].tolist())
    return seeds


def group_training_rows(contexts: Sequence[Context], settings: TrainingSettings = DEFAULT_SETTINGS,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group-stage rows from propagation's new-character groups over each training drama
    and over runs of its episodes: X, y, and the episodes each row depends on ([R, 2] first
    and last episode number: the run's, or the group's main episode in a whole drama), so
    cross-validation can leave a block of episodes out."""
    X, y, span = [], [], []
    for ctx in contexts:
        for small in [ctx, *small_drama_contexts(ctx, settings.group_block_episodes, settings)]:
            rows = group_rows(small)
            X.append(rows.X)
            y.append(group_targets(small, rows, small.drama.lines.speaker))
            span.append(group_row_spans(small, rows, whole=small is ctx))
    return np.concatenate(X), np.concatenate(y), np.concatenate(span)


def group_row_spans(ctx: Context, rows: GroupRows, whole: bool) -> np.ndarray:
    """[R, 2] first and last episode number each group row depends on: its group's main
    episode in a whole drama, the run's first and last in a run of episodes."""
    if whole:
        return np.repeat(rows.episode[rows.group][:, None], 2, axis=1)
    numbers = [ctx.drama.episodes[0].number, ctx.drama.episodes[-1].number]
    return np.tile(np.asarray(numbers, np.int64), (len(rows), 1))


def outside_episodes(span: np.ndarray, first: int, last: int) -> np.ndarray:
    """Rows whose episode span (`group_row_spans`) does not overlap episodes first..last:
    the training groups a held-out block of episodes may be decided by."""
    return (span[:, 1] < first) | (span[:, 0] > last)


def group_stage(X: np.ndarray, y: np.ndarray, params: Mapping[str, Any] = DEFAULT_SETTINGS.group_params,
                withhold_faces: bool = True) -> Stage | None:
    """The group stage fitted on `group_training_rows`, each row also with its face evidence
    withheld (unless `withhold_faces` is False), so an off-screen speaker's group can still
    be named by voice (None without groups of both kinds)."""
    if not y.any() or y.all():
        log.warning("no training groups of both kinds: the model has no group stage")
        return None
    if withhold_faces:
        X, y = np.concatenate([X, without_faces(X)]), np.concatenate([y, y])
    return Stage(list(GROUP_TOOLS), list(GROUP_FEATURES), fit_trees(X, y, params))


def first_pass_scores(data: TrainingRows, models: Sequence[tuple[Stage, Stage]], folds: Sequence[np.ndarray],
                      margin_threshold: float) -> np.ndarray:
    """Out-of-fold first-pass scores, made as `run_policy` makes them, each fold's lines by
    its (cheap, full) stages."""
    from dramasr.reason.policy import policy_scores, subset_rows

    line_episode = data.drama.lines.episode[data.rows.lines]
    score = np.zeros(len(data.y))
    for (cheap, full), fold in zip(models, folds, strict=True):
        sub, position = subset_rows(data.rows, np.isin(line_episode, fold))

        def scorer(stage: Stage, part: PairRows, where: np.ndarray, position: np.ndarray = position) -> np.ndarray:
            raw = stage.trees.predict_proba(data.X[position[where]][:, _columns(data.owner, stage.tools)])
            return normalise(raw, part.starts)

        score[position], _ = policy_scores(sub, cheap, full, margin_threshold, scorer)
    return score


def refinement_rows(data: TrainingRows, settings: TrainingSettings = DEFAULT_SETTINGS,
                    cheap_tools: Sequence[str] | None = None, full_tools: Sequence[str] | None = None,
                    ) -> TrainingRows | None:
    """The training rows again, with context read from out-of-fold first-pass labels (None
    when the drama has fewer than two episodes, so no fold can be held out)."""
    from dramasr.reason.policy import scored_labels

    cheap_tools = settings.cheap_tools if cheap_tools is None else cheap_tools
    full_tools = settings.full_tools if full_tools is None else full_tools
    params = settings.tree_params
    folds = episode_folds(data.row_episode, settings.refine_folds)
    if len(folds) < 2:
        return None
    models = []
    for fold in folds:
        keep = ~np.isin(data.row_episode, fold)
        models.append((stage_from(data, cheap_tools, params, keep), stage_from(data, full_tools, params, keep)))
    score = first_pass_scores(data, models, folds, settings.margin_threshold)
    ctx = data.ctx.relabel(scored_labels(data.ctx, data.rows, score))
    X, names, owner = feature_table(ctx, data.rows, settings.full_tools)
    if names != data.feature_names:
        raise ValueError("refinement columns differ from the first pass's")
    return TrainingRows(data.drama, ctx, data.rows, X, names, owner, data.y, data.row_episode)


def _concat(parts: list[TrainingRows]) -> TrainingRows:
    names = parts[0].feature_names
    for part in parts[1:]:
        if part.feature_names != names:
            raise ValueError("feature columns differ between training dramas")
    return TrainingRows(
        parts[0].drama, parts[0].ctx, parts[0].rows, np.concatenate([p.X for p in parts]), names, parts[0].owner,
        np.concatenate([p.y for p in parts]), np.concatenate([p.row_episode for p in parts]),
    )


def episode_folds(episodes: np.ndarray, n_folds: int) -> list[np.ndarray]:
    """Contiguous blocks of episodes (neighbouring episodes share scenes, so no shuffling)."""
    return [f for f in np.array_split(np.unique(episodes), n_folds) if len(f)]


def line_hits(rows: PairRows, score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per line: is the best-scored candidate the true one; and the margin."""
    best_row, best, second = top_two(score, rows.starts)
    return y[best_row], best - second


def cross_validate(data: TrainingRows, tools: Sequence[str], params: Mapping[str, Any],
                   n_folds: int = 4) -> dict[str, Any]:
    """Out-of-fold normalised pair scores by episode blocks, for one tool set."""
    cols = _columns(data.owner, tools)
    score = np.zeros(len(data.y))
    for fold in episode_folds(data.row_episode, n_folds):
        test = np.isin(data.row_episode, fold)
        trees = fit_trees(data.X[~test][:, cols], data.y[~test], params)
        score[test] = trees.predict_proba(data.X[test][:, cols])
    score = normalise(score, data.rows.starts)
    hit, margin = line_hits(data.rows, score, data.y)
    return {"score": score, "hit": hit, "margin": margin, "columns": cols}


DEFAULT_TRAINING_DRAMAS = ("ren_shi_jian", "zhen_huan_zhuan")  # the protocol's training dramas


def voice_degraded(drama: Drama, noise: float, seed: int | None = None) -> Drama:
    """A copy of the drama whose voice embeddings are its unit embeddings plus Gaussian noise
    of `noise` / sqrt(dim) per dimension, renormalised (lines without a voice keep none); named
    `NAME+voiceNOISE`. The draw is seeded by `seed`, by default by the drama's name and the
    noise level, so the copy is the same each time."""
    x = drama.lines.embedding.astype(np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng([zlib.crc32(drama.name.encode()), int(round(noise * 1000))] if seed is None else seed)
    noisy = unit + noise * rng.standard_normal(x.shape) / np.sqrt(max(x.shape[1], 1))
    noisy /= np.maximum(np.linalg.norm(noisy, axis=1, keepdims=True), 1e-12)
    noisy[~drama.lines.has_voice] = 0.0
    lines = replace(drama.lines, embedding=noisy.astype(np.float32))
    return replace(drama, name=f"{drama.name}+voice{noise:g}", lines=lines)


def train_model(dramas: Sequence[Drama], *, output: str | Path | None = None, seeds: str | Path = "1pct",
                settings: TrainingSettings = DEFAULT_SETTINGS, hook: Progress | None = None) -> Path:
    """`dramasr train` on loaded dramas and their voice-degraded copies (`settings.voice_noise`):
    propagate from their seeds, fit, write the model (default: the file shipped in the
    package). hook(stage, done, total) reports progress."""
    from dramasr.reason.model import default_model_path

    if not dramas:
        raise DramaError("no training drama given", field="--drama", hint="name at least one training drama")
    if not all(np.isfinite(noise) and noise >= 0 for noise in settings.voice_noise):
        raise DramaError(f"voice noise levels {list(settings.voice_noise)} are not all finite and >= 0",
                         field="--voice-noise", hint="give levels such as 0.9, or 0 for no voice-degraded copy")
    dramas = [*dramas, *(voice_degraded(drama, noise) for noise in settings.voice_noise for drama in dramas)]
    states = []
    for k, drama in enumerate(dramas):
        if hook:
            hook(f"propagating {drama.name}", k, len(dramas))
        states.append(propagate_labels(drama, seeds))
    model = train(dramas, states, settings, hook=hook)
    return model.save(Path(output) if output is not None else default_model_path())
