"""Ablation: each evidence tool removed in turn (model re-trained without it) -> accuracy change.

    python benchmarks/ablation.py [--drama kuang_biao ...] [--tool faces_on_screen ...] [--json out.json]

Trains on ren_shi_jian as `dramasr train` does (our propagation from its 1% seeds and over
its runs of 12 episodes; refinement stages from the same tools; the group stage and the
final pass, shared by every model: `train.training_set` once, then `train.fit_model` per
tool set), then attributes each test drama with the full model and with every one-tool-less
model; propagation runs once per drama. The full model is checked to be the shipped one,
byte for byte. The rows take about 2 min, then each model about 6 min to fit and 3 min to
run on both test dramas (2 cores): all 7 tools take about 75 min; --tool picks some.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dramasr.attribute import attribute, propagate_labels
from dramasr.data import load_drama
from dramasr.reason.model import AttributionModel, default_model_path
from dramasr.score import line_correct, scored_mask
from dramasr.train import DEFAULT_SETTINGS, fit_model, training_set

FULL_TOOLS = DEFAULT_SETTINGS.full_tools

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TRAINING = {"ren_shi_jian", "zhen_huan_zhuan"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", action="append")
    parser.add_argument("--tool", action="append", choices=FULL_TOOLS,
                        help="tool to remove (repeatable; default: each in turn)")
    parser.add_argument("--json")
    args = parser.parse_args()
    names = args.drama or sorted(p.name for p in (SHARED / "dramasr").iterdir()
                                 if p.is_dir() and p.name not in TRAINING)
    t0 = time.time()
    train_drama = load_drama(SHARED / "dramasr" / "ren_shi_jian")
    train_set = training_set([train_drama], [propagate_labels(train_drama)])
    print(f"training rows and group stage ({time.time() - t0:.0f} s)", flush=True)
    models: dict[str, AttributionModel] = {}
    for removed in ("none", *(args.tool or FULL_TOOLS)):
        models[removed] = fit_model(train_set, DEFAULT_SETTINGS, tuple(t for t in FULL_TOOLS if t != removed))
        print(f"trained without {removed} ({time.time() - t0:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = models["none"].save(Path(tmp) / "attribution.npz")
        if not filecmp.cmp(rebuilt, default_model_path(), shallow=False):
            print("warning: the full model is not the shipped one (re-run `dramasr train`?)", flush=True)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        drama = load_drama(SHARED / "dramasr" / name)
        labels = propagate_labels(drama)
        truth, named = drama.lines.speaker, drama.named_characters()
        scored, short = scored_mask(truth), drama.lines.duration < 2.0
        for removed, model in models.items():
            correct = line_correct(truth, attribute(drama, labels=labels, model=model).labels, named)
            table.setdefault(removed, {})[name] = {
                "all": 100 * float(correct[scored].mean()), "<2s": 100 * float(correct[scored & short].mean())}
        print(f"attributed {name} ({time.time() - t0:.0f} s)", flush=True)
    base = table["none"]
    print(f"{'tool removed':<20}" + "".join(f"{n[:14]:>16}{'<2s':>8}" for n in names) + f"{'mean':>9}{'<2s':>8}")
    for removed, per in table.items():
        if removed == "none":
            cells = "".join(f"{per[n]['all']:>16.2f}{per[n]['<2s']:>8.2f}" for n in names)
            mean_all = np.mean([per[n]["all"] for n in names])
            mean_short = np.mean([per[n]["<2s"] for n in names])
            print(f"{'(full model: acc.)':<20}{cells}{mean_all:>9.2f}{mean_short:>8.2f}")
            continue
        cells = "".join(
            f"{per[n]['all'] - (0 if removed == 'none' else base[n]['all']):>+16.2f}"
            f"{per[n]['<2s'] - (0 if removed == 'none' else base[n]['<2s']):>+8.2f}" for n in names)
        mean_all = np.mean([per[n]["all"] - (0 if removed == "none" else base[n]["all"]) for n in names])
        mean_short = np.mean([per[n]["<2s"] - (0 if removed == "none" else base[n]["<2s"]) for n in names])
        print(f"{removed:<20}{cells}{mean_all:>+9.2f}{mean_short:>+8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
