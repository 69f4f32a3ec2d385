"""What is said when: scenes of a few characters taking turns, line timing, and the (nonsense) text."""

from __future__ import annotations

import numpy as np

from dramasr.synth.calibration import (
    CHARS_PER_S,
    DURATION_S,
    EXTRA_SCENE_P,
    EXTRA_TURN_FACTOR,
    FPS_MS,
    GAP_BREAK_S,
    GAP_SAME_S,
    GAP_TURN_S,
    MENTION_KIND_P,
    RELATED_PARTNER_P,
    RETURN_BOOST,
    SCENE_MEAN_LINES,
    SCENE_SIZE_P,
    SYLLABLES,
    THIRD_AT_START_P,
    TURN_CONTINUE,
    geometric,
    inverse_cdf,
)
from dramasr.synth.cast import Cast


def make_script(rng: np.random.Generator, cast: Cast, episodes: int, lines_per_episode: int,
                 open_share: float, narration_share: float) -> dict[str, np.ndarray]:
    """Scenes of 1-4 named characters (plus perhaps an extra) taking turns of a few lines."""
    partners = cast.partners()
    sizes, size_p = np.array(list(SCENE_SIZE_P)), np.array(list(SCENE_SIZE_P.values()))
    # the extra's share of a scene's turns that yields `open_share` of all lines
    extra_turn_share = min(0.9, EXTRA_TURN_FACTOR * open_share / EXTRA_SCENE_P) if open_share > 0 else 0.0
    voice, scene, episode_col, participants = [], [], [], []
    scene_id = 0
    for e in range(episodes):
        n_narration = int(rng.binomial(lines_per_episode, narration_share)) if narration_share else 0
        at_start = rng.random() < 0.5
        budget = lines_per_episode - n_narration
        episode_voice: list[np.ndarray] = []
        episode_scene: list[np.ndarray] = []
        if n_narration and at_start:
            episode_voice.append(np.full(n_narration, cast.narrator))
            episode_scene.append(np.full(n_narration, scene_id))
            participants.append([])
            scene_id += 1
        while budget > 0:
            length = min(budget, int(geometric(rng, SCENE_MEAN_LINES, 1)[0]))
            budget -= length
            k = int(rng.choice(sizes, p=size_p))
            members = [int(rng.choice(cast.n_named, p=cast.weight))]
            while len(members) < min(k, cast.n_named):
                related = [p for p in partners.get(members[0], []) if p not in members]
                if related and rng.random() < RELATED_PARTNER_P:
                    members.append(related[int(rng.integers(len(related)))])
                    continue
                pick = int(rng.choice(cast.n_named, p=cast.weight))
                if pick not in members:
                    members.append(pick)
            voices = list(members)
            turn_weight = list(cast.weight[members] ** 0.5)
            if extra_turn_share and rng.random() < EXTRA_SCENE_P:
                # an extra: a role title, or now and then an unseen cast role
                if rng.random() < 0.25:
                    voices.append(int(rng.integers(cast.n_named, cast.n_roles)))
                else:
                    voices.append(cast.new_extra(rng))
                turn_weight.append(sum(turn_weight) * extra_turn_share / (1 - extra_turn_share))
            participants.append(voices)
            episode_voice.append(_turns(rng, np.array(voices), np.array(turn_weight), length))
            episode_scene.append(np.full(length, scene_id))
            scene_id += 1
        if n_narration and not at_start:
            episode_voice.append(np.full(n_narration, cast.narrator))
            episode_scene.append(np.full(n_narration, scene_id))
            participants.append([])
            scene_id += 1
        voice.append(np.concatenate(episode_voice))
        scene.append(np.concatenate(episode_scene))
        episode_col.append(np.full(lines_per_episode, e + 1))
    width = max(1, max(len(p) for p in participants))
    members = np.full((len(participants), width), -1)
    for s, people in enumerate(participants):
        members[s, : len(people)] = people
    return {"voice": np.concatenate(voice), "scene": np.concatenate(scene),
            "episode": np.concatenate(episode_col), "members": members}


def _turns(rng: np.random.Generator, voices: np.ndarray, weight: np.ndarray, length: int) -> np.ndarray:
    """Speaker per line of one scene: turns of geometric length, never the same voice twice."""
    turn_lengths = rng.geometric(1.0 - TURN_CONTINUE, length)
    n_turns = int(np.searchsorted(np.cumsum(turn_lengths), length) + 1)
    turn_lengths = turn_lengths[:n_turns]
    speakers = np.empty(n_turns, np.int64)
    p = weight / weight.sum()
    current, before = int(rng.choice(len(voices), p=p)), -1
    for t in range(n_turns):
        speakers[t] = current
        if len(voices) > 1:
            q = p.copy()
            if before >= 0:
                q[before] *= RETURN_BOOST
            q[current] = 0.0
            current, before = int(rng.choice(len(voices), p=q / q.sum())), current
    return np.repeat(voices[speakers], turn_lengths)[:length]


