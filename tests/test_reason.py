"""The attribution model: exported trees match scikit-learn, training is deterministic,
the model file round-trips, and dramas lacking relations/captions/faces are attributed."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
from tests.helpers import make_drama

from dramasr.attribute import attribute
from dramasr.data.model import speech_parts
from dramasr.reason.features import candidate_pairs
from dramasr.reason.model import AttributionModel, TreeEnsemble, default_model_path, top_two
from dramasr.reason.policy import speaker_names
from dramasr.tools import Context, LabelState, label_state_from_release
from dramasr.train import DEFAULT_SETTINGS, fit_model, run_seeds, train, training_set

A, B = "周秉义", "郑娟"
SMALL = {"max_iter": 15, "learning_rate": 0.2, "max_leaf_nodes": 7, "min_samples_leaf": 2,
         "early_stopping": False, "random_state": 0}
QUICK = replace(DEFAULT_SETTINGS, tree_params=SMALL)  # small trees: tests fit in seconds


def _dialogue(n_scenes: int = 12, seed: int = 0, faces: bool = True, dim: int = 16):
    """Two speakers alternating; voices are noisy clusters; each one's face is seen while
    speaking; propagation's labels are right except for a flipped fifth."""
    rng = np.random.default_rng(seed)
    centre = {A: rng.normal(size=dim), B: rng.normal(size=dim)}
    lines, face_specs, voices = [], [], []
    for scene in range(n_scenes):
        episode = 1 + scene // 4
        t0 = 60.0 * (scene % 4)
        for k in range(6):
            who = A if k % 2 == 0 else B
            start = t0 + 2.0 * k
            lines.append((episode, start, start + 1.5, who, "秉义你说" if who == B and k == 1 else "嗯"))
            voices.append(centre[who] + 0.9 * rng.normal(size=dim))
            if faces:
                face_specs.append((episode, start + 0.5, start + 0.5, who, 0.8))
    drama = make_drama(lines, face_specs, cast=[A, B], embeddings=np.asarray(voices, np.float32))
    truth = [spec[3] for spec in lines]
    flip = rng.random(len(truth)) < 0.2
    label = [(B if t == A else A) if f else t for t, f in zip(truth, flip, strict=True)]
    seed_mask = np.zeros(len(truth), bool)
    seed_mask[[0, 1]] = True
    label[0], label[1] = truth[0], truth[1]
    candidates = [[lab, B if lab == A else A] for lab in label]
    scores = [[0.6, 0.4] for _ in label]
    return drama, LabelState(label, candidates, scores, seed_mask)


def test_exported_trees_match_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    y = X[:, 0] + 0.5 * X[:, 1] > 0
    estimator = HistGradientBoostingClassifier(**SMALL).fit(X, y)
    ours = TreeEnsemble.from_sklearn(estimator).predict_proba(X)
    np.testing.assert_allclose(ours, estimator.predict_proba(X)[:, 1], rtol=1e-9, atol=1e-12)


def test_training_is_deterministic(tmp_path):
    drama, state = _dialogue()
    first = train([drama], [state], QUICK)
    second = train([drama], [state], QUICK)
    a = first.save(tmp_path / "a.npz").read_bytes()
    b = second.save(tmp_path / "b.npz").read_bytes()
    assert a == b
    X = np.random.default_rng(0).normal(size=(50, len(first.full.feature_names)))
    np.testing.assert_array_equal(first.full.trees.predict_proba(X), second.full.trees.predict_proba(X))


def test_a_model_without_a_tool_reads_none_of_its_columns(tmp_path):
    drama, state = _dialogue()
    train_set = training_set([drama], [state])
    full = fit_model(train_set, QUICK)
    assert full.save(tmp_path / "a.npz").read_bytes() == \
        train([drama], [state], QUICK).save(tmp_path / "b.npz").read_bytes()
    less = fit_model(train_set, QUICK, tuple(t for t in QUICK.full_tools if t != "dialogue_context"))
    assert "dialogue_context" in full.cheap.tools and "ctx_prev" in full.refine_full.feature_names
    for stage in (less.cheap, less.full, less.refine_cheap, less.refine_full):
        assert "dialogue_context" not in stage.tools
        assert not {"ctx_prev", "gap_before_s", "voice_prev"} & set(stage.feature_names)
    assert less.groups is full.groups is train_set.groups  # fitted once, shared
    assert len(attribute(drama, labels=state, model=less).labels) == len(drama.lines)


