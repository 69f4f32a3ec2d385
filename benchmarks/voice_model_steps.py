"""How many L-BFGS steps the voice model needs (issue 23), judged on a training drama.

    python benchmarks/voice_model_steps.py --drama zhen_huan_zhuan --steps 100 50 30 [--lda] [--cap 1500 800]

Propagates the drama from its 1 % seeds, then builds the cross-fitted voice model
(`tools/audio_sim.build_voice_model`) on propagation's labels with each step budget and
reports, over the non-seed lines whose truth is a listed character: how often the voice
model's most probable character is the truth, the mean log-probability it gives the truth,
and the time of the 4 fits (2 at a time, one BLAS thread each, as attribution runs them).
--lda: a closed-form alternative (shared-covariance Gaussian classes, 5 % shrinkage, the
same folds) at temperatures 1, 2 and 3. --cap N: the fits on at most N lines per character
(weighted back to the full counts), 30 steps, one fit after the other.
Only training dramas belong here: this is where the step budget was chosen.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import dramasr.tools.audio_sim as audio_sim
from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.tools import Context

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 50, 30])
    parser.add_argument("--lda", action="store_true")
    parser.add_argument("--cap", type=int, nargs="*", default=[])
    args = parser.parse_args()
    drama = load_drama(SHARED / args.drama)
    ctx = Context.build(drama, propagate_labels(drama, "1pct"))
    label = ctx.label_class
    truth = np.array([ctx.class_of.get(name, -1) for name in drama.lines.speaker])
    judged = (truth >= 0) & ~ctx.state.is_seed

    def report(name: str, probs: np.ndarray, seconds: float) -> None:
        hit = np.mean(probs.argmax(1)[judged] == truth[judged])
        logp = np.log(probs[np.flatnonzero(judged), truth[judged]] + 1e-6).mean()
        print(f"{args.drama} {name:28s} {seconds:6.1f} s  best = truth {100 * hit:.2f} %  "
              f"mean log-p(truth) {logp:.3f}", flush=True)

    for steps in args.steps:
        audio_sim.VOICE_MODEL_ITERS = steps
        t = time.perf_counter()
        probs = audio_sim.build_voice_model(ctx.tables, label)
        report(f"logistic, {steps} steps", probs, time.perf_counter() - t)
    z = ctx.tables.standard_unit(np.ones(len(ctx.drama.lines), bool))
    fold = np.random.default_rng(0).integers(0, audio_sim.VOICE_MODEL_FOLDS, len(z))
    if args.lda:
        for temperature in (1.0, 2.0, 3.0):
            t = time.perf_counter()
            probs = _lda(z.astype(np.float64), label, fold, len(ctx.classes), temperature)
            report(f"LDA, temperature {temperature:g}", probs, time.perf_counter() - t)
    for cap in args.cap:
        t = time.perf_counter()
        probs = _capped(z, label, fold, len(ctx.classes), cap)
        report(f"logistic, <= {cap} lines/char", probs, time.perf_counter() - t)


def _lda(z: np.ndarray, label: np.ndarray, fold: np.ndarray, n_classes: int, temperature: float) -> np.ndarray:
    probs = np.zeros((len(z), n_classes), np.float32)
    for k in np.unique(fold):
        test = fold == k
        x, y = z[~test], label[~test]
        known, inverse = np.unique(y, return_inverse=True)
        counts = np.bincount(inverse).astype(float)
        means = np.zeros((len(known), z.shape[1]))
        np.add.at(means, inverse, x)
        means /= counts[:, None]
        residual = x - means[inverse]
        cov = residual.T @ residual / max(len(x) - len(known), 1)
        cov = 0.95 * cov + 0.05 * np.trace(cov) / len(cov) * np.eye(len(cov))
        weights = np.linalg.solve(cov, means.T)
        bias = -0.5 * np.einsum("kd,dk->k", means, weights) + np.log(counts / counts.sum())
        scores = (z[test] @ weights + bias) / temperature
        scores = np.exp(scores - scores.max(1, keepdims=True))
        probs[np.ix_(test, known)] = scores / scores.sum(1, keepdims=True)
    return probs


def _capped(z: np.ndarray, label: np.ndarray, fold: np.ndarray, n_classes: int, cap: int) -> np.ndarray:
    probs = np.zeros((len(z), n_classes), np.float32)
    rng = np.random.default_rng(1)
    for k in np.unique(fold):
        test = fold == k
        train = np.flatnonzero(~test)
        counts = np.bincount(label[train], minlength=n_classes)
        kept = np.sort(np.concatenate([
            idx if len(idx) <= cap else rng.choice(idx, cap, replace=False)
            for idx in (train[label[train] == c] for c in np.unique(label[train]))]))
        weight = (np.maximum(counts[label[kept]], cap) / cap).astype(np.float32)
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore")
            fitted = LogisticRegression(C=audio_sim.VOICE_MODEL_C, max_iter=30).fit(
                z[kept], label[kept], sample_weight=weight)
        probs[np.ix_(test, fitted.classes_)] = fitted.predict_proba(z[test])
    return probs


if __name__ == "__main__":
    main()
