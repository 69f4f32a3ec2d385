"""The group stage: a new-character group decided as a whole, after the line passes.

Propagation gives a voice it cannot tie to any seed a new-character label of its own
("新角色-N"), and the line passes mostly keep it: each line alone is weak evidence, and its
group-mates, labelled "not a named character", argue that it is not one either. Yet such a
group is nearly always one person, and often a named character whose voice sounded
different that day. This stage looks at each group left after the last pass, offers it the
named characters it sounds most like (plus the one whose face is seen most during it), and
scores each (group, candidate) pair with boosted trees: the group's voice against the
candidate's centroid over the drama and within the group's episode (and the margins over
the best rival), the share of its lines that show the candidate's face, the voice model's
mean probability, how often the candidate speaks right before or after the group's lines
and in its scenes, how often propagation listed the candidate for its lines, its size,
how tight it is, how long its lines are. When the best candidate's probability of being the
group's speaker passes the threshold, every line of the group is given to it.

Training groups come from propagation runs over the training drama and over runs of its
episodes taken as small dramas of their own (seeded as the protocol seeds a drama,
`train.run_seeds`): a small drama, with fewer labelled lines per character, leaves more
named characters in new-character groups, so the trees see hundreds of such groups where
the whole drama has a few dozen. Each training group is seen twice, once as it is and
once with its face evidence withheld (`without_faces`): in the small dramas (as first
seeded) the speaker's face was recognised during 98 % of the groups that are a named
character's, in the whole drama during only 71 %, and trees fitted on the former alone
learn that a group whose speaker is off screen is an extra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramasr.tools.base import Context
from dramasr.tools.tables import unit_rows

TOOLS = ("audio_sim", "faces_on_screen", "dialogue_context", "voice_cluster")  # whose evidence it reads
VOICE_CANDIDATES = 3  # named characters offered to a group by voice (plus the most-seen face)
NO_FACE_RANK = 99  # face rank of a candidate whose face is not seen during the group
FEATURES = (
    "group_size", "group_voice", "group_voice_rank", "group_voice_margin", "group_best_voice", "group_face_share",
    "group_face_rank", "group_best_face_share", "group_model_p", "group_episode_voice", "group_episode_margin",
    "group_episode_lines", "candidate_lines", "group_adjacent", "group_coherence", "group_duration",
    "group_listed", "group_scene_lines",
)


@dataclass
class GroupRows:
    """One row per (group, candidate); groups are ids of `LabelTables.new_character_clusters`."""

    group: np.ndarray  # int64 [R]
    cls: np.ndarray  # int32 [R]
    X: np.ndarray  # float32 [R, len(FEATURES)]
    cluster: np.ndarray  # int64 [N], group of each line (-1: none)
    episode: np.ndarray  # int64 [G], the episode number most of each group's lines are in

    def __len__(self) -> int:
        return len(self.group)


def _rank(values: np.ndarray) -> np.ndarray:
    """Per row, 0 for the largest value, 1 for the next, ..."""
    return np.argsort(np.argsort(-values, axis=1, kind="stable"), axis=1, kind="stable")


def _episode_centroids(ctx: Context, episode_index: np.ndarray, n_episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """[E, named, D] unit centroid of each named class's lines in each episode, and [E, named] counts."""
    unit, other = ctx.tables.unit_embedding, ctx.other
    named = np.flatnonzero(ctx.label_class < other)
    centroid = np.zeros((n_episodes, other, unit.shape[1]), np.float32)
    count = np.zeros((n_episodes, other), np.float32)
    np.add.at(centroid, (episode_index[named], ctx.label_class[named]), unit[named])
    np.add.at(count, (episode_index[named], ctx.label_class[named]), 1.0)
    centroid /= np.maximum(np.linalg.norm(centroid, axis=2, keepdims=True), 1e-8)
    return centroid, count


