"""Real input, real users: dramas without truth, warnings instead of silent wrong answers,
records that never contradict themselves, subtitles a person can publish, outputs refused
before the work starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pysubs2
import pytest
from typer.testing import CliRunner

from dramasr.attribute import attribute
from dramasr.cli import app
from dramasr.data import load_drama, save_drama
from dramasr.data.subtitles import publish_names
from dramasr.synth import synth_drama

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "dramasr"


@pytest.fixture(scope="module")
def drama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real_input") / "synthetic"
    drama = synth_drama(seed=5, episodes=3, lines_per_episode=80, name="synthetic")
    drama.lines.speaker[3] = "!删除!其他!"  # on-screen text the release marks deleted
    save_drama(drama, root)
    return root


def _without_truth(src: Path, dst: Path) -> Path:
    drama = load_drama(src)
    drama.lines.speaker = [""] * len(drama.lines)
    return save_drama(drama, dst)


def test_a_drama_without_truth_attributes_exactly_as_with_it(drama_dir: Path, tmp_path: Path) -> None:
    bare = load_drama(_without_truth(drama_dir, tmp_path / "bare"))
    assert not bare.has_truth
    with_truth = attribute(load_drama(drama_dir)).records
    without = attribute(bare).records
    assert [r.speaker for r in without] == [r.speaker for r in with_truth]
    assert [r.confidence for r in without] == [r.confidence for r in with_truth]


def test_evaluate_refuses_a_drama_without_truth_and_info_says_so(drama_dir: Path, tmp_path: Path) -> None:
    bare = _without_truth(drama_dir, tmp_path / "bare")
    pred = tmp_path / "p.jsonl"
    assert runner.invoke(app, ["-q", "propagate", str(bare), "-o", str(pred)]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(bare), "--pred", str(pred), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no ground truth" in result.stderr
    info = runner.invoke(app, ["info", str(bare), "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["unlabelled_lines"] == 240


def test_unknown_predicted_names_are_refused_unless_the_rule_is_given(drama_dir: Path, tmp_path: Path) -> None:
    pred = tmp_path / "p.jsonl"
    runner.invoke(app, ["-q", "propagate", str(drama_dir), "-o", str(pred)])
    rows = [json.loads(line) for line in pred.read_text("utf-8").splitlines()]
    truth = load_drama(drama_dir).lines.speaker
    named = load_drama(drama_dir).named_characters()
    victim = next(r for r in rows if truth[r["line"]] and truth[r["line"]] not in named
                  and "!删除!" not in truth[r["line"]] and r["speaker"] not in named)  # an extra, rightly unnamed
    victim["speaker"] = "Zhang Misspelt"
    pred.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    args = ["evaluate", str(drama_dir), "--pred", str(pred), "--json", "-o", str(tmp_path / "r")]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "'Zhang Misspelt' (1 lines)" in refused.stderr
    as_other = runner.invoke(app, [*args, "--unknown-names", "other"])
    as_wrong = runner.invoke(app, [*args, "--unknown-names", "wrong"])
    assert as_other.exit_code == 0 and as_wrong.exit_code == 0
    correct_other = json.loads(as_other.stdout)["overall"]["correct"]
    correct_wrong = json.loads(as_wrong.stdout)["overall"]["correct"]
    assert correct_wrong == correct_other - 1


def test_named_characters_without_seeds_are_warned_about(drama_dir: Path, tmp_path: Path) -> None:
    seeds = json.loads((drama_dir / "init_seeds_1pct.json").read_text("utf-8"))
    for entry in seeds["character_list"]:
        if entry["name"] == "糜棠":
            entry["utterance_list"] = []
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps(seeds, ensure_ascii=False), "utf-8")
    result = runner.invoke(app, ["propagate", str(drama_dir), "--seeds", str(path), "-o", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0
    warning = " ".join(result.stderr.split())
    assert "warning:" in warning and "糜棠 (" in warning and "cannot be predicted" in warning


def test_outputs_are_refused_before_any_work(drama_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["attribute", str(drama_dir), "-o", str(blocker / "p.jsonl")],
                 ["propagate", str(drama_dir), "-o", str(tmp_path)],
                 ["export", str(drama_dir), "--truth", "-o", str(blocker)],
                 ["synth", str(blocker / "new")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert result.stderr.count("\n") == 1 and "option" in result.stderr or "OUT_DIR" in result.stderr, args
    made = runner.invoke(app, ["synth", str(tmp_path / "a" / "b" / "drama"), "--episodes", "1",
                               "--lines-per-episode", "20"])
    assert made.exit_code == 0 and (tmp_path / "a" / "b" / "drama" / "subtitle_data").is_dir()


def test_publish_names_gives_stable_readable_labels() -> None:
    names = ["新角色-118", "其他", "江阳", "新角色-7", "新角色-118", "新角色-7/江阳", "未知", ""]
    assert publish_names(names) == ["Unknown 1", "", "江阳", "Unknown 2", "Unknown 1", "Unknown 2/江阳", "", ""]
    assert publish_names(names, unknown_label="未知{n}", other_label="Other")[:3] == ["未知1", "Other", "江阳"]


def test_export_writes_publishable_subtitles_read_back_by_pysubs2(drama_dir: Path, tmp_path: Path) -> None:
    drama = load_drama(drama_dir)
    pred = tmp_path / "p.jsonl"
    n = len(drama.lines)
    names = ["新角色-41" if i % 7 == 0 else "其他" if i % 5 == 0 else drama.cast[i % 3] for i in range(n)]
    pred.write_text("".join(json.dumps({"line": i, "episode": int(drama.lines.episode[i]), "speaker": s},
                                       ensure_ascii=False) + "\n" for i, s in enumerate(names)), "utf-8")
    refused = runner.invoke(app, ["export", str(drama_dir), "-o", str(tmp_path / "none")])
    assert refused.exit_code == 2 and "--truth" in refused.stderr
    out = tmp_path / "srt"
    assert runner.invoke(app, ["export", str(drama_dir), "--pred", str(pred), "-o", str(out)]).exit_code == 0
    first = drama.episodes[0]
    subs = pysubs2.load(str(out / f"{first.stem}.srt"))
    kept = [i for i in range(first.line_start, first.line_stop) if "!删除!" not in drama.lines.speaker[i]]
    assert len(subs) == len(kept)
    for event, i in zip(subs, kept, strict=True):
        text = event.plaintext
        if names[i] == "新角色-41":
            assert text.startswith("未知1: ")  # a Chinese drama gets Chinese labels
        elif names[i] == "其他":
            assert text == drama.lines.text[i].replace("\\N", "\n")
        else:
            assert text.startswith(f"{names[i]}: ")
    deleted = [i for i in range(n) if "!删除!" in drama.lines.speaker[i]]
    assert deleted, "the synthetic drama should hold a deleted line"
    ass_out = tmp_path / "ass"
    runner.invoke(app, ["export", str(drama_dir), "--pred", str(pred), "-o", str(ass_out), "--format", "ass",
                        "--keep-deleted", "--unknown-label", "Stranger {n}", "--other-label", "Other"])
    events = pysubs2.load(str(ass_out / f"{first.stem}.ass"))
    assert len(events) == first.line_stop - first.line_start
    assert {e.name for e in events} >= {"Stranger 1", "Other"}


@pytest.mark.skipif(not (SHARED / "chen_mo_de_zhen_xiang").is_dir(), reason="shared benchmark data absent")
def test_real_drama_with_quirks_runs_and_every_record_is_consistent(tmp_path: Path) -> None:
    """chen_mo_de_zhen_xiang with a NaN embedding row and a 60-second timestamp injected."""
    drama = load_drama(SHARED / "chen_mo_de_zhen_xiang")
    drama.lines.embedding[100] = np.nan
    root = save_drama(drama, tmp_path / "chen_mo")
    path = root / "subtitle_data" / "0003.json"
    doc = json.loads(path.read_text("utf-8"))
    doc["object_list"]["5"]["end_time"] = doc["object_list"]["5"]["end_time"][:6] + "60.000"
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    pred = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["-q", "attribute", str(root), "-o", str(pred), "--no-evaluate"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("mended:") == 2 and "0003.json" in result.stderr and "0001.npy" in result.stderr
    rows = [json.loads(line) for line in pred.read_text("utf-8").splitlines()]
    assert len(rows) == len(drama.lines)
    for r in rows:
        assert r["candidates"][0][0] == r["speaker"], r
        assert r["runner_up"] != r["speaker"], r
    assert "none" in rows[100]["evidence"]["voice"] and rows[100]["evidence"]["mended"] == ["no_voice"]
    rolled = drama.episodes[2].line_start + 5
    if "seed" not in rows[rolled]["evidence"]:
        assert rows[rolled]["evidence"]["mended"] == ["time_rollover"]


def test_error_messages_keep_their_brackets(drama_dir: Path, tmp_path: Path) -> None:
    """Messages are printed as text, not as terminal markup ("[name, name, relation]" stays)."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(drama_dir, root)
    doc = json.loads((root / "relation.json").read_text("utf-8"))
    doc["relationship_list"].append(["only one"])
    (root / "relation.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    result = runner.invoke(app, ["info", str(root)])
    assert result.exit_code == 0 and "[name, name, relation]" in result.stderr and "mended:" in result.stderr
    (root / "relation.json").write_text('{"relationship_list": {"a": [1]}}', "utf-8")
    result = runner.invoke(app, ["info", str(root)])
    assert result.exit_code == 2 and "[name, name, relation]" in result.stderr
