"""Corrections file, corrections as seeds, and --suggest (issue 21), on a small synthetic drama."""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dramasr.cli import app
from dramasr.data import load_drama, save_drama
from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER
from dramasr.data.predictions import PredictionRecord, Predictions, write_predictions
from dramasr.errors import DramaError
from dramasr.review.carry import CARRY_COSINE, CarryRule, carry_moves, carry_records, settled_lines
from dramasr.review.corrections import Correction, CorrectionSet, CorrectionsFile
from dramasr.review.seeding import attribute_with_corrections, carry_corrections, corrected_seeds, keep_unrelated
from dramasr.review.suggest import GROUP_PRIOR, GroupGuess, lowest_confidence, suggest
from dramasr.synth import synth_drama


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-episode synthetic drama and its attribution (about 5 s)."""
    from dramasr.attribute import attribute

    root = tmp_path_factory.mktemp("review")
    drama_dir = root / "syn"
    save_drama(synth_drama(seed=3, episodes=2, lines_per_episode=150, name="syn"), drama_dir)
    drama = load_drama(drama_dir)
    pred = root / "pred.jsonl"
    write_predictions(pred, attribute(drama, seeds="1pct").records)
    return drama_dir, pred


def test_corrections_file_round_trip_and_last_say_wins(small: tuple[Path, Path], tmp_path: Path) -> None:
    drama = load_drama(small[0])
    name = sorted(drama.named_characters())[0]
    f = CorrectionsFile(tmp_path / "c.jsonl", drama)
    f.append(Correction(OTHER, line=5, who="ana"))
    f.append(Correction(name, line=5, who="bo"))
    f.append(Correction(name, line=7))
    f.append(Correction(None, line=7))  # withdrawn
    current = f.current()
    assert {i: c.speaker for i, c in current.lines.items()} == {5: name}
    assert current.lines[5].who == "bo" and current.lines[5].when.endswith("Z")
    rows = [json.loads(row) for row in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert rows[0] == {"line": 5, "speaker": OTHER, "who": "ana", "when": rows[0]["when"]}
    f.compact()
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 1
    assert f.current().lines[5].speaker == name


def test_name_not_in_cast_is_one_clear_line(small: tuple[Path, Path], tmp_path: Path) -> None:
    drama = load_drama(small[0])
    f = CorrectionsFile(tmp_path / "c.jsonl", drama)
    with pytest.raises(DramaError) as err:
        f.append(Correction("胡湘江", line=3))
    message = str(err.value)
    assert "'胡湘江' is not in the cast of syn" in message and "line 3" in message and "\n" not in message
    assert not (tmp_path / "c.jsonl").exists() or not (tmp_path / "c.jsonl").read_text()
    with pytest.raises(DramaError, match="no line 999999"):
        f.append(Correction(OTHER, line=999999))
    (tmp_path / "bad.jsonl").write_text('{"line": 1, "speaker": "其他"}\n{"line": "x", "speaker": "其他"}\n')
    with pytest.raises(DramaError, match=r"bad.jsonl.*correction 2: line must be a global line index"):
        CorrectionsFile(tmp_path / "bad.jsonl", drama).read()


def test_a_crash_mid_append_loses_only_that_line(small: tuple[Path, Path], tmp_path: Path) -> None:
    drama = load_drama(small[0])
    path = tmp_path / "c.jsonl"
    path.write_text('{"line": 1, "speaker": "其他"}\n{"line": 2, "spea')
    f = CorrectionsFile(path, drama)
    assert list(f.current().lines) == [1]
    f.append(Correction(OTHER, line=4))
    assert sorted(f.current().lines) == [1, 4]


def test_many_writers_at_once_lose_nothing(small: tuple[Path, Path], tmp_path: Path) -> None:
    drama = load_drama(small[0])
    path = tmp_path / "c.jsonl"

    def writer(start: int) -> None:
        f = CorrectionsFile(path, drama)  # one object per writer, as two servers would have
        for i in range(start, 200, 4):
            f.append(Correction(OTHER, line=i, who=f"w{start}"))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(CorrectionsFile(path, drama).current().lines) == list(range(200))


def test_corrections_merge_into_seeds() -> None:
    base = {"A": [1, 2], "B": [3]}
    cs = CorrectionSet.from_log([
        Correction("B", line=2), Correction("C", line=9), Correction(OTHER, line=1),
        Correction("A", group=f"{NEW_CHARACTER_PREFIX}4", lines=(3, 20, 21)),
    ])
    assert corrected_seeds(base, cs) == {"A": [20, 21], "B": [2, 3], "C": [9]}


def test_corrected_lines_never_change_and_a_named_group_follows(small: tuple[Path, Path]) -> None:
    drama = load_drama(small[0])
    pred = Predictions.from_records([json.loads(r) for r in small[1].read_text().splitlines()], drama)
    named = sorted(drama.named_characters())
    free = [i for i in range(len(drama.lines)) if not (pred.evidence[i] or {}).get("seed")]
    picks = {free[0]: named[0], free[1]: OTHER, free[2]: f"{named[0]}/{named[1]}", free[3]: named[-1]}
    log = [Correction(s, line=i, who="t") for i, s in picks.items()]
    # a group of lines the predictions give to no named character, named after one
    group = tuple(i for i in free[4:] if pred.speaker[i] not in drama.named_characters())[:6]
    assert len(group) >= 3
    log.append(Correction(named[1], group=f"{NEW_CHARACTER_PREFIX}99", lines=group, was=f"{NEW_CHARACTER_PREFIX}99"))
    result = attribute_with_corrections(drama, CorrectionSet.from_log(log))
    for i, speaker in picks.items():
        record = result.records[i]
        assert record.speaker == speaker and record.confidence == 1.0
        assert record.evidence["correction"]["who"] == "t"
    for i in group:
        note = result.records[i].evidence["group_correction"]
        assert note["group"] == f"{NEW_CHARACTER_PREFIX}99"
        # followed, or overruled only by another named character
        assert (result.labels[i] == named[1]) == note["followed"]
        assert note["followed"] or result.labels[i] in drama.named_characters()
    assert sum(result.records[i].evidence["group_correction"]["followed"] for i in group) >= len(group) // 2


def test_a_rerun_moves_lines_only_to_corrected_characters(small: tuple[Path, Path]) -> None:
    drama = load_drama(small[0])
    records = [PredictionRecord(**json.loads(r)) for r in small[1].read_text().splitlines()]
    previous = Predictions.from_records(records, drama)
    named = sorted(drama.named_characters())
    free = [r.line for r in records if not (r.evidence or {}).get("seed")]
    x, y = named[0], named[1]
    a, b, c, d, e, f, g = free[:7]
    corrections = CorrectionSet.from_log([Correction(x, line=a), Correction(x, group=f"{NEW_CHARACTER_PREFIX}5",
                                                                            lines=(f,))])
    prev = list(records)
    prev[d] = replace(prev[d], speaker=f"{NEW_CHARACTER_PREFIX}3")
    prev[e] = replace(prev[e], speaker=OTHER)
    previous = Predictions.from_records(prev, drama)
    rerun = list(prev)
    moved = {b: x, c: OTHER, d: y, e: y, f: y, g: y if prev[g].speaker != y else named[2]}
    for line, speaker in moved.items():
        rerun[line] = replace(rerun[line], speaker=speaker)
    rerun[free[10]] = replace(rerun[free[10]], speaker=f"{NEW_CHARACTER_PREFIX}3")  # the re-run reuses the number
    out = {r.line: r for r in keep_unrelated(rerun, previous, corrections, drama.named_characters())}
    assert out[b].speaker == x and out[c].speaker == OTHER  # to a corrected character, to Other: they stay
    assert out[f].speaker == y  # a corrected group's line is the corrections' business
    assert out[e].speaker == OTHER and out[e].evidence["kept"]["rerun_speaker"] == y
    assert out[g].speaker == prev[g].speaker and "kept" in out[g].evidence
    # kept in its old group, under a number the re-run does not use
    assert out[d].speaker.startswith(NEW_CHARACTER_PREFIX) and out[d].speaker != f"{NEW_CHARACTER_PREFIX}3"
    assert out[free[10]].speaker == f"{NEW_CHARACTER_PREFIX}3"


def test_a_move_from_an_unnamed_answer_needs_a_voice_like_the_corrections(small: tuple[Path, Path]) -> None:
    drama = load_drama(small[0])
    records = [PredictionRecord(**json.loads(r)) for r in small[1].read_text().splitlines()]
    named = sorted(drama.named_characters())
    free = [r.line for r in records if not (r.evidence or {}).get("seed")]
    x, y = named[0], named[1]
    corrected, accepted, near, far, silent, from_named = free[:6]
    prev = list(records)
    prev[accepted] = replace(prev[accepted], speaker=x)
    for line in (near, far, silent):
        prev[line] = replace(prev[line], speaker=OTHER)
    prev[from_named] = replace(prev[from_named], speaker=y)
    previous = Predictions.from_records(prev, drama)
    corrections = CorrectionSet.from_log([Correction(x, line=corrected, was=y), Correction(x, line=accepted, was=x)])
    voices = np.zeros((len(records), 3), np.float32)
    voices[corrected] = [1.0, 0.0, 0.0]
    voices[from_named] = [0.0, 0.0, 1.0]  # far, but it was a named answer
    voices[accepted] = [0.0, 1.0, 0.0]
    voices[near] = [0.0, 0.6, 0.8]  # 0.6 alike to the accepted line: within reach
    voices[far] = [0.3, 0.0, 0.954]  # at most 0.3 alike to any line the corrections gave x
    rerun = list(prev)
    for line in (near, far, silent, from_named):
        rerun[line] = replace(rerun[line], speaker=x)
    out = {r.line: r for r in keep_unrelated(rerun, previous, corrections, drama.named_characters(),
                                             voices=voices, reach=0.4)}
    assert out[near].speaker == x and "kept" not in (out[near].evidence or {})
    assert out[far].speaker == OTHER and "below 0.4" in out[far].evidence["kept"]["why"]
    if importlib.util.find_spec("fastapi") is not None:  # the review page's extra
        from dramasr.review.app import evidence_text

        said = evidence_text({"speaker": OTHER, "evidence": out[far].evidence})
        assert f"re-run with corrections said {x}" in said and "below 0.4 alike" in said  # the page says why
    assert out[silent].speaker == OTHER  # no voice: nothing says it is x's
    assert out[from_named].speaker == x  # from a named answer the move to a corrected character stays
    loose = {r.line: r.speaker for r in keep_unrelated(rerun, previous, corrections, drama.named_characters())}
    assert loose[far] == loose[silent] == x  # no reach: every move to a corrected character stays


def test_suggest_ranks_groups_by_what_they_would_fix(small: tuple[Path, Path]) -> None:
    drama = load_drama(small[0])
    records = [json.loads(r) for r in small[1].read_text().splitlines()]
    # make one line the least confident, and a 12-line new-character group only moderately unsure
    lone = next(r for r in records if not r["evidence"].get("seed"))
    lone["confidence"] = 0.05
    group = [r for r in records if not r["evidence"].get("seed") and r is not lone][20:32]
    for r in group:
        r["speaker"], r["confidence"] = f"{NEW_CHARACTER_PREFIX}7", 0.6
    pred = Predictions.from_records(records, drama)
    picks = suggest(drama, pred, 5)
    assert picks[0].kind == "group" and picks[0].group == f"{NEW_CHARACTER_PREFIX}7"
    assert picks[0].line in [r["line"] for r in group] and len(picks[0].group_lines) == 12
    assert "12 lines" in picks[0].reason and "expected fixes" in picks[0].reason
    assert lowest_confidence(pred, 1) == [lone["line"]]  # the baseline would look at the lone line first
    assert len({s.line for s in picks}) == len(picks)
    # once the group is corrected it is not suggested again
    done = CorrectionSet.from_log([Correction(OTHER, group=picks[0].group, lines=picks[0].group_lines)])
    assert all(s.group != picks[0].group for s in suggest(drama, pred, 5, done))


def test_suggest_counts_every_group_at_the_pooled_share(small: tuple[Path, Path]) -> None:
    # no reading of the group stage carried between the training dramas: every group counts at
    # the share pooled over both (GROUP_PRIOR), larger groups first; the stage's view only words it
    assert 0.1 < GROUP_PRIOR < 0.3
    drama = load_drama(small[0])
    records = [json.loads(r) for r in small[1].read_text().splitlines()]
    free = [r for r in records if not r["evidence"].get("seed")]
    big, small_group = free[10:22], free[40:46]
    for label, rows in ((f"{NEW_CHARACTER_PREFIX}901", big), (f"{NEW_CHARACTER_PREFIX}902", small_group)):
        for r in rows:
            r["speaker"], r["confidence"] = label, 0.97
    pred = Predictions.from_records(records, drama)
    name = sorted(drama.named_characters())[0]
    guesses = {f"{NEW_CHARACTER_PREFIX}901": GroupGuess(name, 0.4, 0.55),
               f"{NEW_CHARACTER_PREFIX}902": GroupGuess(name, 0.01, 0.9)}
    for given in (None, guesses):
        picks = [s for s in suggest(drama, pred, 60, guesses=given) if s.group and s.group.endswith(("901", "902"))]
        assert [s.group for s in picks[:2]] == [f"{NEW_CHARACTER_PREFIX}901", f"{NEW_CHARACTER_PREFIX}902"]
        assert picks[0].expected_fixes == pytest.approx(12 * GROUP_PRIOR)
    first = next(s for s in suggest(drama, pred, 60, guesses=guesses) if s.group == f"{NEW_CHARACTER_PREFIX}901")
    assert f"about {GROUP_PRIOR:.0%} of such groups" in first.reason and f"best guess is {name}" in first.reason


def test_a_correction_carries_to_the_same_voice_with_the_same_label(small: tuple[Path, Path]) -> None:
    drama = load_drama(small[0])
    named = sorted(drama.named_characters())
    a, b = named[0], named[1]
    ep1 = drama.episodes[0]
    n = len(drama.lines)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 16)).astype(np.float32)  # unrelated voices: cosines near 0
    lines = list(range(ep1.line_start, ep1.line_start + 12))
    i, near, near_other_label, far, confident_b, other_i, other_near, two_i, two_near = lines[:9]
    voice, extra = emb[i].copy(), emb[other_i].copy()
    emb[near] = voice + 0.1 * rng.normal(size=16)  # the same voice as the corrected line
    emb[near_other_label] = voice + 0.1 * rng.normal(size=16)
    emb[confident_b] = 0.5 * voice + emb[far]  # cosine to i about 0.45: b's confident line: out of reach, a reference
    emb[other_near] = extra + 0.1 * rng.normal(size=16)
    emb[two_near] = emb[two_i] + 0.1 * rng.normal(size=16)
    in_ep2 = drama.episodes[1].line_start
    emb[in_ep2] = voice + 0.05 * rng.normal(size=16)  # the same voice, another episode: out of reach
    drama = replace(drama, lines=replace(drama.lines, embedding=emb, has_voice=np.ones(n, bool)))
    labels = [OTHER] * n
    for j in (i, near, far, confident_b, other_i, other_near, two_i, two_near, in_ep2):
        labels[j] = b
    labels[near_other_label] = named[2]
    confidence = np.full(n, 0.5)
    confidence[confident_b] = 0.99
    corrections = CorrectionSet.from_log([Correction(a, line=i, was=b), Correction(OTHER, line=other_i, was=b),
                                          Correction(f"{a}/{b}", line=two_i, was=b)])
    settled = settled_lines(n, [None] * n, corrections)
    moves = {m.line: m for m in carry_moves(drama, labels, confidence, settled, corrections)}
    assert set(moves) == {near, other_near}, moves  # not another label, a far voice, another episode, an "A/B" line
    assert moves[near].speaker == a and moves[near].source == i and moves[near].cosine > CARRY_COSINE
    assert moves[other_near].speaker == OTHER
    # an accepted line carries nothing; nor does a line of a new-character group the person did not name
    labels_new = [f"{NEW_CHARACTER_PREFIX}4" if s == b else s for s in labels]
    for log, lab in (([Correction(b, line=i, was=b)], labels),
                     ([Correction(a, line=i, was=f"{NEW_CHARACTER_PREFIX}4")], labels_new)):
        done = CorrectionSet.from_log(log)
        assert carry_moves(drama, lab, confidence, settled_lines(n, [None] * n, done), done) == []
    # when the line is closer to the wrong speaker's confident lines than to the corrected one, it stays
    strict = carry_moves(drama, labels, confidence, settled, corrections, CarryRule(margin=2.0))
    assert strict == []
    # the record says which correction it followed
    records = [PredictionRecord(j, int(drama.lines.episode[j]), labels[j], 0.5, None, ((labels[j], 0.5),), {})
               for j in range(n)]
    out = carry_records(records, list(moves.values()))
    assert out[near].speaker == a and out[near].evidence["carried"]["from_line"] == i
    assert out[near].runner_up == b and out[far].speaker == b
    # the re-run's hook (`previous`: the predictions the person corrected); a line the re-run
    # already moved to the answer keeps the re-run's record
    previous = Predictions.from_records(records, drama)
    rerun = list(records)
    rerun[other_near] = replace(rerun[other_near], speaker=OTHER, evidence={"rerun": True})
    carried = carry_corrections(drama, rerun, previous, corrections)
    assert carried[near].evidence["carried"]["from_line"] == i and carried[other_near].evidence == {"rerun": True}


def test_cli_suggest_and_attribute_with_corrections(small: tuple[Path, Path], tmp_path: Path) -> None:
    drama_dir, pred = small
    runner = CliRunner()
    out = runner.invoke(app, ["review", str(drama_dir), "--pred", str(pred), "--suggest", "3", "--json",
                              "--corrections", str(tmp_path / "none.jsonl")])
    assert out.exit_code == 0, out.output
    picks = json.loads(out.stdout[out.stdout.index("["):])
    assert len(picks) == 3 and all(p["reason"] for p in picks)
    drama = load_drama(drama_dir)
    target = picks[0]["line"]
    name = sorted(drama.named_characters())[0]
    corrections = tmp_path / "c.jsonl"
    corrections.write_text(json.dumps({"line": target, "speaker": name}, ensure_ascii=False) + "\n")
    result = runner.invoke(app, ["attribute", str(drama_dir), "-o", str(tmp_path / "p.jsonl"), "--corrections",
                                 str(corrections), "--no-evaluate"])
    assert result.exit_code == 0, result.output
    rows = {json.loads(r)["line"]: json.loads(r) for r in (tmp_path / "p.jsonl").read_text().splitlines()}
    assert rows[target]["speaker"] == name and "correction" in rows[target]["evidence"]
    corrections.write_text(json.dumps({"line": target, "speaker": "胡湘江"}, ensure_ascii=False) + "\n")
    bad = runner.invoke(app, ["attribute", str(drama_dir), "-o", str(tmp_path / "q.jsonl"), "--corrections",
                              str(corrections)])
    assert bad.exit_code == 2 and "'胡湘江' is not in the cast" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "q.jsonl").exists()
    assert np.all([r["line"] == k for k, r in enumerate(sorted(rows.values(), key=lambda r: r["line"]))])


def test_a_renumbered_new_character_group_is_not_a_change() -> None:
    pytest.importorskip("fastapi")
    from dramasr.review.app import changed_lines

    old = [f"{NEW_CHARACTER_PREFIX}3", f"{NEW_CHARACTER_PREFIX}3", "A", f"{NEW_CHARACTER_PREFIX}5", OTHER]
    new = [f"{NEW_CHARACTER_PREFIX}8", f"{NEW_CHARACTER_PREFIX}8", "A", "B", f"{NEW_CHARACTER_PREFIX}8"]
    assert changed_lines(old, new) == [3, 4]
