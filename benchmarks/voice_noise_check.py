"""Training with voice-degraded copies, chosen leaving one training drama out (issue 22).

    python benchmarks/voice_noise_check.py --train ren_shi_jian --held zhen_huan_zhuan [--noise 0.9] [--out DIR]

Trains two models on the training drama TRAIN (as `dramasr train --drama TRAIN` does):
without copies, and with a copy of TRAIN whose voice embeddings are degraded by NOISE
(`train.voice_degraded`, seed 2). Attributes the held-out drama HELD and a copy of it
degraded the same way (seed 1) with each, and prints the strict accuracy (all / < 2 s /
>= 2 s). The degraded held-out copy stands for a drama whose voices are less separable
than the training dramas' (`benchmarks/voice_separability.py`); models are kept in --out
and reused when there. Trains two models: about 20-30 min on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from dramasr.attribute import attribute
from dramasr.data import load_drama
from dramasr.reason.model import AttributionModel
from dramasr.score import score_lines
from dramasr.train import DEFAULT_SETTINGS, train_model, voice_degraded

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"


def strict(drama, labels) -> list[float]:
    """Strict accuracy, all / < 2 s / >= 2 s, in %, as `dramasr evaluate` scores it."""
    lines = drama.lines
    score = score_lines(lines.speaker, labels, lines.duration, lines.episode, drama.named_characters())
    return [round(t.percent, 2) for t in (score.overall, score.by_duration["<2s"], score.by_duration[">=2s"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--held", required=True)
    parser.add_argument("--noise", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=Path("voice_noise_models"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train = load_drama(SHARED / args.train)
    held = load_drama(SHARED / args.held)
    held_copies = {"clean": held, "degraded": voice_degraded(held, args.noise, seed=1)}
    for kind, dramas in (("without copies", [train]),
                         ("with a degraded copy", [train, voice_degraded(train, args.noise, seed=2)])):
        path = args.out / f"{args.train}__{'copy' if len(dramas) > 1 else 'base'}_{args.noise:g}.npz"
        if not path.exists():
            train_model(dramas, output=path, settings=replace(DEFAULT_SETTINGS, voice_noise=()))
        model = AttributionModel.load(path)
        for which, drama in held_copies.items():
            accuracy = strict(drama, attribute(drama, model=model).labels)
            print(json.dumps({"trained on": args.train, "model": kind, "held out": args.held, "voices": which,
                              "noise": args.noise, "strict all / <2 s / >=2 s": accuracy}, ensure_ascii=False),
                  flush=True)


if __name__ == "__main__":
    main()
