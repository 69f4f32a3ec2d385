"""Bad input, broken one thing at a time: a clear one-line error or a reported mend, never a
traceback and never a partial output file (property-based: hypothesis moves each breakage
around the drama). The catalogue of breakages is tests/bad_inputs.py."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.bad_inputs import CATALOGUE, Breakage, Outcome, run_breakage

from dramasr.data import load_drama, save_drama
from dramasr.synth import synth_drama

SHARED_DRAMA = Path(__file__).resolve().parents[1].parent / "shared" / "dramasr" / "chen_mo_de_zhen_xiang"


@pytest.fixture(scope="module")
def synthetic_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_input") / "synthetic"
    save_drama(synth_drama(seed=5, episodes=3, lines_per_episode=50, name="synthetic"), root)
    return root


@pytest.fixture(scope="module")
def real_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED_DRAMA.is_dir():
        pytest.skip("shared benchmark data absent (../shared/dramasr)")
    from dramasr.propagate import seeds_from_release

    drama = load_drama(SHARED_DRAMA)
    part = drama.episode_range(1, 2)
    # the drama's own seeds that fall in these episodes, as a seed file of the part
    seeds = seeds_from_release(drama.seed_files["1pct"])
    n = len(part.lines)
    part.seed_files["1pct"] = {"character_list": [
        {"name": name, "code": k, "is_known": True, "utterance_list": [i for i in lines if i < n]}
        for k, (name, lines) in enumerate(seeds.items())]}
    root = tmp_path_factory.mktemp("bad_input_real") / "chen_mo_1_2"
    save_drama(part, root)
    return root


def check(outcome: Outcome, breakage: Breakage) -> None:
    """What a user must get for this breakage."""
    assert outcome.traceback is None, f"{breakage.name}: traceback\n{outcome.traceback}"
    if breakage.expect == "error":
        assert outcome.exit_code == 2, f"{breakage.name}: exit {outcome.exit_code}, stderr {outcome.stderr!r}"
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{breakage.name}: {outcome.stderr!r}"
        assert "file " in lines[0] or "option " in lines[0], f"{breakage.name}: names no file: {lines[0]}"
        assert not outcome.output.exists() or outcome.output.is_dir() and breakage.name == "output path is a folder"
        leftovers = list(outcome.output.parent.glob("*.tmp")) if outcome.output.parent.is_dir() else []
        assert not leftovers, f"{breakage.name}: temporary files left: {leftovers}"
        return
    assert outcome.exit_code == 0, f"{breakage.name}: exit {outcome.exit_code}: {outcome.stderr}"
    if breakage.expect == "mend":
        assert "mended:" in outcome.stderr, f"{breakage.name}: mend not reported: {outcome.stderr!r}"
    if breakage.command in ("propagate", "attribute"):
        drama = load_drama(outcome.root)
        rows = [json.loads(line) for line in outcome.output.read_text("utf-8").splitlines()]
        assert sorted(r["line"] for r in rows) == list(range(len(drama.lines)))
        for r in rows:
            assert r["candidates"][0][0] == r["speaker"] and r["runner_up"] != r["speaker"]
    else:
        assert (outcome.output / "report.json").is_file()


def test_the_catalogue_is_wide() -> None:
    assert len(CATALOGUE) >= 30
    assert {b.expect for b in CATALOGUE} == {"mend", "error", "ok"}


@settings(max_examples=2 * len(CATALOGUE), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(breakage=st.sampled_from(CATALOGUE), data=st.data())
def test_synthetic_drama_broken_one_way_at_a_time(synthetic_base: Path, breakage: Breakage, data) -> None:
    pick = lambda n: data.draw(st.integers(0, max(n - 1, 0)))  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="dramasr-bad-"))
    try:
        check(run_breakage(synthetic_base, work, breakage, pick), breakage)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("breakage", CATALOGUE, ids=[b.name for b in CATALOGUE])
def test_real_episodes_broken_one_way_at_a_time(real_base: Path, breakage: Breakage, tmp_path: Path) -> None:
    check(run_breakage(real_base, tmp_path, breakage, lambda n: n // 2), breakage)


FACE_BREAKAGES = [b for b in CATALOGUE if "face" in b.name]


@pytest.mark.parametrize("breakage", FACE_BREAKAGES, ids=[b.name for b in FACE_BREAKAGES])
def test_faces_read_ahead_are_mended_and_refused_as_in_order(synthetic_base: Path, breakage: Breakage,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Face files read ahead in worker processes (`_FaceReader`) give the drama, the mends and
    the errors of a reading in order, whatever the breakage."""
    from dramasr.data import release
    from dramasr.errors import DramaError

    if not release._may_fork():
        pytest.skip("this test process has other threads: the loader reads faces in order")
    root = tmp_path / synthetic_base.name
    shutil.copytree(synthetic_base, root)
    breakage.apply(root, lambda n: n // 2)

    def load(ahead_from: int) -> tuple:
        monkeypatch.setattr(release._FaceReader, "AHEAD_FROM", ahead_from)
        try:
            drama = load_drama(root)
        except DramaError as exc:
            return ("error", str(exc))
        faces = drama.faces
        return ("ok", drama.mends, faces.name, faces.extra_ids, faces.start_ms.tolist(), faces.box.tolist(),
                faces.frame_offsets.tolist(), [(e.face_start, e.face_stop) for e in drama.episodes])

    in_order = load(10**6)
    assert in_order[0] == ("error" if breakage.expect == "error" else "ok")
    assert load(1) == in_order
