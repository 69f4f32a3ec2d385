"""`dramasr review`: the lines to check first (--suggest N), or the review page."""

# ruff: noqa: E501  (typer option declarations read best on one line each, as in dramasr/cli.py)

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dramasr.errors import DramaError

console = Console()


def default_corrections(pred: Path) -> Path:
    return pred.with_name(f"{pred.stem}.corrections.jsonl")


def review(
    drama_dir: Annotated[Path, typer.Argument(help="Drama folder in the DramaSR layout.")],
    pred: Annotated[Path, typer.Option("--pred", help="Predictions to review (dramasr JSONL, e.g. from `dramasr attribute`).")],
    corrections: Annotated[Path | None, typer.Option("--corrections", help="Corrections JSONL to read and append to (default: PRED's name + .corrections.jsonl, beside it).")] = None,
    suggest_n: Annotated[int | None, typer.Option("--suggest", min=1, help="Print the N lines (or groups) whose correction is expected to fix the most lines, with why, and exit.")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds the predictions were made with (re-runs and --suggest's group guesses use them).")] = "1pct",
    model: Annotated[Path | None, typer.Option(help="Model file for re-runs (default: the one shipped in the package).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where a re-run writes its predictions (default: PRED's name + .rerun.jsonl).")] = None,
    media: Annotated[list[Path] | None, typer.Option("--media", help="Folder of media files named after the episodes (0001.mp4 ...); DRAMA_DIR/media, video, videos and audio are looked in too.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default; the page has no login).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the review page.")] = 8765,
    as_json: Annotated[bool, typer.Option("--json", help="With --suggest: print JSON.")] = False,
) -> None:
    """Review predictions: --suggest N lists what to check first; otherwise a local review page
    (accept / change speaker / name a group by keyboard, corrections saved as made, re-run with them)."""
    from dramasr.data import load_drama

    drama = load_drama(drama_dir)
    corrections = corrections or default_corrections(pred)
    if suggest_n is not None:
        _print_suggestions(drama, pred, corrections, suggest_n, seeds, as_json)
        return
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DramaError(f"the review page needs the review extra ({exc.name} is missing)",
                         hint='pip install -e ".[review]"') from None
    from dramasr.review.app import ReviewSession, serve

    session = ReviewSession(drama, pred, corrections, output=output, seeds=seeds, model_path=model,
                            media=media or ())
    console.print(f"review page: http://{host}:{port}/  ({len(drama.lines)} lines; corrections -> {corrections};"
                  f" media for {len(session.media)} episode(s)). Ctrl-C stops it.")
    serve(session, host=host, port=port)


def _print_suggestions(drama, pred: Path, corrections: Path, n: int, seeds: str, as_json: bool) -> None:
    from dramasr.data.predictions import load_any_predictions
    from dramasr.review.corrections import CorrectionsFile
    from dramasr.review.suggest import group_guesses, suggest

    predictions = load_any_predictions(pred, drama)
    current = CorrectionsFile(corrections, drama).current()
    with console.status("scoring new-character groups ..."):
        guesses = group_guesses(drama, predictions, seeds=seeds, corrections=current)
    picks = suggest(drama, predictions, n, current, guesses=guesses)
    if as_json:
        print(json.dumps([s.to_dict() for s in picks], ensure_ascii=False, indent=1))
        return
    table = Table(title=f"{drama.name}: {len(picks)} places to look first (best first)")
    for col in ("#", "line", "ep", "speaker", "conf", "fixes", "text", "why"):
        table.add_column(col, overflow="fold")
    for k, s in enumerate(picks, 1):
        conf = "-" if s.confidence is None else f"{s.confidence:.2f}"
        table.add_row(str(k), str(s.line), str(s.episode), s.speaker, conf, f"{s.expected_fixes:.1f}",
                      drama.lines.text[s.line], s.reason)
    console.print(table)
