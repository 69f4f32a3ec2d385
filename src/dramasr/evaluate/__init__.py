"""Evaluation: score a predictions set on a drama and write the report (JSON, Markdown, PNGs).

`evaluate` computes (pure), `write_report` writes files, `report_renderables` /
`report_table` give the terminal tables; the CLI glues them together.
"""

from __future__ import annotations

from pathlib import Path

from dramasr.data.model import Drama
from dramasr.data.predictions import Predictions
from dramasr.data.release import write_bytes_atomic
from dramasr.errors import DramaError
from dramasr.evaluate.report import Report, report_renderables, report_table
from dramasr.score import RULES, Rule, score_lines


def evaluate(drama: Drama, predictions: Predictions, rule: Rule = "strict", *, top_confusions: int = 20) -> Report:
    """Score predictions on the drama under the strict (release) or lenient rule."""
    if rule not in RULES:
        raise DramaError(f"unknown scoring rule {rule!r}", field="rule", hint="use 'strict' or 'lenient'")
    if len(predictions) != len(drama.lines):
        raise DramaError(
            f"{len(predictions)} predictions for the {len(drama.lines)} lines of {drama.name!r}",
            file=predictions.source, hint="the predictions belong to another drama",
        )
    candidates = None
    if rule == "lenient":
        if not predictions.has_candidates:
            raise DramaError(
                "the lenient rule needs candidate lists, and these predictions have none",
                file=predictions.source, field="candidates", hint="use --rule strict, or write candidates",
            )
        candidates = predictions.candidate_names()
    named = drama.named_characters()
    score = score_lines(
        drama.lines.speaker, predictions.speaker, drama.lines.duration, drama.lines.episode, named,
        candidates=candidates, rule=rule, top_confusions=top_confusions,
    )
    return Report(
        drama=drama.name, rule=rule, score=score, named_characters=len(named),
        predictions_source=predictions.source, predictions_format=predictions.format,
    )


def write_report(report: Report, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write report.json, report.md and (unless plots=False) the PNG plots into out_dir."""
    from dramasr.evaluate.plots import PLOTS, write_plots  # matplotlib loads only when plotting

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_plots(report, folder) if plots else []
    images = list(PLOTS) if plots else []
    write_bytes_atomic(folder / "report.json", report.to_json().encode("utf-8") + b"\n")
    write_bytes_atomic(folder / "report.md", report.to_markdown(images).encode("utf-8"))
    return [folder / "report.json", folder / "report.md", *written]


__all__ = ["Report", "evaluate", "report_renderables", "report_table", "write_report"]
