"""Synthetic episodes for tests and benchmarks of the media front-end: real face photos
composited into frames (the speaker's mouth opened and closed with the loudness of the line),
real synthetic voices (Debian's `flite`) or recorded utterances, and an SRT with the truth.

Shots per line: the speaker alone, the speaker beside a listener, a reaction shot (only the
listener, mouth still) or nobody on screen (an off-screen line). Deterministic given `seed`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dramasr.errors import DramaError
from dramasr.extract.media import SAMPLE_RATE

WORDS = ("the night was cold and the river ran fast under the old stone bridge while we waited for news "
         "from the city you never told me why you left so early that morning I kept the letter she wrote "
         "we should go before the guards change and nobody will notice if we take the back road through "
         "the forest tell me what you saw at the harbour").split()
SHOTS = ("speaker", "two_shot", "reaction", "off_screen")
SHOT_WEIGHTS = (0.5, 0.2, 0.15, 0.15)


@dataclass(frozen=True)
class Character:
    name: str
    render_photo: str  # the photo composited into frames
    gallery_photo: str  # the photo given to cast.yaml (another photo of the same person)
    voice: str  # a flite voice (awb, rms, slt, kal16, ...) or a folder of audio files


@dataclass(frozen=True)
class SyntheticEpisode:
    video: Path
    subtitles: Path
    cast: Path
    speakers: list[str]  # truth per line
    shots: list[str]  # shot type per line


def flite_available() -> bool:
    return shutil.which("flite") is not None


def speak(text: str, voice: str, rng: np.random.Generator) -> np.ndarray:
    """16 kHz float32 speech of `text`: flite with a voice name, or a random file of a voice folder."""
    folder = Path(voice)
    if folder.is_dir():
        from dramasr.extract.media import read_audio

        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".flac", ".wav"))
        return read_audio(files[int(rng.integers(len(files)))])
    if not flite_available():
        raise DramaError("flite is not installed", hint="apt-get install flite")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
        import soundfile

        wav, rate = soundfile.read(out, dtype="float32")
    if rate != SAMPLE_RATE:
        import librosa

        wav = librosa.resample(wav, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.asarray(wav, np.float32)


class FaceSprite:
    """A face cut from a photo, scaled to `height`, with a mouth that can be opened."""

    def __init__(self, photo: str, height: int) -> None:
        from dramasr.extract.cast import load_photo
        from dramasr.extract.faces import detect_faces, landmarks_array

        image = load_photo(photo)
        faces = detect_faces(image, 1)
        if not faces:
            raise DramaError("no face found in the photo", file=photo)
        (x1, y1, x2, y2), shape = faces[0]
        points = landmarks_array(shape)
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(w, h) * 0.9
        lo_x, lo_y = int(max(0, cx - half)), int(max(0, cy - half))
        hi_x, hi_y = int(min(image.shape[1], cx + half)), int(min(image.shape[0], cy + half * 1.1))
        crop = image[lo_y:hi_y, lo_x:hi_x]
        scale = height / crop.shape[0]
        size = (max(8, int(round(crop.shape[1] * scale))), height)
        from PIL import Image

        self.image = np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))
        pts = (points - [lo_x, lo_y]) * scale
        inner = pts[60:68]
        self.mouth_y = int(round(inner[:, 1].mean()))
        self.mouth_w = float(pts[54, 0] - pts[48, 0])
        self.mouth_x = (int(pts[48, 0] - 0.15 * self.mouth_w), int(pts[54, 0] + 0.15 * self.mouth_w + 1))
        self.chin_y = int(min(self.image.shape[0] - 1, pts[8, 1] + 0.1 * self.mouth_w))

    def render(self, opening: float) -> np.ndarray:
        """The face with its mouth opened by `opening` (0 closed .. 1 wide)."""
        if opening <= 0.02:
            return self.image
        out = self.image.copy()
        gap = int(round(opening * 0.45 * self.mouth_w))
        x0, x1 = self.mouth_x
        y0, y1 = self.mouth_y, self.chin_y
        if gap < 1 or y1 - y0 <= gap:
            return out
        out[y0 + gap:y1, x0:x1] = self.image[y0:y1 - gap, x0:x1]  # lower lip and chin move down
        inner_x0, inner_x1 = x0 + int(0.25 * (x1 - x0)), x1 - int(0.25 * (x1 - x0))
        out[y0:y0 + gap, x0:x1] = self.image[y0, x0:x1]  # lips stretched
        out[y0:y0 + gap, inner_x0:inner_x1] = (40, 15, 20)  # the open mouth
        return out


def _paste(frame: np.ndarray, face: np.ndarray, cx: int) -> None:
    h, w = face.shape[:2]
    top = (frame.shape[0] - h) // 2
    left = max(0, min(frame.shape[1] - w, cx - w // 2))
    frame[top:top + h, left:left + w] = face[: frame.shape[0] - top, : frame.shape[1] - left]


def _envelope(wav: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Loudness (0..1) of the speech around each time (seconds from the line's start)."""
    win = int(0.04 * SAMPLE_RATE)
    idx = (times * SAMPLE_RATE).astype(int)
    rms = np.array([np.sqrt(np.mean(wav[max(0, i - win):i + win] ** 2)) if 0 <= i < len(wav) else 0.0 for i in idx])
    peak = float(np.sqrt(np.mean(wav ** 2))) * 2.0 + 1e-6
    return np.clip(rms / peak, 0.0, 1.0)