def test_model_file_round_trips(tmp_path):
    drama, state = _dialogue()
    model = train([drama], [state], replace(QUICK, margin_threshold=0.3, passes=3))
    loaded = AttributionModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.passes == 3 and loaded.margin_threshold == 0.3 and loaded.final_pass == model.final_pass
    assert not AttributionModel.load(replace(model, final_pass=False).save(tmp_path / "n.npz")).final_pass
    assert loaded.full.feature_names == model.full.feature_names
    X = np.random.default_rng(0).normal(size=(20, len(model.cheap.feature_names)))
    np.testing.assert_array_equal(loaded.cheap.trees.predict_proba(X), model.cheap.trees.predict_proba(X))
    # passes after the first have stages of their own, fitted on first-pass context
    assert loaded.refine_full is not None and loaded.stages(1) == (loaded.refine_cheap, loaded.refine_full)
    assert loaded.stages(0) == (loaded.cheap, loaded.full)
    X = np.random.default_rng(1).normal(size=(20, len(model.refine_full.feature_names)))
    np.testing.assert_array_equal(loaded.refine_full.trees.predict_proba(X), model.refine_full.trees.predict_proba(X))


def test_one_episode_drama_trains_without_refinement_stages():
    drama, state = _dialogue(n_scenes=4)  # one episode: no fold to hold out
    model = train([drama], [state], replace(QUICK, passes=2))
    assert model.refine_cheap is None and model.stages(1) == (model.cheap, model.full)
    assert len(attribute(drama, labels=state, model=model).labels) == len(drama.lines)


def test_bad_model_file_is_a_clear_error(tmp_path):
    from dramasr.errors import DramaError

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(DramaError, match="cannot read attribution model: not an .npz archive"):
        AttributionModel.load(bad)


def test_drama_without_relations_captions_or_faces_is_attributed():
    train_drama, train_state = _dialogue(seed=0)
    model = train([train_drama], [train_state], QUICK)
    drama, state = _dialogue(seed=3, faces=False)
    assert drama.relation is None and drama.captions is None and len(drama.faces) == 0
    result = attribute(drama, labels=state, model=model)
    assert len(result.records) == len(drama.lines)
    assert [r.line for r in result.records] == list(range(len(drama.lines)))
    assert all(r.speaker in (A, B, "其他") for r in result.records)
    assert result.records[0].evidence == {"seed": True}
    decided = [r for r in result.records if not (r.evidence or {}).get("seed")]
    assert all(0.0 <= r.confidence <= 1.0 and r.evidence["tool_calls"] >= 2 for r in decided)
    assert result.calls_per_line >= 2


def test_reasoning_fixes_propagation_on_a_clear_dialogue():
    train_drama, train_state = _dialogue(seed=0)
    model = train([train_drama], [train_state], QUICK)
    drama, state = _dialogue(seed=5)
    result = attribute(drama, labels=state, model=model)
    truth = np.asarray(drama.lines.speaker)
    before = (np.asarray(state.label) == truth).mean()
    after = (np.asarray(result.labels) == truth).mean()
    assert after > before


def test_top_two_per_line():
    score = np.array([0.2, 0.7, 0.1, 1.0, 0.4, 0.6])
    starts = np.array([0, 3, 4, 6])
    best, first, second = top_two(score, starts)
    assert best.tolist() == [1, 3, 5]
    assert first.tolist() == [0.7, 1.0, 0.6] and second.tolist() == [0.2, 0.0, 0.4]


def test_release_label_file_adapter():
    doc = {
        "character_list": [{"name": A, "code": 0}, {"name": "新角色-1", "code": 1}],
        "utterance_label": [
            {"code": 0, "is_gt": True, "rel_info": {"_list": [A], "_dict": {A: 0.9}}},
            {"code": -3, "is_gt": False, "rel_info": {"_list": ["新角色-1", A], "_dict": {"新角色-1": 0.5, A: 0.4}}},
            {"code": 1, "is_gt": False, "rel_info": []},
        ],
    }
    state = label_state_from_release(doc, 3)
    assert state.label == [A, "其他", "新角色-1"]
    assert state.is_seed.tolist() == [True, False, False]
    assert state.candidates[1] == ["新角色-1", A] and state.scores[1] == [0.5, 0.4]
    assert state.candidates[2] == []