def make_timing(rng: np.random.Generator, script: dict[str, np.ndarray], episodes: int) -> dict[str, np.ndarray]:
    voice, scene, episode = script["voice"], script["scene"], script["episode"]
    n = len(voice)
    duration = np.maximum(1, np.round(inverse_cdf(rng, DURATION_S, n) * 1000 / FPS_MS)).astype(np.int64)
    gap_same = inverse_cdf(rng, GAP_SAME_S, n)
    gap_turn = inverse_cdf(rng, GAP_TURN_S, n)
    gap_break = inverse_cdf(rng, GAP_BREAK_S, n)
    # gap before each line
    same_scene = np.zeros(n, bool)
    same_scene[1:] = scene[1:] == scene[:-1]
    same_voice = np.zeros(n, bool)
    same_voice[1:] = voice[1:] == voice[:-1]
    gap = np.where(same_scene, np.where(same_voice, gap_same, gap_turn), gap_break)
    first = np.ones(n, bool)
    first[1:] = episode[1:] != episode[:-1]
    gap[first] = rng.uniform(5.0, 180.0, int(first.sum()))  # opening titles before the first line
    gap_frames = np.maximum(1, np.round(gap * 1000 / FPS_MS)).astype(np.int64)
    step = gap_frames + duration
    start = np.cumsum(step) - duration
    # restart the clock at each episode
    episode_first = np.flatnonzero(first)
    offset = np.repeat(start[episode_first] - gap_frames[episode_first],
                       np.diff(np.append(episode_first, n)))
    start_frames = start - offset
    return {"start_ms": start_frames * FPS_MS, "end_ms": (start_frames + duration) * FPS_MS,
            "duration_s": duration * FPS_MS / 1000.0, "first": first}


def make_text(rng: np.random.Generator, cast: Cast, script: dict[str, np.ndarray], duration_s: np.ndarray,
               mention_share: float) -> list[str]:
    """Nonsense syllables, about CHARS_PER_S per second; some lines name a character."""
    voice, scene = script["voice"], script["scene"]
    n = len(voice)
    length = np.clip(np.round(duration_s * CHARS_PER_S * rng.lognormal(0.0, 0.35, n)), 1, 24).astype(np.int64)
    pool = rng.integers(0, len(SYLLABLES), int(length.sum()))
    ends = np.cumsum(length)
    flat = "".join(SYLLABLES[i] for i in pool)
    space_at = np.where((length >= 8) & (rng.random(n) < 0.4), rng.integers(3, np.maximum(4, length - 2)), -1)
    text = []
    for i in range(n):
        piece = flat[ends[i] - length[i]: ends[i]]
        if space_at[i] > 0:
            piece = piece[: space_at[i]] + " " + piece[space_at[i]:]
        text.append(piece)

    # speaker of the turn after / before each line, within its scene (-1 = none)
    change = np.flatnonzero((voice[1:] != voice[:-1]) | (scene[1:] != scene[:-1])) + 1
    run_start = np.concatenate([[0], change])
    run_of = np.repeat(np.arange(len(run_start)), np.diff(np.append(run_start, n)))
    run_voice, run_scene = voice[run_start], scene[run_start]
    next_voice = np.append(np.where(run_scene[1:] == run_scene[:-1], run_voice[1:], -1), -1)[run_of]
    prev_voice = np.insert(np.where(run_scene[1:] == run_scene[:-1], run_voice[:-1], -1), 0, -1)[run_of]
    is_last = np.append(run_of[1:] != run_of[:-1], True)
    is_first = np.insert(run_of[1:] != run_of[:-1], 0, True)

    names = cast.roles
    # each kind of mention is drawn among the lines where it can occur, so that the shares
    # of MENTION_KIND_P hold whatever the turn structure
    fits = {
        "next": is_last & (next_voice >= 0) & (next_voice < cast.n_named),
        "previous": is_first & (prev_voice >= 0) & (prev_voice < cast.n_named),
        "self": voice < cast.n_named,
        "third": np.ones(n, bool),
    }
    kind = np.full(n, -1)
    for k, (how, share) in enumerate(MENTION_KIND_P.items()):
        p = min(1.0, mention_share * share / max(fits[how].mean(), 1e-9))
        kind[(kind < 0) & fits[how] & (rng.random(n) < p)] = k
    third = rng.choice(cast.n_named, n, p=cast.weight)
    third = np.where(third == voice, (third + 1 + rng.integers(0, cast.n_named - 1, n)) % cast.n_named, third)
    third_at_start = rng.random(n) < THIRD_AT_START_P
    kinds = list(MENTION_KIND_P)
    for i in np.flatnonzero(kind >= 0):
        how = kinds[kind[i]]
        if how == "next":
            text[i] = f"{names[next_voice[i]]}，{text[i]}"
        elif how == "previous":
            text[i] = f"{names[prev_voice[i]]}，{text[i]}"
        elif how == "self":
            text[i] = f"我是{names[voice[i]]} {text[i]}"
        else:
            cut = 0 if third_at_start[i] else int(rng.integers(1, len(text[i]) + 1))
            text[i] = text[i][:cut] + names[third[i]] + text[i][cut:]
    return text
