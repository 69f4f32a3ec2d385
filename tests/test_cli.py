"""The `dramasr` command as a user runs it: outputs written, errors as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dramasr.cli import app
from dramasr.data import load_drama, save_drama
from dramasr.synth import synth_drama

runner = CliRunner()


@pytest.fixture(scope="module")
def drama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "tiny_synth"
    save_drama(synth_drama(seed=3, episodes=2, lines_per_episode=120, name="tiny_synth"), root)
    return root


def test_demo_says_the_data_is_synthetic_and_scores_both_stages(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC DATA" in result.output
    assert "label propagation (baseline)" in result.output and "trained reasoner" in result.output
    assert (tmp_path / "attribution.jsonl").is_file() and (tmp_path / "propagation.jsonl").is_file()


def test_info_json(drama_dir: Path) -> None:
    result = runner.invoke(app, ["info", str(drama_dir), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["lines"] == 240 and stats["episodes"] == 2


def test_propagate_then_evaluate_and_export(drama_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    result = runner.invoke(app, ["propagate", str(drama_dir), "-o", str(labels)])
    assert result.exit_code == 0, result.output
    assert len(labels.read_text("utf-8").splitlines()) == 240

    report_dir = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(drama_dir), "--pred", str(labels), "-o", str(report_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads((report_dir / "report.json").read_text("utf-8"))
    assert report["rule"] == "strict" and report["scored"] == report["overall"]["total"] > 0
    assert (report_dir / "report.md").is_file()

    result = runner.invoke(app, ["export", str(drama_dir), "--pred", str(labels), "-o", str(tmp_path / "subs"),
                                 "--format", "vtt"])
    assert result.exit_code == 0, result.output
    first = load_drama(drama_dir).episodes[0].stem
    assert "<v " in (tmp_path / "subs" / f"{first}.vtt").read_text("utf-8")


def test_attribute_writes_speaker_confidence_runner_up(drama_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["attribute", str(drama_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert len(records) == 240
    assert {"line", "episode", "speaker", "confidence", "runner_up"} <= set(records[0])


def test_bad_predictions_file_is_one_line_and_exit_2(drama_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"line": 0, "episode": 1, "speaker": "x"}\n{"line": 99999, "episode": 1, "speaker": "y"}\n',
                   encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(drama_dir), "--pred", str(bad)])
    assert result.exit_code == 2
    assert "bad.jsonl" in result.output and "Traceback" not in result.output


def test_bad_option_names_the_option(drama_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["propagate", str(drama_dir), "-o", str(tmp_path / "x.txt")])
    assert result.exit_code == 2
    assert "option --output" in result.output

    result = runner.invoke(app, ["propagate", str(drama_dir), "-o", str(tmp_path / "x.json"), "--seeds", "nope"])
    assert result.exit_code == 2
    assert "seeds" in result.output and "Traceback" not in result.output


def test_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "not a folder" in result.output