@pytest.mark.skipif(not default_model_path().is_file(), reason="shipped model not built yet")
def test_shipped_model_loads_offline():
    model = AttributionModel.load(default_model_path())
    assert model.cheap.tools and set(model.cheap.tools) <= set(model.full.tools)
    assert "ren_shi_jian" in model.info.get("trained_on", [])


@pytest.mark.skipif(not default_model_path().is_file(), reason="shipped model not built yet")
def test_shipped_model_matches_the_feature_code():
    from dramasr.reason.features import candidate_pairs, feature_table
    from dramasr.tools import Context

    model = AttributionModel.load(default_model_path())
    drama, state = _dialogue()
    ctx = Context.build(drama, state)
    rows = candidate_pairs(ctx, np.flatnonzero(~state.is_seed))
    for stage in (model.cheap, model.full, model.refine_cheap, model.refine_full):
        assert stage is not None, "re-train: `dramasr train` (the refinement stages are missing)"
        _, names, _ = feature_table(ctx, rows, stage.tools)
        assert set(stage.feature_names) <= set(names), "re-train: `dramasr train` (feature columns changed)"


def test_drama_without_faces_still_names_its_seed_characters():
    train_drama, train_state = _dialogue(seed=0)
    model = train([train_drama], [train_state], QUICK)
    drama, state = _dialogue(seed=4, faces=False)
    result = attribute(drama, labels=state, model=model)
    assert {A, B} <= set(result.labels)


def test_speech_parts_counts_speakers_sharing_a_subtitle():
    assert speech_parts("好") == 1
    assert speech_parts("走吧 哥/没事") == 2
    assert speech_parts("来/放心/喝酒") == 3
    assert speech_parts("/没事") == 1  # an empty side is no speaker


def test_a_shared_subtitle_predicted_as_other_is_named_as_the_release_does():
    drama, state = _dialogue(n_scenes=1)
    drama.lines.text[2] = "走吧 哥/没事"
    ctx = Context.build(drama, state)
    lines = np.array([2, 3])
    rows = candidate_pairs(ctx, lines)
    score = np.where(rows.cls == ctx.other, 0.5, 0.0) + np.where(rows.cls == ctx.class_of[B], 0.3, 0.0)
    score += np.where(rows.cls == ctx.class_of[A], 0.2, 0.0)
    names = speaker_names(ctx, lines, np.array([ctx.other, ctx.other]), rows, score)
    assert names[0] == f"{B}/{A}"  # best-scored named candidates first
    assert names[1] == "其他"  # one speaker's words: no pair is made up
    assert speaker_names(ctx, lines[:1], np.array([ctx.other]))[0] == "其他"  # no scores: no names


def test_attribution_records_a_shared_subtitle():
    train_drama, train_state = _dialogue(seed=0)
    model = train([train_drama], [train_state], QUICK)
    drama, state = _dialogue(seed=5)
    drama.lines.text[4] = "走吧 哥/没事"
    result = attribute(drama, labels=state, model=model)
    assert result.records[4].evidence["speakers_in_subtitle"] == 2
    assert "speakers_in_subtitle" not in result.records[5].evidence


