"""The media front-end as a user meets it: `dramasr extract` on a real clip and on synthetic
episodes (real photos, flite voices), voice samples as seeds, lip evidence, the bad-input errors.

Skips without the media stack (`pip install -e ".[media]"`, see README), flite, or ../shared/media.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dramasr.cli import app

for module in ("av", "dlib", "face_recognition_models", "resemblyzer", "webrtcvad", "yaml", "soundfile"):
    pytest.importorskip(module, reason=f"media stack absent ({module}): pip install -e '.[media]'")

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CLIP = MEDIA / "short_hamilton_clip.mp4"
runner = CliRunner()

pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason=f"shared media absent: no {CLIP}")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite absent: apt-get install flite")


def _srt(path: Path, spans: list[tuple[float, float]]) -> Path:
    from dramasr.data.subtitles import SubtitleLine, render_subtitles

    cues = [SubtitleLine(int(a * 1000), int(b * 1000), f"line {k}") for k, (a, b) in enumerate(spans)]
    path.write_text(render_subtitles(cues, "srt"), encoding="utf-8")
    return path


def _cast(path: Path, members: dict[str, list[str]], voices: dict[str, list[str]] | None = None) -> Path:
    import yaml

    entries = [{"name": n, "photos": p} | ({"voice": voices[n]} if voices and n in voices else {})
               for n, p in members.items()]
    path.write_text(yaml.safe_dump({"cast": entries}), encoding="utf-8")
    return path


HAMILTON_LINES = [(0.0, 1.4), (1.4, 2.8), (2.8, 3.6), (3.6, 5.5), (5.5, 7.5), (7.5, 9.9)]


@pytest.fixture(scope="module")
def clip_drama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clip")
    cast = _cast(root / "cast.yaml", {
        "Lin-Manuel Miranda": [str(MEDIA / "cast" / "lin-manuel-miranda.png")],
        "Barack Obama": [str(MEDIA / "cast" / "train_obama_obama.jpg")],
        "Joe Biden": [str(MEDIA / "cast" / "train_biden_biden.jpg")],
        "Alex Lacamoire": [str(MEDIA / "cast" / "alex-lacamoire.png")],
    })
    subs = _srt(root / "clip.srt", HAMILTON_LINES)
    # 8 frames a second: the audience's reaction shot (8.1-9.9 s) is short
    result = runner.invoke(app, ["extract", str(CLIP), "--subs", str(subs), "--cast", str(cast),
                                 "-o", str(root / "out"), "--sample-fps", "8"])
    assert result.exit_code == 0, result.output
    return root / "out"


def test_clip_faces_named_and_lips_move_more_while_he_speaks(clip_drama: Path) -> None:
    from dramasr.data import load_drama

    drama = load_drama(clip_drama)
    assert len(drama.lines) == len(HAMILTON_LINES) and drama.lines.embedding.shape[1] == 256
    named = {n for n in drama.faces.name if n}
    assert named == {"Lin-Manuel Miranda"}  # the performer, and nobody else by mistake
    lips = json.loads((clip_drama / "lip_data" / "0001.json").read_text())["scores"]
    # his speaking score per line (the best of his tracks in it, as the lip tool reads it)
    his: dict[int, float] = {}
    for r in lips:
        if r["name"] == "Lin-Manuel Miranda":
            his[r["line"]] = max(his.get(r["line"], 0.0), r["score"])
    # the reaction shot (audience, from 8.1 s): faces seen, not the performer's
    reaction = [r["score"] for r in lips if r["name"] != "Lin-Manuel Miranda"]
    assert len(his) >= 3 and reaction
    assert np.mean(list(his.values())) > np.mean(reaction) + 0.05


def test_attribute_runs_on_extracted_clip(clip_drama: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["attribute", str(clip_drama), "-o", str(pred), "--seeds", "faces"])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in pred.read_text().splitlines()]
    assert len(records) == len(HAMILTON_LINES)
    assert sum(r["speaker"] == "Lin-Manuel Miranda" for r in records) >= 2


# --------------------------------------------------------------------------- speed-ups that must not change results


def test_numpy_mel_and_batched_encoder_match_resemblyzer() -> None:
    """The front-end's own mel spectrogram and batched encoder give resemblyzer's embeddings."""
    from resemblyzer import audio as resemblyzer_audio

    from dramasr.extract.media import read_audio
    from dramasr.extract.voice import _encoder, _normalise_volume, embed_many, mel_frames

    files = sorted((MEDIA / "voices_librispeech_test_other").glob("*/*.flac"))[:4]
    if not files:
        pytest.skip(f"no LibriSpeech voices in {MEDIA}")
    speeches = [read_audio(f) for f in files] + [np.zeros(1000, np.float32)]
    for speech in speeches[:2]:
        ours, theirs = mel_frames(speech), resemblyzer_audio.wav_to_mel_spectrogram(speech)
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
    batched = embed_many(speeches)
    assert batched[-1] is None  # too little speech: no embedding
    for speech, emb in zip(speeches[:-1], batched[:-1], strict=True):
        single = _encoder().embed_utterance(_normalise_volume(speech))
        assert np.abs(emb - single).max() < 1e-5


def test_episode_parts_end_in_gaps_between_lines() -> None:
    from dramasr.extract.cast import Cast, CastMember
    from dramasr.extract.episode import ExtractConfig, SubtitleCue, job_for, plan_parts

    rng = np.random.default_rng(0)
    cues, t = [], 1000
    for k in range(300):
        length = int(rng.integers(500, 4000))
        # every fifth line overlaps the next one: no part may end between them
        gap = -300 if k % 5 == 0 else int(rng.integers(100, 900))
        cues.append(SubtitleCue(t, t + length, f"line {k}", ""))
        t += length + gap
    job = job_for(1, "episode.mp4", "episode.srt", cues, Cast([CastMember("A")]), ExtractConfig(part_s=60.0))
    parts = plan_parts(job, t / 1000)
    assert parts[0].voices and parts[0].lines == (0, len(cues))  # one voice part: the audio decoded once
    faces = parts[1:]
    assert len(faces) >= 5 and all(p.count == len(parts) for p in parts)
    assert [p.lines[0] for p in faces][1:] == [p.lines[1] for p in faces][:-1]  # each line in one part
    assert faces[0].lines[0] == 0 and faces[-1].lines[1] == len(cues)
    for before, after in zip(faces[:-1], faces[1:], strict=True):
        k = after.lines[0]
        assert before.end_s == after.start_s
        assert max(c.end_ms for c in cues[:k]) / 1000 <= after.start_s <= cues[k].start_ms / 1000
        assert after.start_s - before.start_s >= 60.0
    assert faces[-1].end_s - faces[-1].start_s >= 30.0  # no tiny last part
    whole = plan_parts(job_for(1, "episode.mp4", "episode.srt", cues, Cast([CastMember("A")]),
                               ExtractConfig(part_s=0)), t / 1000)
    assert len(whole) == 2 and whole[1].lines == (0, len(cues))


def test_tracker_follows_faces_and_splits_a_replaced_face() -> None:
    """Two faces, then (no cut the thumbnails see) one replaced by another person and one gone:
    three tracks, each ending with its descriptor, and the whole frame scanned only when needed."""
    from dramasr.extract import faces
    from dramasr.extract.synthetic import FaceSprite, _paste

    cast = MEDIA / "cast"
    obama, biden, rose = (FaceSprite(str(cast / name), 150) for name in
                          ("train_obama_obama2.jpg", "train_biden_biden2.jpg", "train_rose_leslie_img2.jpg"))

    def frame(left, right) -> np.ndarray:
        image = np.zeros((360, 640, 3), np.uint8)
        image[:] = (70, 90, 110)
        for sprite, x in ((left, 160), (right, 480)):
            if sprite is not None:
                _paste(image, sprite.render(0.0), x)
        return image

    tracker = faces.Tracker(max_gap_s=0.4, detect_every=8, rescan_upsample=0)
    for i, image in enumerate([frame(obama, biden)] * 4 + [frame(rose, None)] * 4):
        tracker.add(i, i * 0.25, image, 1.0, 1)
    tracks = tracker.finish()
    assert [[d.sample for d in t.detections] for t in tracks] == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]]
    assert all(len(t.descriptors) == 1 and not t.chips for t in tracks)
    assert tracker.cuts == 1 and tracker.scans == 2  # the first frame, and the lost face's frame
    gallery = np.stack([t.descriptor() for t in tracks])
    faces.name_tracks(tracks, ["Obama", "Biden", "Rose"], gallery[[0, 1, 2]], np.arange(3), 0.6)
    assert [t.name for t in tracks] == ["Obama", "Biden", "Rose"]


# --------------------------------------------------------------------------- synthetic episode


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("flite") is None:
        pytest.skip("flite absent: apt-get install flite")
    from dramasr.extract import ExtractConfig, extract_drama
    from dramasr.extract.synthetic import make_episode, shared_characters

    root = tmp_path_factory.mktemp("synthetic")
    # faces ~100 px tall so that HOG finds them without upsampling: the test stays fast
    episode = make_episode(root, shared_characters(MEDIA), 150, seed=7, size=(320, 180), face_height=171)
    config = ExtractConfig(sample_fps=3.0, upsample=0)
    extract_drama([episode.video], [episode.subtitles], episode.cast, root / "drama", config=config)
    return episode, root / "drama"


@needs_flite
def test_synthetic_episode_from_voice_samples_alone(synthetic) -> None:
    from dramasr.data import load_drama
    from dramasr.extract.run import attribute_extracted

    episode, drama_dir = synthetic
    drama = load_drama(drama_dir)
    assert len(drama.lines) == 150 and len(set(episode.speakers)) == 4
    assert not any(drama.lines.speaker)  # no labelled line: the seeds come from the voice samples
    accuracy = {}
    for lip in (False, True):
        records = sorted(attribute_extracted(drama, "voice", lip=lip), key=lambda r: r.line)
        accuracy[lip] = np.mean([r.speaker == truth for r, truth in zip(records, episode.speakers, strict=True)])
    print(f"synthetic 150 lines, voice samples only: accuracy {accuracy[False]:.4f} without lip, "
          f"{accuracy[True]:.4f} with lip")
    assert accuracy[False] >= 0.95 and accuracy[True] >= 0.95
    assert accuracy[True] >= accuracy[False] - 0.01  # the lip evidence never costs more than a line or so


@needs_flite
def test_lip_scores_tell_speaker_from_listener(synthetic) -> None:
    episode, drama_dir = synthetic
    lips = json.loads((drama_dir / "lip_data" / "0001.json").read_text())["scores"]
    speaking, listening = [], []
    for row in lips:
        shot = episode.shots[row["line"]]
        if shot in ("speaker", "two_shot") and row["name"] == episode.speakers[row["line"]]:
            speaking.append(row["score"])
        elif row["name"] and row["name"] != episode.speakers[row["line"]]:
            listening.append(row["score"])
    assert len(speaking) > 30 and len(listening) > 20
    assert np.median(speaking) > 0.5 > np.median(listening)


@needs_flite
def test_run_writes_named_subtitles_in_the_input_format(synthetic, tmp_path: Path) -> None:
    episode, _ = synthetic
    from dramasr.data.subtitles import import_subtitles, render_subtitles

    vtt = tmp_path / "episode.vtt"
    vtt.write_text(render_subtitles(import_subtitles(episode.subtitles), "vtt"), encoding="utf-8")
    out = episode.video.parent  # its drama/ was extracted with these settings: run skips the episode
    result = runner.invoke(app, ["run", str(episode.video), "--subs", str(vtt), "--cast", str(episode.cast),
                                 "-o", str(out), "--sample-fps", "3", "--upsample", "0"])
    assert result.exit_code == 0, result.output
    named = import_subtitles(out / "episode.vtt")
    assert len(named) == 150
    assert np.mean([c.speaker == t for c, t in zip(named, episode.speakers, strict=True)]) >= 0.9


# ------------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def good_cast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cast")
    return _cast(root / "cast.yaml", {"Lin-Manuel Miranda": [str(MEDIA / "cast" / "lin-manuel-miranda.png")]})


def _extract_error(args: list[str]) -> str:
    result = runner.invoke(app, ["extract", *args])
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_unreadable_video(tmp_path: Path, good_cast: Path) -> None:
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"this is not a video")
    message = _extract_error([str(video), "--subs", str(_srt(tmp_path / "a.srt", [(0, 1)])), "--cast", str(good_cast),
                              "-o", str(tmp_path / "out")])
    assert "unreadable video" in message and "broken.mp4" in message


def test_video_without_audio_track(tmp_path: Path, good_cast: Path) -> None:
    import av

    video = tmp_path / "silent_film.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(20):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    message = _extract_error([str(video), "--subs", str(_srt(tmp_path / "a.srt", [(0, 1)])), "--cast", str(good_cast),
                              "-o", str(tmp_path / "out")])
    assert "no audio track" in message and "silent_film.mp4" in message


def test_subtitles_outside_the_video(tmp_path: Path, good_cast: Path) -> None:
    subs = _srt(tmp_path / "late.srt", [(1, 2), (30, 33)])
    message = _extract_error([str(CLIP), "--subs", str(subs), "--cast", str(good_cast), "-o", str(tmp_path / "out")])
    assert "late.srt" in message and "line 1" in message and "after the video's end" in message


def test_cast_photo_without_a_face(tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(photo)
    cast = _cast(tmp_path / "cast.yaml", {"Nobody": [str(photo)]})
    message = _extract_error([str(CLIP), "--subs", str(_srt(tmp_path / "a.srt", [(0, 1)])), "--cast", str(cast),
                              "-o", str(tmp_path / "out")])
    assert "no face found" in message and "wall.png" in message and "Nobody" in message


def test_silent_voice_sample(tmp_path: Path) -> None:
    import soundfile

    sample = tmp_path / "quiet.wav"
    soundfile.write(sample, np.zeros(16000 * 3, np.float32), 16000)
    cast = _cast(tmp_path / "cast.yaml", {"Lin-Manuel Miranda": [str(MEDIA / "cast" / "lin-manuel-miranda.png")]},
                 {"Lin-Manuel Miranda": [sample.name]})
    message = _extract_error([str(CLIP), "--subs", str(_srt(tmp_path / "a.srt", [(0, 1)])), "--cast", str(cast),
                              "-o", str(tmp_path / "out")])
    assert "silent" in message and "quiet.wav" in message
