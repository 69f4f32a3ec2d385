"""Top-k means over column segments, compiled (numba): the voice tables' inner loop.

The voice tables ask, for every line and every class, for the mean of the k best
similarities among the class's lines. With the columns of a block of similarities sorted by
class, that is one question per (row, segment). numpy answers it with one `np.partition`
per class and block (tens of thousands of calls per drama, most of the job's time); this
kernel answers all of a block's segments in one pass over its values, rows split across
the cores.

Same answer as the partition: the same k values are picked (ties included), their mean is
taken as a float32 sum divided by the count. Only the order of that sum differs (here:
largest first), which can move the last bit of a mean.

Two smaller compiled passes live here too, each replacing numpy work that made temporaries
of a block's size: `mark_stale` (which top-k entries a relabelling may change) and
`versus_rival` (each candidate against the best other candidate of its line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

INVALID = -1.5  # similarities below this are masks (a line's own entry, another scene's lines): not counted
FEWER = np.float32(-3.0)  # the k-th value of a segment with fewer than k valid values
# one pair's similarity from products of other shapes can differ in the last float32 bits:
# `mark_stale` marks an entry when a moved line comes within this of its k-th value
ROUNDING = np.float32(1e-5)


@njit(cache=True, nogil=True)
def _segment_top_row(sims, bounds, k, mean, best, count, kth, r, top):  # pragma: no cover - compiled
    for s in range(bounds.shape[0] - 1):
        filled = 0
        valid = 0
        for j in range(bounds[s], bounds[s + 1]):
            v = sims[r, j]
            if v > INVALID:
                valid += 1
            if filled < k:
                p = filled
                filled += 1
            elif v > top[k - 1]:
                p = k - 1
            else:
                continue
            while p > 0 and top[p - 1] < v:
                top[p] = top[p - 1]
                p -= 1
            top[p] = v
        total = np.float32(0.0)
        kept = 0
        for q in range(filled):
            if top[q] > INVALID:
                total += top[q]
                kept += 1
        if kept > 0:
            mean[r, s] = total / kept
            best[r, s] = top[0]
        else:
            mean[r, s] = 0.0
            best[r, s] = 0.0
        count[r, s] = valid
        kth[r, s] = top[k - 1] if kept == k else FEWER


@njit(parallel=True, cache=True, nogil=True)
def _segment_top(sims, bounds, k, mean, best, count, kth):  # pragma: no cover - compiled
    for r in prange(sims.shape[0]):
        _segment_top_row(sims, bounds, k, mean, best, count, kth, r, np.empty(k, np.float32))


@njit(cache=True, nogil=True)
def _segment_top_serial(sims, bounds, k, mean, best, count, kth):  # pragma: no cover - compiled
    top = np.empty(k, np.float32)
    for r in range(sims.shape[0]):
        _segment_top_row(sims, bounds, k, mean, best, count, kth, r, top)


@njit(parallel=True, cache=True, nogil=True)
def _mark_stale(sims, lo, kth, gained, lost, stale):  # pragma: no cover - compiled
    for r in prange(sims.shape[0]):
        i = lo + r
        for j in range(sims.shape[1]):
            v = sims[r, j] + ROUNDING
            if v > kth[i, gained[j]]:
                stale[i, gained[j]] = True
            if v >= kth[i, lost[j]]:
                stale[i, lost[j]] = True


def mark_stale(sims: np.ndarray, lo: int, kth: np.ndarray, gained: np.ndarray, lost: np.ndarray,
               stale: np.ndarray) -> None:
    """For rows lo.. of `kth` / `stale` ([N, C]) against moved lines (columns of `sims`, float32
    [R, M], the rows' similarities to them): stale[i, gained[j]] where sims beats the k-th
    value of the class the line joined, stale[i, lost[j]] where it is at or above the k-th
    value of the class it left (it may have been among the k best); within ROUNDING of
    either counts, since `kth` may come from a product that rounded the pair otherwise."""
    if sims.size:
        _mark_stale(np.ascontiguousarray(sims, dtype=np.float32), int(lo), kth,
                    np.ascontiguousarray(gained, dtype=np.int64), np.ascontiguousarray(lost, dtype=np.int64), stale)


@njit(cache=True, nogil=True)
def _versus_rival(values, starts, out):  # pragma: no cover - compiled
    for s in range(starts.shape[0] - 1):
        lo, hi = starts[s], starts[s + 1]
        if hi - lo < 2:
            for r in range(lo, hi):
                out[r] = 0.0
            continue
        first = lo  # the best row: the first of the largest values, NaN below any number
        for r in range(lo + 1, hi):
            if values[r] > values[first] or (values[first] != values[first] and values[r] == values[r]):
                first = r
        second = np.float32(np.nan)  # the best of the other rows (NaN when they are all NaN)
        for r in range(lo, hi):
            if r != first and values[r] == values[r] and (second != second or values[r] > second):
                second = values[r]
        for r in range(lo, hi):
            out[r] = values[r] - (second if r == first else values[first])


def versus_rival(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """float32 [P]: each row's value less the best value among the other rows of its segment
    (rows starts[s]:starts[s+1]); 0 in a segment of one row. The best row is the first of the
    largest values; NaN ranks below every number."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty_like(values)
    if len(values):
        _versus_rival(values, np.ascontiguousarray(starts, dtype=np.int64), out)
    return out


@dataclass(frozen=True)
class SegmentTop:
    """Per row and segment (each float32 [R, S]): the mean of the k largest valid values and
    the largest (0 where no value is valid), how many values are valid, and the k-th largest
    valid value (FEWER where fewer than k are): a new value above it, or the loss of one at
    or above it, is what changes the first two."""

    mean: np.ndarray
    best: np.ndarray
    count: np.ndarray
    kth: np.ndarray


def segment_top_mean(sims: np.ndarray, bounds: np.ndarray, k: int, parallel: bool = True) -> SegmentTop:
    """The k largest valid values (not below INVALID) of each row of `sims` (float32 [R, W])
    in each column segment [bounds[s], bounds[s+1]). `parallel`: rows split across the
    cores; False for a caller that runs several of these side by side in its own threads
    (the same values either way)."""
    sims = np.ascontiguousarray(sims, dtype=np.float32)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    shape = (sims.shape[0], len(bounds) - 1)
    out = SegmentTop(*(np.empty(shape, np.float32) for _ in range(4)))
    if shape[0] and shape[1]:
        kernel = _segment_top if parallel else _segment_top_serial
        kernel(sims, bounds, int(k), out.mean, out.best, out.count, out.kth)
    return out


__all__ = ["FEWER", "INVALID", "SegmentTop", "mark_stale", "segment_top_mean", "versus_rival"]
