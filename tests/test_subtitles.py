"""Subtitle files with speaker names: export -> import round trips and errors a user can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dramasr.data.subtitles import (
    SubtitleLine,
    export_subtitles,
    import_subtitles,
    lines_from_subtitles,
    render_subtitles,
)
from dramasr.errors import DramaError
from dramasr.synth import synth_drama
from helpers import make_drama

LINES = [
    (1, 1.234, 2.501, "江阳", "你好"),
    (1, 3.007, 4.999, "其他", "嗯 好的"),
    (1, 5.0, 6.5, "", "无人认领: 冒号在文本里"),  # no speaker
    (1, 3601.001, 3602.345, "张晓倩-李雪", "a < b & c > d"),
    (2, 0.0, 1.0, "旁白", "第二集"),
]


@pytest.fixture()
def drama():  # noqa: ANN201 - a Drama
    return make_drama(LINES)


def _episode_one() -> list[SubtitleLine]:
    return [SubtitleLine(round(s * 1000), round(e * 1000), text, who or None) for ep, s, e, who, text in LINES
            if ep == 1]


@pytest.mark.parametrize("suffix", [".srt", ".vtt"])
def test_round_trip_keeps_names_text_and_milliseconds(drama, tmp_path: Path, suffix: str) -> None:  # noqa: ANN001
    path = export_subtitles(drama, 1, tmp_path / f"ep1{suffix}")
    assert import_subtitles(path) == _episode_one()


def test_ass_round_trip_rounds_times_to_centiseconds(drama, tmp_path: Path) -> None:  # noqa: ANN001
    # ASS stores h:mm:ss.cc, so times come back to the nearest 10 ms; names and text are kept
    cues = import_subtitles(export_subtitles(drama, 1, tmp_path / "ep1.ass"))
    expected = _episode_one()
    assert [(c.text, c.speaker) for c in cues] == [(c.text, c.speaker) for c in expected]
    for got, want in zip(cues, expected, strict=True):
        assert abs(got.start_ms - want.start_ms) <= 5 and got.start_ms % 10 == 0
        assert abs(got.end_ms - want.end_ms) <= 5 and got.end_ms % 10 == 0


@pytest.mark.parametrize("suffix", [".srt", ".ass", ".vtt"])
def test_synthetic_episode_round_trips_exactly(tmp_path: Path, suffix: str) -> None:
    # synthetic times sit on 40 ms frame boundaries, so even ASS keeps them exactly
    drama = synth_drama(seed=2, episodes=2, lines_per_episode=80)
    cues = import_subtitles(export_subtitles(drama, 2, tmp_path / f"ep2{suffix}"))
    ep = drama.episodes[1]
    rows = range(ep.line_start, ep.line_stop)
    assert [c.speaker for c in cues] == [drama.lines.speaker[i] or None for i in rows]
    assert [c.text for c in cues] == [drama.lines.text[i] for i in rows]
    assert [c.start_ms for c in cues] == drama.lines.start_ms[ep.line_start:ep.line_stop].tolist()
    assert [c.end_ms for c in cues] == drama.lines.end_ms[ep.line_start:ep.line_stop].tolist()


def test_formats_carry_names_where_players_expect_them(drama, tmp_path: Path) -> None:  # noqa: ANN001
    srt = export_subtitles(drama, 1, tmp_path / "a.srt").read_text("utf-8")
    ass = export_subtitles(drama, 1, tmp_path / "a.ass").read_text("utf-8")
    vtt = export_subtitles(drama, 1, tmp_path / "a.vtt").read_text("utf-8")
    assert "江阳: 你好" in srt
    assert "Default,江阳," in ass
    assert vtt.startswith("WEBVTT") and "<v 江阳>你好" in vtt and "a &lt; b &amp; c &gt; d" in vtt


def test_predicted_speakers_replace_the_truth(drama, tmp_path: Path) -> None:  # noqa: ANN001
    predicted = ["朱伟", "严良", "", "江阳"]
    cues = import_subtitles(export_subtitles(drama, 1, tmp_path / "p.vtt", speakers=predicted))
    assert [c.speaker for c in cues] == ["朱伟", "严良", None, "江阳"]
    whole = predicted + ["旁白"]  # one per line of the whole drama also works
    cues = import_subtitles(export_subtitles(drama, 2, tmp_path / "p2.srt", speakers=whole))
    assert [c.speaker for c in cues] == ["旁白"]
    with pytest.raises(DramaError, match="speakers"):
        export_subtitles(drama, 1, tmp_path / "bad.srt", speakers=["x"])


def test_format_option_overrides_suffix(drama, tmp_path: Path) -> None:  # noqa: ANN001
    path = export_subtitles(drama, 1, tmp_path / "ep1.txt", fmt="vtt")
    assert import_subtitles(path, fmt="vtt") == _episode_one()


def test_vtt_voice_tags_from_other_tools(tmp_path: Path) -> None:
    path = tmp_path / "other.vtt"
    path.write_text(
        "WEBVTT\n\nNOTE made elsewhere\n\ncue-1\n00:01.000 --> 00:02.500 align:start\n<v.loud Bob Smith>hello</v>"
        " <i>there</i>\n\n00:00:03.000 --> 00:00:04.000\nno voice\nsecond row\n", "utf-8")
    assert import_subtitles(path) == [
        SubtitleLine(1000, 2500, "hello there", "Bob Smith"),
        SubtitleLine(3000, 4000, "no voice\nsecond row", None),
    ]


def test_srt_full_width_colon_names_a_speaker(tmp_path: Path) -> None:
    path = tmp_path / "zh.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\n江阳：你好\n\n2\n00:00:03,000 --> 00:00:04,000\n好\n", "utf-8")
    assert [(c.speaker, c.text) for c in import_subtitles(path)] == [("江阳", "你好"), (None, "好")]


def test_unknown_extension_names_the_file(drama, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(DramaError, match=r"ep1\.txt.*extension"):
        export_subtitles(drama, 1, tmp_path / "ep1.txt")
    (tmp_path / "x.sub").write_text("hello", "utf-8")
    with pytest.raises(DramaError, match=r"x\.sub"):
        import_subtitles(tmp_path / "x.sub")


def test_unreadable_non_utf8_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DramaError, match=r"missing\.srt.*cannot read"):
        import_subtitles(tmp_path / "missing.srt")
    latin = tmp_path / "latin.srt"
    latin.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nA: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DramaError, match=r"latin\.srt.*UTF-8"):
        import_subtitles(latin)
    for suffix in (".srt", ".ass", ".vtt"):
        empty = tmp_path / f"empty{suffix}"
        empty.write_text("\n", "utf-8")
        with pytest.raises(DramaError, match=rf"empty{suffix}.*empty"):
            import_subtitles(empty)
    header_only = tmp_path / "header.vtt"
    header_only.write_text("WEBVTT\n", "utf-8")
    with pytest.raises(DramaError, match=r"header\.vtt.*no subtitle cues"):
        import_subtitles(header_only)
    not_vtt = tmp_path / "bad.vtt"
    not_vtt.write_text("00:00:01.000 --> 00:00:02.000\nhi\n", "utf-8")
    with pytest.raises(DramaError, match=r"bad\.vtt.*WEBVTT"):
        import_subtitles(not_vtt)


def test_unknown_episode_is_an_error(drama, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(DramaError, match="no episode 9"):
        export_subtitles(drama, 9, tmp_path / "ep9.srt")


def test_export_is_atomic_and_leaves_no_temp_files(drama, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "ep1.srt"
    target.write_text("old", "utf-8")
    export_subtitles(drama, 1, target)
    assert [p.name for p in tmp_path.iterdir()] == ["ep1.srt"]
    assert "江阳: 你好" in target.read_text("utf-8")


def test_lines_from_subtitles_builds_an_episode(tmp_path: Path) -> None:
    cues = [SubtitleLine(0, 1000, "你好", "江阳"), SubtitleLine(1200, 2000, "嗯", None)]
    drama = lines_from_subtitles(cues, episode_number=3)
    assert drama.lines.speaker == ["江阳", ""]
    assert drama.lines.text == ["你好", "嗯"]
    assert drama.lines.episode.tolist() == [3, 3]
    assert drama.lines.start_frame.tolist() == [0, 30]
    assert drama.episodes[0].number == 3 and drama.episodes[0].stem == "0003"
    assert drama.lines.embedding.shape == (2, 192) and not drama.lines.embedding.any()
    assert "sv_embedding/ (zeros)" in drama.missing
    given = lines_from_subtitles(cues, embedding=np.ones((2, 4)))
    assert "sv_embedding/ (zeros)" not in given.missing and given.lines.embedding.dtype == np.float32
    with pytest.raises(DramaError, match="one row per line"):
        lines_from_subtitles(cues, embedding=np.ones((3, 4)))
    with pytest.raises(DramaError):
        lines_from_subtitles([])


def test_render_without_speakers() -> None:
    text = render_subtitles([SubtitleLine(0, 500, "hi")], "srt")
    assert "hi" in text and ":" not in text.split("\n")[2]
