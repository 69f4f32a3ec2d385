"""The per-drama tables that evidence tools and the reasoner share, each built on first use.

`DramaTables` holds what does not change when labels change: from the drama (embeddings,
episode bounds, scenes, faces, mentions, relations, cohort statistics), its class list and
propagation's candidate lists and seeds, which every relabelled context keeps. `LabelTables`
holds what one label state implies (voice model, voice tables, new-character clusters); a
relabelled context gets a new one. Each table is built by the module that owns it (imported
when first needed, since those modules import this one); these classes name and keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dramasr.data.model import NEW_CHARACTER_PREFIX, Drama

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dramasr.tools.audio_sim import AudioTables, CohortStats
    from dramasr.tools.base import Context, LabelState
    from dramasr.tools.char_relation import Relations
    from dramasr.tools.faces_on_screen import FaceTables
    from dramasr.tools.name_mentions import Mentions
    from dramasr.tools.voice_cluster import ClusterTables

SCENE_GAP_S = 6.0  # a silence this long between lines starts a new scene
CANDIDATES_READ = 8  # propagation candidates a line's tables read (the reasoner's top-k)


def episode_bounds(drama: Drama) -> tuple[np.ndarray, np.ndarray]:
    """Per line: first and one-past-last global index of its episode."""
    lo = np.zeros(len(drama.lines), np.int64)
    hi = np.zeros(len(drama.lines), np.int64)
    for ep in drama.episodes:
        lo[ep.line_start:ep.line_stop] = ep.line_start
        hi[ep.line_start:ep.line_stop] = ep.line_stop
    return lo, hi


def find_sorted(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each value sits in the ascending array `keys`, and whether it is there: positions
    (clipped into the array, so they index it safely when it is not empty) and a found mask."""
    where = np.minimum(np.searchsorted(keys, values), max(len(keys) - 1, 0))
    found = keys[where] == values if len(keys) else np.zeros(len(values), bool)
    return where, found


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32 (an all-zero row, a line without voice, stays zero)."""
    matrix = np.asarray(matrix, np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)


class DramaTables:
    """Label-free tables of one drama, one class list and one propagation (candidates, seeds)."""

    def __init__(self, drama: Drama, state: LabelState, classes: list[str], class_of: dict[str, int],
                 cohort: Future[CohortStats] | None = None) -> None:
        self.drama = drama
        self._cohort_aside = cohort  # `cohort` being built in another thread, if it is
        self.state = state  # only its candidates and seeds are read: a relabelling keeps both
        self.classes = classes
        self.class_of = class_of
        self.other = len(classes) - 1
        self._neighbour_similarity: dict[int, np.ndarray] = {}
        # the voice tables built last for this drama: the next label state's build starts
        # from them and redoes only what its relabelling touched (see audio_sim)
        self.last_audio: AudioTables | None = None
        self.last_audio_released = False  # no label state reads last_audio: its arrays may be reused
        # the voice model fitted last for this drama, and the labels it was fitted to: a label
        # state that moved few lines from those reads it again (`audio_sim.voice_model_of`)
        self.last_voice_model: tuple[np.ndarray, np.ndarray] | None = None
        # training: runs of the drama's episodes (first, last) propagated as dramas of their own
        # (`train.small_drama_contexts`); the line and group stages both read them
        self.episode_runs: dict[tuple[int, int], Context | None] = {}

    def release(self) -> None:
        """No tool reads these tables again: drop the large ones (voice tables of the last label
        state, the voice model, embeddings, cohort and face tables); they are built anew if
        read after all."""
        self.last_audio, self.last_audio_released, self.last_voice_model = None, False, None
        self._cohort_aside = None
        for name in ("unit_embedding", "standard_scale", "cohort", "faces"):
            self.__dict__.pop(name, None)

    def classes_of(self, names: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.class_of.get(n, self.other) for n in names), np.int32, len(names))

    @cached_property
    def episode_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return episode_bounds(self.drama)

    @cached_property
    def scene_id(self) -> np.ndarray:
        """Per line, a scene number: runs of lines within an episode without a silence of
        SCENE_GAP_S or more between one line's end and the next one's start."""
        lines = self.drama.lines
        new_scene = np.ones(len(lines), bool)
        if len(lines) > 1:
            same_episode = lines.episode[1:] == lines.episode[:-1]
            silence = lines.start[1:] - lines.end[:-1]
            new_scene[1:] = ~same_episode | (silence >= SCENE_GAP_S)
        return np.cumsum(new_scene) - 1

    @cached_property
    def unit_embedding(self) -> np.ndarray:
        return unit_rows(self.drama.lines.embedding)

    @cached_property
    def standard_scale(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per dimension: mean and spread of the unit embeddings of the lines that have a voice
        (None when no line has one)."""
        heard = self.unit_embedding[self.drama.lines.has_voice]
        return (heard.mean(0), np.maximum(heard.std(0), 1e-6)) if len(heard) else None

    def standard_unit(self, rows: np.ndarray) -> np.ndarray:
        """The unit embeddings of `rows` (a mask or indices) standardised by `standard_scale`;
        made for the rows asked, as a voice-model fit reads them, not kept for the drama."""
        unit = self.unit_embedding[rows]  # a copy: standardised in place
        scale = self.standard_scale
        if scale is not None:
            unit -= scale[0]
            unit /= scale[1]
        return unit

    @cached_property
    def cohort(self) -> CohortStats:
        """Label-free: `attribute` starts it in a thread before propagation (whose rounds leave
        part of the cores idle) and hands it over in `Context.build`; here it is then only
        waited for."""
        if self._cohort_aside is not None:
            return self._cohort_aside.result()
        from dramasr.tools.audio_sim import build_cohort_stats

        return build_cohort_stats(self.unit_embedding)

    @cached_property
    def seeds(self) -> tuple[np.ndarray, np.ndarray]:
        """The seed lines (ascending) and their classes."""
        seeds = np.flatnonzero(self.state.is_seed)
        return seeds, self.classes_of([self.state.label[i] for i in seeds])

    def seed_best_of(self, lines: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Each (line, class) pair's best voice match among the class's seed lines."""
        from dramasr.tools.audio_sim import seed_best_of

        return seed_best_of(self.unit_embedding, *self.seeds, lines, classes)

    @cached_property
    def faces(self) -> FaceTables:
        from dramasr.tools.faces_on_screen import build_face_tables

        return build_face_tables(self)

    @cached_property
    def mentions(self) -> Mentions:
        from dramasr.tools.name_mentions import build_mentions

        return build_mentions(self)

    @cached_property
    def relations(self) -> Relations:
        from dramasr.tools.char_relation import build_relations

        return build_relations(self)

    @cached_property
    def captions(self) -> list[str]:
        from dramasr.tools.scene_caption import caption_texts

        return caption_texts(self.drama)

    @cached_property
    def gaps(self) -> tuple[np.ndarray, np.ndarray]:
        from dramasr.tools.dialogue_context import build_gaps

        return build_gaps(self.drama, self.episode_bounds)

    @cached_property
    def asks(self) -> np.ndarray:
        """Lines that end in a question: the answer usually comes from someone else."""
        text = self.drama.lines.text
        return np.fromiter((t.rstrip().endswith(("?", "？", "吗", "呢")) for t in text), bool, len(text))

    @cached_property
    def text_length(self) -> np.ndarray:
        """float32 [N]: characters in each line's text."""
        texts = self.drama.lines.text
        return np.fromiter((len(t) for t in texts), np.float32, len(texts))

    @cached_property
    def speech_parts(self) -> np.ndarray:
        """Per line: how many speakers' words it holds (`data.model.speech_parts`)."""
        from dramasr.data.model import speech_parts

        texts = self.drama.lines.text
        return np.fromiter((speech_parts(t) for t in texts), np.float32, len(texts))

    def neighbour_similarity(self, step: int) -> np.ndarray:
        """Voice similarity of each line to the line `step` away (0 outside the episode)."""
        if step not in self._neighbour_similarity:
            unit = self.unit_embedding
            lo, hi = self.episode_bounds
            idx = np.arange(len(unit))
            other = idx + step
            inside = (other >= lo) & (other < hi)
            sims = np.zeros(len(unit), np.float32)
            sims[inside] = np.einsum("ij,ij->i", unit[idx[inside]], unit[other[inside]])
            self._neighbour_similarity[step] = sims
        return self._neighbour_similarity[step]

    @cached_property
    def propagation_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Propagation's score of each (line, named class) among the line's first
        CANDIDATES_READ candidates, as sorted keys line * C + class and their scores."""
        n_classes = len(self.classes)
        keys, values = [], []
        for i, (names, scores) in enumerate(zip(self.state.candidates, self.state.scores, strict=True)):
            for name, s in zip(names[:CANDIDATES_READ], scores[:CANDIDATES_READ], strict=False):
                c = self.class_of.get(name)
                if c is not None and c != self.other:
                    keys.append(i * n_classes + c)
                    values.append(s)
        order = np.argsort(keys, kind="stable")
        return np.asarray(keys, np.int64)[order], np.asarray(values, np.float32)[order]


class LabelTables:
    """Tables of one label state of a drama: built on first use, never updated in place."""

    def __init__(self, tables: DramaTables, state: LabelState, label_class: np.ndarray) -> None:
        self.tables = tables
        self.state = state
        self.label_class = label_class  # int32 [N], class id of each line's current label
        self._cluster_candidates: dict[int, np.ndarray] = {}

    def release(self) -> None:
        """This label state will not be read again: drop its tables, and let the next state's
        voice tables be built in this one's arrays (a [lines x characters] table each) rather
        than in copies of them."""
        audio = self.__dict__.pop("audio", None)
        for name in ("voice_model", "clusters"):
            self.__dict__.pop(name, None)
        if audio is not None and self.tables.last_audio is audio:
            self.tables.last_audio_released = True

    @cached_property
    def voice_model(self) -> np.ndarray:
        from dramasr.tools.audio_sim import voice_model_of

        return voice_model_of(self.tables, self.label_class)

    @cached_property
    def audio(self) -> AudioTables:
        from dramasr.tools.audio_sim import build_audio_tables

        return build_audio_tables(self.tables, self.label_class)

    @cached_property
    def new_character_clusters(self) -> tuple[np.ndarray, int]:
        """Per line, the id of its current new-character label (a voice propagation tied to
        no seed: mostly one person, within one episode), -1 for other lines; and how many."""
        ids: dict[str, int] = {}
        cluster = np.full(len(self.state.label), -1, np.int64)
        for i, name in enumerate(self.state.label):
            if name.startswith(NEW_CHARACTER_PREFIX):
                cluster[i] = ids.setdefault(name, len(ids))
        return cluster, len(ids)

    @cached_property
    def clusters(self) -> ClusterTables:
        from dramasr.tools.voice_cluster import build_cluster_tables

        return build_cluster_tables(self)

    def cluster_candidates(self, k: int) -> np.ndarray:
        """[G, min(k, named classes)] the named classes each cluster's voice is closest to."""
        if k not in self._cluster_candidates:
            from dramasr.tools.voice_cluster import build_cluster_candidates

            self._cluster_candidates[k] = build_cluster_candidates(self, k)
        return self._cluster_candidates[k]
