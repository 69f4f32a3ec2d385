"""Lines without a voice embedding: how they are named from the rest (issue 22).

    python benchmarks/voiceless_check.py --drama ren_shi_jian --model fold.npz [--share 0.1] [--episodes 3]

A released drama may lack the voice of some lines (an embedding row of NaN or zeros, an
episode without its sv_embedding/NNNN.npy); the loader marks them `has_voice` False and the
tools skip them. This takes a drama whose lines all have a voice and attributes it twice:
as it is, and with the voice taken away from a set of its lines (a share of the non-seed
lines drawn with seed 0, and/or every line of a few whole episodes spread over the drama),
as the loader would leave them. It prints the strict accuracy of those lines with and
without their voice, under propagation and under the model, of the drama's other lines
(which the missing voices should not hurt) and of all its lines; and how often a blanked
named line's truth is among the candidates it is offered (`Context.voiceless_classes`).
With a fold model (`dramasr train --drama OTHER -o fold.npz`) the drama is one the model
never saw.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from dramasr.attribute import attribute, propagate_labels
from dramasr.data import load_drama
from dramasr.data.model import Drama
from dramasr.propagate.seeds import resolve_seeds
from dramasr.reason.features import TOP_K
from dramasr.reason.model import AttributionModel, load_default_model
from dramasr.score import line_correct, scored_mask
from dramasr.tools import Context

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"


def voice_removed(drama: Drama, lines: np.ndarray) -> Drama:
    """A copy of the drama whose given lines have no voice, as the loader leaves an unusable row."""
    has_voice = drama.lines.has_voice.copy()
    has_voice[lines] = False
    embedding = drama.lines.embedding.copy()
    embedding[lines] = 0.0
    return replace(drama, name=f"{drama.name}+voiceless", lines=replace(drama.lines, embedding=embedding,
                                                                          has_voice=has_voice))


def chosen_lines(drama: Drama, share: float, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(random non-seed lines, lines of whole episodes) that lose their voice."""
    seeds = np.zeros(len(drama.lines), bool)
    for lines in resolve_seeds(drama, "1pct").values():
        seeds[list(lines)] = True
    rng = np.random.default_rng(0)
    pool = np.flatnonzero(~seeds)
    scattered = np.sort(rng.choice(pool, int(round(share * len(pool))), replace=False)) if share else pool[:0]
    whole = np.zeros(0, np.int64)
    if episodes:
        picks = np.linspace(0, len(drama.episodes) - 1, episodes + 2)[1:-1].round().astype(int)
        whole = np.concatenate([np.arange(drama.episodes[k].line_start, drama.episodes[k].line_stop)
                                for k in sorted(set(picks.tolist()))])
    return scattered, whole


def accuracy(drama: Drama, labels: list[str], where: np.ndarray) -> dict[str, float | int]:
    """Strict accuracy (%) of the scored lines among `where` (bool mask), all / < 2 s / >= 2 s."""
    truth = drama.lines.speaker
    ok = line_correct(truth, labels, drama.named_characters())
    mask = scored_mask(truth) & where
    short = drama.lines.duration < 2.0
    out: dict[str, float | int] = {"lines": int(mask.sum())}
    for key, part in (("all", mask), ("<2s", mask & short), (">=2s", mask & ~short)):
        out[key] = round(100.0 * ok[part].mean(), 2) if part.any() else float("nan")
    return out


def truth_offered(drama: Drama) -> np.ndarray:
    """Per line: is its truth among the candidates the reasoner is offered (as propagation
    from the drama's seeds leaves them)?"""
    ctx = Context.build(drama, propagate_labels(drama))
    truth = ctx.classes_of(drama.lines.speaker)
    return np.fromiter((int(truth[i]) in ctx.candidate_classes(i, TOP_K) for i in range(len(drama.lines))), bool,
                       len(drama.lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", required=True, help="a drama under ../shared/dramasr whose lines all have a voice")
    parser.add_argument("--model", type=Path, help="model file (default: the shipped one)")
    parser.add_argument("--share", type=float, default=0.1, help="share of the non-seed lines losing their voice")
    parser.add_argument("--episodes", type=int, default=3, help="whole episodes losing their voice")
    args = parser.parse_args()
    drama = load_drama(SHARED / args.drama)
    model = AttributionModel.load(args.model) if args.model else load_default_model()
    scattered, whole = chosen_lines(drama, args.share, args.episodes)
    runs = {"with voice": attribute(drama, model=model)}
    blanked = voice_removed(drama, np.concatenate([scattered, whole]))
    runs["voice removed"] = attribute(blanked, model=model)
    n = len(drama.lines)
    masks = {"scattered lines": np.isin(np.arange(n), scattered), "whole episodes": np.isin(np.arange(n), whole)}
    masks["every other line"] = ~(masks["scattered lines"] | masks["whole episodes"])
    masks["all lines"] = np.ones(n, bool)
    offered = truth_offered(blanked)
    for which, mask in masks.items():
        if not mask.any():
            continue
        if which in ("scattered lines", "whole episodes"):
            named = mask & np.isin(np.asarray(drama.lines.speaker, dtype=object), list(drama.named_characters()))
            print(json.dumps({"drama": args.drama, "lines": which, "named lines": int(named.sum()),
                              "truth among the candidates (%)": round(100.0 * offered[named].mean(), 2)},
                             ensure_ascii=False), flush=True)
        for run, result in runs.items():
            print(json.dumps({"drama": args.drama, "model": str(args.model or "shipped"), "lines": which,
                              "run": run, "propagation": accuracy(drama, result.propagation_labels, mask),
                              "model answers": accuracy(drama, result.labels, mask)}, ensure_ascii=False),
                  flush=True)


if __name__ == "__main__":
    main()
