"""Label propagation: from a few seed lines per character to a label for every line.

seeds (choose / resolve to plain data) -> engine (pure computation on arrays, in blocks)
-> result (`Propagation`) -> release_io (the release's prop_labels JSON, dramasr predictions).
`propagate_drama` is the one entry that takes a loaded drama and a --seeds value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dramasr.data.model import DELETED_MARK, NARRATION_MARK, NEW_CHARACTER_PREFIX, OTHER
from dramasr.progress import Progress
from dramasr.propagate.config import PropagationConfig
from dramasr.propagate.engine import propagate
from dramasr.propagate.release_io import (
    read_release_labels,
    release_labels_doc,
    release_labels_from_doc,
    to_predictions,
    write_predictions,
    write_release_labels,
)
from dramasr.propagate.result import (
    CODE_OTHER,
    STAGE_COMPONENT,
    STAGE_NAMES,
    STAGE_NEW_CHARACTER,
    STAGE_NONE,
    STAGE_OTHER,
    STAGE_PROPAGATED,
    STAGE_SEED,
    UNLABELLED,
    Propagation,
)
from dramasr.propagate.seeds import (
    SEED_MODES,
    ground_truth_characters,
    load_seeds,
    make_seeds,
    most_consistent_lines,
    resolve_seeds,
    seed_target,
    seedless_characters,
    seeds_from_release,
)
from dramasr.propagate.timeline import EPISODE_PADDING_MS


def propagate_drama(drama: Any, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
                    config: PropagationConfig | None = None,
                    progress: Progress | None = None) -> Propagation:
    """Label propagation on a loaded `dramasr.data.Drama`.

    `seeds` is resolved here, once, by `resolve_seeds` (a dict, a path to an init_seeds_*.json,
    a key of the drama's seed files such as "1pct", or "gt-1pct" / "gt-1shot" / "gt-<k>shot");
    the computation below only sees {character: [line, ...]}.
    """
    seeds = resolve_seeds(drama, seeds)
    lines, faces = drama.lines, drama.faces
    return propagate(lines.embedding, lines.episode, lines.start_ms / 1000.0, lines.end_ms / 1000.0,
                     faces.episode, faces.start_ms / 1000.0, faces.end_ms / 1000.0, faces.name, faces.score,
                     seeds, config, progress)


__all__ = [
    "CODE_OTHER", "DELETED_MARK", "EPISODE_PADDING_MS", "NARRATION_MARK", "NEW_CHARACTER_PREFIX", "OTHER",
    "SEED_MODES", "STAGE_COMPONENT", "STAGE_NAMES", "STAGE_NEW_CHARACTER", "STAGE_NONE", "STAGE_OTHER",
    "STAGE_PROPAGATED", "STAGE_SEED", "UNLABELLED", "Propagation", "PropagationConfig", "ground_truth_characters",
    "load_seeds", "make_seeds", "most_consistent_lines", "propagate", "propagate_drama", "read_release_labels",
    "release_labels_doc", "release_labels_from_doc", "resolve_seeds", "seed_target", "seedless_characters",
    "seeds_from_release", "to_predictions", "write_predictions", "write_release_labels",
]
