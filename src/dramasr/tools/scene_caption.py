"""scene_caption: the video caption of the moment a line is spoken, when caption.json exists.

The public release has no captions, so this tool mostly reports their absence; when
captions exist (a list of {start_time, end_time, text} per episode, or {episode: [...]}),
it says whether each candidate's name appears in the caption covering the line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dramasr.data.model import Drama
from dramasr.tools.base import Context, Tool
from dramasr.tools.name_mentions import aliases_of


def caption_texts(drama: Drama) -> list[str]:
    """Caption text per line ('' where none covers it); label-free (`DramaTables.captions`)."""
    n = len(drama.lines)
    texts = [""] * n
    raw: Any = drama.captions
    if raw:
        entries: list[tuple[int | None, float, float, str]] = []
        items = raw.items() if isinstance(raw, dict) else [(None, raw)]
        for key, value in items:
            try:
                episode = int(key) if key is not None else None
            except (TypeError, ValueError):
                episode = None
            for entry in value if isinstance(value, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("text"), str):
                    start = float(entry.get("start", entry.get("start_s", 0.0)) or 0.0)
                    end = float(entry.get("end", entry.get("end_s", start)) or start)
                    entries.append((episode, start, end, entry["text"]))
        lines = drama.lines
        for episode, start, end, text in entries:
            hit = (lines.end >= start) & (lines.start <= end)
            if episode is not None:
                hit &= lines.episode == episode
            for i in np.flatnonzero(hit):
                texts[i] = (texts[i] + " " + text).strip()
    return texts


class SceneCaption(Tool):
    name = "scene_caption"
    description = "The scene caption covering the line (when caption.json exists) and which candidates it names."
    cost = 1.0
    depends_on_labels = False

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        texts = ctx.tables.captions
        named = np.zeros(len(pair_line), np.float32)
        if any(texts):
            alias = {k: aliases_of(name) for k, name in enumerate(ctx.classes[:-1])}
            for j, (i, k) in enumerate(zip(pair_line.tolist(), pair_class.tolist(), strict=True)):
                if texts[i] and k in alias and any(a in texts[i] for a in alias[k]):
                    named[j] = 1.0
        return {"caption_names": named}

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        text = ctx.tables.captions[line]
        return f"caption: {text}" if text else "no scene caption for this line"
