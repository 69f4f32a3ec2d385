"""name_mentions: cast names, short names and address terms said in a line and its neighbours.

A name said in a line is usually not its speaker (one does not call oneself) and often the
next line's speaker (the one addressed answers). Aliases come from the cast names: the
full name, the given name of a three-character name, 老/小 + surname, a title ending
(局长, 老师, ...) alone, and the variants listed in face_info.json. Chinese has no spaces,
so matching is by substring, longest alias first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dramasr.data.model import NARRATION_MARK
from dramasr.tools.base import Context, Tool
from dramasr.tools.tables import DramaTables

_AGE_PREFIXES = ("少年", "青年", "中年", "老年", "小时候", "童年", "幼年")
_TITLES = (
    "检察长", "副局长", "局长", "所长", "队长", "厂长", "省长", "市长", "区长", "县长", "书记", "主任", "主编",
    "部长", "老师", "教授", "校长", "经理", "总", "秘书", "科长", "处长", "院长", "警官", "律师", "医生", "大夫",
    "师傅", "大爷",
    "大妈", "阿姨", "叔", "婶", "哥", "姐",
)


def aliases_of(name: str, variants: str | list[str] | None = None) -> set[str]:
    """Ways a character may be named in dialogue; one-character aliases are left out.

    `variants`: face_info.json's variants of the name ("a&b" or a list)."""
    base = re.sub(r"[（(].*?[)）]", "", name).strip()
    for prefix in _AGE_PREFIXES:
        if base.startswith(prefix) and len(base) > len(prefix) + 1:
            base = base[len(prefix):]
    found = {base}
    listed = variants if isinstance(variants, list) else (variants or "").split("&")
    for variant in listed:
        if not isinstance(variant, str):
            continue
        variant = re.sub(r"[（(].*?[)）]", "", variant).strip()
        if variant:
            found.add(variant)
    if len(base) == 3 and not any(base.endswith(t) for t in _TITLES):
        found.add(base[1:])  # given name
        found.update({"老" + base[0], "小" + base[0]})
    for title in _TITLES:
        if base.endswith(title) and len(base) > len(title):
            if len(title) >= 2:
                found.add(title)
    return {a for a in found if len(a) >= 2 and NARRATION_MARK not in a}


@dataclass(frozen=True, eq=False)
class Mentions:
    """Names said in the drama's lines: (line, class) pairs sorted by line, and lookups."""

    line: np.ndarray  # int64 [M]
    cls: np.ndarray  # int32 [M]
    keys: set[int]  # line * C + class of every pair
    per_line: np.ndarray  # float32 [N], classes named in each line
    alias_classes: dict[str, set[int]]  # alias -> the classes it may name


def build_mentions(tables: DramaTables) -> Mentions:
    """Every cast alias said in every line; label-free (`DramaTables.mentions`)."""
    variants = tables.drama.face_info.get("role_name_variants") or {}
    alias_classes: dict[str, set[int]] = {}
    for k, name in enumerate(tables.classes[:-1]):
        for alias in aliases_of(name, variants.get(name) if isinstance(variants, dict) else None):
            alias_classes.setdefault(alias, set()).add(k)
    lines, classes = [], []
    if alias_classes:
        pattern = re.compile("|".join(re.escape(a) for a in sorted(alias_classes, key=len, reverse=True)))
        for i, text in enumerate(tables.drama.lines.text):
            said: set[int] = set()
            for match in pattern.finditer(text):
                said.update(alias_classes[match.group(0)])
            for k in said:
                lines.append(i)
                classes.append(k)
    m_line, m_class = np.asarray(lines, np.int64), np.asarray(classes, np.int32)
    keys = set((m_line * len(tables.classes) + m_class).tolist())
    per_line = np.bincount(m_line, minlength=len(tables.drama.lines)).astype(np.float32)
    return Mentions(m_line, m_class, keys, per_line, alias_classes)


class NameMentions(Tool):
    name = "name_mentions"
    description = (
        "Cast names, short names and titles said in the line and in the lines just before and after it: "
        "a name said in a line is rarely its speaker and often the next line's speaker."
    )
    cost = 1.0
    depends_on_labels = False

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        keys, per_line = ctx.tables.mentions.keys, ctx.tables.mentions.per_line
        lo, hi = ctx.tables.episode_bounds
        n_classes = len(ctx.classes)

        def said_in(step: int) -> np.ndarray:
            other = pair_line + step
            inside = (other >= lo[pair_line]) & (other < hi[pair_line])
            codes = (other * n_classes + pair_class).tolist()
            return np.fromiter((c in keys for c in codes), bool, len(codes)) & inside

        return {
            "name_in_line": said_in(0).astype(np.float32),
            "name_in_prev": said_in(-1).astype(np.float32),
            "name_in_next": said_in(1).astype(np.float32),
            "name_in_prev2": said_in(-2).astype(np.float32),
            "names_in_line": per_line[pair_line],
        }

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        parts = []
        for name, v in values.items():
            where = [w for w, key in (("this line", "name_in_line"), ("previous line", "name_in_prev"),
                                      ("next line", "name_in_next")) if v[key] > 0]
            if where:
                parts.append(f"{name} is named in the " + " and ".join(where))
        return "; ".join(parts) if parts else "no candidate is named nearby"
