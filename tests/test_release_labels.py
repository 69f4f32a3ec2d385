"""The release's label files have one parser: propagation, predictions and seeds read them alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dramasr.data.predictions import read_prop_labels
from dramasr.data.release_labels import CODE_OTHER, CODE_UNLABELLED, parse_release_labels
from dramasr.errors import DramaError
from dramasr.propagate import read_release_labels, seeds_from_release
from helpers import make_drama

NAMES = ["江阳", "严良", "新角色-1"]


@pytest.fixture
def drama():
    return make_drama(
        lines=[(1, 0.0, 1.0, "江阳", "你好"), (1, 1.5, 2.0, "其他", "嗯"), (2, 0.0, 3.0, "严良", "走")],
        faces=[(1, 0.0, 1.0, "江阳", 0.9), (2, 0.0, 2.0, "严良", 0.8)],
    )


def label_doc(codes: list[int], rel_info: list) -> dict:
    return {
        "characters": len(NAMES),
        "character_list": [{"name": name, "code": k, "is_known": k < 2, "is_global": False,
                            "utterance_list": [i for i, c in enumerate(codes) if c == k]}
                           for k, name in enumerate(NAMES)],
        "character_dict": {name: k for k, name in enumerate(NAMES)},
        "utterance_label": [{"code": c, "is_gt": i == 0, "rel_info": r}
                            for i, (c, r) in enumerate(zip(codes, rel_info, strict=True))],
    }


def test_propagation_and_predictions_read_the_same_labels(tmp_path, drama):
    rel = [{"_list": ["江阳", "严良"], "_dict": {"江阳": 0.9, "严良": 0.2}}, [],
           {"_list": ["严良", "新角色-1"], "_dict": {"严良": 0.7, "新角色-1": 0.5}}]
    path = tmp_path / "prop_labels_x.json"
    path.write_text(json.dumps(label_doc([0, CODE_OTHER, 1], rel), ensure_ascii=False), encoding="utf-8")
    prop = read_release_labels(path)
    predictions = read_prop_labels(path, drama)
    assert prop.labels == predictions.speaker == ["江阳", "其他", "严良"]
    assert [prop.candidates(i) or None for i in range(3)] == [
        None if c is None else list(c) for c in predictions.candidates]
    assert prop.is_seed.tolist() == [predictions.evidence[i] == {"seed": True} for i in range(3)]
    assert prop.is_known.tolist() == [True, True, False]


def test_both_readers_refuse_a_code_that_names_no_character(tmp_path, drama):
    path = tmp_path / "prop_labels_x.json"
    path.write_text(json.dumps(label_doc([0, 9, 1], [[], [], []])), encoding="utf-8")
    for read in (read_release_labels, lambda p: read_prop_labels(p, drama)):
        with pytest.raises(DramaError) as caught:
            read(path)
        assert caught.value.field == "utterance_label[1].code" and str(path) in str(caught.value)


def test_unlabelled_lines_and_null_scores():
    doc = label_doc([0, CODE_UNLABELLED, 1], [[], None, {"_list": ["严良"], "_dict": {"严良": None}}])
    labels = parse_release_labels(doc)
    assert labels.code.tolist() == [0, CODE_UNLABELLED, 1] and labels.candidates[:2] == [None, None]
    assert labels.candidates[2][0][0] == "严良" and np.isnan(labels.candidates[2][0][1])


def test_seed_file_errors_name_the_field():
    assert seeds_from_release(label_doc([0, 1, 1], [[], [], []])) == {"江阳": [0], "严良": [1, 2], "新角色-1": []}
    with pytest.raises(DramaError) as caught:
        seeds_from_release({"characters": []}, "init_seeds_1pct.json")
    assert caught.value.field == "character_list" and "init_seeds_1pct.json" in str(caught.value)
    with pytest.raises(DramaError) as caught:
        seeds_from_release({"character_list": [{"name": "江阳", "code": 0}]})
    assert caught.value.field == "character_list[0]"
