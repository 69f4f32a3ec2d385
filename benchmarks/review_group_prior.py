"""How often a new-character group that attribution leaves unnamed is in truth mostly one
named character's, on a TRAINING drama (never on the test dramas), so that --suggest offers
such groups to a person. The first build's `dramasr.review.suggest.GROUP_PRIOR` was this
share on zhen_huan_zhuan (0.47); the shipped one is pooled over both training dramas (0.19,
`benchmarks/review_group_model.py --lodo`).

    python benchmarks/review_group_prior.py                    # zhen_huan_zhuan, seeds 1pct

zhen_huan_zhuan is a training drama of the protocol that the shipped model was not fitted
on (it was fitted on ren_shi_jian, where its group stage would name more groups itself).
Measured: 50 of 106 unnamed groups mostly a named character's (0.472; 355 of their 821
lines), attribution 829 s on the shared machine under load.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    args = parser.parse_args()

    from dramasr.attribute import attribute
    from dramasr.data import load_drama
    from dramasr.data.model import DELETED_MARK, NEW_CHARACTER_PREFIX

    drama = load_drama(SHARED / "dramasr" / args.drama)
    named = drama.named_characters()
    t = time.perf_counter()
    result = attribute(drama, seeds="1pct")
    seconds = time.perf_counter() - t
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, speaker in enumerate(result.labels):
        if speaker.startswith(NEW_CHARACTER_PREFIX) and DELETED_MARK not in drama.lines.speaker[i]:
            groups[speaker].append(i)
    mostly_named = 0
    lines_named = 0
    for lines in groups.values():
        truth = collections.Counter(drama.lines.speaker[i] if drama.lines.speaker[i] in named else "" for i in lines)
        top, n = truth.most_common(1)[0]
        if top and 2 * n > len(lines):
            mostly_named += 1
            lines_named += n
    out = {"drama": args.drama, "groups": len(groups), "mostly_named": mostly_named,
           "share": round(mostly_named / max(len(groups), 1), 3),
           "group_lines": sum(len(v) for v in groups.values()), "named_lines_in_them": lines_named,
           "attribute_s": round(seconds, 1)}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
