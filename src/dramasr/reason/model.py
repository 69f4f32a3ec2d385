"""The trained attribution model: boosted trees scoring (line, candidate) pairs, normalised
over a line's candidates (a softmax over propagation's candidates plus OTHER).

Learned with scikit-learn's HistGradientBoostingClassifier, then exported to plain arrays
(npz), so the shipped file loads offline, without pickle and with any scikit-learn version.

Scoring walks the trees in a compiled kernel (numba, rows split across the cores) that
finds the leaf each row reaches in each tree, comparing `x <= threshold` in float64 as
scikit-learn does (NaN to the side `missing_left` says); the leaf values are then summed
here exactly as the numpy traversal (`reference_decision_function`) sums them, so the
scores are bit for bit the same.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit, prange

from dramasr.errors import DramaError

FORMAT_VERSION = 1


@dataclass
class TreeEnsemble:
    """Additive binary-logit tree ensemble as flat node arrays (all trees concatenated)."""

    baseline: float
    feature: np.ndarray  # int32 [nodes]
    threshold: np.ndarray  # float64
    left: np.ndarray  # int32, global node index
    right: np.ndarray  # int32
    missing_left: np.ndarray  # bool
    is_leaf: np.ndarray  # bool
    value: np.ndarray  # float64
    roots: np.ndarray  # int32 [trees]

    @classmethod
    def from_sklearn(cls, estimator: Any) -> TreeEnsemble:
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "feature", "threshold", "left", "right", "missing_left", "is_leaf", "value")}
        roots, offset = [], 0
        for iteration in estimator._predictors:
            (tree,) = iteration  # binary classification: one tree per iteration
            nodes = tree.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("categorical splits are not supported by the export")
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int32))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["left"].append(nodes["left"].astype(np.int32) + offset)
            parts["right"].append(nodes["right"].astype(np.int32) + offset)
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["is_leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        return cls(
            baseline=float(np.ravel(estimator._baseline_prediction)[0]),
            roots=np.asarray(roots, np.int32), **{k: np.concatenate(v) for k, v in parts.items()},
        )

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """[rows, trees] global node index of the leaf each row reaches in each tree."""
        X = np.ascontiguousarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        out = np.empty((len(X), len(self.roots)), np.int32)
        if len(X):
            _walk(X, self.roots, self.feature, self.threshold, self.left, self.right, self.missing_left,
                  self.is_leaf, out)
        return out

    def decision_function(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Raw logit per row (the same as the scikit-learn model's), bit for bit the same as
        `reference_decision_function`: the leaves found by the compiled walk, their values
        summed in the same order (numpy's sum over a row's trees, then the baseline added),
        a chunk of rows at a time (a chunk's leaves and their values ~10 MB)."""
        out = np.full(len(X), self.baseline)
        for lo in range(0, len(X), chunk):
            out[lo:lo + chunk] += self.value[self.leaves(X[lo:lo + chunk])].sum(1)
        return out

    def reference_decision_function(self, X: np.ndarray, chunk: int = 16384) -> np.ndarray:
        """Raw logit per row by a numpy traversal of all trees at once, level by level (the
        scorer before ONNX Runtime; kept as the reference the tests compare with)."""
        X = np.asarray(X, np.float64)
        out = np.full(len(X), self.baseline)
        rows_all = np.arange(len(X))
        for lo in range(0, len(X), chunk):
            rows = rows_all[lo:lo + chunk]
            node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
            r = np.broadcast_to(rows[:, None], node.shape)
            active = ~self.is_leaf[node]
            while active.any():
                idx = np.nonzero(active)
                nd = node[idx]
                x = X[r[idx], self.feature[nd]]
                go_left = np.where(np.isnan(x), self.missing_left[nd], x <= self.threshold[nd])
                node[idx] = np.where(go_left, self.left[nd], self.right[nd])
                active[idx] = ~self.is_leaf[node[idx]]
            out[lo:lo + len(rows)] += self.value[node].sum(1)
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in (
            "feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")} | {
            f"{prefix}baseline": np.asarray([self.baseline])}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> TreeEnsemble:
        kw = {k: np.asarray(arrays[f"{prefix}{k}"]) for k in (
            "feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")}
        return cls(baseline=float(arrays[f"{prefix}baseline"][0]), **kw)


