"""Running top-k pools: the highest similarities of each candidate line to a character's references,
kept across rounds so that a growing reference set costs only its new columns.
"""

from __future__ import annotations

import numpy as np

from dramasr.propagate.config import PropagationConfig
from dramasr.propagate.kernels import merge_pool, top_pool
from dramasr.propagate.similarity import blocks


class ReferencePools:
    """Top-k similarity of candidate lines to each character's reference lines.

    A character's reference set mostly grows; for each (line, character) pair we keep the
    `max_top` highest similarities seen, sorted, so that adding references costs only the
    new columns, not the whole set again. Rows of lines labelled since are compacted away.
    """

    def __init__(self, emb: np.ndarray, cfg: PropagationConfig) -> None:
        self.emb = emb
        self.n = len(emb)
        self.width = cfg.max_top
        self.state: dict[int, _Pool] = {}

    def topk_mean(self, c: int, rows: np.ndarray, refs: np.ndarray, k: int) -> np.ndarray:
        if k <= 0 or len(refs) == 0:
            return np.zeros(len(rows), np.float32)
        st = self.state.get(c)
        if st is not None and int(st.ref_mask[refs].sum()) != st.n_refs:
            st = None  # a reference line was dropped: rebuild this character's pools
        if st is None:
            st = self.state[c] = _Pool(self.n)
        emb = self.emb
        extra = refs[~st.ref_mask[refs]]
        if len(extra):
            width = min(self.width, st.n_refs + len(extra))
            if len(st.rows):
                ref_emb = emb[extra]
                grown = np.empty((len(st.rows), width), np.float32)
                # (the blocks of the numpy version, which joined old pool and new columns: the
                # products' shapes, and so their roundings, stay as they were)
                for blk in blocks(len(st.rows), len(extra) + st.pool.shape[1]):
                    grown[blk] = merge_pool(st.pool[blk], emb[st.rows[blk]] @ ref_emb.T, width)
                st.pool = grown
            else:
                st.pool = np.zeros((0, width), np.float32)
            st.ref_mask[extra] = True
            st.refs = np.concatenate([st.refs, extra])
            st.n_refs += len(extra)
        missing = rows[st.slot[rows] < 0]
        if len(missing):
            width = st.pool.shape[1]
            add = np.empty((len(missing), width), np.float32)
            ref_emb = emb[st.refs]
            for blk in blocks(len(missing), len(st.refs)):
                add[blk] = top_pool(emb[missing[blk]] @ ref_emb.T, width)
            st.slot[missing] = np.arange(len(st.rows), len(st.rows) + len(missing))
            st.rows = np.concatenate([st.rows, missing])
            st.pool = np.concatenate([st.pool, add])
        sel = st.pool[st.slot[rows]]
        if len(st.rows) > 2 * len(rows) + 256:  # most stored lines got labelled: drop them
            st.slot[st.rows] = -1
            st.slot[rows] = np.arange(len(rows))
            st.rows, st.pool = rows.copy(), sel
        return sel[:, :k].sum(axis=1, dtype=np.float32) / np.float32(k)


class _Pool:
    def __init__(self, n: int) -> None:
        self.ref_mask = np.zeros(n, bool)
        self.refs = np.zeros(0, np.int64)
        self.n_refs = 0
        self.slot = np.full(n, -1, np.int64)
        self.rows = np.zeros(0, np.int64)
        self.pool = np.zeros((0, 0), np.float32)
