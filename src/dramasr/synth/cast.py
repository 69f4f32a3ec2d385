"""Who exists in a synthetic drama: named roles (seen in faces), unseen roles, extras, their names and ties."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from dramasr.data.model import NARRATION_MARK, OTHER
from dramasr.errors import DramaError
from dramasr.synth.calibration import (
    EXTRA_TITLES,
    FAMILY_TYPES,
    GIVEN,
    LISTED_NAMED_SHARE,
    OTHER_LABEL_P,
    RELATION_TYPES,
    RELATIONS_PER_LISTED,
    SURNAMES,
    UNSEEN_CAST_RATIO,
    ZIPF_EXPONENT,
    ZIPF_SHIFT,
)


def fake_names(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    """Unique two- or three-character names from rare characters, with their pinyin dirnames."""
    combos = [(s, g) for s in range(len(SURNAMES)) for g in range(len(GIVEN))]
    combos += [(s, g, h) for s in range(len(SURNAMES)) for g in range(len(GIVEN)) for h in range(len(GIVEN))]
    first = rng.permutation(len(SURNAMES) * len(GIVEN))
    rest = len(SURNAMES) * len(GIVEN) + rng.permutation(len(combos) - len(SURNAMES) * len(GIVEN))[:count]
    # two-character names first, then three: most dramas fit in the 600 short ones
    order = np.concatenate([first[: count // 2], rest[: count - count // 2]])
    if count > len(order):
        raise DramaError(f"cannot make {count} distinct names", field="cast_size")
    names, dirnames = [], []
    for index in order:
        parts = [SURNAMES[combos[index][0]]] + [GIVEN[k] for k in combos[index][1:]]
        names.append("".join(p[0] for p in parts))
        dirnames.append("-".join(p[1] for p in parts))
    return names, dirnames


class Cast:
    """Who exists: named roles (seen in faces), unseen roles, extras; their voices and ties."""

    def __init__(self, rng: np.random.Generator, n_named: int) -> None:
        n_unseen = max(1, round(UNSEEN_CAST_RATIO * n_named))
        self.n_named, self.n_roles = n_named, n_named + n_unseen
        names, dirnames = fake_names(rng, 2 * self.n_roles)
        self.roles, self.dirnames = names[: self.n_roles], dirnames[: self.n_roles]
        self.actors = names[self.n_roles:]
        self.female = rng.random(self.n_roles) < 0.45
        rank = np.arange(1, n_named + 1)
        weight = (rank + ZIPF_SHIFT) ** -ZIPF_EXPONENT
        self.weight = weight / weight.sum()
        # unseen roles speak like minor characters, with a voice of their own
        self.variants = {k: f"阿{self.roles[k][-1]}" for k in range(self.n_roles) if rng.random() < 0.1}
        self.relations = self._relations(rng)
        # voice labels: roles, then narration, then extras appended as scenes create them
        self.voice_label: list[str] = list(self.roles) + [NARRATION_MARK]
        self.voice_female: list[bool] = list(self.female) + [bool(rng.random() < 0.5)]
        self.narrator = self.n_roles
        self.extra_counts: Counter[str] = Counter()

    def new_extra(self, rng: np.random.Generator) -> int:
        """A fresh extra (a role title with a number, or 其他): a new voice of its own."""
        if rng.random() < OTHER_LABEL_P:
            label = OTHER
        else:
            title = EXTRA_TITLES[int(rng.integers(len(EXTRA_TITLES)))]
            self.extra_counts[title] += 1
            label = f"{title}-{self.extra_counts[title]}"
        self.voice_label.append(label)
        self.voice_female.append(bool(rng.random() < 0.4))
        return len(self.voice_label) - 1

    def _relations(self, rng: np.random.Generator) -> list[tuple[int, int, str]]:
        listed = [k for k in range(self.n_named) if k < 3 or rng.random() < LISTED_NAMED_SHARE]
        listed += [k for k in range(self.n_named, self.n_roles) if rng.random() < 0.3]
        self.listed = listed
        n_pairs = max(1, round(RELATIONS_PER_LISTED * len(listed) / 2 / 1.15))
        weight = np.array([self.weight[k] if k < self.n_named else self.weight[-1] for k in listed]) ** 0.5
        weight /= weight.sum()
        seen: set[tuple[int, int]] = set()
        relations: list[tuple[int, int, str]] = []
        for _ in range(4 * n_pairs):
            if len(seen) >= n_pairs:
                break
            a, b = (listed[i] for i in rng.choice(len(listed), 2, replace=False, p=weight))
            if (min(a, b), max(a, b)) in seen:
                continue
            seen.add((min(a, b), max(a, b)))
            for forward, backward in self._relation_types(rng, a, b):
                relations.append((a, b, forward))
                relations.append((b, a, backward))
        return relations

    def _relation_types(self, rng: np.random.Generator, a: int, b: int) -> list[tuple[str, str]]:
        kinds = list(RELATION_TYPES) + FAMILY_TYPES
        kind = kinds[int(rng.integers(len(kinds)))]
        fa, fb = bool(self.female[a]), bool(self.female[b])
        if kind == "父母":
            return [("母亲" if fa else "父亲", "女儿" if fb else "儿子")]
        if kind == "夫妻":
            return [("妻子", "丈夫")] if fa and not fb else [("丈夫", "妻子")] if fb and not fa else [("恋人", "恋人")]
        if kind == "兄妹":
            return [("姐姐" if fa else "哥哥", "妹妹" if fb else "弟弟")]
        pair = [(kind, RELATION_TYPES[kind])]
        if rng.random() < 0.15:  # some pairs carry two relations, e.g. colleague and friend
            pair.append(("挚友", "挚友") if kind != "挚友" else ("同事", "同事"))
        return pair

    def partners(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a, b, _ in self.relations:
            if a < self.n_named and b < self.n_named and b not in out.setdefault(a, []):
                out[a].append(b)
        return out

    def face_info(self) -> dict[str, Any]:
        variants = {role: role + (f"&{self.variants[k]}" if k in self.variants else "")
                    for k, role in enumerate(self.roles)}
        role_name = {}
        for k, role in enumerate(self.roles):
            role_name[role] = role
            if k in self.variants:
                role_name[self.variants[k]] = role
        return {
            "actor_name": {actor: actor for actor in self.actors},
            "role_name": role_name,
            "actor_to_role": dict(zip(self.actors, self.roles, strict=True)),
            "role_dirname": {role: self.dirnames[k] for k, role in enumerate(self.roles) if k < self.n_named},
            "role_name_variants": variants,
        }

    def relation_json(self) -> dict[str, Any]:
        types = Counter(kind for _, _, kind in self.relations)
        return {
            "character_list": [self.roles[k] for k in self.listed],
            "character_name_mapping": {OTHER: None, NARRATION_MARK: None},
            "relationship_list": [[self.roles[a], self.roles[b], kind] for a, b, kind in self.relations],
            "relationship_type_dict": dict(sorted(types.items(), key=lambda item: (-item[1], item[0]))),
        }