def _drifted_scene(seed: int, on_screen: str = A, extra_face: str | None = None):
    """Episode 1: A and B, labelled. Episode 2: A's voice has drifted and propagation
    called those lines 新角色-1 (the face of `on_screen` shown); an extra's lines, 新角色-2,
    sound like no one (the face of `extra_face` shown, if any)."""
    rng = np.random.default_rng(seed)
    axes = np.eye(16)
    drift = 0.6 * axes[0] + 0.8 * axes[3]
    voices = ([axes[0] + 0.1 * rng.normal(size=16) for _ in range(10)]
              + [axes[1] + 0.1 * rng.normal(size=16) for _ in range(10)]
              + [drift + 0.5 * rng.normal(size=16) for _ in range(8)]
              + [axes[5 + seed % 8] + 0.2 * rng.normal(size=16) for _ in range(8)])
    truth = [A] * 10 + [B] * 10 + [A] * 8 + ["路人"] * 8
    label = [A] * 10 + [B] * 10 + ["新角色-1"] * 8 + ["新角色-2"] * 8
    lines = [(1 if k < 20 else 2, 3.0 * k, 3.0 * k + 1, s, "x") for k, s in enumerate(truth)]
    faces = [(2, 3.0 * k + 0.5, 3.0 * k + 0.5, on_screen, 0.9) for k in range(20, 28)]
    if extra_face:
        faces += [(2, 3.0 * k + 0.5, 3.0 * k + 0.5, extra_face, 0.9) for k in range(28, 36)]
    drama = make_drama(lines, faces, cast=[A, B], embeddings=np.asarray(voices, np.float32))
    cands = [[A, B]] * 20 + [["新角色-1", B]] * 8 + [["新角色-2", B]] * 8
    state = LabelState(label, cands, [[0.5, 0.4]] * 36, np.zeros(36, bool))
    return Context.build(drama, state, classes=[A, B])


@functools.cache
def _group_stage_on_drifted_scenes():
    """A group stage fitted on drifted scenes where the drifted speaker's face is seen."""
    from dramasr.reason.groups import group_rows, group_targets
    from dramasr.train import group_stage

    ctx = _drifted_scene(0)
    rows = group_rows(ctx)
    y = group_targets(ctx, rows, list(ctx.drama.lines.speaker))
    drifted = (rows.group == rows.cluster[20]) & (rows.cls == ctx.class_of[A])
    assert y[drifted].all() and y.sum() == 1  # only (A's group, A) is a true pair
    # A's face is always seen during A's drifted group; B's is sometimes seen while an extra speaks
    scenes = [_drifted_scene(s, extra_face=B if s % 2 else None) for s in range(16)]
    parts = [(group_rows(c), c) for c in scenes]
    X = np.concatenate([r.X for r, _ in parts])
    y_all = np.concatenate([group_targets(c, r, list(c.drama.lines.speaker)) for r, c in parts])
    stage = group_stage(X, y_all, SMALL)
    assert stage is not None
    return stage


@pytest.mark.parametrize("on_screen", [A, B])  # B: A speaks off screen, B's reaction is shown
def test_group_stage_gives_a_drifted_voice_group_back_to_its_character(on_screen):
    from dramasr.reason.policy import Decisions, resolve_groups

    stage = _group_stage_on_drifted_scenes()
    fresh = _drifted_scene(31, on_screen)
    lines = np.arange(len(fresh.drama.lines))
    empty = np.zeros(len(lines))
    decisions = Decisions(lines, None, empty, lines, empty, empty, np.zeros(len(lines), bool),  # type: ignore[arg-type]
                          np.zeros(len(lines), np.int32), list(fresh.state.label), 3)
    out = resolve_groups(fresh, stage, 0.5, decisions)
    assert out.labels[20:28] == [A] * 8  # the drifted group goes back to A
    assert out.labels[28:] == ["新角色-2"] * 8  # the extra stays a new character
    assert (out.group_size[20:28] == 8).all() and (out.group_size[28:] == 0).all()
    assert out.group_probability[20] > 0.5


def test_final_pass_rereads_the_other_lines_and_keeps_the_group_decisions():
    from dramasr.reason.policy import _final_pass, _one_pass, resolve_groups

    drama, state = _dialogue()
    model = train([drama], [state], QUICK)
    fresh = _drifted_scene(31)
    rows = candidate_pairs(fresh, np.arange(len(fresh.drama.lines)))
    # as if the line passes had kept propagation's labels: 新角色-1 is A's drifted voice
    passed = replace(_one_pass(fresh, model, rows, 1, 0.5), labels=list(fresh.state.label))
    grouped = resolve_groups(fresh, _group_stage_on_drifted_scenes(), 0.5, passed)
    assert grouped.labels[20:28] == [A] * 8
    after = fresh.relabel(grouped.labels)
    out = _final_pass(after, model, rows, 1, 0.5, grouped)
    again = _one_pass(after, model, rows, 1, 0.5)
    # the group's lines keep the group stage's decision and confidence ...
    assert out.labels[20:28] == [A] * 8 and (out.group_size[20:28] == 8).all()
    np.testing.assert_array_equal(out.confidence[20:28], grouped.confidence[20:28])
    np.testing.assert_array_equal(out.group_probability, grouped.group_probability)
    # ... the other lines take the new pass's, read in the context of that decision
    assert out.labels[:20] == again.labels[:20] and out.labels[28:] == again.labels[28:]
    np.testing.assert_array_equal(out.confidence[28:], again.confidence[28:])
    assert out.passes == 2


