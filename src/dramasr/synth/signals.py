"""What the models saw: voice embeddings of each line and single-frame face detections."""

from __future__ import annotations

import numpy as np

from dramasr.data.model import OTHER, FaceTracks
from dramasr.synth.calibration import (
    BACKGROUND_UNKNOWN_P,
    DURATION_BINS_S,
    EMBEDDING_NORM,
    EXTRA_FACE_P,
    FPS_MS,
    FRAME_SIZE,
    GAP_DETECTION_WINDOW_S,
    GAP_DETECTIONS_PER_S,
    LISTENER_DETECTIONS_PER_S,
    LISTENER_VISIBLE_P,
    MISRECOGNISED_P,
    NOISE_BASE,
    NOISE_DECAY_DIMS,
    NOISE_SHORT,
    NOISE_TAIL_LONG,
    NOISE_TAIL_P,
    NOISE_TAIL_SCALE,
    QUANTILE_LEVELS,
    SCENE_CHANNEL,
    SCENE_DRIFT,
    SCORE_KNOWN,
    SCORE_UNKNOWN,
    SPEAKER_DETECTIONS_PER_S,
    SPEAKER_VISIBLE_P,
    UNKNOWN_SCORE_ONE_SHARE,
    VOICE_COMMON,
    VOICE_DECAY_DIMS,
    VOICE_GENDER,
    inverse_cdf,
    to_unit,
)
from dramasr.synth.cast import Cast


def make_embeddings(rng: np.random.Generator, cast: Cast, script: dict[str, np.ndarray],
                     duration_s: np.ndarray, dim: int) -> np.ndarray:
    """Voices that are as hard to tell apart as the release's.

    A line is mean(voice) + scene channel + drift of the voice in this scene + line noise.
    Voices and all the variation around them live in one anisotropic space (a decaying
    spectrum), so characters have near neighbours and the noise of a line often points
    toward another character: isotropic noise in 192 dimensions would average away.
    """
    n_voices = len(cast.voice_label)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    # standard deviation along the basis: variance decays as exp(-k / decay)
    voice_sd = np.exp(-np.arange(dim) / (2 * VOICE_DECAY_DIMS))
    noise_sd = np.exp(-np.arange(dim) / (2 * NOISE_DECAY_DIMS))
    voice_sd /= np.sqrt((voice_sd**2).sum())
    noise_sd /= np.sqrt((noise_sd**2).sum())

    def shaped(size: int, sd: np.ndarray) -> np.ndarray:  # rows of expected squared norm 1
        return (rng.standard_normal((size, dim)) * sd) @ basis.T

    common = to_unit(rng.standard_normal(dim))
    gender = to_unit(rng.standard_normal((2, dim)))
    own = to_unit(shaped(n_voices, voice_sd))
    female = np.array(cast.voice_female, int)
    own_weight = np.sqrt(1.0 - VOICE_COMMON**2 - VOICE_GENDER**2)
    means = VOICE_COMMON * common + VOICE_GENDER * gender[female] + own_weight * own
    voice, scene = script["voice"], script["scene"]
    n = len(voice)
    base = means[voice]
    # 其他 is many different people: each of its lines gets a voice of its own
    other = np.flatnonzero(np.array([cast.voice_label[v] == OTHER for v in range(n_voices)])[voice])
    if len(other):
        base[other] = (VOICE_COMMON * common + VOICE_GENDER * gender[rng.integers(0, 2, len(other))]
                       + own_weight * to_unit(shaped(len(other), voice_sd)))
    # channel drift: the room of a scene, and how each voice sounds in it
    n_scenes = int(scene.max()) + 1
    pair, pair_of = np.unique(scene * n_voices + voice, return_inverse=True)
    base += np.sqrt(SCENE_CHANNEL) * shaped(n_scenes, noise_sd)[scene]
    base += np.sqrt(SCENE_DRIFT) * shaped(len(pair), noise_sd)[pair_of.ravel()]
    # heavy tail: a few lines carry music, noise or overlapping speech
    tail_p = NOISE_TAIL_P * np.array([1.0, 1.0, 1.0, NOISE_TAIL_LONG])[np.searchsorted(DURATION_BINS_S, duration_s,
                                                                                          "right")]
    tail = np.where(rng.random(n) < tail_p, NOISE_TAIL_SCALE, 1.0)
    noise_scale = np.sqrt(NOISE_BASE + NOISE_SHORT / np.maximum(duration_s, 0.1)) * tail
    noise = shaped(n, noise_sd) * noise_scale[:, None]
    norm = inverse_cdf(rng, EMBEDDING_NORM, n)
    return (to_unit(base + noise) * norm[:, None]).astype(np.float32)


