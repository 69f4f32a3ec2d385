"""Evaluation: score a predictions set on a drama and write the report (JSON, Markdown, PNGs).

`evaluate` computes (pure), `write_report` writes files, `report_renderables` /
`report_table` give the terminal tables; the CLI glues them together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER, SPEAKER_SEPARATOR, Drama
from dramasr.data.predictions import UNKNOWN, Predictions
from dramasr.data.release import write_bytes_atomic
from dramasr.errors import DramaError
from dramasr.evaluate.report import Report, report_renderables, report_table
from dramasr.score import RULES, Rule, score_lines

UNKNOWN_NAME_POLICIES = ("error", "other", "wrong")


def known_names(drama: Drama) -> frozenset[str]:
    """Every name a prediction for this drama may use: the cast, the relation file's and the
    seed files' characters, the truth's names, Other/未知, and new-character labels."""
    names = set(drama.cast) | set(drama.named_characters()) | {OTHER, UNKNOWN}
    names |= {s for s in drama.lines.speaker if s}
    if drama.relation:
        names |= set(drama.relation.get("character_list") or [])
    for seeds in drama.seed_files.values():
        names |= {str(c.get("name")) for c in seeds.get("character_list", []) if isinstance(c, dict)}
    return frozenset(names)


def unknown_names(drama: Drama, predictions: Predictions) -> dict[str, int]:
    """Predicted names that the drama does not know (each part of an "A/B" name is checked)."""
    known = known_names(drama)
    found: Counter[str] = Counter()
    for name in predictions.speaker:
        if name is None or name in known:
            continue
        parts = [p for p in name.split(SPEAKER_SEPARATOR) if p]
        if all(p in known or p.startswith(NEW_CHARACTER_PREFIX) for p in parts) and parts:
            continue
        found[name] += 1
    return dict(found)


def evaluate(drama: Drama, predictions: Predictions, rule: Rule = "strict", *, top_confusions: int = 20,
             unknown: str = "error") -> Report:
    """Score predictions on the drama under the strict (release) or lenient rule.

    `unknown` says how to count a predicted name the drama does not know (not in its cast,
    seeds, relations or truth, not Other, not a new-character label): "error" refuses (a
    misspelt name would otherwise pass as a correct "other"), "other" counts it as a
    non-named prediction (the release's reading), "wrong" counts it wrong on every line."""
    if rule not in RULES:
        raise DramaError(f"unknown scoring rule {rule!r}", field="rule", hint="use 'strict' or 'lenient'")
    if unknown not in UNKNOWN_NAME_POLICIES:
        raise DramaError(f"unknown policy {unknown!r}", field="--unknown-names", hint="use error, other or wrong")
    if not drama.has_truth:
        raise DramaError(
            "this drama has no ground truth ('character' fields), so predictions cannot be scored",
            file=drama.source, field="character", hint="attribute and export still work; add truth to evaluate",
        )
    if len(predictions) != len(drama.lines):
        raise DramaError(
            f"{len(predictions)} predictions for the {len(drama.lines)} lines of {drama.name!r}",
            file=predictions.source, hint="the predictions belong to another drama",
        )
    strangers = unknown_names(drama, predictions)
    if strangers and unknown == "error":
        listed = ", ".join(f"{name!r} ({count} lines)" for name, count in sorted(strangers.items())[:5])
        raise DramaError(
            f"{len(strangers)} predicted name(s) not known to the drama: {listed}", file=predictions.source,
            field="speaker", hint="fix the names, or pass --unknown-names other (count as an extra) or wrong",
        )
    if strangers and unknown == "wrong":
        predictions = replace(predictions, speaker=[None if s in strangers else s for s in predictions.speaker])
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
