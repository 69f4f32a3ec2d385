"""Evaluation reports: figures, files on disk, terminal tables."""

from __future__ import annotations

import json
import warnings

import pytest
from rich.console import Console

from dramasr.data.predictions import Predictions
from dramasr.errors import DramaError
from dramasr.evaluate import evaluate, report_renderables, report_table, write_report
from helpers import make_drama


@pytest.fixture
def drama():
    return make_drama(
        lines=[(1, 0.0, 0.5, "江阳", "a"), (1, 1.0, 2.5, "江阳", "b"), (1, 3.0, 4.0, "其他", "c"),
               (2, 0.0, 3.5, "严良", "d"), (2, 4.0, 5.0, "!删除!", "e"), (2, 6.0, 7.0, "旁白", "f")],
        faces=[(1, 0.0, 1.0, "江阳", 0.9), (2, 0.0, 2.0, "严良", 0.8)],
    )


@pytest.fixture
def predictions(drama):
    return Predictions.from_arrays(
        drama, ["江阳", "严良", "新角色-2", "严良", "江阳", "其他"],
        candidates=[(("江阳", 0.9),), (("严良", 0.5), ("江阳", 0.4)), None, (("严良", 0.8),), None, (("江阳", 0.3),)],
    )


def test_evaluate_scores_the_drama(drama, predictions):
    report = evaluate(drama, predictions)
    assert (report.score.overall.correct, report.score.overall.total) == (3, 5)
    assert report.accuracy == pytest.approx(60.0)
    assert report.score.skipped == 1
    assert report.named_characters == 3  # 江阳, 严良 from faces; 旁白 from narration
    assert {ep: t.total for ep, t in report.score.by_episode.items()} == {1: 3, 2: 2}


def test_lenient_rule_forgives_other_for_truth_outside_candidates(drama, predictions):
    assert evaluate(drama, predictions, "lenient").accuracy == pytest.approx(80.0)  # 旁白 -> 其他 now accepted


def test_lenient_rule_needs_candidates(drama):
    bare = Predictions.from_arrays(drama, ["江阳"] * 6)
    with pytest.raises(DramaError, match="candidate"):
        evaluate(drama, bare, "lenient")


def test_predictions_of_another_drama_are_refused(drama):
    other = make_drama(lines=[(1, 0.0, 1.0, "江阳", "x")])
    with pytest.raises(DramaError, match="another drama"):
        evaluate(drama, Predictions.from_arrays(other, ["江阳"]))


def test_write_report_writes_json_markdown_and_plots(tmp_path, drama, predictions):
    report = evaluate(drama, predictions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no glyph warnings for Chinese names
        written = write_report(report, tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == sorted(["report.json", "report.md", "accuracy_by_duration.png", "accuracy_by_episode.png",
                            "characters.png"])
    for path in written:
        assert path.is_file() and path.stat().st_size > 0
    assert (tmp_path / "report" / "characters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert data["overall"]["accuracy"] == pytest.approx(60.0)
    assert data["drama"] == "tiny" and data["rule"] == "strict"
    assert {c["name"] for c in data["by_character"]} == {"江阳", "其他", "严良", "旁白"}
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "60.00%" in markdown and "江阳" in markdown and "![characters.png](characters.png)" in markdown
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_report_json_round_trips(drama, predictions):
    report = evaluate(drama, predictions)
    assert json.loads(report.to_json()) == json.loads(json.dumps(report.to_dict()))


def test_terminal_tables(drama, predictions):
    report = evaluate(drama, predictions)
    console = Console(width=100, record=True)
    console.print(report_table(report))
    text = console.export_text()
    assert "60.00%" in text and "江阳" in text and ">=3s" in text
    assert len(report_renderables(report, brief=True)) == 2
