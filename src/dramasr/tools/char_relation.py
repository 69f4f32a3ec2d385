"""char_relation: how each candidate relates to the people speaking around the line.

From relation.json: whether the candidate has any listed relation to the previous/next
line's speaker, and whether the candidate is in the drama's character list at all. A
drama without relation.json gives zeros and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramasr.tools.base import Context, Tool
from dramasr.tools.dialogue_context import neighbour_class
from dramasr.tools.tables import DramaTables


@dataclass(frozen=True, eq=False)
class Relations:
    """relation.json read against the class list."""

    codes: set[int]  # a * C + b of related class pairs, both directions
    listed: np.ndarray  # float32 [C], 1 for the drama's listed characters
    kinds: dict[tuple[int, int], list[str]]  # (a, b) -> the relations listed for them


def build_relations(tables: DramaTables) -> Relations:
    """The drama's relations as class pairs; label-free (`DramaTables.relations`)."""
    n_classes, other = len(tables.classes), tables.other
    listed = np.zeros(n_classes, np.float32)
    kinds: dict[tuple[int, int], list[str]] = {}
    relation = tables.drama.relation or {}
    for name in relation.get("character_list") or []:
        k = tables.class_of.get(name)
        if k is not None and k != other:
            listed[k] = 1.0
    for a, b, kind in relation.get("relationship_list") or []:
        ka, kb = tables.class_of.get(a), tables.class_of.get(b)
        if ka is None or kb is None or other in (ka, kb):
            continue
        kinds.setdefault((ka, kb), []).append(kind)
    codes = {a * n_classes + b for a, b in kinds} | {b * n_classes + a for a, b in kinds}
    return Relations(codes, listed, kinds)


class CharRelation(Tool):
    name = "char_relation"
    description = (
        "Relations (relation.json) between each candidate and the speakers of the previous and next "
        "lines, and whether the candidate is one of the drama's listed characters."
    )
    cost = 0.5

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        codes, listed = ctx.tables.relations.codes, ctx.tables.relations.listed
        n_classes = len(ctx.classes)
        out = {}
        for key, step in (("rel_prev", -1), ("rel_next", 1)):
            neighbour = neighbour_class(ctx, pair_line, step)
            pair_codes = (pair_class.astype(np.int64) * n_classes + neighbour).tolist()
            out[key] = np.fromiter((c in codes for c in pair_codes), bool, len(pair_codes)).astype(np.float32)
        out["rel_listed"] = listed[pair_class]
        return out

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        if ctx.drama.relation is None:
            return "no relation.json for this drama"
        kinds = ctx.tables.relations.kinds
        prev = neighbour_class(ctx, np.asarray([line]), -1)[0]
        nxt = neighbour_class(ctx, np.asarray([line]), 1)[0]
        parts = []
        for name in values:
            k = ctx.class_of.get(name, ctx.other)
            for other in {prev, nxt} - {-1, k}:
                rel = kinds.get((k, other), []) or kinds.get((other, k), [])
                if rel:
                    parts.append(f"{name} - {ctx.classes[other]}: {'/'.join(rel)}")
        return "; ".join(parts) if parts else "no listed relation between the candidates and the neighbouring speakers"
