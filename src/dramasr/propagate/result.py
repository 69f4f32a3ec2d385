"""What propagation returns: a label, the stage that decided it and ranked candidates for every line.

`Propagation` is plain arrays (CSR candidate lists), so results can be written, read back from a
release label file and compared without the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dramasr.data.model import OTHER
from dramasr.data.release_labels import CODE_OTHER, CODE_UNLABELLED

UNLABELLED = CODE_UNLABELLED  # the engine's name for a line not labelled yet

# How each line got its label (Propagation.stage).
STAGE_NONE, STAGE_SEED, STAGE_PROPAGATED, STAGE_COMPONENT, STAGE_NEW_CHARACTER, STAGE_OTHER = range(6)
STAGE_NAMES = ("none", "seed", "propagated", "component", "new_character", "other")


@dataclass(eq=False)
class Propagation:
    """Result of label propagation: a label and a ranked candidate list for every line."""

    characters: list[str]  # code -> name: the seed characters, then discovered ones
    is_known: np.ndarray  # bool [C]: a seed (named) character, not a discovered one
    is_global: np.ndarray  # bool [C]: narration-like: a candidate everywhere
    code: np.ndarray  # int32 [N]: character code, or CODE_OTHER
    is_seed: np.ndarray  # bool [N]
    stage: np.ndarray  # int8 [N]: STAGE_* that decided the label
    threshold: np.ndarray  # float32 [N]: acceptance threshold when labelled (nan for seeds/other)
    label_score: np.ndarray  # float32 [N]: score when labelled (1 for seeds/new characters)
    cand_offsets: np.ndarray  # int64 [N+1]: candidates of line i are cand_*[off[i]:off[i+1]]
    cand_code: np.ndarray  # int32 [K], best first
    cand_score: np.ndarray  # float32 [K] (float64 when read from a file: the values as written)
    utterance_lists: list[list[int]] = field(default_factory=list)  # per code, in labelling order
    episode: np.ndarray | None = None  # int32 [N] episode number, for predictions

    def __len__(self) -> int:
        return len(self.code)

    def name_of(self, code: int) -> str:
        return OTHER if code < 0 else self.characters[code]

    @property
    def labels(self) -> list[str]:
        names = self.characters
        return [OTHER if c < 0 else names[c] for c in self.code.tolist()]

    def candidates(self, line: int) -> list[tuple[str, float]]:
        lo, hi = self.cand_offsets[line], self.cand_offsets[line + 1]
        return [(self.characters[c], float(s)) for c, s in
                zip(self.cand_code[lo:hi].tolist(), self.cand_score[lo:hi].tolist(), strict=True)]

    def confidence(self) -> np.ndarray:
        """Score of each line's own label among its final candidates (0 when absent, e.g. Other)."""
        out = np.zeros(len(self.code), np.float32)
        counts = np.diff(self.cand_offsets)
        rows = np.repeat(np.arange(len(self.code)), counts)
        hit = self.cand_code == self.code[rows]
        out[rows[hit]] = self.cand_score[hit]
        return out


__all__ = ["CODE_OTHER", "UNLABELLED", "Propagation"]