def make_faces(rng: np.random.Generator, cast: Cast, script: dict[str, np.ndarray],
                timing: dict[str, np.ndarray], episodes: int) -> tuple[FaceTracks, np.ndarray]:
    """Single-frame face detections: speakers, listeners, unknown faces, and faces between lines."""
    voice, scene, episode, members = script["voice"], script["scene"], script["episode"], script["members"]
    n = len(voice)
    start_f, end_f = timing["start_ms"] // FPS_MS, timing["end_ms"] // FPS_MS
    duration = timing["duration_s"]
    line_frames = np.maximum(1, end_f - start_f)
    n_known = cast.n_named
    # identity of a detection: >= 0 a named role; < 0 an unknown-face key (-1 - key)
    who: list[np.ndarray] = []
    row: list[np.ndarray] = []  # the line (or gap after a line) a detection belongs to
    in_gap: list[np.ndarray] = []

    def add(identity: np.ndarray, rows: np.ndarray, count: np.ndarray, gap: bool) -> None:
        who.append(np.repeat(identity, count))
        row.append(np.repeat(rows, count))
        in_gap.append(np.full(int(count.sum()), gap))

    rows = np.arange(n)
    speaking = voice != cast.narrator
    visible = speaking & (rng.random(n) < SPEAKER_VISIBLE_P[np.searchsorted(DURATION_BINS_S, duration, "right")])
    named_line = voice < n_known
    count = 1 + rng.poisson(SPEAKER_DETECTIONS_PER_S * duration)
    add(voice[visible & named_line], rows[visible & named_line], count[visible & named_line], False)
    extra_face = visible & ~named_line & (rng.random(n) < EXTRA_FACE_P)
    add(-1 - voice[extra_face], rows[extra_face], count[extra_face], False)

    # listeners: the other named members of the scene
    line_members = members[scene]
    listener = (line_members >= 0) & (line_members < n_known) & (line_members != voice[:, None])
    listener &= rng.random(listener.shape) < LISTENER_VISIBLE_P
    li_row, li_col = np.nonzero(listener)
    li_count = 1 + rng.poisson(LISTENER_DETECTIONS_PER_S * duration[li_row])
    add(line_members[li_row, li_col], li_row, li_count, False)

    # stray unknown faces: a few passers-by per episode
    n_voices = len(cast.voice_label)
    stray = np.flatnonzero(speaking & (rng.random(n) < BACKGROUND_UNKNOWN_P))
    add(-1 - (n_voices + rng.integers(0, 3, len(stray))), stray, np.ones(len(stray), np.int64), False)

    # faces between lines: members of the scene of the line before the gap
    next_start = np.append(start_f[1:], end_f[-1])
    last = np.append(episode[1:] != episode[:-1], True)
    gap_frames = np.where(last, 0, np.maximum(0, next_start - end_f - 1))
    gap_s = np.minimum(gap_frames * FPS_MS / 1000.0, GAP_DETECTION_WINDOW_S)
    gap_count = rng.poisson(GAP_DETECTIONS_PER_S * gap_s)
    has_gap = np.flatnonzero((gap_count > 0) & (gap_frames > 0))
    n_members = (members >= 0).sum(1)
    pick = members[scene[has_gap], (rng.random(len(has_gap)) * np.maximum(1, n_members[scene[has_gap]])).astype(int)]
    ok = (pick >= 0) & ((pick < n_known) | (rng.random(len(pick)) < EXTRA_FACE_P))
    gap_who = np.where(pick < n_known, pick, -1 - pick)
    add(gap_who[ok], has_gap[ok], gap_count[has_gap[ok]], True)

    who_all, row_all, gap_all = np.concatenate(who), np.concatenate(row), np.concatenate(in_gap)
    m = len(who_all)
    # a frame inside the line, or inside the gap after it
    lo = np.where(gap_all, end_f[row_all] + 1, start_f[row_all])
    span = np.where(gap_all, np.maximum(1, gap_frames[row_all]), line_frames[row_all] + 1)
    frame = lo + (rng.random(m) * span).astype(np.int64)
    episode_of = episode[row_all]

    known = who_all >= 0
    misrecognised = known & (rng.random(m) < MISRECOGNISED_P)
    who_all = np.where(misrecognised, rng.integers(0, n_known, m), who_all)
    score = np.where(known, inverse_cdf(rng, SCORE_KNOWN, m), inverse_cdf(rng, SCORE_UNKNOWN, m))
    score = np.where(misrecognised, np.interp(rng.random(m) * 0.5, QUANTILE_LEVELS, SCORE_KNOWN), score)
    score = np.where(~known & (rng.random(m) < UNKNOWN_SCORE_ONE_SHARE), 1.0, np.round(score, 3))

    order = np.lexsort((who_all, frame, episode_of))
    who_all, frame, episode_of, score, row_all = (a[order] for a in (who_all, frame, episode_of, score, row_all))
    names = _face_names(cast, who_all, episode_of, row_all, n // episodes)

    width = np.clip(rng.lognormal(np.log(240), 0.45, m), 40, 900)
    height = width * rng.uniform(1.2, 1.45, m)
    x1 = rng.uniform(-0.1, 1.0, m) * (FRAME_SIZE[0] - 0.9 * width)
    y1 = rng.uniform(-0.2, 1.0, m) * (FRAME_SIZE[1] - 0.8 * height)
    box = np.stack([x1, y1, x1 + width, y1 + height], 1).round().astype(np.int32)
    bounds = np.searchsorted(episode_of, np.arange(1, episodes + 2))
    object_idx = np.arange(m) - np.repeat(bounds[:-1], np.diff(bounds))
    frame_ms = frame * FPS_MS
    faces = FaceTracks(
        episode=episode_of.astype(np.int32), object_idx=object_idx.astype(np.int32),
        start_ms=frame_ms, end_ms=frame_ms.copy(), start_frame=frame.copy(), end_frame=frame.copy(),
        name=names, score=score.astype(np.float64), active_frames=np.ones(m, np.int32),
        frame_offsets=np.arange(m + 1, dtype=np.int64), frame=frame.astype(np.int32), box=box,
        id_count=np.ones(m, np.int32),
    )
    return faces, bounds


def _face_names(cast: Cast, who: np.ndarray, episode: np.ndarray, row: np.ndarray,
                lines_per_episode: int) -> list[str]:
    """Cast names, or release-style unknown-face ids 'EEEE_proP_idK' numbered per episode part."""
    names: list[str] = [""] * len(who)
    for k in np.flatnonzero(who >= 0):
        names[k] = cast.roles[who[k]]
    unknown = np.flatnonzero(who < 0)
    if len(unknown):
        # an episode is processed in five parts ("pro"); ids count from 1 within a part
        part = (row[unknown] % lines_per_episode) * 5 // lines_per_episode
        key = np.stack([episode[unknown], part, -1 - who[unknown]], 1)
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        group_start = np.flatnonzero(np.any(np.diff(uniq[:, :2], axis=0, prepend=-1) != 0, axis=1))
        ident = np.arange(len(uniq)) - np.repeat(group_start, np.diff(np.append(group_start, len(uniq)))) + 1
        for k, u in zip(unknown, inverse.ravel(), strict=True):
            names[k] = f"{uniq[u, 0]:04d}_pro{uniq[u, 1]}_id{ident[u]}"
    return names
