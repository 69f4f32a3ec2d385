"""The cast list (`cast.yaml`): each character's name, aliases, photos and optional voice samples,
turned into a face gallery (128-d dlib descriptors per photo) and voice prints (resemblyzer).

    cast:
      - name: Lin-Manuel Miranda
        aliases: [Lin, Hamilton]
        photos: [photos/lin-manuel-miranda.png]        # paths relative to cast.yaml
        voice: [samples/lin.flac, {video: ep1.mp4, start: 3.0, end: 7.5}]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.errors import DramaError

MAX_PHOTO_SIDE = 800  # cast photos are scaled down to this before detection


@dataclass(frozen=True)
class VoiceSample:
    path: str
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class CastMember:
    name: str
    aliases: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    voice: tuple[VoiceSample, ...] = ()


@dataclass
class Cast:
    """The cast with its face gallery (built by `build_gallery`)."""

    members: list[CastMember]
    source: str = ""
    gallery: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))
    gallery_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]


def _strings(value: Any, path: Path, index: int, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DramaError(f"cast entry {index}: '{key}' must be a string or a list of strings", file=path, field=key)


def load_cast(path: str | Path) -> Cast:
    """Read cast.yaml (or .json); photo and sample paths are resolved against its folder."""
    import yaml

    source = Path(path)
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DramaError(f"cannot read the cast list: {exc.strerror}", file=source) from exc
    except yaml.YAMLError as exc:
        raise DramaError(f"not valid YAML: {exc}", file=source) from exc
    entries = doc.get("cast") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise DramaError("expected a non-empty list of characters under 'cast:'", file=source, field="cast",
                         hint="each entry: name, aliases, photos, voice")
    base = source.parent
    members: list[CastMember] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise DramaError(f"cast entry {i} needs a 'name'", file=source, field="name")
        name = entry["name"].strip()
        if name in seen:
            raise DramaError(f"cast entry {i}: {name!r} appears twice", file=source, field="name")
        seen.add(name)
        photos = tuple(str((base / p).resolve()) for p in _strings(entry.get("photos"), source, i, "photos"))
        for photo in photos:
            if not Path(photo).is_file():
                raise DramaError(f"photo of {name!r} not found: {photo}", file=source, field="photos")
        samples = []
        raw_voice = entry.get("voice") or []
        for item in raw_voice if isinstance(raw_voice, list) else [raw_voice]:
            if isinstance(item, str):
                samples.append(VoiceSample(str((base / item).resolve())))
            elif isinstance(item, dict) and isinstance(item.get("video") or item.get("path"), str):
                try:
                    start, end = float(item["start"]), float(item["end"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise DramaError(f"voice sample of {name!r}: a span needs numeric start and end (seconds)",
                                     file=source, field="voice") from exc
                if end <= start:
                    raise DramaError(f"voice sample of {name!r} ends before it starts", file=source, field="voice")
                samples.append(VoiceSample(str((base / (item.get("video") or item["path"])).resolve()), start, end))
            else:
                raise DramaError(f"voice sample of {name!r} must be a file or {{video, start, end}}",
                                 file=source, field="voice")
        for sample in samples:
            if not Path(sample.path).is_file():
                raise DramaError(f"voice sample of {name!r} not found: {sample.path}", file=source, field="voice")
        members.append(CastMember(name, _strings(entry.get("aliases"), source, i, "aliases"), photos, tuple(samples)))
    return Cast(members, str(source))


def load_photo(photo: str, who: str = "") -> np.ndarray:
    """An RGB photo, scaled down to MAX_PHOTO_SIDE (a large portrait costs seconds and finds no more)."""
    import dlib

    try:
        image = dlib.load_rgb_image(photo)
    except RuntimeError as exc:
        raise DramaError(f"cannot read the photo{f' of {who!r}' if who else ''}: {exc}", file=photo) from exc
    longest = max(image.shape[:2])
    if longest > MAX_PHOTO_SIDE:
        from PIL import Image

        scale = MAX_PHOTO_SIDE / longest
        image = np.asarray(Image.fromarray(image).resize(
            (int(image.shape[1] * scale), int(image.shape[0] * scale)), Image.BILINEAR))
    return image


def build_gallery(cast: Cast) -> Cast:
    """One 128-d descriptor per photo (its largest face); a photo without a face is an error."""
    from dramasr.extract.faces import detect_faces, face_descriptor

    rows, owner = [], []
    for m, member in enumerate(cast.members):
        for photo in member.photos:
            image = load_photo(photo, member.name)
            faces = detect_faces(image, 1)
            if not faces:
                raise DramaError(f"no face found in the photo of {member.name!r}", file=photo,
                                 hint="use a photo where the face is frontal and at least 80 pixels tall")
            rows.append(face_descriptor(image, faces[0][1]))
            owner.append(m)
    cast.gallery = np.asarray(rows, np.float32).reshape(-1, 128)
    cast.gallery_owner = np.asarray(owner, np.int64)
    return cast


def voice_prints(cast: Cast) -> dict[str, np.ndarray]:
    """Each member with voice samples -> float32 [samples, 256]; a silent sample is an error."""
    from dramasr.extract.media import SAMPLE_RATE, read_audio
    from dramasr.extract.voice import MIN_SPEECH_S, embed_speech, speech_mask, speech_of_span

    prints: dict[str, np.ndarray] = {}
    for member in cast.members:
        rows = []
        for sample in member.voice:
            wav = read_audio(sample.path)
            start = 0.0 if sample.start_s is None else sample.start_s
            end = len(wav) / SAMPLE_RATE if sample.end_s is None else sample.end_s
            speech = speech_of_span(wav, speech_mask(wav), start, end)
            emb = embed_speech(speech)
            if emb is None:
                where = "" if sample.start_s is None else f" ({start:.1f}-{end:.1f} s)"
                raise DramaError(
                    f"voice sample of {member.name!r}{where} is silent: {len(speech) / SAMPLE_RATE:.2f} s of speech "
                    f"found, at least {MIN_SPEECH_S} s needed", file=sample.path, field="voice",
                    hint="give a sample where the character speaks for a few seconds")
            rows.append(emb)
        if rows:
            prints[member.name] = np.asarray(rows, np.float32)
    return prints
