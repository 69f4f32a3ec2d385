"""voice_cluster: the line's voice cluster, as a whole, against each candidate.

Propagation gives a voice it cannot tie to any seed a new-character label of its own; the
lines of one such label (a cluster, mostly within one episode) are nearly always one
person: an extra, or a named character whose voice sounded different that day. One line
is weak evidence either way, the cluster together is not: its mean voice against each
candidate's voice centroid (and the margin over the best other named character), the share
of its lines that show the candidate's face, and the voice model's mean probability of the
candidate over its lines. Lines that are not in a cluster get zeros and size 0.

`cluster_candidates` names the named characters the cluster sounds most like, so that a
cluster propagation never linked to its character can still be given to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramasr.tools.base import Context, Tool
from dramasr.tools.tables import LabelTables, unit_rows

EXTRA_CANDIDATES = 2  # named characters a cluster's lines are offered beyond propagation's list


@dataclass(frozen=True, eq=False)
class ClusterTables:
    """[G, C] tables over the new-character clusters of one label state ([G] for per-cluster values)."""

    size: np.ndarray  # [G] lines in the cluster
    sim: np.ndarray  # mean voice against each class's voice centroid (0 for OTHER)
    margin: np.ndarray  # that similarity less the best other named class's
    best: np.ndarray  # [G] best named similarity
    best_margin: np.ndarray  # [G] best less second best
    face: np.ndarray  # share of the cluster's lines showing the class's face
    model: np.ndarray  # the voice model's mean probability of the class


def build_cluster_tables(labels: LabelTables) -> ClusterTables:
    """The cluster tables of one label state (`LabelTables.clusters`)."""
    cluster, n_clusters = labels.new_character_clusters
    unit = labels.tables.unit_embedding
    n_classes, other = len(labels.tables.classes), labels.tables.other
    member = np.flatnonzero(cluster >= 0)
    g = cluster[member]
    size = np.bincount(g, minlength=n_clusters).astype(np.float32)

    centroid = labels.audio.class_centroid
    mean_voice = np.zeros((n_clusters, unit.shape[1]), np.float32)
    np.add.at(mean_voice, g, unit[member])
    mean_voice = unit_rows(mean_voice)
    sim = mean_voice @ centroid.T
    sim[:, other] = 0.0  # OTHER is no one voice
    named_sim = sim[:, :other]
    if other >= 2:
        top2 = np.sort(named_sim, axis=1)[:, -2:]
        best, second = top2[:, 1], top2[:, 0]
    else:
        best = named_sim.max(1) if other else np.zeros(n_clusters, np.float32)
        second = np.zeros(n_clusters, np.float32)
    # each named class's margin over the best other named class
    rival = np.where(named_sim >= best[:, None], second[:, None], best[:, None])
    margin = np.zeros_like(sim)
    margin[:, :other] = named_sim - rival

    seen = (labels.tables.faces.hits_of(member) > 0).astype(np.float32)
    face = np.zeros((n_clusters, n_classes), np.float32)
    np.add.at(face, g, seen)
    face /= np.maximum(size[:, None], 1.0)
    model = np.zeros((n_clusters, n_classes), np.float32)
    np.add.at(model, g, labels.voice_model[member])
    model /= np.maximum(size[:, None], 1.0)
    return ClusterTables(size, sim, margin, best, best - second, face, model)


def build_cluster_candidates(labels: LabelTables, k: int) -> np.ndarray:
    """[G, min(k, named classes)] the named classes each cluster's voice is closest to, best
    first (ties: lower class id first); one stable argsort over all clusters at once
    (`LabelTables.cluster_candidates`)."""
    _, n_clusters = labels.new_character_clusters
    other = labels.tables.other
    if not n_clusters or other == 0:
        return np.zeros((n_clusters, 0), np.int64)
    return np.argsort(-labels.clusters.sim[:, :other], axis=1, kind="stable")[:, :k]


def cluster_candidates(ctx: Context, line: int, k: int = EXTRA_CANDIDATES) -> list[int]:
    """The k named classes whose voice centroids the line's cluster is closest to ([] when
    the line is in no cluster)."""
    cluster, _ = ctx.labels.new_character_clusters
    g = int(cluster[line])
    if g < 0 or ctx.other == 0:
        return []
    return ctx.labels.cluster_candidates(k)[g].tolist()


class VoiceCluster(Tool):
    name = "voice_cluster"
    description = (
        "For a line in a cluster of lines propagation gave to a new character: the cluster's mean voice "
        "against each candidate's voice centroid and the margin over the best other named character, the share "
        "of the cluster's lines that show the candidate's face, the voice model's mean probability of the "
        "candidate over the cluster, and the cluster's size (0 when the line is in no cluster)."
    )
    cost = 1.0

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        cluster, n_clusters = ctx.labels.new_character_clusters
        names = ("cluster_size", "cluster_voice", "cluster_voice_margin", "cluster_best_voice",
                 "cluster_best_margin", "cluster_face_share", "cluster_model_p")
        if not n_clusters:
            return {name: np.zeros(len(pair_line), np.float32) for name in names}
        g = cluster[pair_line]
        inside = g >= 0
        gi = np.where(inside, g, 0)
        t = ctx.labels.clusters
        values = (t.size[gi], t.sim[gi, pair_class], t.margin[gi, pair_class], t.best[gi],
                  t.best_margin[gi], t.face[gi, pair_class], t.model[gi, pair_class])
        return {name: np.where(inside, v, 0.0).astype(np.float32) for name, v in zip(names, values, strict=True)}

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        first = next(iter(values.values()), None)
        if first is None or first["cluster_size"] == 0:
            return "the line is in no new-character cluster"
        ranked = sorted(values.items(), key=lambda kv: -kv[1]["cluster_voice"])
        return (f"the line is one of {int(first['cluster_size'])} lines propagation gave to one new character; "
                "that cluster's voice / face share / voice-model probability per candidate: " + "; ".join(
                    f"{name} {v['cluster_voice']:.2f}/{v['cluster_face_share']:.2f}/{v['cluster_model_p']:.2f}"
                    for name, v in ranked))
