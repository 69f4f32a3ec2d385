"""`synth_drama`: a seeded synthetic drama in the release structure, assembled from its parts."""

from __future__ import annotations

from typing import Any

import numpy as np

from dramasr.data.model import ABSENT, DELETED_MARK, Drama, Episode, Lines
from dramasr.errors import DramaError
from dramasr.synth.calibration import (
    DELETED_SHARE,
    EMBEDDING_DIM,
    FPS_MS,
    LINE_KEYS,
    MENTION_SHARE,
    NAMED_PER_SQRT_LINES,
    NARRATION_SHARE,
    OPEN_SHARE,
)
from dramasr.synth.cast import Cast
from dramasr.synth.script import make_script, make_text, make_timing
from dramasr.synth.signals import make_embeddings, make_faces


def synth_drama(
    seed: int = 0,
    episodes: int = 3,
    lines_per_episode: int = 300,
    cast_size: int | None = None,
    *,
    open_share: float = OPEN_SHARE,
    narration_share: float = NARRATION_SHARE,
    mention_share: float = MENTION_SHARE,
    dim: int = EMBEDDING_DIM,
    name: str = "synthetic",
) -> Drama:
    """A seeded synthetic drama in the release structure (`save_drama` writes a valid folder).

    cast_size is the number of named characters (cast seen in face tracks) who speak; by
    default it grows with the drama as in the release (about 0.4 * sqrt(lines)). About 30%
    more roles are listed in face_info.json but never seen in faces. Same arguments give
    byte-identical saved folders.
    """
    if episodes < 1 or lines_per_episode < 1:
        raise DramaError("a synthetic drama needs at least one episode of at least one line",
                         field="episodes" if episodes < 1 else "lines_per_episode")
    if not 0.0 <= open_share < 1.0 or not 0.0 <= narration_share < 0.5 or not 0.0 <= mention_share <= 1.0:
        raise DramaError("open_share, narration_share and mention_share must be shares in [0, 1)",
                         field="open_share")
    rng = np.random.default_rng(seed)
    total = episodes * lines_per_episode
    n_named = cast_size if cast_size is not None else max(4, round(NAMED_PER_SQRT_LINES * np.sqrt(total)))
    if n_named < 2:
        raise DramaError("cast_size must be at least 2", field="cast_size")
    cast = Cast(rng, n_named)
    script = make_script(rng, cast, episodes, lines_per_episode, open_share, narration_share)
    timing = make_timing(rng, script, episodes)
    embedding = make_embeddings(rng, cast, script, timing["duration_s"], dim)
    text = make_text(rng, cast, script, timing["duration_s"], mention_share)
    faces, face_bounds = make_faces(rng, cast, script, timing, episodes)

    speaker = [cast.voice_label[v] for v in script["voice"]]
    deleted = np.flatnonzero(rng.random(total) < DELETED_SHARE)
    for row in deleted:
        speaker[row] = f"{DELETED_MARK}{speaker[row]}!"
    lines = Lines(
        episode=script["episode"].astype(np.int32),
        start_ms=timing["start_ms"], end_ms=timing["end_ms"],
        start_frame=timing["start_ms"] // FPS_MS, end_frame=timing["end_ms"] // FPS_MS,
        text=text, speaker=speaker, embedding=embedding,
        overlap=np.full(total, ABSENT, np.int8), auxiliary_text=[None] * total,
    )
    episode_list = [
        Episode(number=e + 1, stem=f"{e + 1:04d}", line_start=e * lines_per_episode,
                line_stop=(e + 1) * lines_per_episode, face_start=int(face_bounds[e]),
                face_stop=int(face_bounds[e + 1]), episode_idx=e, line_keys=LINE_KEYS)
        for e in range(episodes)
    ]
    drama = Drama(name=name, episodes=episode_list, lines=lines, faces=faces, face_info=cast.face_info(),
                  relation=cast.relation_json())
    drama.seed_files["1pct"] = _make_seeds(rng, drama)
    return drama


def _make_seeds(rng: np.random.Generator, drama: Drama) -> dict[str, Any]:
    """init_seeds_1pct.json: about 1% of each named character's lines (at least one), in short runs."""
    named = drama.named_characters()
    speaker = drama.lines.speaker
    rows_of: dict[str, list[int]] = {}
    for i, who in enumerate(speaker):
        if who in named:
            rows_of.setdefault(who, []).append(i)
    order = sorted(rows_of, key=lambda who: (-len(rows_of[who]), who))
    character_list = []
    labels: list[dict[str, Any]] = [{"code": -1, "is_gt": False, "rel_info": []} for _ in speaker]
    for code, who in enumerate(order):
        rows = rows_of[who]
        want = max(1, len(rows) // 100)
        chosen: set[int] = set()
        while len(chosen) < want:
            at = int(rng.integers(len(rows)))
            chosen.update(rows[at: at + min(5, want - len(chosen))])
        picked = sorted(chosen)
        for i in picked:
            labels[i] = {"code": code, "is_gt": True, "rel_info": {"_list": [who], "_dict": {who: 1.0}}}
        character_list.append({"name": who, "code": code, "is_known": True, "is_global": False,
                               "utterance_list": picked})
    return {"characters": len(order), "character_list": character_list,
            "character_dict": {who: code for code, who in enumerate(order)}, "utterance_label": labels}