def _neighbour_counts(ctx: Context, member: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """[G, named] how many of a group's lines have the class as previous or next line (same episode)."""
    other, n = ctx.other, len(ctx.label_class)
    episode = ctx.drama.lines.episode
    counts = np.zeros((n_groups, other), np.float32)
    for step in (-1, 1):
        nb = np.clip(member + step, 0, n - 1)
        cls = ctx.label_class[nb]
        ok = (member + step >= 0) & (member + step < n) & (episode[nb] == episode[member]) & (cls < other)
        np.add.at(counts, (group[ok], cls[ok]), 1.0)
    return counts


def _scene_counts(ctx: Context, member: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """[G, named] lines of each class in the scenes where the group speaks."""
    scene, other = ctx.tables.scene_id, ctx.other
    per_scene = np.zeros((int(scene.max()) + 1, other), np.float32)
    named = np.flatnonzero(ctx.label_class < other)
    np.add.at(per_scene, (scene[named], ctx.label_class[named]), 1.0)
    counts = np.zeros((n_groups, other), np.float32)
    pairs = np.unique(np.stack([group, scene[member]], axis=1), axis=0)
    np.add.at(counts, pairs[:, 0], per_scene[pairs[:, 1]])
    return counts


def _listed(ctx: Context, member: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """[G, named] share of a group's lines whose propagation candidates list the class."""
    other = ctx.other
    counts = np.zeros((n_groups, other), np.float32)
    for i, g in zip(member.tolist(), group.tolist(), strict=True):
        for k in {ctx.class_of.get(name, other) for name in ctx.state.candidates[i]} - {other}:
            counts[g, k] += 1.0
    return counts


def group_rows(ctx: Context, voice_candidates: int = VOICE_CANDIDATES) -> GroupRows:
    """Feature rows of every current new-character group and its candidates."""
    cluster, n_groups = ctx.labels.new_character_clusters
    other = ctx.other
    if n_groups == 0 or other == 0:
        return GroupRows(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, len(FEATURES)), np.float32),
                         cluster, np.zeros(n_groups, np.int64))
    t = ctx.labels.clusters
    member = np.flatnonzero(cluster >= 0)
    group = cluster[member]
    size = np.maximum(t.size, 1.0)
    unit = ctx.tables.unit_embedding

    episodes, episode_index = np.unique(ctx.drama.lines.episode, return_inverse=True)
    per_episode = np.zeros((n_groups, len(episodes)), np.int32)
    np.add.at(per_episode, (group, episode_index[member]), 1)
    main_episode = per_episode.argmax(1)  # a group rarely spans episodes
    centroid, centroid_lines = _episode_centroids(ctx, episode_index, len(episodes))
    voice_sum = np.zeros((n_groups, unit.shape[1]), np.float32)
    np.add.at(voice_sum, group, unit[member])
    coherence = np.linalg.norm(voice_sum, axis=1) / size  # 1 when every line has the same voice
    mean_voice = unit_rows(voice_sum)
    episode_voice = np.einsum("gd,gcd->gc", mean_voice, centroid[main_episode])
    episode_lines = centroid_lines[main_episode]
    episode_voice[episode_lines == 0] = -1.0
    top2 = np.sort(episode_voice, axis=1)[:, -2:] if other >= 2 else np.repeat(episode_voice, 2, axis=1)
    episode_rival = np.where(episode_voice >= top2[:, 1:], top2[:, :1], top2[:, 1:])

    duration = np.zeros(n_groups)
    np.add.at(duration, group, ctx.drama.lines.duration[member])
    class_lines = np.bincount(ctx.label_class[ctx.label_class < other], minlength=other + 1)[:other]
    adjacent = _neighbour_counts(ctx, member, group, n_groups) / size[:, None]
    scene_lines = _scene_counts(ctx, member, group, n_groups)
    listed = _listed(ctx, member, group, n_groups) / size[:, None]
    voice, face, model = t.sim[:, :other], t.face[:, :other], t.model[:, :other]
    voice_rank, face_rank = _rank(voice), np.where(face > 0, _rank(face), NO_FACE_RANK)

    pair_group, pair_class = [], []
    for g in range(n_groups):
        offered = np.argsort(-voice[g], kind="stable")[:voice_candidates].tolist()
        seen = int(np.argmax(face[g]))
        if face[g, seen] > 0 and seen not in offered:
            offered.append(seen)
        pair_group += [g] * len(offered)
        pair_class += offered
    g, c = np.asarray(pair_group, np.int64), np.asarray(pair_class, np.int32)
    columns = (
        t.size[g], voice[g, c], voice_rank[g, c], t.margin[g, c], t.best[g], face[g, c], face_rank[g, c],
        face[g].max(1), model[g, c], episode_voice[g, c], episode_voice[g, c] - episode_rival[g, c],
        episode_lines[g, c], np.log1p(class_lines[c]), adjacent[g, c], coherence[g], duration[g] / size[g],
        listed[g, c], scene_lines[g, c],
    )
    X = np.stack([np.asarray(col, np.float32) for col in columns], axis=1)
    return GroupRows(g, c, X, cluster, episodes[main_episode].astype(np.int64))


def without_faces(X: np.ndarray) -> np.ndarray:
    """Group rows as they would read if no face had been recognised during the groups."""
    out = X.copy()
    for name, value in (("group_face_share", 0.0), ("group_best_face_share", 0.0), ("group_face_rank", NO_FACE_RANK)):
        out[:, FEATURES.index(name)] = value
    return out


def group_targets(ctx: Context, rows: GroupRows, truth: list[str]) -> np.ndarray:
    """True where the candidate speaks more than half of the group's scored lines."""
    truth_class = ctx.classes_of(truth)
    deleted = ctx.drama.lines.deleted
    member = np.flatnonzero((rows.cluster >= 0) & ~deleted)
    n_groups = int(rows.group.max()) + 1 if len(rows) else 0
    size = np.bincount(rows.cluster[member], minlength=n_groups)
    hits = np.zeros((n_groups, len(ctx.classes)), np.int64)
    np.add.at(hits, (rows.cluster[member], truth_class[member]), 1)
    return 2 * hits[rows.group, rows.cls] > size[rows.group]


def group_decisions(rows: GroupRows, probability: np.ndarray, threshold: float) -> dict[int, tuple[int, float]]:
    """group -> (class, probability) for the groups whose best candidate passes the threshold."""
    out: dict[int, tuple[int, float]] = {}
    for k in np.argsort(-probability, kind="stable").tolist():
        g = int(rows.group[k])
        if g not in out and probability[k] > threshold:
            out[g] = (int(rows.cls[k]), float(probability[k]))
    return out


__all__ = ["FEATURES", "TOOLS", "GroupRows", "group_decisions", "group_rows", "group_targets", "without_faces"]
