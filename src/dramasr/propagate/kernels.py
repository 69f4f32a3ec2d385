"""Compiled (numba) top-k pools for propagation's rounds.

A pool row holds the `width` highest similarities of one line to a character's reference
lines, sorted from high to low. numpy makes one with a partition and a sort of every
block of similarities (most of a round's time, and a copy of the old pool beside each
new block); these kernels keep each row's top values in one pass over the new values.

Same answer as the partition and sort: the same multiset of values (a value equal to
the current lowest one is not taken, which leaves the multiset as it is), in descending
order. The kernels are serial and let go of the GIL: propagation already runs one
character per core.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _merge(pool, sims, width, out):  # pragma: no cover - compiled
    kept = pool.shape[1]
    cols = sims.shape[1]
    for r in range(sims.shape[0]):
        top = out[r]
        for q in range(kept):
            top[q] = pool[r, q]
        filled = kept
        j = 0
        while filled < width:  # the first values all go in, each to its place
            v = sims[r, j]
            p = filled
            while p > 0 and top[p - 1] < v:
                top[p] = top[p - 1]
                p -= 1
            top[p] = v
            filled += 1
            j += 1
        low = top[width - 1]
        for col in range(j, cols):  # then only a value above the lowest kept one
            v = sims[r, col]
            if v > low:
                p = width - 1
                while p > 0 and top[p - 1] < v:
                    top[p] = top[p - 1]
                    p -= 1
                top[p] = v
                low = top[width - 1]


def merge_pool(pool: np.ndarray, sims: np.ndarray, width: int) -> np.ndarray:
    """The `width` largest values of each row of [pool | sims], sorted descending: `pool`
    (float32 [R, w], each row sorted descending, w <= width) grown by the new similarities
    `sims` (float32 [R, m], w + m >= width)."""
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    sims = np.ascontiguousarray(sims, dtype=np.float32)
    if pool.shape[1] > width or pool.shape[1] + sims.shape[1] < width:
        raise ValueError(f"pool of {pool.shape[1]} and {sims.shape[1]} new values cannot make {width}")
    out = np.empty((sims.shape[0], width), np.float32)
    if sims.shape[0]:
        _merge(pool, sims, int(width), out)
    return out


def top_pool(sims: np.ndarray, width: int) -> np.ndarray:
    """The `width` largest values of each row (all of them when there are fewer), sorted
    descending: [R, min(width, columns)]."""
    sims = np.asarray(sims, dtype=np.float32)
    return merge_pool(np.zeros((sims.shape[0], 0), np.float32), sims, min(width, sims.shape[1]))