@njit(parallel=True, cache=True, nogil=True)
def _walk(X, roots, feature, threshold, left, right, missing_left, is_leaf, out):  # pragma: no cover - compiled
    for r in prange(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                x = X[r, feature[node]]
                if x != x:  # NaN
                    go_left = missing_left[node]
                else:
                    go_left = np.float64(x) <= threshold[node]
                node = left[node] if go_left else right[node]
            out[r, t] = node


@dataclass
class Stage:
    """One scorer: the tools whose columns it reads, the column order, the trees."""

    tools: list[str]
    feature_names: list[str]
    trees: TreeEnsemble


@dataclass
class AttributionModel:
    """A cheap stage (always run) and a full stage (run where the cheap margin is low).

    `margin_threshold`: a line whose cheap-stage margin (best minus runner-up normalised
    score) is at least this keeps the cheap decision. `passes`: refinement passes.
    `refine_cheap` / `refine_full`: the stages of the passes after the first, trained on
    context read from first-pass labels (absent: the first-pass stages serve every pass).
    `groups`: scores (new-character group, named candidate) pairs after the last pass; a
    group whose best candidate scores above `group_threshold` is given to it (absent: no
    group stage). `final_pass`: then one more pass with the last pass's stages re-reads
    every line the group stage did not decide, in the context of its decisions.
    """

    cheap: Stage
    full: Stage
    margin_threshold: float = 0.5
    passes: int = 2
    info: dict[str, Any] = field(default_factory=dict)
    refine_cheap: Stage | None = None
    refine_full: Stage | None = None
    groups: Stage | None = None  # the group stage (`dramasr.reason.groups`), after the last pass
    group_threshold: float = 0.5
    final_pass: bool = False  # after the group stage, one more pass over the lines it left alone

    def stages(self, pass_index: int) -> tuple[Stage, Stage]:
        """(cheap, full) stages of the pass_index-th pass (0-based)."""
        if pass_index > 0 and self.refine_cheap is not None and self.refine_full is not None:
            return self.refine_cheap, self.refine_full
        return self.cheap, self.full

    def _named_stages(self) -> list[tuple[str, Stage]]:
        named = [("cheap", self.cheap), ("full", self.full)]
        if self.refine_cheap is not None and self.refine_full is not None:
            named += [("refine_cheap", self.refine_cheap), ("refine_full", self.refine_full)]
        if self.groups is not None:
            named.append(("groups", self.groups))
        return named

    def save(self, path: str | Path) -> Path:
        from dramasr.data.release import write_bytes_atomic

        meta = {
            "format_version": FORMAT_VERSION, "margin_threshold": self.margin_threshold, "passes": self.passes,
            "group_threshold": self.group_threshold, "final_pass": self.final_pass,
            "stages": {name: {"tools": st.tools, "feature_names": st.feature_names}
                       for name, st in self._named_stages()},
            "info": self.info,
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8),
            **{k: v for name, st in self._named_stages() for k, v in st.trees.arrays(f"{name}_").items()},
        )
        write_bytes_atomic(Path(path), buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> AttributionModel:
        path = Path(path)
        if path.is_file() and not zipfile.is_zipfile(path):  # np.load would read it as a pickle and say so
            raise DramaError("cannot read attribution model: not an .npz archive", file=path,
                             hint="pass a file written by `dramasr train`")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
                if meta.get("format_version") != FORMAT_VERSION:
                    raise DramaError(
                        f"model format {meta.get('format_version')} is not {FORMAT_VERSION}", file=path,
                        hint="re-train with `dramasr train` or upgrade dramasr",
                    )
                stages = {
                    name: Stage(list(spec["tools"]), list(spec["feature_names"]),
                                TreeEnsemble.from_arrays(arrays, f"{name}_"))
                    for name, spec in meta["stages"].items()
                }
        except (OSError, ValueError, KeyError) as exc:
            raise DramaError(f"cannot read attribution model: {exc}", file=path,
                             hint="pass a file written by `dramasr train`") from exc
        return cls(stages["cheap"], stages["full"], float(meta["margin_threshold"]), int(meta["passes"]),
                   meta.get("info", {}), stages.get("refine_cheap"), stages.get("refine_full"), stages.get("groups"),
                   float(meta.get("group_threshold", 0.5)), bool(meta.get("final_pass", False)))


def default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / "attribution.npz"


def load_default_model() -> AttributionModel:
    path = default_model_path()
    if not path.is_file():
        raise DramaError("the shipped attribution model is missing", file=path,
                         hint="run `dramasr train` to rebuild it")
    return AttributionModel.load(path)


def normalise(prob: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per line, scores summing to one over its candidates."""
    total = np.add.reduceat(prob, starts[:-1]) if len(prob) else prob
    return prob / np.repeat(np.maximum(total, 1e-12), np.diff(starts))


def top_two(score: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line: row of the best candidate (the first of its highest scores; NaN ranks below
    every number), its score, the runner-up's score (the best of the other rows; 0 if none)."""
    score = np.ascontiguousarray(score)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    best_row = np.empty(len(starts) - 1, np.int64)
    second = np.zeros(len(starts) - 1)
    _top_two(score, starts, best_row, second)
    return best_row, score[best_row], second


@njit(cache=True, nogil=True)
def _top_two(score, starts, best_row, second):  # pragma: no cover - compiled
    for line in range(starts.shape[0] - 1):
        lo, hi = starts[line], starts[line + 1]
        best = lo
        for r in range(lo + 1, hi):
            if score[r] > score[best] or (score[best] != score[best] and score[r] == score[r]):
                best = r
        best_row[line] = best
        if hi - lo > 1:
            runner = np.nan
            for r in range(lo, hi):
                if r != best and (runner != runner or score[r] > runner):
                    runner = score[r]
            second[line] = runner


def select(values: Sequence[str], names: Sequence[str]) -> list[int]:
    index = {n: k for k, n in enumerate(values)}
    return [index[n] for n in names]
