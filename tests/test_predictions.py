"""Predictions files: the JSONL format round-trips, bad files fail clearly, release labels read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dramasr.data.predictions import (
    PredictionRecord,
    Predictions,
    detect_format,
    load_any_predictions,
    read_predictions,
    read_prop_labels,
    write_predictions,
)
from dramasr.errors import DramaError
from helpers import make_drama


@pytest.fixture
def drama():
    return make_drama(
        lines=[(1, 0.0, 1.0, "江阳", "你好"), (1, 1.5, 2.0, "其他", "嗯"), (2, 0.0, 3.0, "严良", "走"),
               (2, 4.0, 5.0, "旁白", "那年")],
        faces=[(1, 0.0, 1.0, "江阳", 0.9), (2, 0.0, 2.0, "严良", 0.8)],
    )


def records():
    return [
        PredictionRecord(0, 1, "江阳", 0.9, "严良", (("江阳", 0.9), ("严良", 0.4)), {"face": "江阳"}),
        PredictionRecord(1, 1, "其他", None, None),
        PredictionRecord(2, 2, "严良", 0.7, "江阳", (("严良", 0.7), ("江阳", 0.2))),
        PredictionRecord(3, 2, "旁白", 0.5, None),
    ]


def write_lines(path: Path, objects) -> Path:
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objects)
                    + "\n", encoding="utf-8")
    return path


def good_objects():
    return [r.to_dict() for r in records()]


def test_jsonl_round_trip(tmp_path, drama):
    path = write_predictions(tmp_path / "pred.jsonl", records())
    predictions = read_predictions(path, drama)
    assert predictions.speaker == ["江阳", "其他", "严良", "旁白"]
    assert predictions.confidence[0] == pytest.approx(0.9) and math.isnan(predictions.confidence[1])
    assert predictions.runner_up[:2] == ["严良", None]
    assert predictions.candidates[2] == (("严良", 0.7), ("江阳", 0.2))
    assert predictions.evidence[0] == {"face": "江阳"}
    assert list(predictions.records()) == records()
    assert predictions.format == "jsonl" and predictions.source == str(path)
    # The file is readable by a person: one object per line, names not escaped.
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 4 and "江阳" in text


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path, drama):
    path = tmp_path / "pred.jsonl"
    write_predictions(path, records())
    write_predictions(path, Predictions.from_records(records()[::-1], drama))  # order does not matter
    assert [p.name for p in tmp_path.iterdir()] == ["pred.jsonl"]
    assert read_predictions(path, drama).speaker == ["江阳", "其他", "严良", "旁白"]


def test_records_in_any_order_and_dicts_are_accepted(drama):
    predictions = Predictions.from_records([r.to_dict() for r in records()][::-1], drama)
    assert predictions.speaker[3] == "旁白"


def _bad(tmp_path, drama, objects, **kwargs) -> DramaError:
    path = write_lines(tmp_path / "bad.jsonl", objects)
    with pytest.raises(DramaError) as caught:
        read_predictions(path, drama, **kwargs)
    message = str(caught.value)
    assert str(path) in message, message
    return caught.value


def test_bad_json_names_the_line(tmp_path, drama):
    objects = good_objects()
    objects[2] = '{"line": 2, "episode": 2,'
    error = _bad(tmp_path, drama, objects)
    assert error.line == 3 and "line 3" in str(error) and "JSON" in str(error)


def test_not_an_object(tmp_path, drama):
    objects = good_objects()
    objects[0] = "[0, 1, 2]"
    error = _bad(tmp_path, drama, objects)
    assert error.line == 1 and "object" in str(error)


@pytest.mark.parametrize("field", ["line", "episode", "speaker"])
def test_missing_required_field(tmp_path, drama, field):
    objects = good_objects()
    del objects[1][field]
    error = _bad(tmp_path, drama, objects)
    assert (error.line, error.field) == (2, field)
    assert f"field '{field}'" in str(error) and "missing" in str(error)


@pytest.mark.parametrize(
    ("field", "value"),
    [("line", "0"), ("line", 1.5), ("line", True), ("episode", None), ("speaker", ""), ("speaker", 7),
     ("confidence", "high"), ("runner_up", 3), ("candidates", [["江阳"]]), ("candidates", "江阳"),
     ("evidence", [1])],
)
def test_mistyped_field(tmp_path, drama, field, value):
    objects = good_objects()
    objects[1][field] = value
    error = _bad(tmp_path, drama, objects)
    assert (error.line, error.field) == (2, field)
    assert f"line 2, field '{field}'" in str(error)


def test_line_out_of_range(tmp_path, drama):
    objects = good_objects()
    objects[3]["line"] = 4
    error = _bad(tmp_path, drama, objects)
    assert (error.line, error.field) == (4, "line")
    assert "0..3" in str(error)


def test_episode_must_match_the_line(tmp_path, drama):
    objects = good_objects()
    objects[2]["episode"] = 1
    error = _bad(tmp_path, drama, objects)
    assert (error.line, error.field) == (3, "episode")
    assert "episode 2" in str(error)


def test_duplicate_line(tmp_path, drama):
    objects = good_objects()
    objects[3] = dict(objects[0])
    error = _bad(tmp_path, drama, objects)
    assert (error.line, error.field) == (4, "line")
    assert "twice" in str(error) and "JSONL line 1" in str(error)


def test_missing_lines_are_reported_unless_allowed(tmp_path, drama):
    objects = good_objects()[:2]
    error = _bad(tmp_path, drama, objects)
    assert error.field == "line" and "2 of 4" in str(error) and "line 2, episode 2" in str(error)
    predictions = read_predictions(tmp_path / "bad.jsonl", drama, allow_missing=True)
    assert predictions.speaker == ["江阳", "其他", None, None]
    assert predictions.missing.tolist() == [2, 3]


def test_unreadable_file(tmp_path, drama):
    with pytest.raises(DramaError, match="cannot read"):
        read_predictions(tmp_path / "absent.jsonl", drama)


def test_blank_lines_and_unknown_fields_are_tolerated(tmp_path, drama):
    objects = good_objects()
    objects[0]["method"] = "lp"
    path = write_lines(tmp_path / "pred.jsonl", [objects[0], "", *objects[1:]])
    assert read_predictions(path, drama).speaker[0] == "江阳"


# ----------------------------------------------------------------------------- release labels


def prop_labels(codes, rel_infos=None, is_gt=None) -> dict:
    characters = ["江阳", "严良", "旁白", "新角色-1"]
    n = len(codes)
    rel_infos = rel_infos or [{"_list": [], "_dict": {}}] * n
    return {
        "characters": len(characters),
        "character_list": [{"name": c, "code": k, "is_known": not c.startswith("新角色"), "is_global": c == "旁白",
                            "utterance_list": [i for i, code in enumerate(codes) if code == k]}
                           for k, c in enumerate(characters)],
        "character_dict": {c: k for k, c in enumerate(characters)},
        "utterance_label": [{"code": code, "is_gt": bool(is_gt and is_gt[i]), "rel_info": rel_infos[i]}
                            for i, code in enumerate(codes)],
    }


def test_prop_labels_read_as_predictions(tmp_path, drama):
    rel = [{"_list": ["江阳", "严良"], "_dict": {"江阳": 0.8, "严良": 0.3}},
           {"_list": ["严良"], "_dict": {"严良": 0.4}},
           {"_list": ["新角色-1", "严良"], "_dict": {"新角色-1": 1.0, "严良": 0.5}},
           {"_list": [], "_dict": {}}]
    path = tmp_path / "prop_labels_x.json"
    path.write_text(json.dumps(prop_labels([0, -3, 3, 2], rel, is_gt=[True, False, False, False]),
                               ensure_ascii=False), encoding="utf-8")
    predictions = read_prop_labels(path, drama)
    assert predictions.speaker == ["江阳", "其他", "新角色-1", "旁白"]
    assert predictions.candidates[0] == (("江阳", 0.8), ("严良", 0.3))
    assert predictions.confidence[0] == pytest.approx(0.8) and math.isnan(predictions.confidence[1])
    assert predictions.runner_up[:3] == ["严良", "严良", "严良"]
    assert predictions.evidence[0] == {"seed": True} and predictions.evidence[1] is None
    assert predictions.format == "prop_labels"
    assert load_any_predictions(path, drama).speaker == predictions.speaker


def test_prop_labels_errors_name_the_field(tmp_path, drama):
    path = tmp_path / "prop_labels_x.json"
    path.write_text(json.dumps(prop_labels([0, 1, 9, 2])), encoding="utf-8")
    with pytest.raises(DramaError) as caught:
        read_prop_labels(path, drama)
    assert caught.value.field == "utterance_label[2].code" and str(path) in str(caught.value)

    path.write_text(json.dumps(prop_labels([0, 1])), encoding="utf-8")
    with pytest.raises(DramaError, match="2 labels but the drama 'tiny' has 4"):
        read_prop_labels(path, drama)


def test_unlabelled_codes_are_missing_predictions(tmp_path, drama):
    path = tmp_path / "init_seeds_x.json"
    path.write_text(json.dumps(prop_labels([0, -1, -1, 2])), encoding="utf-8")
    with pytest.raises(DramaError, match="no prediction for 2 of 4"):
        read_prop_labels(path, drama)
    assert read_prop_labels(path, drama, allow_missing=True).speaker == ["江阳", None, None, "旁白"]


def test_format_detection(tmp_path, drama):
    jsonl = write_predictions(tmp_path / "pred.txt", records())
    assert detect_format(jsonl) == "jsonl"
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(prop_labels([0, -3, 1, 2]), indent=1), encoding="utf-8")
    assert detect_format(labels) == "prop_labels"
    assert load_any_predictions(labels, drama).speaker == ["江阳", "其他", "严良", "旁白"]
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(DramaError, match="unrecognised predictions format"):
        load_any_predictions(other, drama)
