"""What voice and face evidence the attribution's wrong lines have (issue 22).

    python benchmarks/evidence_of_errors.py --run DRAMA=PRED [DRAMA=PRED ...]

DRAMA is a folder name under ../shared/dramasr, PRED its `dramasr attribute` output. The
lines of named characters that have a voice are sorted by the answer: right; named left
unnamed (answered 其他 or a new character); named for named (another named character). For
each kind, over all its lines and over those >= 2 s, it prints:
- how many lines;
- placed by voice: the share whose best character by the mean of its 5 closest lines is its
  own, when every other line of the drama carries its truth (`voice_separability.py`'s
  measure, an oracle reference no method has);
- own top-5: the mean cosine of those 5 closest lines of its own character;
- the share of lines where the truth's face is recognised inside the line, where it is the
  only named face there, and where it is seen within 5 s.
It reads the truth of every line: a diagnosis of what evidence there is, not a method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import orjson
from voice_separability import QUERIES, SHARED, placed_by_voice

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.tools import Context

KINDS = ("right", "named left unnamed", "named for named")


def kinds_of(speaker: np.ndarray, said: dict[int, str], lines: np.ndarray, named: set[str]) -> dict[str, np.ndarray]:
    """The lines (of `lines`, those with an answer) of each kind."""
    out: dict[str, list[int]] = {k: [] for k in KINDS}
    for i in lines.tolist():
        answer = said.get(i)
        if answer is None:
            continue
        kind = "right" if answer == speaker[i] else "named for named" if answer in named else "named left unnamed"
        out[kind].append(i)
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def evidence_rows(name: str, pred: Path) -> list[str]:
    drama = load_drama(SHARED / name)
    emb = drama.lines.embedding.astype(np.float64)
    unit = (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)).astype(np.float32)
    named = drama.named_characters()
    speaker = np.asarray(drama.lines.speaker, object)
    reference = np.flatnonzero(drama.lines.has_voice & np.fromiter((s in named for s in speaker), bool, len(speaker)))
    said = {r["line"]: r["speaker"] for r in map(orjson.loads, pred.read_bytes().splitlines())}
    ctx = Context.build(drama, propagate_labels(drama))  # the face tables do not depend on the labels
    faces = ctx.tables.faces
    rng = np.random.default_rng(0)
    rows = []
    long = drama.lines.duration >= 2
    for (kind, every), split in ((k, s) for k in kinds_of(speaker, said, reference, named).items()
                                 for s in ("all", ">= 2 s")):
        lines = every if split == "all" else every[long[every]]
        if not len(lines):
            continue
        query = np.sort(rng.choice(lines, QUERIES, replace=False)) if len(lines) > QUERIES else lines
        placed, own = placed_by_voice(unit, speaker, reference, query)
        cls = ctx.classes_of(list(speaker[lines]))
        hits, _, near = faces.at(lines, cls)
        alone = (hits > 0) & (faces.on_screen[lines] == 1)
        rows.append(f"| {name} | {kind} | {split} | {len(lines):,} | {100 * placed.mean():.1f} | {own.mean():.3f} | "
                    f"{100 * (hits > 0).mean():.1f} | {100 * alone.mean():.1f} | {100 * (near < 5).mean():.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, metavar="DRAMA=PRED")
    args = parser.parse_args()
    print("| drama | kind | split | lines | placed by voice (%) | own top-5 | truth's face inside (%) | "
          "only named face (%) | within 5 s (%) |\n|---|---|---|---:|---:|---:|---:|---:|---:|")
    for run in args.run:
        name, _, pred = run.partition("=")
        print("\n".join(evidence_rows(name, Path(pred))))


if __name__ == "__main__":
    main()
