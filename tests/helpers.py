"""Tiny dramas built in memory, for tests that need a Drama but not the release files.

    drama = make_drama(
        lines=[(1, 0.0, 1.5, "江阳", "你好"), (1, 2.0, 2.8, "其他", "嗯"), (2, 0.0, 3.0, "旁白", "...")],
        faces=[(1, 0.0, 1.0, "江阳", 0.9)],
    )

Times are seconds within the episode; lines are put in global order (episodes ascending,
given order within an episode), so line indices follow that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dramasr.data.model import ABSENT, Drama, Episode, FaceTracks, Lines

UNKNOWN_FACE = re.compile(r"\d{4}_pro\d+_id\d+")  # the release's id for a face it could not name
LineSpec = tuple[int, float, float, str, str]  # episode, start s, end s, speaker (truth), text
FaceSpec = tuple[int, float, float, str, float]  # episode, start s, end s, recognised name ("" = none), score


def make_drama(
    lines: Sequence[LineSpec],
    faces: Sequence[FaceSpec] = (),
    *,
    cast: Sequence[str] | None = None,
    dim: int = 8,
    seed: int = 0,
    embeddings: np.ndarray | None = None,
    name: str = "tiny",
    seed_files: Mapping[str, dict[str, Any]] | None = None,
    relation: dict[str, Any] | None = None,
) -> Drama:
    """A Drama with the given lines and face tracks.

    cast: face_info cast names (default: every face name except "" and the release's
    unrecognised-face ids such as 0001_pro0_id2). embeddings: [lines, dim]
    in global order (default: random unit vectors from `seed`). seed_files: as
    `Drama.seed_files`, e.g. {"1pct": {"character_list": [{"name": ..., "utterance_list": [...]}]}}.
    """
    order = sorted(range(len(lines)), key=lambda k: lines[k][0])  # stable: keeps order within episodes
    ordered = [lines[k] for k in order]
    episode_numbers = sorted({spec[0] for spec in ordered} | {spec[0] for spec in faces})
    face_order = sorted(range(len(faces)), key=lambda k: (faces[k][0], faces[k][1]))
    ordered_faces = [faces[k] for k in face_order]

    episodes = []
    for number in episode_numbers:
        line_rows = [k for k, spec in enumerate(ordered) if spec[0] == number]
        face_rows = [k for k, spec in enumerate(ordered_faces) if spec[0] == number]
        line_start = line_rows[0] if line_rows else sum(1 for spec in ordered if spec[0] < number)
        face_start = face_rows[0] if face_rows else sum(1 for spec in ordered_faces if spec[0] < number)
        episodes.append(Episode(
            number=number, stem=f"{number:04d}", line_start=line_start, line_stop=line_start + len(line_rows),
            face_start=face_start, face_stop=face_start + len(face_rows), episode_idx=number - 1,
        ))

    n = len(ordered)
    if embeddings is None:
        rng = np.random.default_rng(seed)
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    else:
        vectors = np.asarray(embeddings, np.float32)[order] if n else np.zeros((0, dim), np.float32)

    def ms(seconds: float) -> int:
        return int(round(seconds * 1000))

    line_columns = Lines(
        episode=np.asarray([s[0] for s in ordered], np.int32),
        start_ms=np.asarray([ms(s[1]) for s in ordered], np.int64),
        end_ms=np.asarray([ms(s[2]) for s in ordered], np.int64),
        start_frame=np.asarray([ms(s[1]) * 25 // 1000 for s in ordered], np.int64),
        end_frame=np.asarray([ms(s[2]) * 25 // 1000 for s in ordered], np.int64),
        text=[s[4] for s in ordered],
        speaker=[s[3] for s in ordered],
        embedding=vectors.reshape(n, -1) if n else np.zeros((0, dim), np.float32),
        overlap=np.full(n, ABSENT, np.int8),
        auxiliary_text=[None] * n,
    )
    if ordered_faces:
        m = len(ordered_faces)
        face_columns = FaceTracks(
            episode=np.asarray([f[0] for f in ordered_faces], np.int32),
            object_idx=np.asarray([sum(1 for g in ordered_faces[:k] if g[0] == f[0])
                                   for k, f in enumerate(ordered_faces)], np.int32),
            start_ms=np.asarray([ms(f[1]) for f in ordered_faces], np.int64),
            end_ms=np.asarray([ms(f[2]) for f in ordered_faces], np.int64),
            start_frame=np.asarray([ms(f[1]) * 25 // 1000 for f in ordered_faces], np.int64),
            end_frame=np.asarray([ms(f[2]) * 25 // 1000 for f in ordered_faces], np.int64),
            name=[f[3] for f in ordered_faces],
            score=np.asarray([f[4] for f in ordered_faces], np.float64),
            active_frames=np.zeros(m, np.int32),
            frame_offsets=np.zeros(m + 1, np.int64),
            frame=np.zeros(0, np.int32),
            box=np.zeros((0, 4), np.int32),
        )
    else:
        face_columns = FaceTracks.empty()

    if cast is None:
        cast = list(dict.fromkeys(f[3] for f in ordered_faces if f[3] and not UNKNOWN_FACE.fullmatch(f[3])))
    face_info = {"role_name_variants": {c: [c] for c in cast}, "actor_name": {}}
    return Drama(
        name=name, episodes=episodes, lines=line_columns, faces=face_columns, face_info=face_info,
        relation=relation, seed_files=dict(seed_files or {}),
    )
