"""The release layout: reading, writing back unchanged, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dramasr.data import load_drama, save_drama
from dramasr.errors import DramaError


def _line(ep: int, k: int, start: str, end: str, text: str, who: str) -> dict:
    return {
        "episode_idx": ep - 1, "object_idx": k, "start_time": start, "end_time": end,
        "start_frame": 25 * k, "end_frame": 25 * k + 20, "geometry": {}, "text": text,
        "character": who,
    }


def _face(ep: int, k: int, start: str, end: str, name: str, score: float) -> dict:
    return {
        "episode_idx": ep - 1, "object_idx": k, "start_time": start, "end_time": end,
        "start_frame": 10, "end_frame": 12,
        "geometry": {"active_frames": 2, "active_frame_list": {
            "0": {"frame": 10, "box": {"0": 1, "1": 2, "2": 30, "3": 40}},
            "1": {"frame": 12, "box": {"0": 2, "1": 3, "2": 31, "3": 41}},
        }},
        "ids": 1, "id_list": {"0": {"name": name, "score": score, "source": {}}},
    }


def _episode(objects: list[dict], ep: int) -> dict:
    return {"episode_idx": ep - 1, "objects": len(objects),
            "object_list": {str(i): o for i, o in enumerate(objects)}}


@pytest.fixture
def drama_dir(tmp_path: Path) -> Path:
    """A two-episode drama in the release layout, written by hand."""
    root = tmp_path / "tiny"
    for sub in ("subtitle_data", "face_data", "sv_embedding"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    episodes = {
        1: [_line(1, 0, "00:00:01.000", "00:00:02.500", "李雷，你来了", "韩梅"),
            _line(1, 1, "00:00:03.000", "00:00:03.800", "嗯", "李雷"),
            _line(1, 2, "00:00:04.000", "00:00:06.000", "走吧", "!删除!李雷!")],
        2: [_line(2, 0, "00:01:00.000", "00:01:01.200", "路人甲说话", "其他"),
            _line(2, 1, "00:01:02.000", "00:01:05.000", "这是旁白", "旁白")],
    }
    for ep, lines in episodes.items():
        (root / "subtitle_data" / f"{ep:04d}.json").write_text(
            json.dumps(_episode(lines, ep), ensure_ascii=False), encoding="utf-8")
        np.save(root / "sv_embedding" / f"{ep:04d}.npy", rng.normal(size=(len(lines), 8)).astype(np.float32))
        faces = [_face(ep, 0, "00:00:01.000", "00:00:02.000", "韩梅", 0.8),
                 _face(ep, 1, "00:00:03.000", "00:00:03.500", "0001_pro0_id2", 0.3)]
        (root / "face_data" / f"{ep:04d}.json").write_text(
            json.dumps(_episode(faces, ep), ensure_ascii=False), encoding="utf-8")
    face_info = {"role_name_variants": {"韩梅": "韩梅", "李雷": "李雷"}, "actor_name": {}}
    (root / "face_data" / "face_info.json").write_text(json.dumps(face_info, ensure_ascii=False), encoding="utf-8")
    return root


def _edit_episode(root: Path, ep: int, change) -> Path:
    path = root / "subtitle_data" / f"{ep:04d}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_loads_columns_in_global_order(drama_dir: Path) -> None:
    drama = load_drama(drama_dir)
    assert len(drama.lines) == 5
    assert drama.lines.episode.tolist() == [1, 1, 1, 2, 2]
    assert drama.lines.start.tolist() == [1.0, 3.0, 4.0, 60.0, 62.0]
    assert drama.lines.deleted.tolist() == [False, False, True, False, False]
    assert drama.lines.embedding.shape == (5, 8)
    assert len(drama.faces) == 4
    # named = cast names seen in face tracks, plus narration; 李雷 never shows a face
    assert drama.named_characters() == frozenset({"韩梅", "旁白"})


def test_optional_files_are_reported_not_required(drama_dir: Path) -> None:
    drama = load_drama(drama_dir)
    assert drama.relation is None and drama.captions is None and not drama.seed_files
    assert {"relation.json", "caption.json", "init_seeds_*.json"} <= set(drama.missing)


def test_round_trip_writes_identical_content(drama_dir: Path, tmp_path: Path) -> None:
    out = save_drama(load_drama(drama_dir), tmp_path / "copy")
    for src in sorted(p for p in drama_dir.rglob("*") if p.is_file()):
        dst = out / src.relative_to(drama_dir)
        if src.suffix == ".npy":
            assert np.array_equal(np.load(src), np.load(dst)), src.name
        else:
            assert json.loads(src.read_text("utf-8")) == json.loads(dst.read_text("utf-8")), src.name


def test_round_trip_real_drama(shared_dir: Path, tmp_path: Path) -> None:
    src = shared_dir / "dramasr" / "chen_mo_de_zhen_xiang"
    out = save_drama(load_drama(src), tmp_path / "copy")
    for path in sorted(p for p in src.rglob("*.json")):
        assert json.loads(path.read_bytes()) == json.loads((out / path.relative_to(src)).read_bytes()), path.name
    for path in sorted(src.rglob("*.npy")):
        assert np.array_equal(np.load(path), np.load(out / path.relative_to(src)))


def _error(root: Path) -> str:
    with pytest.raises(DramaError) as info:
        load_drama(root)
    return str(info.value)


def test_bad_timestamp_names_file_episode_line_field(drama_dir: Path) -> None:
    _edit_episode(drama_dir, 2, lambda d: d["object_list"]["1"].update(start_time="1:2:3"))
    message = _error(drama_dir)
    assert "0002.json" in message and "episode 2" in message and "line 1" in message
    assert "start_time" in message and "HH:MM:SS.mmm" in message


def test_missing_field_is_named(drama_dir: Path) -> None:
    _edit_episode(drama_dir, 1, lambda d: d["object_list"]["2"].pop("text"))
    message = _error(drama_dir)
    assert "episode 1" in message and "line 2" in message and "'text'" in message


def test_truth_is_optional(drama_dir: Path) -> None:
    _edit_episode(drama_dir, 1, lambda d: d["object_list"]["2"].pop("character"))
    drama = load_drama(drama_dir)
    assert drama.lines.speaker[2] == "" and not drama.lines.labelled[2] and drama.lines.labelled[1]
    assert drama.has_truth and not drama.mends


def test_embedding_rows_must_match_lines(drama_dir: Path) -> None:
    np.save(drama_dir / "sv_embedding" / "0001.npy", np.zeros((2, 8), np.float32))
    message = _error(drama_dir)
    assert "sv_embedding/0001.npy" in message and "2 rows for 3 subtitle lines" in message


def test_unknown_episode_numbering(drama_dir: Path) -> None:
    (drama_dir / "subtitle_data" / "0002.json").rename(drama_dir / "subtitle_data" / "ep2.json")
    message = _error(drama_dir)
    assert "ep2.json" in message and "episode numbering" in message


def test_episode_without_subtitles_is_an_error(drama_dir: Path) -> None:
    np.save(drama_dir / "sv_embedding" / "0003.npy", np.zeros((1, 8), np.float32))
    assert "0003.npy" in _error(drama_dir)


def test_non_utf8_file(drama_dir: Path) -> None:
    path = drama_dir / "subtitle_data" / "0001.json"
    path.write_bytes(path.read_text("utf-8").encode("gb18030"))
    message = _error(drama_dir)
    assert "0001.json" in message and "UTF-8" in message


def test_empty_drama(tmp_path: Path) -> None:
    (tmp_path / "empty" / "subtitle_data").mkdir(parents=True)
    assert "empty drama" in _error(tmp_path / "empty")


def test_end_before_start_is_swapped_and_reported(drama_dir: Path) -> None:
    before = load_drama(drama_dir)
    _edit_episode(drama_dir, 1, lambda d: d["object_list"]["0"].update(
        start_time=d["object_list"]["0"]["end_time"], end_time=d["object_list"]["0"]["start_time"]))
    drama = load_drama(drama_dir)
    assert drama.lines.start_ms[0] == before.lines.start_ms[0] and drama.lines.end_ms[0] == before.lines.end_ms[0]
    (mend,) = drama.mends
    assert mend.kind == "time_reversed" and mend.episode == 1 and "line 0" in mend.example
    assert "0001.json" in mend.file
    with pytest.raises(DramaError, match="swapped"):
        load_drama(drama_dir, strict=True)


def test_object_list_gap_is_read_in_key_order(drama_dir: Path) -> None:
    _edit_episode(drama_dir, 1, lambda d: d["object_list"].pop("1"))
    np.save(drama_dir / "sv_embedding" / "0001.npy", np.load(drama_dir / "sv_embedding" / "0001.npy")[[0, 2]])
    drama = load_drama(drama_dir)
    assert drama.episodes[0].line_stop == 2
    assert {m.kind for m in drama.mends} == {"object_keys", "objects_count"}


def test_malformed_face_track_is_dropped_and_reported(drama_dir: Path) -> None:
    before = load_drama(drama_dir)
    path = drama_dir / "face_data" / "0002.json"
    doc = json.loads(path.read_text("utf-8"))
    del doc["object_list"]["1"]["geometry"]["active_frame_list"]["0"]["box"]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    drama = load_drama(drama_dir)
    assert len(drama.faces) == len(before.faces) - 1
    assert len(drama.faces.frame) == len(before.faces.frame) - len(doc["object_list"]["1"]["geometry"][
        "active_frame_list"])
    (mend,) = drama.mends
    assert mend.kind == "face_track_dropped" and "face_data/0002.json" in mend.file and mend.episode == 2
    assert "track 1" in mend.example


def test_drama_without_faces_loads(drama_dir: Path) -> None:
    for path in (drama_dir / "face_data").iterdir():
        path.unlink()
    (drama_dir / "face_data").rmdir()
    drama = load_drama(drama_dir)
    assert len(drama.faces) == 0 and "face_data/" in drama.missing


def test_saving_over_a_longer_drama_drops_its_extra_episodes(drama_dir: Path, tmp_path: Path) -> None:
    drama = load_drama(drama_dir)
    out = save_drama(drama, tmp_path / "copy")
    drama.episodes = drama.episodes[:1]
    save_drama(drama, out)
    assert sorted(p.name for p in (out / "subtitle_data").iterdir()) == ["0001.json"]
    assert sorted(p.name for p in (out / "sv_embedding").iterdir()) == ["0001.npy"]


def test_written_files_get_the_usual_mode_not_the_private_temp_mode(drama_dir: Path, tmp_path: Path) -> None:
    import os

    umask = os.umask(0)
    os.umask(umask)
    out = save_drama(load_drama(drama_dir), tmp_path / "copy")
    mode = (out / "subtitle_data" / "0001.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_episode_range_is_a_drama_of_its_own():
    from tests.helpers import make_drama

    lines = [(ep, 2.0 * k, 2.0 * k + 1, "甲" if k % 2 else "乙", f"{ep}-{k}") for ep in (1, 2, 3) for k in range(4)]
    faces = [(ep, 2.0 * k, 2.0 * k + 1, "甲", 0.9) for ep in (1, 2, 3) for k in range(ep)]
    drama = make_drama(lines, faces, cast=["甲", "乙"])
    part = drama.episode_range(2, 3)
    assert [ep.number for ep in part.episodes] == [2, 3]
    assert part.episodes[0].line_start == 0 and part.episodes[-1].line_stop == len(part.lines) == 8
    assert part.lines.text == drama.lines.text[4:]
    assert np.array_equal(part.lines.embedding, drama.lines.embedding[4:])
    assert len(part.faces) == 5 and part.faces.frame_offsets[0] == 0
    assert part.faces.frame_offsets[-1] == len(part.faces.frame) == len(part.faces.box)
    assert part.episodes[1].face_start == 2 and part.episodes[1].face_stop == 5
    with pytest.raises(IndexError):
        drama.episode_range(7, 9)


def test_timestamps_read_without_the_pattern_as_with_it() -> None:
    """The released form HH:MM:SS.mmm is read by slicing; every other form, and any stamp the
    slicing would misread, goes through the pattern, with the same answer or error."""
    from dramasr.data.fileio import _TIME, Mends, parse_time

    def by_pattern(value: str) -> int | str:
        match = _TIME.match(value)
        if match is None:
            return "error"
        hours, minutes, seconds, frac = match.groups()
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int((frac or "0").ljust(3, "0"))

    stamps = ["00:01:28.200", "01:59:59,999", "00:00:00.000", "12:34:56.789", "00:01:28.2", "1:02:03.400",
              "00:60:00.000", "00:00:75.000", "00:01:2８.200", "０0:01:28.200", "00:01:28.2a0", "00-01-28.200",
              "00:01:28;200", " 0:01:28.200", "00:01:28.200 "]
    for stamp in stamps:
        try:
            got: int | str = parse_time(stamp, file=Path("x.json"), episode=1, line=0, field="start_time",
                                        mends=Mends())
        except DramaError:
            got = "error"
        assert got == by_pattern(stamp), stamp