def test_a_run_of_episodes_is_seeded_as_the_protocol_seeds_a_drama():
    """Every named character who speaks in a run gets seeds: the drama's seeds that fall in
    it are kept, the others get a clump of their own lines (1.5 s or longer first)."""
    C = "周蓉"
    lines = [(1, 2.0 * k, 2.0 * k + (1.8 if k % 6 == 2 else 1.0), (A, B, C)[k % 3], "嗯") for k in range(300)]
    faces = [(1, 1.0, 1.0, name, 0.9) for name in (A, B, C, "周志刚")]  # 周志刚 is seen but never speaks
    run = make_drama(lines, faces)
    seeds = run_seeds(run, {A: [0], B: []}, draw=3)
    assert seeds[A] == [0]
    assert set(seeds) == {A, B, C}
    for name in (B, C):
        own = [i for i, spec in enumerate(lines) if spec[3] == name]
        assert len(seeds[name]) == 1 and set(seeds[name]) <= set(own)
    assert run.lines.duration[seeds[C]].min() >= DEFAULT_SETTINGS.seed_min_s  # half of C's lines last 1.8 s
    assert run_seeds(run, {A: [0]}, draw=3) == seeds


def test_a_run_of_episodes_is_propagated_once(monkeypatch):
    """The line stages and the group stage both read the runs of 12 episodes: the second
    reading takes the run from the drama's cache instead of propagating it again."""
    import dramasr.train as training

    calls = []
    real = training.propagate_labels
    monkeypatch.setattr(training, "propagate_labels", lambda run, seeds: calls.append(run.name) or real(run, seeds))
    drama, state = _dialogue()  # 3 episodes
    ctx = Context.build(drama, state)
    pairs = training.small_drama_contexts(ctx, (2,))  # episodes 1-2 and 3
    assert len(pairs) == 2 and len(calls) == 2
    both = training.small_drama_contexts(ctx, (2, 1))
    assert len(calls) == 4  # only episodes 1 and 2 alone were new
    assert both[0] is pairs[0] and both[1] is pairs[1] and both[-1] is pairs[1]
    assert [c.drama.lines.episode[0] for c in both] == [1, 3, 1, 2, 3]


def test_the_narrator_is_a_candidate_of_its_own_kind():
    """The narrator (`旁白`) is offered on every line, no face gating it: the reasoner reads
    which candidate rows are the narrator (`is_narration`), and no other row is."""
    from dramasr.data.model import NARRATION_MARK
    from dramasr.reason.features import feature_table

    speakers = [A if k % 2 == 0 else B for k in range(12)]
    drama = make_drama([(1, 2.0 * k, 2.0 * k + 1.5, who, "嗯") for k, who in enumerate(speakers)],
                       cast=[A, B, NARRATION_MARK])
    candidates = [[who, B if who == A else A, NARRATION_MARK] for who in speakers]
    seeds = np.zeros(len(speakers), bool)
    seeds[:2] = True
    state = LabelState(speakers, candidates, [[0.6, 0.4, 0.3]] * len(speakers), seeds)
    ctx = Context.build(drama, state)
    rows = candidate_pairs(ctx, np.flatnonzero(~seeds))
    X, names, _ = feature_table(ctx, rows, ["audio_sim"])
    is_narrator = np.array([ctx.classes[c] == NARRATION_MARK for c in rows.cls])
    assert is_narrator.any() and not is_narrator.all()
    np.testing.assert_array_equal(X[:, names.index("is_narration")], is_narrator.astype(np.float32))


