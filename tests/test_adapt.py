"""The drama stage: trees fitted on a drama's sure lines re-score its unsure lines only,
its settings travel in the model file, and the records say which lines it re-scored."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tests.test_reason import QUICK, _dialogue

from dramasr.attribute import attribute
from dramasr.reason.adapt import drama_blend
from dramasr.reason.model import AttributionModel, DramaStage
from dramasr.reason.policy import run_policy
from dramasr.tools import Context
from dramasr.train import train

EAGER = DramaStage(confidence=0.9, weight=0.3, min_lines=20)  # a small drama has few sure lines


def _trained(stage: DramaStage | None):
    drama, state = _dialogue(seed=0)
    return train([drama], [state], replace(QUICK, drama_stage=stage))


def test_drama_stage_settings_round_trip_in_the_model_file(tmp_path):
    model = _trained(DramaStage(confidence=0.8, weight=0.25, max_lines=500, min_lines=10))
    loaded = AttributionModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.drama_stage == model.drama_stage
    assert dict(loaded.drama_stage.tree_params) == dict(DramaStage().tree_params)
    assert AttributionModel.load(replace(model, drama_stage=None).save(tmp_path / "n.npz")).drama_stage is None


def test_only_the_unsure_lines_are_blended():
    model = _trained(None)
    drama, state = _dialogue(n_scenes=24, seed=4, noise=2.5)
    ctx, decisions = run_policy(Context.build(drama, state), model)
    rows, score, confidence = decisions.rows, decisions.score, decisions.confidence
    none = np.zeros(len(rows.lines), bool)
    _, full = model.stages(model.passes)
    blend = drama_blend(ctx, rows, score, confidence, none, full, EAGER)
    assert blend is not None and blend.unsure.any() and (~blend.unsure).sum() >= EAGER.min_lines
    np.testing.assert_array_equal(blend.unsure, confidence < EAGER.confidence)
    row_unsure = np.repeat(blend.unsure, np.diff(rows.starts))
    np.testing.assert_array_equal(blend.score[~row_unsure], score[~row_unsure])  # sure lines untouched
    assert not np.allclose(blend.score[row_unsure], score[row_unsure])
    # each unsure line's scores are still a distribution over its candidates
    np.testing.assert_allclose(np.add.reduceat(blend.score, rows.starts[:-1]), 1.0, atol=1e-9)
    # a line left out is neither an example nor blended; too few sure lines: no stage
    out = drama_blend(ctx, rows, score, confidence, blend.unsure, full, EAGER)
    assert out is None
    assert drama_blend(ctx, rows, score, confidence, none, full, replace(EAGER, min_lines=10 ** 6)) is None


def test_attribution_records_what_the_drama_stage_changed():
    plain = _trained(None)
    model = replace(plain, drama_stage=EAGER)
    drama, state = _dialogue(n_scenes=24, seed=4, noise=2.5)
    before = attribute(drama, labels=state, model=plain)
    after = attribute(drama, labels=state, model=model)
    blended = [r for r in after.records if "drama_stage" in (r.evidence or {})]
    assert blended
    for r in after.records:
        old = before.records[r.line]
        if "drama_stage" in (r.evidence or {}):
            assert old.confidence < EAGER.confidence
            assert r.evidence["drama_stage"]["line_stage_speaker"] in (old.speaker, "其他")
            assert r.evidence["drama_stage"]["examples"] >= EAGER.min_lines
        else:  # a sure line keeps its speaker and confidence
            assert (r.speaker, r.confidence) == (old.speaker, old.confidence)
