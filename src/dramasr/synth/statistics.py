"""`drama_statistics`: the statistics a synthetic drama is calibrated against, measured the same on any drama."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from dramasr.data.model import NARRATION_MARK, Drama, Lines
from dramasr.synth.calibration import DURATION_BINS_S, SCENE_BREAK_GAP_S, to_unit

BIN_LABELS = ("lt1s", "1to2s", "2to3s", "ge3s")


def drama_statistics(drama: Drama, sample_seed: int = 0) -> dict[str, float]:
    """Statistics a synthetic drama is calibrated against; same keys for any drama."""
    lines = drama.lines
    n = len(lines)
    named = drama.named_characters()
    speaker = lines.speaker
    deleted = lines.deleted
    narration = np.array([NARRATION_MARK in s for s in speaker]) & ~deleted
    named_line = np.array([s in named for s in speaker]) & ~deleted & ~narration
    open_line = ~deleted & ~narration & ~named_line
    stats: dict[str, float] = {"lines": n, "lines_per_episode": n / len(drama.episodes)}

    counts = Counter(s for s, ok in zip(speaker, named_line, strict=True) if ok)
    shares = np.array(sorted(counts.values(), reverse=True), float)
    rank = np.arange(1, len(shares) + 1)
    stats |= {
        "speaking_named": len(shares),
        "speaking_named_per_sqrt_lines": len(shares) / np.sqrt(n),
        "cast_per_named": len(drama.cast) / max(1, len(named)),
        "top1_line_share": shares[0] / shares.sum(),
        "top5_line_share": shares[:5].sum() / shares.sum(),
        "top10_line_share": shares[:10].sum() / shares.sum(),
        "zipf_slope_loglog": float(np.polyfit(np.log(rank), np.log(shares), 1)[0]) if len(shares) > 1 else 0.0,
        "open_share": open_line.mean(),
        "open_labels_per_100_lines": 100 * len({s for s, o in zip(speaker, open_line, strict=True) if o}) / n,
        "narration_share": narration.mean(),
        "deleted_share": deleted.mean(),
    }

    duration = lines.duration
    bins = np.searchsorted(DURATION_BINS_S, duration, "right")
    stats |= {f"duration_q{int(q * 100)}_s": float(np.quantile(duration, q)) for q in (0.1, 0.5, 0.9)}
    stats |= {f"duration_share_{label}": float((bins == b).mean()) for b, label in enumerate(BIN_LABELS)}
    text_length = np.array([len(t) for t in lines.text])
    stats["text_chars_median"] = float(np.median(text_length))
    stats["text_chars_per_s_median"] = float(np.median(text_length / np.maximum(duration, 0.1)))

    same_episode = lines.episode[1:] == lines.episode[:-1]
    gap = ((lines.start_ms[1:] - lines.end_ms[:-1]) / 1000.0)[same_episode]
    stats |= {f"gap_q{int(q * 100)}_s": float(np.quantile(gap, q)) for q in (0.25, 0.5, 0.75, 0.9)}
    stats["gap_ge_6s_share"] = float((gap >= SCENE_BREAK_GAP_S).mean())
    stats["gap_ge_30s_share"] = float((gap >= 30.0).mean())
    code_of = {s: k for k, s in enumerate(dict.fromkeys(speaker))}
    code = np.array([code_of[s] for s in speaker])
    same = (code[1:] == code[:-1])[same_episode]
    stats["same_speaker_as_previous"] = float(same.mean())
    run_start = np.flatnonzero(np.concatenate([[True], (code[1:] != code[:-1]) | ~same_episode]))
    run_code, run_episode = code[run_start], lines.episode[run_start]
    back = (run_code[2:] == run_code[:-2]) & (run_episode[2:] == run_episode[:-2])
    stats["turn_returns_to_speaker_before"] = float(back.mean()) if len(back) else 0.0
    breaks = np.concatenate([[True], ~same_episode | (((lines.start_ms[1:] - lines.end_ms[:-1]) / 1000.0)
                                                      >= SCENE_BREAK_GAP_S)])
    scene_of = np.cumsum(breaks)
    pairs = np.unique(np.stack([scene_of[~narration], code[~narration]], 1), axis=0)
    stats["speakers_per_scene"] = len(pairs) / max(1, len(np.unique(scene_of[~narration])))

    stats |= _face_statistics(drama, named, code, code_of, named_line, open_line, duration, bins)
    stats |= _voice_statistics(lines, named_line, counts, duration, bins, sample_seed)
    stats |= _mention_statistics(drama, named, code, code_of, named_line)

    relation = drama.relation or {}
    listed = relation.get("character_list") or []
    stats["relations_per_listed"] = len(relation.get("relationship_list") or []) / max(1, len(listed))
    stats["listed_named_share"] = len(set(listed) & named) / max(1, len(named))
    seeds = drama.seed_files.get("1pct") or {}
    n_seeds = sum(len(c["utterance_list"]) for c in seeds.get("character_list") or [])
    stats["seeds_per_named_line"] = n_seeds / max(1, int(named_line.sum()) + int(narration.sum()))
    return {key: float(value) for key, value in stats.items()}


def _face_statistics(drama: Drama, named: frozenset[str], code: np.ndarray, code_of: dict[str, int],
                     named_line: np.ndarray, open_line: np.ndarray, duration: np.ndarray,
                     bins: np.ndarray) -> dict[str, float]:
    lines, faces = drama.lines, drama.faces
    n, m = len(lines), len(faces)
    if m == 0:
        return {}
    unknown_re = re.compile(r"^\d{4}_pro\d+_id\d+$")
    face_codes = {s: k for k, s in enumerate(dict.fromkeys(faces.name))}
    face_code = np.array([face_codes[s] for s in faces.name])
    is_unknown = np.array([bool(unknown_re.match(s)) for s in face_codes])
    is_named_face = np.array([s in named for s in face_codes])
    speaker_face = np.array([face_codes.get(s, -1) for s in lines.speaker])
    # detections whose time falls inside each line (tracks of the release are single frames)
    line_rows, face_rows = [], []
    for ep in drama.episodes:
        order = ep.face_start + np.argsort(faces.start_ms[ep.face_start:ep.face_stop], kind="stable")
        times = faces.start_ms[order]
        lo = np.searchsorted(times, lines.start_ms[ep.line_start:ep.line_stop], "left")
        hi = np.searchsorted(times, lines.end_ms[ep.line_start:ep.line_stop], "right")
        count = hi - lo
        line_rows.append(np.repeat(np.arange(ep.line_start, ep.line_stop), count))
        within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        face_rows.append(order[np.repeat(lo, count) + within])
    line_row, face_row = np.concatenate(line_rows), np.concatenate(face_rows)
    pair_code = face_code[face_row]
    own = pair_code == speaker_face[line_row]
    own_count = np.bincount(line_row[own], minlength=n)
    on_screen = own_count > 0
    other = np.unique(np.stack([line_row, pair_code], 1)[~own & is_named_face[pair_code]], axis=0)
    others = np.bincount(other[:, 0], minlength=n) if len(other) else np.zeros(n, int)
    unknown_seen = np.bincount(line_row[is_unknown[pair_code]], minlength=n) > 0
    inside = np.zeros(m, bool)
    inside[face_row] = True
    minutes = sum(lines.end_ms[ep.line_stop - 1] for ep in drama.episodes if ep.line_stop > ep.line_start) / 6e4
    known_det = ~is_unknown[face_code]
    unknown_scores = faces.score[~known_det]
    rate = own_count / np.maximum(duration, 0.2)
    stats = {
        "face_detections_per_min": m / minutes,
        "face_unknown_id_share": float((~known_det).mean()),
        "face_unknown_ids_per_episode": len({s for s, u in zip(face_codes, is_unknown, strict=True) if u})
        / len(drama.episodes),
        "face_outside_lines_share": float((~inside).mean()),
        "face_score_known_q5": float(np.quantile(faces.score[known_det], 0.05)),
        "face_score_known_q50": float(np.quantile(faces.score[known_det], 0.5)),
        "face_score_known_q95": float(np.quantile(faces.score[known_det], 0.95)),
        "face_score_unknown_eq1_share": float((unknown_scores >= 0.999).mean()) if len(unknown_scores) else 0.0,
        "speaker_face_on_screen": float(on_screen[named_line].mean()),
    }
    for b, label in enumerate(BIN_LABELS):
        mask = named_line & (bins == b)
        stats[f"speaker_face_on_screen_{label}"] = float(on_screen[mask].mean()) if mask.any() else float("nan")
    stats["speaker_detections_per_s_when_seen"] = float(np.median(rate[named_line & on_screen]))
    stats["other_named_faces_per_line"] = float(others[named_line].mean())
    stats["other_named_face_share"] = float((others[named_line] > 0).mean())
    stats["open_line_unknown_face_share"] = float(unknown_seen[open_line].mean()) if open_line.any() else 0.0
    stats["named_line_unknown_face_share"] = float(unknown_seen[named_line].mean())
    return stats


def _voice_statistics(lines: Lines, named_line: np.ndarray, counts: Counter[str], duration: np.ndarray,
                      bins: np.ndarray, sample_seed: int) -> dict[str, float]:
    rng = np.random.default_rng(sample_seed)
    emb = lines.embedding.astype(np.float64)
    norm = np.linalg.norm(emb, axis=1)
    unit = emb / np.maximum(norm, 1e-9)[:, None]
    speaker = np.array(lines.speaker, dtype=object)
    top = [s for s, _ in counts.most_common(8)]
    stats = {f"voice_norm_q{q}": float(np.quantile(norm, q / 100)) for q in (1, 50, 99)}
    stats["voice_mean_direction_norm"] = float(np.linalg.norm(unit.mean(0)))
    rows = {s: np.flatnonzero((speaker == s) & named_line) for s in top}
    for b, label in enumerate(BIN_LABELS):
        within, between = [], []
        for k, s in enumerate(top):
            mine = rows[s][bins[rows[s]] == b]
            theirs = rows[top[(k + 1) % len(top)]]
            theirs = theirs[bins[theirs] == b]
            if len(mine) < 2 or len(theirs) < 1:
                continue
            a, c = rng.choice(mine, 200), rng.choice(mine, 200)
            keep = a != c
            within.append((unit[a[keep]] * unit[c[keep]]).sum(1))
            between.append((unit[rng.choice(mine, 200)] * unit[rng.choice(theirs, 200)]).sum(1))
        stats[f"voice_within_cos_{label}"] = float(np.concatenate(within).mean()) if within else float("nan")
        stats[f"voice_between_cos_{label}"] = float(np.concatenate(between).mean()) if between else float("nan")
    centroids = to_unit(np.array([unit[rows[s]].mean(0) for s in top]))
    if len(top) > 1:
        sims = centroids @ centroids.T
        stats["voice_centroid_cos_mean"] = float(sims[np.triu_indices(len(top), 1)].mean())
    return stats


def _mention_statistics(drama: Drama, named: frozenset[str], code: np.ndarray, code_of: dict[str, int],
                        named_line: np.ndarray) -> dict[str, float]:
    lines = drama.lines
    variants = drama.face_info.get("role_name_variants") or {}
    role_of: dict[str, str] = {}
    for role, spelled in variants.items():
        for alias in [role, *str(spelled).split("&")]:
            if len(alias) >= 2 and role in named:
                role_of[alias] = role
    if not role_of:
        return {"name_mention_share": 0.0}
    pattern = re.compile("|".join(sorted(map(re.escape, role_of), key=len, reverse=True)))
    n = len(lines)
    change = (code[1:] != code[:-1]) | (lines.episode[1:] != lines.episode[:-1])
    run_start = np.flatnonzero(np.concatenate([[True], change]))
    run_of = np.repeat(np.arange(len(run_start)), np.diff(np.append(run_start, n)))
    run_code, run_episode = code[run_start], lines.episode[run_start]
    next_code = np.append(np.where(run_episode[1:] == run_episode[:-1], run_code[1:], -1), -1)[run_of]
    prev_code = np.insert(np.where(run_episode[1:] == run_episode[:-1], run_code[:-1], -1), 0, -1)[run_of]
    total = at_next = at_prev = at_self = at_start = 0
    for i, text in enumerate(lines.text):
        match = pattern.search(text)
        if match is None:
            continue
        target = code_of.get(role_of[match.group(0)], -2)
        total += 1
        at_next += next_code[i] == target
        at_prev += prev_code[i] == target
        at_self += code[i] == target
        at_start += match.start() == 0
    share = max(1, total)
    return {"name_mention_share": total / n, "mention_is_next_speaker": at_next / share,
            "mention_is_previous_speaker": at_prev / share, "mention_is_self": at_self / share,
            "mention_at_line_start": at_start / share}
