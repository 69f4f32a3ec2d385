"""`dramasr extract` and `dramasr run`: the media front-end's commands (registered in dramasr.cli)."""

# ruff: noqa: E501  (typer option declarations read best on one line each, as in dramasr/cli.py)

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dramasr.errors import DramaError

ENGINE_HELP = "local: a process pool on this machine; ray: a Ray cluster (--address HOST:PORT, shared files)."

# the options both commands take
Videos = Annotated[list[Path], typer.Argument(help="Video files, one per episode, in episode order.")]
Subs = Annotated[list[Path], typer.Option("--subs", help="Subtitle file (SRT/ASS/VTT) of each video, same order (repeat the option).")]
Cast = Annotated[Path, typer.Option("--cast", help="cast.yaml: name, aliases, photos and optional voice samples per character.")]
Engine = Annotated[str, typer.Option(help=ENGINE_HELP)]
Address = Annotated[str | None, typer.Option(help="Ray head address HOST:PORT (with --engine ray).")]
Workers = Annotated[int | None, typer.Option(min=1, help="Worker processes with --engine local (default: cores); each runs one part of an episode at a time.")]
SampleFps = Annotated[float, typer.Option(help="Frames looked at per second of dialogue (faces and lips).")]
Upsample = Annotated[int, typer.Option(min=0, max=2, help="Face detector upsampling at shot cuts and when no face is followed: 1 finds faces down to ~40 px (wide shots); 0 is faster.")]
PartSeconds = Annotated[float, typer.Option(help="Episodes are cut into parts of about this much video (at gaps between lines) that run side by side; 0: one piece.")]


def _progress():
    """A rich progress display with one bar per stage; returns (context manager, hook)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dramasr.cli import err_console

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)
    tasks: dict[str, int] = {}

    def hook(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=max(total, 1))
        bars.update(tasks[stage], completed=done, total=max(total, 1))

    return bars, hook


def _check_media_stack() -> None:
    missing = []
    for module in ("av", "dlib", "face_recognition_models", "resemblyzer", "webrtcvad", "yaml"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DramaError(f"the media stack is not installed (missing: {', '.join(missing)})",
                         hint='install it as the README says: pip install -e ".[media]" (after torch==2.13.0)')


def _config(sample_fps: float, upsample: int, part_seconds: float = 60.0):
    from dramasr.extract.episode import ExtractConfig

    if sample_fps <= 0:
        raise DramaError("must be > 0", field="--sample-fps")
    if part_seconds < 0:
        raise DramaError("must be >= 0 (0: each episode in one piece)", field="--part-seconds")
    return ExtractConfig(sample_fps=sample_fps, upsample=upsample, part_s=part_seconds)


def extract_command(
    videos: Videos,
    subs: Subs,
    cast: Cast,
    output: Annotated[Path, typer.Option("--output", "-o", help="Drama folder to write (DramaSR layout).")],
    engine: Engine = "local",
    address: Address = None,
    workers: Workers = None,
    sample_fps: SampleFps = 4.0,
    upsample: Upsample = 1,
    part_seconds: PartSeconds = 60.0,
) -> None:
    """Video files + subtitle files + cast list -> a drama folder: voices, named face tracks, lip scores, voice seeds."""
    from dramasr.cli import console
    from dramasr.extract.pipeline import extract_drama

    _check_media_stack()
    bars, hook = _progress()
    with bars:
        extract_drama(videos, subs, cast, output, config=_config(sample_fps, upsample, part_seconds), engine=engine, workers=workers,
                      address=address, progress=hook)
    console.print(f"wrote {len(videos)} episode(s) to {output}")


def run_command(
    videos: Videos,
    subs: Subs,
    cast: Cast,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the named subtitles (and drama/, predictions.jsonl).")],
    seeds: Annotated[str, typer.Option(help="auto: voice when the cast has voice samples, else faces; voice: the lines nearest each voice sample; faces: lines where one named face clearly speaks on screen; or a seed file.")] = "auto",
    lip: Annotated[bool, typer.Option("--lip/--no-lip", help="Re-weigh the on-screen evidence by the lip (speaking) scores.")] = True,
    engine: Engine = "local",
    address: Address = None,
    workers: Workers = None,
    sample_fps: SampleFps = 4.0,
    upsample: Upsample = 1,
    part_seconds: PartSeconds = 60.0,
) -> None:
    """One command: extract -> seeds -> attribute -> named subtitles in each input's own format."""
    from dramasr.cli import console
    from dramasr.extract.run import run_pipeline

    _check_media_stack()
    bars, hook = _progress()
    with bars:
        written = run_pipeline(videos, subs, cast, output, seeds=seeds, lip=lip, config=_config(sample_fps, upsample, part_seconds),
                               engine=engine, workers=workers, address=address, progress=hook)
    for path in written:
        console.print(f"wrote {path}")
