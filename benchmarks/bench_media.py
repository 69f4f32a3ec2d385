"""Benchmarks of the media front-end (`dramasr extract` / `run`); figures go to BENCHMARKS.md.

    python benchmarks/bench_media.py --part clip          # ../shared/media clip: names, lip scores
    python benchmarks/bench_media.py --part synthetic     # 4 characters, 150+ lines: accuracy, lip gain, centring
    python benchmarks/bench_media.py --part librispeech   # 10 real speakers as "dialogue", one sample each
    python benchmarks/bench_media.py --part rtf           # ~9-minute 640x360 episode: real-time factor, CPU, RSS,
                                                          # 1 and 2 workers (parts of the episode side by side)
    python benchmarks/bench_media.py --part scaling       # 4 episodes on 1 and 2 workers

Needs the media extra, flite and ../shared/media. Each part prints its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def _extract_cli(args: list[str]) -> tuple[float, float]:
    """Run `dramasr extract` in a child process: (wall seconds, peak RSS of the largest child in MiB)."""
    wall, rss, _ = _extract_measured(args)
    return wall, rss


def _extract_measured(args: list[str]) -> tuple[float, float, dict]:
    """`dramasr extract` in a child process: wall seconds, peak RSS of the largest process (MiB), and
    the CPU seconds (user + sys) of it and its workers with the load averages around the run (other
    jobs on the machine inflate the wall time, not the CPU time)."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "dramasr.cli", "extract", *args], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, max(before.ru_maxrss, after.ru_maxrss) / 1024, {
        "cpu_s": round(cpu, 1), "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def _accuracy(drama_dir: Path, truth: list[str], seeds: str, lip: bool) -> float:
    from dramasr.data import load_drama
    from dramasr.extract.run import attribute_extracted

    drama = load_drama(drama_dir)
    records = sorted(attribute_extracted(drama, seeds, lip=lip), key=lambda r: r.line)
    return float(np.mean([r.speaker == t for r, t in zip(records, truth, strict=True)]))


def part_clip(work: Path) -> dict:
    import yaml

    from dramasr.data.subtitles import SubtitleLine, render_subtitles

    cast = MEDIA / "cast"
    spans = [(0.0, 1.4), (1.4, 2.8), (2.8, 3.6), (3.6, 5.5), (5.5, 7.5), (7.5, 9.9)]
    subs = work / "clip.srt"
    subs.write_text(render_subtitles([SubtitleLine(int(a * 1000), int(b * 1000), f"line {k}")
                                      for k, (a, b) in enumerate(spans)], "srt"))
    members = {"Lin-Manuel Miranda": ["lin-manuel-miranda.png"], "Barack Obama": ["train_obama_obama.jpg"],
               "Joe Biden": ["train_biden_biden.jpg"], "Alex Lacamoire": ["alex-lacamoire.png"],
               "Kit Harington": ["train_kit_harington_john1.jpeg"], "Rose Leslie": ["train_rose_leslie_img1.jpg"]}
    (work / "cast.yaml").write_text(yaml.safe_dump({"cast": [
        {"name": n, "photos": [str(cast / p) for p in ps]} for n, ps in members.items()]}))
    out = work / "clip"
    wall, rss = _extract_cli([str(MEDIA / "short_hamilton_clip.mp4"), "--subs", str(subs), "--cast",
                              str(work / "cast.yaml"), "-o", str(out), "--sample-fps", "8"])
    faces = json.loads((out / "face_data" / "0001.json").read_text())["object_list"].values()
    lips = json.loads((out / "lip_data" / "0001.json").read_text())["scores"]
    tracks = [{"span": [f["start_time"], f["end_time"]], "frames": f["geometry"]["active_frames"],
               "name": (f["id_list"].get("0") or {}).get("name", ""),
               "score": (f["id_list"].get("0") or {}).get("score")} for f in faces]
    his: dict[int, float] = {}
    for r in lips:
        if r["name"] == "Lin-Manuel Miranda":
            his[r["line"]] = max(his.get(r["line"], 0.0), r["score"])
    others = [r["score"] for r in lips if r["name"] != "Lin-Manuel Miranda"]
    return {"tracks": tracks, "lip_scores": lips, "lip_performer_per_line": his,
            "lip_mean_performer": round(float(np.mean(list(his.values()))), 4) if his else None,
            "lip_mean_reaction_shot": round(float(np.mean(others)), 4) if others else None,
            # every line is his: attribution from the face/lip seeds alone (no voice sample)
            "lines_attributed_to_him_face_seeds": round(_accuracy(out, ["Lin-Manuel Miranda"] * len(spans), "faces",
                                                                  True) * len(spans)),
            "wall_s": round(wall, 1), "peak_rss_mib": round(rss)}


def part_synthetic(work: Path, lines: int = 200) -> dict:
    from dramasr.extract import ExtractConfig, extract_drama
    from dramasr.extract.synthetic import make_episode, shared_characters

    episode = make_episode(work, shared_characters(MEDIA), lines, seed=11, size=(640, 360))
    out: dict = {"lines": lines, "characters": 4, "shots": {s: episode.shots.count(s) for s in set(episode.shots)}}
    started = time.perf_counter()
    extract_drama([episode.video], [episode.subtitles], episode.cast, work / "drama", config=ExtractConfig())
    out["extract_s"] = round(time.perf_counter() - started, 1)
    for seeds in ("voice", "faces"):  # faces: no voice sample, seeds from lines where one named face speaks
        for lip in (False, True):
            out[f"accuracy_{seeds}_seeds_lip_{lip}"] = round(_accuracy(work / "drama", episode.speakers, seeds, lip), 4)
    # the embeddings as resemblyzer gives them, without the drama's mean voice subtracted
    # (the per-episode results are reused: only the layout is written again)
    shutil.copytree(work / "drama" / ".extract", work / "raw" / ".extract")
    extract_drama([episode.video], [episode.subtitles], episode.cast, work / "raw", config=ExtractConfig(),
                  centre=False)
    out["accuracy_uncentred_lip_False"] = round(_accuracy(work / "raw", episode.speakers, "voice", False), 4)
    lips = json.loads((work / "drama" / "lip_data" / "0001.json").read_text())["scores"]
    speaking = [r["score"] for r in lips if r["name"] == episode.speakers[r["line"]]]
    listening = [r["score"] for r in lips if r["name"] and r["name"] != episode.speakers[r["line"]]]
    out["lip_median_speaker"] = round(float(np.median(speaking)), 3)
    out["lip_median_listener"] = round(float(np.median(listening)), 3)
    return out


