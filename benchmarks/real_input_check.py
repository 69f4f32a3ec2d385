"""Every shared drama, as released and with the release's quirks injected, through every command.

    python benchmarks/real_input_check.py                          # all dramas in ../shared/dramasr
    python benchmarks/real_input_check.py --drama chen_mo_de_zhen_xiang --truth-check chen_mo_de_zhen_xiang

For each drama: a copy with the quirks unseen dramas hold (a 60 in the seconds field of one
subtitle line and of one face track, written as the release's reader reads it, e.g.
00:25:60.000 for 00:26:00.000; two embedding rows of NaN) runs through `info`, `propagate`,
`attribute`, `evaluate` and `export` as the plain drama does; the table gives each
command's exit status, the mends reported, and strict accuracy (all / < 2 s) of both.
`--truth-check` also attributes a copy with every `character` field removed and counts the
lines whose speaker differs from the run with truth (target 0). Commands run one after the
other as subprocesses (`dramasr ...`), so the figures are what a user gets.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "dramasr"
DRAMASR = [sys.executable, "-m", "dramasr.cli"]
_ROLL = re.compile(r"^(\d\d):(\d\d):00(\.\d{3})$")


def _as_sixty(stamp: str) -> str | None:
    """'00:26:00.000' -> '00:25:60.000' (the same instant, as the quirky files write it)."""
    match = _ROLL.match(stamp)
    if match is None or (match.group(1) == "00" and match.group(2) == "00"):
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes - 1
    return f"{total // 60:02d}:{total % 60:02d}:60{match.group(3)}"


def _rewrite_first(path: Path, fields: tuple[str, ...]) -> str:
    doc = json.loads(path.read_text("utf-8"))
    for key, obj in doc["object_list"].items():
        for name in fields:
            sixty = _as_sixty(obj.get(name, ""))
            if sixty:
                obj[name] = sixty
                path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
                return f"{path.name} object {key} {name} -> {sixty}"
    return ""


def inject_quirks(src: Path, dst: Path) -> list[str]:
    """Copy `src` to `dst` with a 60-second subtitle time, a 60-second face time and two NaN rows."""
    shutil.copytree(src, dst)
    done = []
    for sub, fields in (("subtitle_data", ("start_time", "end_time")), ("face_data", ("start_time", "end_time"))):
        files = sorted(p for p in (dst / sub).glob("*.json") if p.stem.isdigit())
        for path in files[len(files) // 2:] + files[:len(files) // 2]:
            note = _rewrite_first(path, fields)
            if note:
                done.append(note)
                break
    emb_files = sorted((dst / "sv_embedding").glob("*.npy"))
    path = emb_files[len(emb_files) // 3]
    emb = np.load(path)
    emb[[1, len(emb) // 2]] = np.nan
    np.save(path, emb)
    done.append(f"{path.name} rows 1 and {len(emb) // 2} -> NaN")
    return done


def strip_truth(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    for path in sorted((dst / "subtitle_data").glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        for obj in doc["object_list"].values():
            obj.pop("character", None)
        path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def run(*args: str) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    proc = subprocess.run([*DRAMASR, "--quiet", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


def every_command(drama: Path, work: Path) -> dict:
    """info, propagate, attribute, evaluate, export on one drama folder; exit codes, mends, accuracy."""
    out: dict = {"exit": {}, "mends": 0}
    pred = work / "pred.jsonl"
    steps = {
        "info": ("info", str(drama), "--json"),
        "propagate": ("propagate", str(drama), "-o", str(work / "prop.json")),
        "attribute": ("attribute", str(drama), "-o", str(pred), "--no-evaluate"),
        "evaluate": ("evaluate", str(drama), "--pred", str(pred), "--json", "-o", str(work / "report")),
        "export": ("export", str(drama), "--pred", str(pred), "-o", str(work / "srt")),
    }
    for name, args in steps.items():
        code, stdout, stderr, seconds = run(*args)
        out["exit"][name] = code
        out[f"{name}_s"] = round(seconds, 1)
        if name == "info":
            out["mends"] = stderr.count("mended:")
            out["mend_lines"] = [line for line in stderr.splitlines() if line.startswith("mended:")]
        if code != 0:
            out[f"{name}_error"] = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        if name == "evaluate" and code == 0:
            report = json.loads(stdout)
            out["all"] = round(report["overall"]["accuracy"], 3)
            out["<2s"] = round(report["by_duration"]["<2s"]["accuracy"], 3)
    out["speakers"] = [json.loads(line)["speaker"] for line in pred.read_text("utf-8").splitlines()] \
        if pred.is_file() else []
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drama", action="append", help="drama folder name in ../shared/dramasr (repeatable)")
    parser.add_argument("--truth-check", action="append", default=[], help="also run this drama without truth")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    names = args.drama or sorted(p.name for p in SHARED.iterdir() if (p / "subtitle_data").is_dir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="dramasr-real-input-") as tmp:
        for name in names:
            src = SHARED / name
            base = Path(tmp) / name
            (base / "plain").mkdir(parents=True)
            (base / "quirky_out").mkdir()
            injected = inject_quirks(src, base / "quirky")
            plain = every_command(src, base / "plain")
            quirky = every_command(base / "quirky", base / "quirky_out")
            row = {"drama": name, "injected": injected, "plain": {k: v for k, v in plain.items() if k != "speakers"},
                   "quirky": {k: v for k, v in quirky.items() if k != "speakers"},
                   "speakers_changed_by_quirks": sum(a != b for a, b in zip(plain["speakers"], quirky["speakers"],
                                                                            strict=False))}
            if name in args.truth_check:
                strip_truth(src, base / "bare")
                (base / "bare_out").mkdir()
                pred = base / "bare_out" / "pred.jsonl"
                code, _, stderr, seconds = run("attribute", str(base / "bare"), "-o", str(pred))
                bare = [json.loads(line)["speaker"] for line in pred.read_text("utf-8").splitlines()] \
                    if code == 0 else []
                row["without_truth"] = {"exit": code, "lines": len(bare), "seconds": round(seconds, 1),
                                        "speakers_differing": sum(a != b for a, b in zip(plain["speakers"], bare,
                                                                                         strict=True))
                                        if len(bare) == len(plain["speakers"]) else None}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    print("\n| drama | commands (plain / quirks) | mends reported | all: plain / quirks | < 2 s: plain / quirks "
          "| speakers changed |")
    print("|---|---|---:|---|---|---:|")
    for row in rows:
        p, q = row["plain"], row["quirky"]
        exits = "all exit 0" if not any(p["exit"].values()) and not any(q["exit"].values()) else \
            f"{p['exit']} / {q['exit']}"
        print(f"| {row['drama']} | {exits} | {q['mends']} | {p.get('all')} / {q.get('all')} | "
              f"{p.get('<2s')} / {q.get('<2s')} | {row['speakers_changed_by_quirks']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
