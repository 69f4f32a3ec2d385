"""An evaluation report: the score of one predictions set on one drama, and its renderings.

JSON for machines, Markdown for people and reviews, a rich renderable for the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Group, RenderableType
from rich.table import Table

from dramasr import __version__
from dramasr.score import Score, Tally

# How many rows the human renderings show; report.json always holds everything.
MARKDOWN_CHARACTERS = 40
MARKDOWN_CONFUSIONS = 20


@dataclass(frozen=True)
class Report:
    """The score of one predictions set on one drama under one rule."""

    drama: str
    rule: str
    score: Score
    named_characters: int
    predictions_source: str | None = None
    predictions_format: str = "records"

    @property
    def accuracy(self) -> float:
        """Overall accuracy in percent (the benchmark's headline figure)."""
        return self.score.overall.percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "dramasr_version": __version__,
            "drama": self.drama,
            "predictions": {"source": self.predictions_source, "format": self.predictions_format},
            "named_characters": self.named_characters,
            **self.score.to_dict(),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode("utf-8")

    def to_markdown(self, images: Sequence[str] = ()) -> str:
        """A Markdown page; `images` are relative paths of plots to embed."""
        score = self.score
        out = [
            f"# Speaker attribution: {self.drama}",
            "",
            f"Rule: **{self.rule}**. "
            f"Predictions: `{self.predictions_source or 'in memory'}` ({self.predictions_format}).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| accuracy | **{_pct(score.overall)}** ({score.overall.correct} / {score.overall.total}) |",
            f"| macro-F1 over named characters | {_num(100 * score.macro_f1)} |",
            f"| open-set lines (truth not named) | {_pct(score.open_set)} of {score.open_set.total} |",
            f"| lines / scored / deleted (skipped) | {score.lines} / {score.overall.total} / {score.skipped} |",
            f"| scored lines without a prediction | {score.missing} |",
            f"| named characters | {self.named_characters} |",
            "",
            "## By line duration",
            "",
            "| duration | accuracy | lines |",
            "|---|---|---|",
            *(f"| {label} | {_pct(t)} | {t.total} |" for label, t in score.by_duration.items()),
            "",
            "## By episode",
            "",
            "| episode | accuracy | lines |",
            "|---|---|---|",
            *(f"| {ep} | {_pct(t)} | {t.total} |" for ep, t in score.by_episode.items()),
            "",
            "## By character (truth)",
            "",
            "`#` is the rank used in the plots. F1 counts exact names (named characters only).",
            "",
            "| # | character | named | accuracy | lines | predicted | F1 |",
            "|---|---|---|---|---|---|---|",
        ]
        characters = list(score.by_character.values())
        for rank, c in enumerate(characters[:MARKDOWN_CHARACTERS], start=1):
            f1 = _num(100 * c.f1) if c.named else ""
            out.append(f"| {rank} | {_cell(c.name)} | {'yes' if c.named else ''} | {_pct(c.tally)} | "
                       f"{c.tally.total} | {c.predicted} | {f1} |")
        if len(characters) > MARKDOWN_CHARACTERS:
            out += ["", f"{len(characters) - MARKDOWN_CHARACTERS} more characters in report.json."]
        out += [
            "",
            "## Top confusions",
            "",
            "| # | truth | predicted | lines |",
            "|---|---|---|---|",
            *(f"| {k} | {_cell(c.truth)} | {_cell(c.predicted)} | {c.count} |"
              for k, c in enumerate(score.confusions[:MARKDOWN_CONFUSIONS], start=1)),
        ]
        if images:
            out += ["", "## Plots", "", *(f"![{name}]({name})" for name in images)]
        return "\n".join(out) + "\n"


def _pct(tally: Tally) -> str:
    return "-" if not tally.total else f"{tally.percent:.2f}%"


def _num(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def report_table(report: Report, *, brief: bool = False) -> RenderableType:
    """All terminal tables of the report as one renderable (`console.print(report_table(r))`)."""
    return Group(*report_renderables(report, brief=brief))


def report_renderables(
    report: Report, *, brief: bool = False, characters: int = 10, confusions: int = 10,
) -> list[RenderableType]:
    """Tables for the terminal: summary and duration buckets; unless brief, also the top
    characters and confusions."""
    score = report.score
    summary = Table(title=f"{report.drama} ({report.rule} rule)", show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_row("accuracy", f"[bold]{_pct(score.overall)}[/bold] ({score.overall.correct}/{score.overall.total})")
    summary.add_row("macro-F1 (named)", _num(100 * score.macro_f1))
    summary.add_row("open-set accuracy", f"{_pct(score.open_set)} of {score.open_set.total}")
    summary.add_row("deleted (skipped)", str(score.skipped))
    summary.add_row("without prediction", str(score.missing))
    summary.add_row("named characters", str(report.named_characters))

    durations = Table(title="by line duration")
    for label in score.by_duration:
        durations.add_column(label, justify="right")
    durations.add_row(*(_pct(t) for t in score.by_duration.values()))
    durations.add_row(*(f"n={t.total}" for t in score.by_duration.values()), style="dim")
    if brief:
        return [summary, durations]

    people = Table(title=f"top {characters} characters by lines")
    for name, justify in (("character", "left"), ("named", "center"), ("accuracy", "right"), ("lines", "right"),
                          ("F1", "right")):
        people.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in list(score.by_character.values())[:characters]:
        people.add_row(c.name, "yes" if c.named else "", _pct(c.tally), str(c.tally.total),
                       _num(100 * c.f1) if c.named else "")

    mistakes = Table(title=f"top {confusions} confusions")
    for name, justify in (("truth", "left"), ("predicted", "left"), ("lines", "right")):
        mistakes.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in score.confusions[:confusions]:
        mistakes.add_row(c.truth, c.predicted, str(c.count))
    return [summary, durations, people, mistakes]
