"""The benchmark's correctness rule and the metrics built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dramasr.errors import DramaError
from dramasr.score import NO_PREDICTION, duration_ms, line_correct, score_lines

NAMED = {"江阳", "严良", "旁白"}


def correct(truth, prediction, **kwargs):
    return line_correct(truth, prediction, NAMED, **kwargs).tolist()


def test_named_truth_needs_the_exact_name():
    truth = ["江阳", "江阳", "江阳", "江阳"]
    assert correct(truth, ["江阳", "严良", "其他", "新角色-3"]) == [True, False, False, False]


def test_unnamed_truth_accepts_any_prediction_that_is_not_named():
    truth = ["其他", "其他", "岳军", "新角色-1", "岳军"]
    prediction = ["其他", "新角色-9", "新角色-2", "路人", "江阳"]
    assert correct(truth, prediction) == [True, True, True, True, False]


def test_narration_is_a_named_character():
    assert correct(["旁白", "旁白", "其他"], ["旁白", "其他", "旁白"]) == [True, False, False]


def test_missing_prediction_is_always_wrong():
    assert correct(["江阳", "其他"], [None, None]) == [False, False]


def test_lenient_accepts_other_only_for_named_truth_outside_candidates():
    truth = ["江阳", "江阳", "江阳", "江阳", "其他"]
    prediction = ["其他", "其他", "严良", "新角色-4", "江阳"]
    candidates = [["严良"], ["江阳", "严良"], ["严良"], [], ["江阳"]]
    assert correct(truth, prediction, candidates=candidates, rule="lenient") == [True, False, False, True, False]
    assert correct(truth, prediction, candidates=candidates) == [False, False, False, False, False]


def test_lenient_without_candidates_for_a_line_judges_it_strictly():
    assert correct(["江阳"], ["其他"], candidates=[None], rule="lenient") == [False]


def test_lenient_without_any_candidates_is_a_user_error():
    with pytest.raises(DramaError, match="candidate"):
        line_correct(["江阳"], ["其他"], NAMED, rule="lenient")


def test_unknown_rule_is_a_user_error():
    with pytest.raises(DramaError, match="rule"):
        line_correct(["江阳"], ["江阳"], NAMED, rule="loose")  # type: ignore[arg-type]


def _score(truth, prediction, durations=None, episodes=None, **kwargs):
    n = len(truth)
    return score_lines(
        truth, prediction, durations if durations is not None else [1.5] * n,
        episodes if episodes is not None else [1] * n, NAMED, **kwargs,
    )


def test_deleted_lines_are_skipped():
    score = _score(["江阳", "!删除!江阳", "!删除!", "其他"], ["江阳", "严良", None, "其他"])
    assert (score.overall.correct, score.overall.total) == (2, 2)
    assert score.skipped == 2 and score.lines == 4
    assert score.missing == 0
    assert score.overall.percent == 100.0


def test_per_episode_and_per_character_breakdowns():
    score = _score(
        ["江阳", "江阳", "严良", "其他", "江阳"], ["江阳", "严良", "严良", "新角色-1", None], episodes=[1, 1, 2, 2, 3],
    )
    assert {ep: (t.correct, t.total) for ep, t in score.by_episode.items()} == {1: (1, 2), 2: (2, 2), 3: (0, 1)}
    assert list(score.by_character) == ["江阳", "严良", "其他"]  # most lines first, then by name
    jiang = score.by_character["江阳"]
    assert (jiang.tally.correct, jiang.tally.total, jiang.named) == (1, 3, True)
    assert not score.by_character["其他"].named
    assert score.missing == 1
    assert (score.open_set.correct, score.open_set.total) == (1, 1)


@pytest.mark.parametrize(
    ("seconds", "bucket", "split"),
    [
        (0.0, "<1s", "<2s"), (0.999, "<1s", "<2s"), (1.0, "1-2s", "<2s"), (1.999, "1-2s", "<2s"),
        (2.0, "2-3s", ">=2s"), (2.999, "2-3s", ">=2s"), (3.0, ">=3s", ">=2s"), (12.5, ">=3s", ">=2s"),
    ],
)
def test_duration_buckets_are_half_open(seconds, bucket, split):
    score = _score(["江阳"], ["江阳"], durations=[seconds])
    assert {label for label, t in score.by_duration.items() if t.total} == {bucket, split}


def test_durations_from_millisecond_times_are_exact():
    # (end_ms - start_ms) / 1000 must land in the bucket its milliseconds say.
    ms = np.array([999, 1000, 1999, 2000, 2999, 3000])
    assert duration_ms(ms / 1000.0).tolist() == ms.tolist()


def test_bucket_accuracy():
    score = _score(["江阳", "江阳", "严良", "严良"], ["江阳", "其他", "严良", "严良"], durations=[0.5, 0.7, 2.5, 4.0])
    figures = {label: (t.correct, t.total) for label, t in score.by_duration.items()}
    assert figures == {"<1s": (1, 2), "1-2s": (0, 0), "2-3s": (1, 1), ">=3s": (1, 1), "<2s": (1, 2), ">=2s": (2, 2)}
    assert math.isnan(score.by_duration["1-2s"].accuracy)


def test_macro_f1_over_named_characters():
    truth = ["江阳", "江阳", "严良", "严良", "其他"]
    prediction = ["江阳", "严良", "严良", "严良", "江阳"]
    score = _score(truth, prediction)
    # 江阳: precision 1/2, recall 1/2 -> 0.5; 严良: precision 2/3, recall 1 -> 0.8; 旁白 absent.
    assert score.macro_f1 == pytest.approx((0.5 + 0.8) / 2)
    assert score.by_character["严良"].f1 == pytest.approx(0.8)
    assert score.by_character["严良"].predicted == 3


def test_macro_f1_counts_a_named_character_that_is_only_predicted():
    score = _score(["江阳", "其他"], ["江阳", "旁白"])
    assert score.macro_f1 == pytest.approx((1.0 + 0.0) / 2)


def test_confusions_rank_wrong_lines_by_count():
    truth = ["江阳", "江阳", "江阳", "严良", "严良", "其他"]
    prediction = ["其他", "其他", "严良", "江阳", None, "其他"]
    score = _score(truth, prediction, top_confusions=3)
    assert [(c.truth, c.predicted, c.count) for c in score.confusions] == [
        ("江阳", "其他", 2), ("严良", NO_PREDICTION, 1), ("严良", "江阳", 1),
    ]


def test_to_dict_is_json_ready():
    import json

    score = _score(["江阳", "其他"], ["江阳", None])
    data = json.loads(json.dumps(score.to_dict()))
    assert data["overall"] == {"correct": 1, "total": 2, "accuracy": 50.0}
    assert data["by_duration"]["<1s"]["accuracy"] is None  # no line there: null, not NaN
