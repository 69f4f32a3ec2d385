"""Evidence tools on hand-made scenes: a vocative, an off-screen speaker, a reaction shot,
turn-taking, voice similarity, relations, and dramas without faces/relations/captions."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import make_drama

from dramasr.tools import TOOLS, Context, LabelState
from dramasr.tools.name_mentions import aliases_of

A, B, C = "周秉义", "郑娟", "曹德宝"


def _voices(speakers: list[str], dim: int = 16, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """One tight voice cluster per speaker."""
    rng = np.random.default_rng(seed)
    centre = {s: rng.normal(size=dim) for s in sorted(set(speakers))}
    return np.stack([centre[s] + noise * rng.normal(size=dim) for s in speakers]).astype(np.float32)


def _scene(lines, faces=(), relation=None):
    speakers = [spec[3] for spec in lines]
    drama = make_drama(lines, faces, cast=[A, B, C], embeddings=_voices(speakers), relation=relation)
    label = [spec[3] for spec in lines]
    state = LabelState(label, [[A, B, C] for _ in lines], [[0.5, 0.4, 0.3] for _ in lines],
                       np.zeros(len(lines), bool))
    return drama, Context.build(drama, state, classes=[A, B, C])


def test_vocative_names_the_addressee_not_the_speaker():
    drama, ctx = _scene([
        (1, 0.0, 1.0, B, "秉义，你过来一下"),
        (1, 1.5, 2.5, A, "什么事？"),
        (1, 3.0, 4.0, B, "没事"),
    ])
    line0 = TOOLS["name_mentions"].call(ctx, 0, candidates=[A, B])
    assert line0.values[A]["name_in_line"] == 1.0  # given name of 周秉义 is said
    assert line0.values[B]["name_in_line"] == 0.0
    line1 = TOOLS["name_mentions"].call(ctx, 1, candidates=[A, B])
    assert line1.values[A]["name_in_prev"] == 1.0  # the one addressed speaks next
    assert A in line1.text and "previous line" in line1.text


def test_aliases_cover_given_name_surname_forms_and_titles():
    assert {"周秉义", "秉义", "老周", "小周"} <= aliases_of("周秉义")
    assert "局长" in aliases_of("秦局长")
    assert aliases_of("少年周蓉") >= {"周蓉"}
    assert all(len(a) >= 2 for a in aliases_of("江小树(大)"))


def test_off_screen_speaker_has_no_face_but_the_listener_does():
    drama, ctx = _scene(
        [(1, 0.0, 2.0, A, "你在哪儿？"), (1, 10.0, 12.0, B, "我在门外")],
        faces=[(1, 10.5, 10.5, A, 0.9), (1, 11.0, 11.0, A, 0.8)],
    )
    ev = TOOLS["faces_on_screen"].call(ctx, 1, candidates=[A, B])
    assert ev.values[A]["face_hits"] == 2.0 and ev.values[A]["face_score"] == pytest.approx(0.9)
    assert ev.values[B]["face_hits"] == 0.0 and ev.values[B]["face_near_s"] == 5.0  # nowhere near
    assert ev.values[B]["faces_on_screen"] == 1.0
    assert "1 named face(s) on screen" in ev.text


def test_reaction_shot_face_near_but_outside_the_line():
    drama, ctx = _scene(
        [(1, 0.0, 2.0, B, "我走了"), (1, 2.5, 3.0, A, "嗯")],
        faces=[(1, 2.2, 2.2, B, 0.9)],
    )
    ev = TOOLS["faces_on_screen"].call(ctx, 1, candidates=[A, B])
    assert ev.values[B]["face_hits"] == 0.0
    assert ev.values[B]["face_near_s"] == pytest.approx(0.3, abs=1e-6)


def test_dialogue_context_alternation_and_scene_breaks():
    drama, ctx = _scene([
        (1, 0.0, 1.0, A, "一"), (1, 1.2, 2.0, B, "二"), (1, 2.2, 3.0, A, "三"), (1, 3.2, 4.0, B, "四"),
        (1, 24.0, 25.0, C, "五"),
    ])
    ev = TOOLS["dialogue_context"].call(ctx, 2, candidates=[A, B])
    assert ev.values[B]["ctx_prev"] == 1.0 and ev.values[B]["ctx_next"] == 1.0
    assert ev.values[A]["ctx_prev2"] == 1.0  # A-B-A: A also spoke two lines back
    assert ev.values[A]["ctx_prev_is_next"] == 1.0
    last = TOOLS["dialogue_context"].call(ctx, 4, candidates=[C])
    assert last.values[C]["gap_before_s"] == pytest.approx(20.0)  # a long silence: scene break
    assert last.values[C]["gap_after_s"] == 30.0  # episode end
    assert ">>[2]" in ev.text


def test_audio_similarity_excludes_the_line_itself():
    drama, ctx = _scene([(1, float(k), k + 0.5, s, "x") for k, s in enumerate([A, A, A, B, B, B])])
    ev = TOOLS["audio_sim"].call(ctx, 0, candidates=[A, B])
    assert ev.values[A]["audio_top"] > 0.9 > ev.values[B]["audio_top"]
    assert ev.values[A]["audio_log_count"] == pytest.approx(np.log1p(2))  # 3 lines of A, minus itself
    assert ev.values[B]["audio_log_count"] == pytest.approx(np.log1p(3))


def test_voice_model_lift_takes_out_how_often_the_candidate_speaks():
    # A holds 8 of the 10 lines and B 2: the voice model's log-probability of each, less
    # the log of its (smoothed) share of the labels, so a frequent character gains nothing
    # from being frequent
    drama, ctx = _scene([(1, float(k), k + 0.5, s, "x") for k, s in enumerate([A] * 8 + [B] * 2)])
    ev = TOOLS["audio_sim"].call(ctx, 9, candidates=[A, B])
    shares = {A: (8 + 1) / (10 + 4), B: (2 + 1) / (10 + 4)}  # 4 classes: A, B, C and OTHER
    for name, share in shares.items():
        v = ev.values[name]
        assert v["audio_model_lift"] == pytest.approx(v["audio_model_logp"] - np.log(share), rel=1e-5)
    assert ev.values[B]["audio_model_logp"] > ev.values[A]["audio_model_logp"]  # line 9 is B's voice


def test_relations_between_candidates_and_neighbours():
    relation = {"character_list": [A, B], "relationship_list": [[A, B, "夫妻"]]}
    drama, ctx = _scene([(1, 0.0, 1.0, A, "一"), (1, 1.5, 2.0, B, "二")], relation=relation)
    ev = TOOLS["char_relation"].call(ctx, 1, candidates=[B, C])
    assert ev.values[B]["rel_prev"] == 1.0 and ev.values[C]["rel_prev"] == 0.0
    assert ev.values[B]["rel_listed"] == 1.0 and ev.values[C]["rel_listed"] == 0.0
    # relations to a neighbour speaker are reported by the candidates that have them
    ev_c = TOOLS["char_relation"].call(ctx, 1, candidates=[B])
    assert "夫妻" in ev_c.text


def test_missing_relations_captions_and_faces_give_neutral_evidence():
    drama, ctx = _scene([(1, 0.0, 1.0, A, "一"), (1, 1.5, 2.0, B, "二")])
    assert drama.relation is None and drama.captions is None and len(drama.faces) == 0
    for tool in TOOLS.values():
        ev = tool.call(ctx, 1)
        assert ev.tool == tool.name and isinstance(ev.text, str) and ev.values
    assert "no relation.json" in TOOLS["char_relation"].call(ctx, 1).text
    assert "no scene caption" in TOOLS["scene_caption"].call(ctx, 1).text


def test_captions_name_candidates_when_present():
    drama, ctx = _scene([(1, 0.0, 1.0, A, "一"), (1, 1.5, 2.0, B, "二")])
    drama.captions = {"1": [{"start": 1.4, "end": 2.5, "text": "郑娟站在门口说话"}]}
    ctx = Context.build(drama, ctx.state, classes=[A, B, C])
    ev = TOOLS["scene_caption"].call(ctx, 1, candidates=[A, B])
    assert ev.values[B]["caption_names"] == 1.0 and ev.values[A]["caption_names"] == 0.0
    assert "郑娟站在门口" in ev.text


def test_every_tool_declares_itself_for_an_llm():
    for name, tool in TOOLS.items():
        spec = tool.spec()
        assert spec["name"] == name and len(spec["description"]) > 20
        assert spec["parameters"]["required"] == ["line"]


def test_bad_line_is_a_clear_error():
    from dramasr.errors import DramaError

    drama, ctx = _scene([(1, 0.0, 1.0, A, "一")])
    with pytest.raises(DramaError, match="no line 5"):
        TOOLS["audio_sim"].call(ctx, 5)


def test_scene_voice_match_stays_inside_the_scene():
    # A speaks in two scenes split by a 20 s silence; line 1 is compared with A's lines
    # of its own scene only
    drama, ctx = _scene([
        (1, 0.0, 1.0, A, "一"), (1, 1.5, 2.0, A, "二"), (1, 2.5, 3.0, B, "三"),
        (1, 23.0, 24.0, A, "四"), (1, 24.5, 25.0, A, "五"), (1, 25.5, 26.0, A, "六"),
    ])
    ev = TOOLS["audio_sim"].call(ctx, 1, candidates=[A, B, C])
    assert ev.values[A]["audio_scene_count"] == 1.0  # line 0; not itself, not lines 3-5
    assert ev.values[B]["audio_scene_count"] == 1.0
    assert ev.values[C]["audio_scene_count"] == 0.0 and ev.values[C]["audio_scene_max"] == 0.0
    assert ev.values[A]["audio_scene_max"] > 0.9 > ev.values[B]["audio_scene_max"]
    later = TOOLS["audio_sim"].call(ctx, 4, candidates=[A, B])
    assert later.values[A]["audio_scene_count"] == 2.0 and later.values[B]["audio_scene_count"] == 0.0


def test_rival_margin_is_positive_only_for_the_leader():
    from dramasr.reason.features import feature_table

    drama, ctx = _scene([(1, float(k), k + 0.5, s, "x") for k, s in enumerate([A, A, A, B, B, B])])
    from dramasr.reason.features import candidate_pairs

    rows = candidate_pairs(ctx, np.array([0, 3]))
    X, names, _ = feature_table(ctx, rows, ["audio_sim"])
    rival = X[:, names.index("audio_top_vs_rival")]
    top = X[:, names.index("audio_top")]
    first = rows.starts[0], rows.starts[1]
    line0 = slice(*first)
    leader = np.argmax(top[line0])
    assert rows.cls[line0][leader] == ctx.class_of[A] and rival[line0][leader] > 0
    assert np.all(np.delete(rival[line0], leader) < 0)


def test_cohort_normalisation_discounts_a_voice_that_matches_everyone():
    # lines 0 and 1 match A's voice equally (cosine ~0.58), but line 0 matches B and C as
    # well: normalised by how it scores against the drama's other lines, its match is weak
    rng = np.random.default_rng(0)
    axes = np.eye(16)
    speakers = [A, A] + [A] * 30 + [B] * 30 + [C] * 30
    centre = {A: axes[0], B: axes[1], C: axes[2]}
    voices = [centre[s] + 0.02 * rng.normal(size=16) for s in speakers]
    voices[0] = (axes[0] + axes[1] + axes[2]) / np.sqrt(3)
    voices[1] = 0.577 * axes[0] + 0.816 * axes[3]
    lines = [(1, 2.0 * k, 2.0 * k + 1, s, "x") for k, s in enumerate(speakers)]
    drama = make_drama(lines, cast=[A, B, C], embeddings=np.asarray(voices, np.float32))
    state = LabelState(list(speakers), [[A, B, C]] * len(lines), [[0.5, 0.4, 0.3]] * len(lines),
                       np.zeros(len(lines), bool))
    ctx = Context.build(drama, state, classes=[A, B, C])
    generic = TOOLS["audio_sim"].call(ctx, 0, candidates=[A]).values[A]
    distinct = TOOLS["audio_sim"].call(ctx, 1, candidates=[A]).values[A]
    assert abs(generic["audio_top"] - distinct["audio_top"]) < 0.05
    assert distinct["audio_top_norm"] > generic["audio_top_norm"] + 0.5
    assert generic["voice_cohort_top_mean"] > distinct["voice_cohort_top_mean"]


def test_voice_model_weighs_the_dimensions_that_tell_voices_apart():
    # A and B differ only along one axis; every line also carries large shared noise. Line 0
    # is A's voice with B's line 70's noise: its nearest line is B's, yet the voice model,
    # fitted to the labels, gives A.
    rng = np.random.default_rng(0)
    speakers = [A] * 60 + [B] * 60
    voices = rng.normal(size=(120, 16))
    voices[:, 0] = np.where(np.asarray(speakers) == A, 1.0, -1.0) + 0.1 * rng.normal(size=120)
    voices[:, 1] += 6.0  # a shared direction: every voice is alike by cosine
    voices[0, 1:] = voices[70, 1:]
    lines = [(1 + k // 40, 2.0 * k, 2.0 * k + 1, s, "x") for k, s in enumerate(speakers)]
    drama = make_drama(lines, cast=[A, B], embeddings=voices.astype(np.float32))
    state = LabelState(list(speakers), [[A, B]] * len(lines), [[0.5, 0.4]] * len(lines), np.zeros(len(lines), bool))
    ctx = Context.build(drama, state, classes=[A, B])
    values = TOOLS["audio_sim"].call(ctx, 0, candidates=[A, B]).values
    assert values[B]["audio_max"] > values[A]["audio_max"]  # the nearest line is B's
    assert values[A]["audio_model_logp"] > np.log(0.7) > values[B]["audio_model_logp"]
    # the model follows the current labels: with A and B swapped it names B
    swapped = ctx.relabel([B if s == A else A for s in speakers])
    values = TOOLS["audio_sim"].call(swapped, 0, candidates=[A, B]).values
    assert values[B]["audio_model_logp"] > values[A]["audio_model_logp"]


def test_voice_model_is_the_same_on_any_core_count(monkeypatch):
    # the 4 cross-fitting fits run side by side on one BLAS thread each: where L-BFGS stops
    # depends on rounding, so the BLAS thread count moved it; the core count must not
    from dramasr.tools import audio_sim

    rng = np.random.default_rng(3)
    speakers = [A] * 40 + [B] * 40 + [C] * 40
    voices = rng.normal(size=(120, 16)) + 2.0 * np.eye(16)[[{A: 0, B: 1, C: 2}[s] for s in speakers]]
    lines = [(1 + k // 40, 2.0 * k, 2.0 * k + 1, s, "x") for k, s in enumerate(speakers)]
    drama = make_drama(lines, cast=[A, B, C], embeddings=voices.astype(np.float32))
    state = LabelState(list(speakers), [[A, B]] * 120, [[0.5, 0.4]] * 120, np.zeros(120, bool))
    probs = []
    for cores in (1, 2, 3):
        monkeypatch.setattr(audio_sim, "cores", lambda cores=cores: cores)
        probs.append(Context.build(drama, state, classes=[A, B, C]).labels.voice_model)
    assert probs[0].sum(1) == pytest.approx(1.0, abs=1e-5) and probs[0][:40, 0].mean() > 0.5
    np.testing.assert_array_equal(probs[0], probs[1])
    np.testing.assert_array_equal(probs[0], probs[2])


def test_voice_cluster_ties_a_new_character_cluster_to_the_character_it_sounds_like():
    # Episode 1: A and B, labelled. Episode 2: A's voice has drifted (each line alone is a
    # weak match) and propagation called those lines 新角色-1, with A's face on screen; an
    # extra's lines, 新角色-2, sound like no one and show no named face.
    from dramasr.reason.features import candidate_pairs
    from dramasr.tools.voice_cluster import cluster_candidates

    rng = np.random.default_rng(0)
    axes = np.eye(16)
    drift = 0.6 * axes[0] + 0.8 * axes[3]
    voices = ([axes[0] + 0.1 * rng.normal(size=16) for _ in range(10)]
              + [axes[1] + 0.1 * rng.normal(size=16) for _ in range(10)]
              + [drift + 0.5 * rng.normal(size=16) for _ in range(8)]
              + [axes[5] + 0.5 * rng.normal(size=16) for _ in range(8)])
    truth = [A] * 10 + [B] * 10 + [A] * 8 + ["路人"] * 8
    label = [A] * 10 + [B] * 10 + ["新角色-1"] * 8 + ["新角色-2"] * 8
    lines = [(1 if k < 20 else 2, 3.0 * k, 3.0 * k + 1, s, "x") for k, s in enumerate(truth)]
    faces = [(2, 3.0 * k + 0.5, 3.0 * k + 0.5, A, 0.9) for k in range(20, 28)]
    drama = make_drama(lines, faces, cast=[A, B], embeddings=np.asarray(voices, np.float32))
    cands = [[A, B]] * 20 + [["新角色-1", B]] * 8 + [["新角色-2", B]] * 8  # propagation never offered A
    state = LabelState(label, cands, [[0.5, 0.4]] * 36, np.zeros(36, bool))
    ctx = Context.build(drama, state, classes=[A, B])

    assert cluster_candidates(ctx, 21, 1) == [ctx.class_of[A]]
    assert cluster_candidates(ctx, 5) == []  # not in a cluster
    rows = candidate_pairs(ctx, np.array([21]))
    assert ctx.class_of[A] in rows.cls.tolist()  # offered because the cluster sounds like A

    drifted = TOOLS["voice_cluster"].call(ctx, 21, candidates=[A, B]).values
    assert drifted[A]["cluster_size"] == 8.0
    assert drifted[A]["cluster_voice"] > drifted[B]["cluster_voice"] + 0.3
    assert drifted[A]["cluster_voice_margin"] > 0.3 > 0 > drifted[B]["cluster_voice_margin"]
    assert drifted[A]["cluster_face_share"] == 1.0 and drifted[B]["cluster_face_share"] == 0.0
    # the whole cluster is more like A than its lines one by one
    single = TOOLS["audio_sim"].call(ctx, 21, candidates=[A]).values[A]["audio_centroid"]
    assert drifted[A]["cluster_voice"] > single
    extra = TOOLS["voice_cluster"].call(ctx, 30, candidates=[A, B]).values
    assert extra[A]["cluster_face_share"] == 0.0 and extra[A]["cluster_best_voice"] < 0.3
    outside = TOOLS["voice_cluster"].call(ctx, 5, candidates=[A, B])
    assert outside.values[A]["cluster_size"] == 0.0 and "no new-character cluster" in outside.text


def test_find_sorted_says_where_a_value_is_and_whether_it_is_there():
    from dramasr.tools.tables import find_sorted

    keys = np.array([2, 5, 9], np.int64)
    where, found = find_sorted(keys, np.array([5, 1, 9, 10, 6], np.int64))
    np.testing.assert_array_equal(found, [True, False, True, False, False])
    np.testing.assert_array_equal(where[found], [1, 2])
    assert where.max() < len(keys)  # past the end is clipped in, so keys[where] is safe
    where, found = find_sorted(np.zeros(0, np.int64), np.array([3, 4], np.int64))
    assert not found.any() and where.tolist() == [0, 0]
