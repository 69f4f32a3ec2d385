"""PNG plots of a report: accuracy by line duration, by episode, and per character.

Matplotlib's object API with the Agg canvas (no pyplot state, no display needed). Most
machines lack CJK fonts: unless one is installed, characters are labelled by their rank
(`#3`, the `#` column of report.md) instead of printing empty boxes and a warning per glyph.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dramasr.data.model import NARRATION_MARK, NEW_CHARACTER_PREFIX, OTHER
from dramasr.data.predictions import UNKNOWN
from dramasr.data.release import write_bytes_atomic
from dramasr.evaluate.report import MARKDOWN_CHARACTERS, Report

# Families that cover Chinese names, most common first.
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Noto Sans CJK JP",
    "Droid Sans Fallback", "AR PL UMing CN",
)
PLOT_CHARACTERS = 20
PLOT_CONFUSIONS = 15


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font family that can draw Chinese names, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


# Stand-ins for the release's special labels when no CJK font can draw them.
_ASCII_NAMES = {OTHER: "Other", UNKNOWN: "Unknown", NARRATION_MARK: "Narration"}


def _label(name: str, rank: int | None, fallback: str = "?") -> str:
    """The name itself when it can be drawn, else its rank (#k), else an ASCII stand-in."""
    if name.isascii() or cjk_font() is not None:
        return name
    if rank is not None:
        return f"#{rank}"
    if name in _ASCII_NAMES:
        return _ASCII_NAMES[name]
    if name.startswith(NEW_CHARACTER_PREFIX) and name[len(NEW_CHARACTER_PREFIX):].isascii():
        return "New-" + name[len(NEW_CHARACTER_PREFIX):]
    return fallback


@contextmanager
def _quiet_glyphs() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support", category=UserWarning)
        yield


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    with _quiet_glyphs():
        fig.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _font_kwargs() -> dict[str, object]:
    font = cjk_font()
    return {"fontfamily": [font, "DejaVu Sans"]} if font else {}


def plot_duration(report: Report, path: Path) -> Path:
    buckets = report.score.by_duration
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    labels = list(buckets)
    values = [0.0 if math.isnan(t.percent) else t.percent for t in buckets.values()]
    colors = ["#4c72b0"] * 4 + ["#dd8452"] * (len(labels) - 4)
    bars = ax.bar(labels, values, color=colors)
    for bar, tally in zip(bars, buckets.values(), strict=True):
        ax.annotate(f"{bar.get_height():.1f}\nn={tally.total}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.axhline(report.accuracy, color="gray", linestyle="--", linewidth=1, label=f"all {report.accuracy:.2f}%")
    ax.set_ylim(0, 120)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{_ascii(report.drama)}: accuracy by line duration ({report.rule})")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_episodes(report: Report, path: Path) -> Path:
    episodes = report.score.by_episode
    fig = _figure(max(6.0, 0.25 * len(episodes) + 2), 4)
    ax = fig.add_subplot()
    numbers = list(episodes)
    values = [0.0 if math.isnan(t.percent) else t.percent for t in episodes.values()]
    ax.bar([str(n) for n in numbers], values, color="#4c72b0")
    ax.axhline(report.accuracy, color="gray", linestyle="--", linewidth=1, label=f"all {report.accuracy:.2f}%")
    ax.set_ylim(0, 105)
    ax.set_xlabel("episode")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{_ascii(report.drama)}: accuracy by episode ({report.rule})")
    if len(numbers) > 30:
        ax.tick_params(axis="x", labelsize=6, labelrotation=90)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_characters(report: Report, path: Path) -> Path:
    """Left: accuracy of the characters with most lines. Right: the most frequent confusions."""
    characters = list(report.score.by_character.values())[:PLOT_CHARACTERS]
    # Only ranks that report.md lists can stand in for a name.
    ranked = list(report.score.by_character)[:MARKDOWN_CHARACTERS]
    rank_of = {name: k for k, name in enumerate(ranked, start=1)}
    confusions = report.score.confusions[:PLOT_CONFUSIONS]
    fig = _figure(12, max(4.0, 0.3 * max(len(characters), len(confusions)) + 1.5))
    left, right = fig.subplots(1, 2)
    font = _font_kwargs()

    labels = [_label(c.name, k) for k, c in enumerate(characters, start=1)]
    values = [0.0 if math.isnan(c.tally.percent) else c.tally.percent for c in characters]
    colors = ["#4c72b0" if c.named else "#8c8c8c" for c in characters]
    left.barh(range(len(characters)), values, color=colors)
    left.set_yticks(range(len(characters)), labels, **font)
    for y, c in enumerate(characters):
        left.annotate(f"n={c.tally.total}", (1, y), va="center", fontsize=7, color="white")
    left.invert_yaxis()
    left.set_xlim(0, 100)
    left.set_xlabel("accuracy (%)  [grey: not a named character]")
    left.set_title("characters with most lines")

    conf_labels = []
    for k, c in enumerate(confusions, start=1):
        truth = _label(c.truth, rank_of.get(c.truth), f"C{k}")
        predicted = _label(c.predicted, rank_of.get(c.predicted), f"C{k}")
        conf_labels.append(f"{truth} -> {predicted}")
    right.barh(range(len(confusions)), [c.count for c in confusions], color="#c44e52")
    right.set_yticks(range(len(confusions)), conf_labels, **font)
    right.invert_yaxis()
    right.set_xlabel("wrong lines")
    title = "top confusions (truth -> predicted)"
    if not cjk_font():
        title += "\n#k: character of rank k, Ck: see confusion k in report.md"
    right.set_title(title, fontsize=10)
    return _save(fig, path)


def _ascii(text: str) -> str:
    return text if text.isascii() or cjk_font() else text.encode("ascii", "replace").decode("ascii")


PLOTS = {
    "accuracy_by_duration.png": plot_duration,
    "accuracy_by_episode.png": plot_episodes,
    "characters.png": plot_characters,
}


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """All plots of the report, as PNG files in out_dir."""
    with _quiet_glyphs():
        return [plot(report, Path(out_dir) / name) for name, plot in PLOTS.items()]