def part_librispeech(work: Path, lines: int = 120) -> dict:
    """Ten LibriSpeech speakers as a dialogue (no faces): one utterance each is the voice sample."""
    import yaml

    from dramasr.extract import ExtractConfig, extract_drama
    from dramasr.extract.synthetic import Character, make_episode

    voices = MEDIA / "voices_librispeech_test_other"
    photo = str(MEDIA / "cast" / "lin-manuel-miranda.png")  # never shown: every shot is off screen
    characters, samples = [], {}
    for speaker in sorted(p for p in voices.iterdir() if p.is_dir()):
        files = sorted(speaker.glob("*.flac"))
        folder = work / "voices" / speaker.name
        folder.mkdir(parents=True, exist_ok=True)
        for f in files[1:]:
            shutil.copy(f, folder / f.name)
        samples[speaker.name] = str(files[0])
        characters.append(Character(f"speaker {speaker.name}", photo, photo, str(folder)))
    episode = make_episode(work, characters, lines, seed=5, size=(160, 96), fps=5,
                           shot_weights=(0, 0, 0, 1), voice_samples=False)
    (work / "cast.yaml").write_text(yaml.safe_dump({"cast": [
        {"name": c.name, "voice": [samples[c.name.split()[-1]]]} for c in characters]}))
    extract_drama([episode.video], [episode.subtitles], work / "cast.yaml", work / "drama",
                  config=ExtractConfig(sample_fps=1.0, upsample=0))
    seeds = json.loads((work / "drama" / "init_seeds_voice.json").read_text())
    chosen = [(c["name"], i) for c in seeds["character_list"] for i in c["utterance_list"]]
    return {"speakers": len(characters), "lines": lines, "seed_lines": len(chosen),
            "seed_precision": round(float(np.mean([episode.speakers[i] == n for n, i in chosen])), 4),
            "accuracy_one_sample_each": round(_accuracy(work / "drama", episode.speakers, "voice", False), 4)}


def part_rtf(work: Path, minutes: float = 10.0) -> dict:
    from dramasr.extract.synthetic import make_episode, shared_characters

    lines = int(minutes * 60 / 2.6)
    started = time.perf_counter()
    episode = make_episode(work, shared_characters(MEDIA), lines, seed=3, size=(640, 360), fps=25)
    build_s = time.perf_counter() - started
    from dramasr.extract.media import probe

    duration = probe(episode.video).duration_s
    out = {"video_s": round(duration, 1), "lines": lines, "build_s": round(build_s, 1)}
    runs = (("default_2_workers", ["--workers", "2"]), ("default_1_worker", ["--workers", "1"]),
            ("upsample0_2fps_2_workers", ["--workers", "2", "--upsample", "0", "--sample-fps", "2"]))
    for label, extra in runs:
        wall, rss, cpu = _extract_measured([str(episode.video), "--subs", str(episode.subtitles), "--cast",
                                            str(episode.cast), "-o", str(work / label), *extra])
        result = json.loads((work / label / ".extract" / "0001.json").read_text())
        out[label] = {"wall_s": round(wall, 1), "rtf": round(wall / duration, 3), **cpu,
                      "rtf_cpu_over_2_cores": round(cpu["cpu_s"] / 2 / duration, 3), "peak_rss_mib": round(rss),
                      "parts": result["parts"], "work": result["work"], "stages_s_summed_over_parts": result["timings"]}
    return out


def part_scaling(work: Path, episodes: int = 4, lines: int = 40) -> dict:
    from dramasr.extract.synthetic import make_episode, shared_characters

    made = [make_episode(work, shared_characters(MEDIA), lines, seed=20 + k, size=(640, 360), stem=f"ep{k}")
            for k in range(episodes)]
    args = [str(e.video) for e in made]
    for e in made:
        args += ["--subs", str(e.subtitles)]
    out: dict = {"episodes": episodes, "lines_each": lines}
    for workers in (1, 2):
        wall, rss, cpu = _extract_measured([*args, "--cast", str(work / "cast.yaml"), "-o", str(work / f"w{workers}"),
                                            "--workers", str(workers)])
        out[f"workers_{workers}"] = {"wall_s": round(wall, 1), "peak_rss_mib_largest_process": round(rss), **cpu}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["clip", "synthetic", "librispeech", "rtf", "scaling"], required=True)
    parser.add_argument("--keep", type=Path, help="keep the built material here (default: a temp folder)")
    args = parser.parse_args()
    if not MEDIA.is_dir() or shutil.which("flite") is None:
        sys.exit(f"needs {MEDIA} and flite (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        result = globals()[f"part_{args.part}"](work)
        result["part"] = args.part
        result["bench_wall_s"] = round(time.perf_counter() - started, 1)
        result["cpus"] = os.cpu_count()
        result["load_average_1min_at_end"] = round(os.getloadavg()[0], 1)
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