def make_episode(out_dir: str | Path, characters: Sequence[Character], n_lines: int, *, seed: int = 0,
                 size: tuple[int, int] = (320, 180), fps: int = 10, face_height: int | None = None,
                 shot_weights: Sequence[float] = SHOT_WEIGHTS, voice_samples: bool = True,
                 stem: str = "episode") -> SyntheticEpisode:
    """Write `stem`.mp4, `stem`.srt and cast.yaml (with a voice-sample file per character) into out_dir."""
    import av

    from dramasr.data.subtitles import SubtitleLine, render_subtitles

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width, height = size
    sprites = [FaceSprite(c.render_photo, face_height or int(height * 0.62)) for c in characters]

    speakers: list[int] = []
    listeners: list[int] = []
    texts: list[str] = []
    shots: list[str] = []
    audio: list[np.ndarray] = []
    onsets: list[float] = []
    t = 0.5
    previous = -1
    for _ in range(n_lines):
        choices = [i for i in range(len(characters)) if i != previous]
        who = int(rng.choice(choices))
        listener = int(rng.choice([i for i in range(len(characters)) if i != who]))
        long_line = rng.random() < 0.3
        n_words = int(rng.integers(9, 16)) if long_line else int(rng.integers(1, 5))
        start = int(rng.integers(0, len(WORDS) - n_words))
        text = " ".join(WORDS[start:start + n_words]).capitalize() + "."
        wav = speak(text, characters[who].voice, rng)
        speakers.append(who)
        listeners.append(listener)
        texts.append(text)
        shots.append(str(rng.choice(SHOTS, p=np.asarray(shot_weights) / np.sum(shot_weights))))
        audio.append(wav)
        onsets.append(t)
        t += len(wav) / SAMPLE_RATE + float(rng.uniform(0.3, 0.8))
        previous = who
    total = t + 0.5
    track = np.zeros(int(total * SAMPLE_RATE) + 1, np.float32)
    for onset, wav in zip(onsets, audio, strict=True):
        i = int(onset * SAMPLE_RATE)
        track[i:i + len(wav)] += wav

    video_path = out / f"{stem}.mp4"
    background = np.zeros((height, width, 3), np.uint8)
    background[:] = (70, 90, 110)
    background[int(height * 0.8):] = (60, 50, 40)
    with av.open(str(video_path), "w") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "20"}
        astream = container.add_stream("aac", rate=SAMPLE_RATE)
        astream.layout = "mono"
        line = 0
        for f in range(int(total * fps)):
            now = f / fps
            while line + 1 < n_lines and now >= onsets[line + 1] - 0.15:
                line += 1
            frame = background.copy()
            if now >= onsets[0] - 0.15:
                who, other, shot = speakers[line], listeners[line], shots[line]
                opening = float(_envelope(audio[line], np.array([now - onsets[line]]))[0])
                if shot == "speaker":
                    _paste(frame, sprites[who].render(opening), width // 2)
                elif shot == "two_shot":
                    _paste(frame, sprites[who].render(opening), width // 4)
                    _paste(frame, sprites[other].render(0.0), 3 * width // 4)
                elif shot == "reaction":
                    _paste(frame, sprites[other].render(0.0), width // 2)
            vframe = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in vstream.encode(vframe):
                container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        chunk = 1024
        pcm = np.clip(track, -1, 1)
        for i in range(0, len(pcm), chunk):
            aframe = av.AudioFrame.from_ndarray(pcm[None, i:i + chunk].astype(np.float32), format="flt", layout="mono")
            aframe.sample_rate = SAMPLE_RATE
            aframe.pts = i
            for packet in astream.encode(aframe):
                container.mux(packet)
        for packet in astream.encode(None):
            container.mux(packet)

    cues = [SubtitleLine(int(round(o * 1000)), int(round((o + len(w) / SAMPLE_RATE) * 1000)), text, None)
            for o, w, text in zip(onsets, audio, texts, strict=True)]
    subs_path = out / f"{stem}.srt"
    subs_path.write_text(render_subtitles(cues, "srt"), encoding="utf-8")

    import soundfile
    import yaml

    entries = []
    for i, c in enumerate(characters):
        entry = {"name": c.name, "photos": [str(Path(c.gallery_photo).resolve())]}
        if voice_samples:
            sample = out / f"voice_{i}.wav"
            wav = speak("My name is not important, but listen to what I have to say about the journey.",
                        c.voice, np.random.default_rng(1000 + i))
            soundfile.write(sample, wav, SAMPLE_RATE)
            entry["voice"] = [sample.name]
        entries.append(entry)
    cast_path = out / "cast.yaml"
    cast_path.write_text(yaml.safe_dump({"cast": entries}, sort_keys=False), encoding="utf-8")
    return SyntheticEpisode(video_path, subs_path, cast_path, [characters[s].name for s in speakers], shots)


def shared_characters(media: str | Path) -> list[Character]:
    """Four characters from ../shared/media/cast (render and gallery photos differ) with flite voices."""
    cast = Path(media) / "cast"
    return [
        Character("Barack Obama", str(cast / "train_obama_obama2.jpg"), str(cast / "train_obama_obama.jpg"), "awb"),
        Character("Joe Biden", str(cast / "train_biden_biden2.jpg"), str(cast / "train_biden_biden.jpg"), "rms"),
        Character("Kit Harington", str(cast / "train_kit_harington_john2.jpeg"),
                  str(cast / "train_kit_harington_john1.jpeg"), "kal16"),
        Character("Rose Leslie", str(cast / "train_rose_leslie_img2.jpg"),
                  str(cast / "train_rose_leslie_img1.jpg"), "slt"),
    ]
