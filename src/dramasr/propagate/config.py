"""Settings of label propagation: one frozen dataclass whose defaults are the release's."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PropagationConfig:
    """Parameters of label propagation; the defaults are the release's."""

    threshold_high: float = 0.75  # first acceptance threshold
    threshold_low: float = 0.45  # last acceptance threshold
    threshold_step: float = 0.02
    new_character_margin: float = 0.08  # a local cluster must be this much tighter than the threshold
    face_radius_s: float = 20.0  # a character is a candidate within +-this of its face or labelled line
    face_score: float = 0.45  # faces below this recognition score are ignored
    min_cluster_size: int = 3  # smallest unlabelled cluster that can become a (new) character
    cluster_radius: int = 5  # cluster members lie within this many line indices of each other
    max_top: int = 50  # top-k cap for the mean similarity to a character's lines
    top_power: float = 0.4  # k = min(max_top, floor(n ** top_power))
    short_bonus: float = 0.2  # bonus = short_bonus * clip(1 - duration_s, 0, 0.5)
    min_new_labels: int = 5  # an inner pass that labels fewer lines ends a round
    length_unit_ms: int = 200  # reference lines of a character must be near its longest line...
    length_cap_ms: int = 800  # ...rounded down to this unit, at most this long
    discover_new_characters: bool = True
    blas_threads: int | None = 1  # the work is many mid-sized products: one BLAS thread is faster
    # (and immune to oversubscription on a busy machine); None leaves BLAS as configured


def top_count(n: int, cfg: PropagationConfig) -> int:
    """k of the top-k mean against `n` reference lines: min(max_top, floor(n ** top_power)), 0 for none."""
    # math.pow is C pow(), as in the release's C routines: keeps floor() identical at n = 32, 243...
    return int(min(cfg.max_top, math.floor(math.pow(n, cfg.top_power)))) if n > 0 else 0


def reference_cut(longest_ms: int, cfg: PropagationConfig) -> int:
    """Shortest length (ms) of a character's reference line, given its longest labelled line."""
    return min(longest_ms // cfg.length_unit_ms * cfg.length_unit_ms, cfg.length_cap_ms)
