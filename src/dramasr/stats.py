"""Descriptive statistics of a drama: size, cast, open-set share, line durations, face coverage.

What a user wants to know about a drama before running anything on it; pure computation
over a loaded Drama.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.table import Table

from dramasr.data.model import Drama
from dramasr.score import ALL_DURATION_BUCKETS, duration_ms, scored_mask

TOP_CHARACTERS = 20


@dataclass(frozen=True)
class CharacterLines:
    name: str
    lines: int
    named: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lines": self.lines, "named": self.named}


@dataclass(frozen=True)
class DramaStats:
    """Counts and shares of one drama; shares are fractions of the scored (non-deleted) lines."""

    name: str
    episodes: int
    lines: int
    scored_lines: int
    deleted_lines: int
    characters: int  # distinct truth names on scored lines ("" = unlabelled is not a name)
    named_characters: int  # the release's named set (cast seen in face tracks + narration)
    named_speaking: int  # named characters that speak at least one scored line
    hours: float
    open_set_share: float  # scored lines whose truth is not a named character
    duration_mix: dict[str, float]  # share of scored lines per duration bucket
    face_coverage: float  # scored lines overlapped in time by a named face track
    top_characters: list[CharacterLines]  # most lines first
    seeds: dict[str, dict[str, int]]  # seed file key -> {"characters", "lines"}
    embedding_dim: int
    unlabelled_lines: int = 0  # lines without ground truth (a drama without truth has only these)
    lines_without_voice: int = 0  # lines whose voice embedding was unusable or missing
    mends: list[dict[str, Any]] = field(default_factory=list)  # the loader's repairs

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "episodes": self.episodes, "lines": self.lines, "scored_lines": self.scored_lines,
            "deleted_lines": self.deleted_lines, "characters": self.characters,
            "named_characters": self.named_characters, "named_speaking": self.named_speaking,
            "hours": round(self.hours, 3), "open_set_share": self.open_set_share,
            "duration_mix": dict(self.duration_mix), "face_coverage": self.face_coverage,
            "top_characters": [c.to_dict() for c in self.top_characters], "seeds": self.seeds,
            "embedding_dim": self.embedding_dim, "unlabelled_lines": self.unlabelled_lines,
            "lines_without_voice": self.lines_without_voice, "mends": self.mends,
        }


def drama_stats(drama: Drama, *, top: int = TOP_CHARACTERS) -> DramaStats:
    lines = drama.lines
    scored = scored_mask(lines.speaker)
    n_scored = int(scored.sum())
    named = drama.named_characters()
    counts = Counter(s for s, keep in zip(lines.speaker, scored, strict=True) if keep and s)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    truth_named = np.fromiter((s in named for s in lines.speaker), bool, len(lines))
    durations = duration_ms(lines.duration)
    mix = {b.label: _share(int((scored & b.contains(durations)).sum()), n_scored) for b in ALL_DURATION_BUCKETS}
    covered = face_covered_lines(drama)
    return DramaStats(
        name=drama.name,
        episodes=len(drama.episodes),
        lines=len(lines),
        scored_lines=n_scored,
        deleted_lines=int(lines.deleted.sum()),
        characters=len(counts),
        named_characters=len(named),
        named_speaking=sum(1 for name in counts if name in named),
        hours=drama.hours,
        open_set_share=_share(int((scored & ~truth_named).sum()), n_scored),
        duration_mix=mix,
        face_coverage=_share(int((scored & covered).sum()), n_scored),
        top_characters=[CharacterLines(name, count, name in named) for name, count in ranked[:top]],
        seeds=_seed_counts(drama),
        embedding_dim=int(lines.embedding.shape[1]) if lines.embedding.ndim == 2 else 0,
        unlabelled_lines=int((~lines.labelled).sum()),
        lines_without_voice=int((~lines.has_voice).sum()),
        mends=[m.to_dict() for m in drama.mends],
    )


def face_covered_lines(drama: Drama) -> np.ndarray:
    """Per line: does a face track of a named character overlap it in time (same episode)?

    Intervals are closed, so a track touching the line's start or end counts; this keeps
    zero-length lines coverable.
    """
    lines, faces = drama.lines, drama.faces
    covered = np.zeros(len(lines), dtype=bool)
    if not len(faces):
        return covered
    named = drama.named_characters()
    face_named = np.fromiter((n in named for n in faces.name), bool, len(faces))
    for ep in drama.episodes:
        rows = np.arange(ep.face_start, ep.face_stop)
        rows = rows[face_named[rows]] if len(rows) else rows
        if not len(rows) or ep.line_stop <= ep.line_start:
            continue
        order = np.argsort(faces.start_ms[rows], kind="stable")
        starts = faces.start_ms[rows][order]
        latest_end = np.maximum.accumulate(faces.end_ms[rows][order])
        line_start = lines.start_ms[ep.line_start:ep.line_stop]
        line_end = lines.end_ms[ep.line_start:ep.line_stop]
        # Tracks starting no later than the line's end; the one ending last decides.
        upto = np.searchsorted(starts, line_end, side="right")
        has = upto > 0
        hit = np.zeros(len(line_start), dtype=bool)
        hit[has] = latest_end[upto[has] - 1] >= line_start[has]
        covered[ep.line_start:ep.line_stop] = hit
    return covered


def _seed_counts(drama: Drama) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, seeds in sorted(drama.seed_files.items()):
        entries = (seeds.get("character_list") or []) if isinstance(seeds, dict) else []
        with_lines = [e for e in entries if isinstance(e, dict) and e.get("utterance_list")]
        out[key] = {
            "characters": len(with_lines),
            "lines": sum(len(e["utterance_list"]) for e in with_lines),
        }
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def stats_table(stats: DramaStats, *, top: int = 10) -> Table:
    """The statistics as a terminal table (the CLI prints it)."""
    table = Table(title=f"{stats.name}", show_header=False)
    table.add_column("figure")
    table.add_column("value")
    table.add_row("episodes", str(stats.episodes))
    table.add_row("hours", f"{stats.hours:.1f}")
    table.add_row("lines (scored / deleted / unlabelled)",
                  f"{stats.lines} ({stats.scored_lines} / {stats.deleted_lines} / {stats.unlabelled_lines})")
    if stats.scored_lines == 0:
        table.add_row("ground truth", "none: attribute and export work, evaluate needs truth")
    table.add_row("lines without voice", str(stats.lines_without_voice))
    for mend in stats.mends:
        table.add_row("mended", f"{mend['file']}: {mend['count']} x {mend['meaning']}")
    table.add_row("characters (truth names)", str(stats.characters))
    table.add_row("named characters (speaking)", f"{stats.named_characters} ({stats.named_speaking})")
    table.add_row("open-set share", f"{100 * stats.open_set_share:.1f}%")
    table.add_row("face coverage", f"{100 * stats.face_coverage:.1f}%")
    table.add_row("duration mix", "  ".join(f"{k} {100 * v:.0f}%" for k, v in stats.duration_mix.items()))
    table.add_row("seeds", ", ".join(f"{k}: {v['lines']} lines of {v['characters']} characters"
                                     for k, v in stats.seeds.items()) or "none")
    table.add_row("top characters", ", ".join(
        f"{c.name}{'' if c.named else '*'} {c.lines}" for c in stats.top_characters[:top]))
    table.caption = "* not a named character"
    return table
