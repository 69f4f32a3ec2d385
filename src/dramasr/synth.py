"""Synthetic dramas in exactly the DramaSR release structure, for tests and benchmarks.

`synth_drama` builds a seeded, fully vectorised fake drama (lines, voice embeddings, face
detections, cast, relations, seeds); `drama_statistics` measures the statistics it is
calibrated against, on real and synthetic dramas alike (benchmarks/calibrate_synth.py).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from dramasr.data.model import ABSENT, DELETED_MARK, NARRATION_MARK, OTHER, Drama, Episode, FaceTracks, Lines
from dramasr.errors import DramaError

# ----------------------------------------------------------------------------- calibration
# Calibrated on the shared real dramas (chen_mo_de_zhen_xiang, kuang_biao, ren_shi_jian) with
# benchmarks/calibrate_synth.py; each quantile table is the per-drama average, so the largest
# drama does not dominate. Re-run that script after changing anything below.

QUANTILE_LEVELS = np.array([0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 100]) / 100
DURATION_S = np.array([0.13, 0.5, 0.56, 0.64, 0.75, 0.89, 1.03, 1.18, 1.32, 1.46, 1.65, 1.88, 2.2, 2.51, 2.88,
                       3.13, 7.83])
# gaps after a line: same speaker next, another speaker next (both within a scene, < 6 s), scene break
GAP_SAME_S = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.12, 0.15, 0.36, 0.52, 0.73, 1.04, 1.72, 2.56, 3.83,
                       4.65, 5.96])
GAP_TURN_S = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.15, 0.33, 0.57, 0.87, 1.33, 1.95, 3.17, 4.19, 5.16,
                       5.55, 5.96])
GAP_BREAK_S = np.array([6.0, 6.05, 6.09, 6.29, 6.59, 7.37, 8.26, 9.47, 10.85, 13.03, 16.0, 20.73, 30.71, 42.27,
                        68.11, 82.68, 197.03])
SCENE_BREAK_GAP_S = 6.0
SCORE_KNOWN = np.array([0.453, 0.455, 0.458, 0.467, 0.49, 0.558, 0.62, 0.667, 0.705, 0.736, 0.763, 0.792, 0.828,
                        0.858, 0.903, 0.934, 0.996])
SCORE_UNKNOWN = np.array([0.453, 0.453, 0.454, 0.457, 0.462, 0.474, 0.491, 0.518, 0.552, 0.595, 0.652, 0.726,
                          0.818, 0.879, 0.925, 0.947, 0.99])
UNKNOWN_SCORE_ONE_SHARE = 0.12  # unknown-face clusters often carry score 1.0 exactly
EMBEDDING_NORM = np.array([182.06, 344.61, 396.77, 485.94, 565.54, 654.21, 711.21, 756.31, 796.5, 834.1, 871.95,
                           916.35, 974.51, 1022.12, 1077.34, 1113.85, 1371.22])
EMBEDDING_DIM = 192
NAMED_PER_SQRT_LINES = 0.40  # speaking named characters ~ 0.40 * sqrt(lines): 37, 73, 90 in the release
UNSEEN_CAST_RATIO = 0.3  # face_info roles that never appear in face tracks (so are not "named")
ZIPF_SHIFT, ZIPF_EXPONENT = 11.0, 2.9  # Zipf-Mandelbrot line shares (rank + q) ** -s, fitted to the release
OPEN_SHARE = 0.10  # lines by extras / unnamed roles: 0.135, 0.105, 0.075
NARRATION_SHARE = 0.0016  # 0, 0.0020, 0.0026
DELETED_SHARE = 0.0008
SCENE_MEAN_LINES = 17.0  # P(gap >= 6 s) = 0.079, 0.049, 0.045
TURN_CONTINUE = 0.68  # P(next line has the same speaker): 0.65, 0.67, 0.66
SCENE_SIZE_P = {1: 0.06, 2: 0.44, 3: 0.32, 4: 0.18}  # named participants of a scene
RELATED_PARTNER_P = 0.6  # a scene partner is chosen among the lead's relations
RETURN_BOOST = 2.5  # the speaker of the turn before is this much likelier to speak next (A-B-A)
EXTRA_SCENE_P = 0.8  # scenes joined by an extra (open-set speaker)
EXTRA_TURN_FACTOR = 0.75  # extras take more turns than their weight says (turns alternate)
OTHER_LABEL_P = 0.04  # extras labelled 其他 instead of a role title
CHARS_PER_S = 4.7  # median text length per second: 4.0, 4.9, 5.2
# voice: x = a * common + b * (gender, own) + scene channel + drift(scene, voice) + noise(d),
# |noise|^2 = NOISE_BASE + NOISE_SHORT / d; mean cosines per duration bin as in the release
VOICE_COMMON, VOICE_GENDER = 0.64, 0.34  # gender 0.34 (was 0.28) keeps between-character cos with the drift
NOISE_BASE, NOISE_SHORT = 0.23, 1.38
# Separability (benchmarks/calibrate_synth.py --separability). Own voices and all variation
# share one basis with exp-decaying variance: the release's within-character residuals decay
# as exp(-k / 45) (participation ratio 90-98 of 192 dims) and its character centroids span
# ~15 effective dims (participation ratio 12-20), so near-neighbour voices (nearest centroid
# cosine 0.71) and noise pointing at other characters (23-26% of residual variance in the top
# 20 centroid directions, 10% if isotropic).
VOICE_DECAY_DIMS, NOISE_DECAY_DIMS = 8.0, 45.0
# Lines of a character in one scene agree more (cos 0.50) than across scenes (0.39-0.41, the
# same within an episode as across episodes): a per-(scene, voice) drift, plus a small room
# channel shared by a scene's voices (between-character cos +0.03 in the same scene). Drift is
# set below the release's (+0.07 instead of +0.11) because one seed per character, as in a
# 900-line drama, cannot reach across stronger drift (LP falls to ~78%).
SCENE_CHANNEL, SCENE_DRIFT = 0.04, 0.15
# heavy tail: noise, music, overlapping speech; more often on long lines (release: LP and
# nearest-centroid accuracy of >= 3 s lines are below those of 2-3 s lines)
NOISE_TAIL_P, NOISE_TAIL_SCALE, NOISE_TAIL_LONG = 0.03, 1.8, 4.0
# faces: probability the speaker's face is on screen by duration bin (<1, 1-2, 2-3, >=3 s)
SPEAKER_VISIBLE_P = np.array([0.65, 0.73, 0.78, 0.80])
DURATION_BINS_S = np.array([1.0, 2.0, 3.0])
SPEAKER_DETECTIONS_PER_S = 0.12  # beyond the first detection
LISTENER_VISIBLE_P = 0.4
LISTENER_DETECTIONS_PER_S = 0.15
EXTRA_FACE_P = 0.22  # an extra's visible face gets an unknown-face id
BACKGROUND_UNKNOWN_P = 0.05
GAP_DETECTIONS_PER_S = 1.3
GAP_DETECTION_WINDOW_S = 20.0
MISRECOGNISED_P = 0.03
# text: names mentioned per line (0.093, 0.060, 0.033) and who they point at
MENTION_SHARE = 0.06
MENTION_KIND_P = {"next": 0.09, "previous": 0.04, "self": 0.02, "third": 0.85}
THIRD_AT_START_P = 0.4
RELATIONS_PER_LISTED = 4.2  # 3.8, 5.0, 3.8
LISTED_NAMED_SHARE = 0.65  # named characters in relation.json's character_list: 0.74, 0.80, 0.64

FPS_MS = 40  # 25 frames per second; times sit on frame boundaries
FRAME_SIZE = (1920, 1080)
LINE_KEYS = ("episode_idx", "object_idx", "start_time", "end_time", "start_frame", "end_frame", "geometry",
             "text", "character")

# Nonsense syllables: the text of a synthetic drama must never pass for real dialogue.
SYLLABLES = "啦嗒咪呐哩噜嘟咕叭喔嘻哈咚叮铛呱"
SURNAMES = [("柏", "bai"), ("苍", "cang"), ("岑", "cen"), ("茆", "mao"), ("蔺", "lin"), ("阙", "que"), ("濮", "pu"),
            ("庹", "tuo"), ("逯", "lu"), ("郗", "xi"), ("甄", "zhen"), ("訾", "zi"), ("糜", "mi"), ("笪", "da"),
            ("凤", "feng"), ("厍", "she"), ("眭", "sui"), ("麴", "qu"), ("仉", "zhang"), ("巫", "wu")]
GIVEN = [("澜", "lan"), ("砚", "yan"), ("棠", "tang"), ("朔", "shuo"), ("蘅", "heng"), ("琰", "yan"), ("珩", "heng"),
         ("祁", "qi"), ("漪", "yi"), ("湛", "zhan"), ("昀", "yun"), ("翊", "yi"), ("筠", "yun"), ("骁", "xiao"),
         ("岚", "lan"), ("樾", "yue"), ("苒", "ran"), ("暄", "xuan"), ("橙", "cheng"), ("沅", "yuan"),
         ("芷", "zhi"), ("恪", "ke"), ("璟", "jing"), ("弈", "yi"), ("钺", "yue"), ("蓁", "zhen"), ("纾", "shu"),
         ("峤", "qiao"), ("泠", "ling"), ("晞", "xi")]
EXTRA_TITLES = ["警员", "服务员", "司机", "医生", "护士", "记者", "路人", "保安", "店员", "秘书", "工人", "邻居"]
RELATION_TYPES = {  # type of a toward b -> type of b toward a ("" = depends on b's gender)
    "挚友": "挚友", "敌人": "敌人", "同事": "同事", "同伙": "同伙", "恋人": "恋人",
    "上级": "下属", "下属": "上级", "师父": "徒弟", "徒弟": "师父", "老师": "学生", "学生": "老师",
}
FAMILY_TYPES = ["父母", "夫妻", "兄妹"]


def _inverse_cdf(rng: np.random.Generator, table: np.ndarray, size: int | tuple[int, ...]) -> np.ndarray:
    """Draw from the distribution whose quantiles at QUANTILE_LEVELS are `table`."""
    return np.interp(rng.random(size), QUANTILE_LEVELS, table)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _fake_names(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    """Unique two- or three-character names from rare characters, with their pinyin dirnames."""
    combos = [(s, g) for s in range(len(SURNAMES)) for g in range(len(GIVEN))]
    combos += [(s, g, h) for s in range(len(SURNAMES)) for g in range(len(GIVEN)) for h in range(len(GIVEN))]
    first = rng.permutation(len(SURNAMES) * len(GIVEN))
    rest = len(SURNAMES) * len(GIVEN) + rng.permutation(len(combos) - len(SURNAMES) * len(GIVEN))[:count]
    # two-character names first, then three: most dramas fit in the 600 short ones
    order = np.concatenate([first[: count // 2], rest[: count - count // 2]])
    if count > len(order):
        raise DramaError(f"cannot make {count} distinct names", field="cast_size")
    names, dirnames = [], []
    for index in order:
        parts = [SURNAMES[combos[index][0]]] + [GIVEN[k] for k in combos[index][1:]]
        names.append("".join(p[0] for p in parts))
        dirnames.append("-".join(p[1] for p in parts))
    return names, dirnames


def _geometric(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    return rng.geometric(1.0 / mean, size)


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
    cast = _make_cast(rng, n_named)
    script = _make_script(rng, cast, episodes, lines_per_episode, open_share, narration_share)
    timing = _make_timing(rng, script, episodes)
    embedding = _make_embeddings(rng, cast, script, timing["duration_s"], dim)
    text = _make_text(rng, cast, script, timing["duration_s"], mention_share)
    faces, face_bounds = _make_faces(rng, cast, script, timing, episodes)

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


# ----------------------------------------------------------------------------- cast


class _Cast:
    """Who exists: named roles (seen in faces), unseen roles, extras; their voices and ties."""

    def __init__(self, rng: np.random.Generator, n_named: int) -> None:
        n_unseen = max(1, round(UNSEEN_CAST_RATIO * n_named))
        self.n_named, self.n_roles = n_named, n_named + n_unseen
        names, dirnames = _fake_names(rng, 2 * self.n_roles)
        self.roles, self.dirnames = names[: self.n_roles], dirnames[: self.n_roles]
        self.actors = names[self.n_roles:]
        self.female = rng.random(self.n_roles) < 0.45
        rank = np.arange(1, n_named + 1)
        weight = (rank + ZIPF_SHIFT) ** -ZIPF_EXPONENT
        self.weight = weight / weight.sum()
        # unseen roles speak like minor characters, with a voice of their own
        self.variants = {k: f"阿{self.roles[k][-1]}" for k in range(self.n_roles) if rng.random() < 0.1}
        self.relations = self._relations(rng)
        # voice labels: roles, then narration, then extras appended as scenes create them
        self.voice_label: list[str] = list(self.roles) + [NARRATION_MARK]
        self.voice_female: list[bool] = list(self.female) + [bool(rng.random() < 0.5)]
        self.narrator = self.n_roles
        self.extra_counts: Counter[str] = Counter()

    def new_extra(self, rng: np.random.Generator) -> int:
        """A fresh extra (a role title with a number, or 其他): a new voice of its own."""
        if rng.random() < OTHER_LABEL_P:
            label = OTHER
        else:
            title = EXTRA_TITLES[int(rng.integers(len(EXTRA_TITLES)))]
            self.extra_counts[title] += 1
            label = f"{title}-{self.extra_counts[title]}"
        self.voice_label.append(label)
        self.voice_female.append(bool(rng.random() < 0.4))
        return len(self.voice_label) - 1

    def _relations(self, rng: np.random.Generator) -> list[tuple[int, int, str]]:
        listed = [k for k in range(self.n_named) if k < 3 or rng.random() < LISTED_NAMED_SHARE]
        listed += [k for k in range(self.n_named, self.n_roles) if rng.random() < 0.3]
        self.listed = listed
        n_pairs = max(1, round(RELATIONS_PER_LISTED * len(listed) / 2 / 1.15))
        weight = np.array([self.weight[k] if k < self.n_named else self.weight[-1] for k in listed]) ** 0.5
        weight /= weight.sum()
        seen: set[tuple[int, int]] = set()
        relations: list[tuple[int, int, str]] = []
        for _ in range(4 * n_pairs):
            if len(seen) >= n_pairs:
                break
            a, b = (listed[i] for i in rng.choice(len(listed), 2, replace=False, p=weight))
            if (min(a, b), max(a, b)) in seen:
                continue
            seen.add((min(a, b), max(a, b)))
            for forward, backward in self._relation_types(rng, a, b):
                relations.append((a, b, forward))
                relations.append((b, a, backward))
        return relations

    def _relation_types(self, rng: np.random.Generator, a: int, b: int) -> list[tuple[str, str]]:
        kinds = list(RELATION_TYPES) + FAMILY_TYPES
        kind = kinds[int(rng.integers(len(kinds)))]
        fa, fb = bool(self.female[a]), bool(self.female[b])
        if kind == "父母":
            return [("母亲" if fa else "父亲", "女儿" if fb else "儿子")]
        if kind == "夫妻":
            return [("妻子", "丈夫")] if fa and not fb else [("丈夫", "妻子")] if fb and not fa else [("恋人", "恋人")]
        if kind == "兄妹":
            return [("姐姐" if fa else "哥哥", "妹妹" if fb else "弟弟")]
        pair = [(kind, RELATION_TYPES[kind])]
        if rng.random() < 0.15:  # some pairs carry two relations, e.g. colleague and friend
            pair.append(("挚友", "挚友") if kind != "挚友" else ("同事", "同事"))
        return pair

    def partners(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a, b, _ in self.relations:
            if a < self.n_named and b < self.n_named and b not in out.setdefault(a, []):
                out[a].append(b)
        return out

    def face_info(self) -> dict[str, Any]:
        variants = {role: role + (f"&{self.variants[k]}" if k in self.variants else "")
                    for k, role in enumerate(self.roles)}
        role_name = {}
        for k, role in enumerate(self.roles):
            role_name[role] = role
            if k in self.variants:
                role_name[self.variants[k]] = role
        return {
            "actor_name": {actor: actor for actor in self.actors},
            "role_name": role_name,
            "actor_to_role": dict(zip(self.actors, self.roles, strict=True)),
            "role_dirname": {role: self.dirnames[k] for k, role in enumerate(self.roles) if k < self.n_named},
            "role_name_variants": variants,
        }

    def relation_json(self) -> dict[str, Any]:
        types = Counter(kind for _, _, kind in self.relations)
        return {
            "character_list": [self.roles[k] for k in self.listed],
            "character_name_mapping": {OTHER: None, NARRATION_MARK: None},
            "relationship_list": [[self.roles[a], self.roles[b], kind] for a, b, kind in self.relations],
            "relationship_type_dict": dict(sorted(types.items(), key=lambda item: (-item[1], item[0]))),
        }


def _make_cast(rng: np.random.Generator, n_named: int) -> _Cast:
    return _Cast(rng, n_named)


# ----------------------------------------------------------------------------- script


def _make_script(rng: np.random.Generator, cast: _Cast, episodes: int, lines_per_episode: int,
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
            length = min(budget, int(_geometric(rng, SCENE_MEAN_LINES, 1)[0]))
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


# ----------------------------------------------------------------------------- timing


def _make_timing(rng: np.random.Generator, script: dict[str, np.ndarray], episodes: int) -> dict[str, np.ndarray]:
    voice, scene, episode = script["voice"], script["scene"], script["episode"]
    n = len(voice)
    duration = np.maximum(1, np.round(_inverse_cdf(rng, DURATION_S, n) * 1000 / FPS_MS)).astype(np.int64)
    gap_same = _inverse_cdf(rng, GAP_SAME_S, n)
    gap_turn = _inverse_cdf(rng, GAP_TURN_S, n)
    gap_break = _inverse_cdf(rng, GAP_BREAK_S, n)
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


# ----------------------------------------------------------------------------- voices


def _make_embeddings(rng: np.random.Generator, cast: _Cast, script: dict[str, np.ndarray],
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

    common = _unit(rng.standard_normal(dim))
    gender = _unit(rng.standard_normal((2, dim)))
    own = _unit(shaped(n_voices, voice_sd))
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
                       + own_weight * _unit(shaped(len(other), voice_sd)))
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
    norm = _inverse_cdf(rng, EMBEDDING_NORM, n)
    return (_unit(base + noise) * norm[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------- text


def _make_text(rng: np.random.Generator, cast: _Cast, script: dict[str, np.ndarray], duration_s: np.ndarray,
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


# ----------------------------------------------------------------------------- faces


def _make_faces(rng: np.random.Generator, cast: _Cast, script: dict[str, np.ndarray],
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
    score = np.where(known, _inverse_cdf(rng, SCORE_KNOWN, m), _inverse_cdf(rng, SCORE_UNKNOWN, m))
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


def _face_names(cast: _Cast, who: np.ndarray, episode: np.ndarray, row: np.ndarray,
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


# ----------------------------------------------------------------------------- seeds


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


# ----------------------------------------------------------------------------- statistics


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
    stats |= {f"duration_share_{label}": float((bins == b).mean()) for b, label in enumerate(_BIN_LABELS)}
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


_BIN_LABELS = ("lt1s", "1to2s", "2to3s", "ge3s")


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
    for b, label in enumerate(_BIN_LABELS):
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
    for b, label in enumerate(_BIN_LABELS):
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
    centroids = _unit(np.array([unit[rows[s]].mean(0) for s in top]))
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
