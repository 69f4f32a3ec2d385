"""Drama statistics."""

from __future__ import annotations

import pytest
from rich.console import Console

from dramasr.stats import drama_stats, face_covered_lines, stats_table
from helpers import make_drama


@pytest.fixture
def drama():
    return make_drama(
        lines=[(1, 0.0, 0.5, "江阳", "a"), (1, 1.0, 2.5, "江阳", "b"), (1, 3.0, 4.0, "其他", "c"),
               (2, 0.0, 3.5, "严良", "d"), (2, 4.0, 5.0, "!删除!", "e"), (2, 6.0, 7.0, "旁白", "f"),
               (2, 8.0, 9.0, "岳军", "g")],
        faces=[(1, 0.2, 1.0, "江阳", 0.9), (2, 3.0, 4.2, "严良", 0.8), (2, 6.5, 9.5, "0001_pro0_id2", 0.3),
               (1, 3.9, 5.0, "", 0.0)],
        seed_files={"1pct": {"character_list": [{"name": "江阳", "utterance_list": [0]},
                                                {"name": "严良", "utterance_list": [3]},
                                                {"name": "旁白", "utterance_list": []}]}},
    )


def test_counts(drama):
    stats = drama_stats(drama)
    assert (stats.episodes, stats.lines, stats.scored_lines, stats.deleted_lines) == (2, 7, 6, 1)
    assert stats.characters == 5  # 江阳 严良 其他 旁白 岳军; the deleted line does not count
    assert stats.named_characters == 3 and stats.named_speaking == 3
    assert stats.open_set_share == pytest.approx(2 / 6)  # 其他, 岳军
    assert stats.seeds == {"1pct": {"characters": 2, "lines": 2}}
    assert stats.top_characters[0].name == "江阳" and stats.top_characters[0].lines == 2
    assert stats.hours == pytest.approx((4.0 + 9.0) / 3600)


def test_duration_mix_shares_of_scored_lines(drama):
    mix = drama_stats(drama).duration_mix
    assert mix["<1s"] == pytest.approx(1 / 6)
    assert mix["1-2s"] == pytest.approx(4 / 6)  # 1.5 s and four 1.0 s lines
    assert mix[">=3s"] == pytest.approx(1 / 6)
    assert mix["<2s"] + mix[">=2s"] == pytest.approx(1.0)


def test_face_coverage_counts_named_tracks_in_the_same_episode(drama):
    covered = face_covered_lines(drama).tolist()
    # line 0 overlaps 江阳's track; line 1 touches it at 1.0 s; line 2 meets only an unnamed track;
    # lines 3 and 4 (deleted: not in the share) overlap 严良; 5 and 6 only an unrecognised face id.
    assert covered == [True, True, False, True, True, False, False]
    assert drama_stats(drama).face_coverage == pytest.approx(3 / 6)


def test_to_dict_and_table(drama):
    stats = drama_stats(drama)
    data = stats.to_dict()
    assert data["lines"] == 7 and data["top_characters"][0] == {"name": "江阳", "lines": 2, "named": True}
    console = Console(width=120, record=True)
    console.print(stats_table(stats))
    assert "open-set share" in console.export_text()


def test_real_drama_stats(shared_dir):
    from dramasr.data import load_drama

    stats = drama_stats(load_drama(shared_dir / "dramasr" / "chen_mo_de_zhen_xiang"))
    assert (stats.episodes, stats.lines, stats.scored_lines) == (12, 8263, 8247)
    assert stats.named_characters == 42
    assert 0.0 < stats.open_set_share < 0.5 and 0.5 < stats.face_coverage <= 1.0
    assert stats.seeds["1pct"]["lines"] > 0
