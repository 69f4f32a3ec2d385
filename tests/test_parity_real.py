"""Parity with the release on the real benchmark: our scorer reproduces its published figures.

Skips when ../shared (the benchmark data) is absent.
"""

from __future__ import annotations

import json

import pytest

from dramasr.data import load_drama
from dramasr.data.predictions import load_any_predictions, read_predictions, write_predictions
from dramasr.evaluate import evaluate

BUCKETS = ("<1s", "1-2s", "2-3s", ">=3s", "<2s", ">=2s")


@pytest.fixture(scope="module")
def reference(shared_dir):
    return json.loads((shared_dir / "reference" / "lp_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def chen_mo(shared_dir):
    return load_drama(shared_dir / "dramasr" / "chen_mo_de_zhen_xiang")


def _assert_matches(report, figures):
    assert report.score.overall.total == figures["n"]
    assert round(report.accuracy, 2) == figures["all"]
    for label in BUCKETS:
        assert round(report.score.by_duration[label].percent, 2) == figures[label], label


def test_released_prop_labels_score_87_92(shared_dir, chen_mo, reference):
    labels = shared_dir / "dramasr" / "chen_mo_de_zhen_xiang" / "prop_labels_1pct_apw.json"
    report = evaluate(chen_mo, load_any_predictions(labels, chen_mo))
    assert report.score.overall.total == 8247
    assert f"{report.accuracy:.2f}" == "87.92"
    _assert_matches(report, reference["chen_mo_de_zhen_xiang"])


def test_jsonl_conversion_keeps_the_score(shared_dir, chen_mo, tmp_path):
    labels = load_any_predictions(shared_dir / "dramasr" / "chen_mo_de_zhen_xiang" / "prop_labels_1pct_apw.json",
                                  chen_mo)
    path = write_predictions(tmp_path / "chen_mo.jsonl", labels)
    again = read_predictions(path, chen_mo)
    assert again.speaker == labels.speaker
    for rule in ("strict", "lenient"):
        assert evaluate(chen_mo, again, rule).score.overall == evaluate(chen_mo, labels, rule).score.overall


@pytest.mark.parametrize("name", ["kuang_biao", "ren_shi_jian"])
def test_reference_lp_labels_match_lp_reference(shared_dir, reference, name):
    labels = shared_dir / "reference" / "lp_labels" / f"{name}.json"
    if not labels.is_file() or not (shared_dir / "dramasr" / name).is_dir():
        pytest.skip(f"{name} reference labels or drama absent")
    drama = load_drama(shared_dir / "dramasr" / name)
    report = evaluate(drama, load_any_predictions(labels, drama))
    _assert_matches(report, reference[name])