def test_a_voice_degraded_copy_is_noisier_the_same_each_time_and_keeps_the_rest():
    from dramasr.train import voice_degraded

    drama, _ = _dialogue(dim=192)
    drama.lines.has_voice[3] = False
    drama.lines.embedding[3] = 0.0
    copy = voice_degraded(drama, 0.9)
    assert copy.name == f"{drama.name}+voice0.9" and copy.lines.text == drama.lines.text
    assert copy.faces is drama.faces and copy.lines.speaker == drama.lines.speaker
    np.testing.assert_array_equal(copy.lines.embedding, voice_degraded(drama, 0.9).lines.embedding)
    assert not np.array_equal(copy.lines.embedding, voice_degraded(drama, 0.5).lines.embedding)
    voiced = drama.lines.has_voice
    np.testing.assert_array_equal(copy.lines.embedding[~voiced], 0.0)
    np.testing.assert_allclose(np.linalg.norm(copy.lines.embedding[voiced], axis=1), 1.0, rtol=1e-5)
    unit = drama.lines.embedding[voiced] / np.linalg.norm(drama.lines.embedding[voiced], axis=1, keepdims=True)
    cosine = (unit * copy.lines.embedding[voiced]).sum(1)
    assert 0.68 < cosine.mean() < 0.80  # 1 / sqrt(1 + 0.9^2) = 0.74 expected
    assert drama.lines.embedding[0].any() and not np.shares_memory(copy.lines.embedding, drama.lines.embedding)


def test_train_model_fits_on_the_dramas_and_their_voice_degraded_copies(tmp_path):
    from dramasr.synth import synth_drama
    from dramasr.train import train_model

    drama = synth_drama(seed=2, episodes=2, lines_per_episode=40, name="tiny")
    path = train_model([drama], output=tmp_path / "m.npz", settings=replace(QUICK, line_run_episodes=()))
    assert AttributionModel.load(path).info["trained_on"] == ["tiny", "tiny+voice0.9"]
    path = train_model([drama], output=tmp_path / "n.npz",
                       settings=replace(QUICK, line_run_episodes=(), voice_noise=()))
    assert AttributionModel.load(path).info["trained_on"] == ["tiny"]


def test_a_voice_noise_level_that_is_not_finite_is_refused_before_any_work(tmp_path):
    from dramasr.errors import DramaError
    from dramasr.synth import synth_drama
    from dramasr.train import train_model

    drama = synth_drama(seed=2, episodes=2, lines_per_episode=10, name="tiny")
    for bad in (float("inf"), float("nan")):
        with pytest.raises(DramaError, match="--voice-noise|voice noise"):
            train_model([drama], output=tmp_path / "m.npz", settings=replace(QUICK, voice_noise=(bad,)))
    assert not (tmp_path / "m.npz").exists()


def test_a_line_without_a_voice_is_offered_the_faces_inside_it_and_its_neighbours_speakers():
    drama, state = _dialogue()
    # line 7 (B's turn) loses its voice, as the loader leaves an unusable embedding row;
    # propagation gives such a line no candidates, so the rest must name it
    drama.lines.has_voice[7] = False
    drama.lines.embedding[7] = 0.0
    state.candidates[7], state.scores[7] = [], []
    ctx = Context.build(drama, state)
    a, b = ctx.class_of[A], ctx.class_of[B]
    assert ctx.candidate_classes(7, 8) == [b, a, ctx.other]  # B's face inside the line, then A speaking around
    rows = candidate_pairs(ctx, np.array([6, 7]))
    assert rows.cls[rows.starts[1]:rows.starts[2]].tolist() == [b, a, ctx.other]
    # no face and no voiced neighbour in the episode: only OTHER is left
    lone, _ = _dialogue(faces=False)
    lone.lines.has_voice[:] = False
    lone.lines.embedding[:] = 0.0
    bare = LabelState([""] * len(lone.lines), [[] for _ in lone.lines.text], [[] for _ in lone.lines.text],
                      np.zeros(len(lone.lines), bool))
    lone_ctx = Context.build(lone, bare)
    assert lone_ctx.candidate_classes(3, 8) == [lone_ctx.other]
