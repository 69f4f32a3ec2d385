"""Cosine similarity in blocks: unit rows, row blocks that bound memory, and top-k means.

No lines x lines matrix is ever held: every product is cut into blocks of at most
`BLOCK_ELEMENTS` values, and only the top-k of each row is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_ELEMENTS = 1 << 23  # similarity values per block (32 MiB of float32)


def unit_rows(embedding: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C order), so a product of rows is their cosine."""
    emb = np.asarray(embedding, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = emb / norm
    out[~np.isfinite(out)] = 0.0  # a zero embedding is similar to nothing (the release's nan -> 0)
    return np.ascontiguousarray(out, dtype=np.float32)


def blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Slices of rows such that a block of rows x `n_cols` similarities fits in BLOCK_ELEMENTS."""
    step = max(1, min(n_rows, BLOCK_ELEMENTS // max(1, n_cols)))
    for lo in range(0, n_rows, step):
        yield slice(lo, min(n_rows, lo + step))


def topk_mean(emb: np.ndarray, rows: np.ndarray, refs: np.ndarray, k: int,
              exclude_self: bool = False) -> np.ndarray:
    """Mean of the k highest similarities of each row line to the reference lines (blockwise)."""
    out = np.empty(len(rows), np.float32)
    if len(rows) == 0:
        return out
    ref_emb = emb[refs]
    for blk in blocks(len(rows), len(refs)):
        sims = emb[rows[blk]] @ ref_emb.T
        if exclude_self:  # the release's similarity matrix has a zero diagonal
            pos = np.searchsorted(refs, rows[blk])
            pos_c = np.minimum(pos, len(refs) - 1)
            hit = np.nonzero(refs[pos_c] == rows[blk])[0]
            sims[hit, pos_c[hit]] = 0.0
        out[blk] = mean_of_top(sims, k)
    return out


def mean_of_top(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest values of each row (float32 sum, as the release sums)."""
    if k < sims.shape[1]:
        sims = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return sims.sum(axis=1, dtype=np.float32) / np.float32(k)
