"""The chance that an unnamed new-character group is mostly one named character's, as
`dramasr review --suggest` reckons it (`dramasr.review.suggest.GROUP_PRIOR`): chosen on the
TRAINING dramas, evaluated (never fitted) on any drama.

    python benchmarks/review_group_model.py --lodo ren_shi_jian=P1 zhen_huan_zhuan=P2   # the choice
    python benchmarks/review_group_model.py --fit                    # zhen_huan_zhuan: fit, 5-fold CV
    python benchmarks/review_group_model.py --drama chen_mo_de_zhen_xiang --pred /tmp/cm.jsonl

The drama is attributed (seeds init_seeds_1pct.json, the shipped model; or --pred, predictions
of the same code); each new-character group the predictions leave unnamed gets the group
stage's view (`group_guesses`: its best named candidate's probability, and the cosine of the
group's voice to the nearest named character's), and its truth: mostly (more than half of its
scored lines) one named character's, or not.

--lodo (leave one drama out, the choice shipped): each candidate (the flat share, a logistic
model of the voice cosine, of the stage's logit, of both) fitted on one training drama and
scored on the other, both ways; then the share pooled over both. --fit: the first build's
logistic model on zhen_huan_zhuan alone, with its 5-fold CV (it ranked both test dramas' groups
worse than chance, and LODO shows why). Without either: how the stage's readings rank the
drama's groups, and the shipped flat share's log-loss.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
from _measure import cached_predictions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


TRAINING = ("ren_shi_jian", "zhen_huan_zhuan")


def group_table(drama, pred) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Per unnamed new-character group: truth (mostly one named character's), the stage's
    probability, the voice cosine to the nearest named voice, and its size."""
    from dramasr.data.model import DELETED_MARK, NEW_CHARACTER_PREFIX
    from dramasr.review.suggest import group_guesses

    named = drama.named_characters()
    truth = drama.lines.speaker
    guesses = group_guesses(drama, pred)
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, speaker in enumerate(pred.speaker):
        if speaker and speaker.startswith(NEW_CHARACTER_PREFIX) and DELETED_MARK not in truth[i]:
            groups[speaker].append(i)
    rows = []
    for name, lines in groups.items():
        guess = guesses.get(name)
        if guess is None:
            continue
        top = collections.Counter(truth[i] if truth[i] in named else "" for i in lines).most_common(1)[0]
        rows.append((bool(top[0]) and 2 * top[1] > len(lines), guess.probability, guess.best_voice, len(lines)))
    y, stage, voice, size = (np.asarray(c) for c in zip(*rows, strict=True))
    return y.astype(bool), stage.astype(float), voice.astype(float), size.astype(int)


def leave_one_drama_out(preds: dict[str, Path | None]) -> None:
    """Each candidate model fitted on one training drama and scored on the other; then the
    chosen one fitted on both (the constants for suggest.py)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    from dramasr.data import load_drama

    tables = {}
    for name in TRAINING:
        drama = load_drama(SHARED / "dramasr" / name)
        tables[name] = group_table(drama, cached_predictions(drama, preds.get(name)))
        y = tables[name][0]
        print(json.dumps({"drama": name, "groups": len(y), "mostly_named": int(y.sum()),
                          "share": round(float(y.mean()), 3)}), flush=True)

    def features(table, which: str) -> np.ndarray:  # noqa: ANN001
        _y, stage, voice, _size = table
        p = np.clip(stage, 1e-4, 1 - 1e-4)
        cols = {"stage": np.log(p / (1 - p)), "voice": voice}
        return np.stack([cols[c] for c in which.split("+")], axis=1)

    for which in ("flat", "voice", "stage", "stage+voice"):
        for train, test in ((TRAINING[0], TRAINING[1]), (TRAINING[1], TRAINING[0])):
            ytr, yte = tables[train][0], tables[test][0]
            if which == "flat":
                q = np.full(len(yte), ytr.mean())
            else:
                fit = LogisticRegression().fit(features(tables[train], which), ytr)
                q = fit.predict_proba(features(tables[test], which))[:, 1]
            auc = roc_auc_score(yte, q) if which != "flat" else 0.5
            print(json.dumps({"model": which, "fit_on": train, "scored_on": test, "auc": round(float(auc), 3),
                              "logloss": round(float(log_loss(yte, np.clip(q, 1e-4, 1 - 1e-4))), 3),
                              "mean_q": round(float(q.mean()), 3), "share": round(float(yte.mean()), 3)}),
                  flush=True)
    y = np.concatenate([tables[n][0] for n in TRAINING])
    X = np.concatenate([features(tables[n], "voice") for n in TRAINING])
    fit = LogisticRegression(C=1e6).fit(X, y)
    print(json.dumps({"pooled_share": round(float(y.mean()), 3), "groups": len(y),
                      "voice_only_intercept": round(float(fit.intercept_[0]), 4),
                      "voice_only_per_best_voice": round(float(fit.coef_[0][0]), 4)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    parser.add_argument("--pred", type=Path, help="reuse (or write) the drama's predictions here")
    parser.add_argument("--fit", action="store_true", help="fit the model (training dramas only)")
    parser.add_argument("--lodo", nargs="*", metavar="DRAMA=PRED", help="leave one training drama out: "
                        "fit on ren_shi_jian, score on zhen_huan_zhuan and back (predictions cached as given)")
    args = parser.parse_args()
    if args.lodo is not None:
        leave_one_drama_out({k: Path(v) for k, v in (a.split("=", 1) for a in args.lodo)})
        return

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from dramasr.data import load_drama
    from dramasr.data.model import DELETED_MARK, NEW_CHARACTER_PREFIX
    from dramasr.review.suggest import GROUP_PRIOR, group_guesses

    drama = load_drama(SHARED / "dramasr" / args.drama)
    named = drama.named_characters()
    truth = drama.lines.speaker
    t = time.perf_counter()
    pred = cached_predictions(drama, args.pred)
    guesses = group_guesses(drama, pred)
    seconds = time.perf_counter() - t
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, speaker in enumerate(pred.speaker):
        if speaker and speaker.startswith(NEW_CHARACTER_PREFIX) and DELETED_MARK not in truth[i]:
            groups[speaker].append(i)
    y, stage, voice, shipped = [], [], [], []
    for name, lines in groups.items():
        guess = guesses.get(name)
        if guess is None:
            continue
        top = collections.Counter(truth[i] if truth[i] in named else "" for i in lines).most_common(1)[0]
        y.append(bool(top[0]) and 2 * top[1] > len(lines))
        stage.append(guess.probability)
        voice.append(guess.best_voice)
        shipped.append(GROUP_PRIOR)
    yv = np.asarray(y)
    p = np.clip(np.asarray(stage), 1e-4, 1 - 1e-4)
    X = np.stack([np.log(p / (1 - p)), np.asarray(voice)], axis=1)
    out: dict = {"drama": args.drama, "groups": len(yv), "mostly_named": int(yv.sum()),
                 "share": round(float(yv.mean()), 3), "seconds": round(seconds, 1)}
    both = 0 < yv.sum() < len(yv)
    if both:
        out["auc_stage_probability"] = round(float(roc_auc_score(yv, p)), 3)
        out["auc_best_voice"] = round(float(roc_auc_score(yv, X[:, 1])), 3)
        out["logloss_shipped"] = round(float(log_loss(yv, shipped)), 3)
        out["mean_shipped"] = round(float(np.mean(shipped)), 3)
    if args.fit:
        mu, sd = X.mean(0), X.std(0)
        Z = (X - mu) / sd
        q = cross_val_predict(LogisticRegression(), Z, yv, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")[:, 1]
        fit = LogisticRegression().fit(Z, yv)
        coef = fit.coef_[0] / sd
        out.update({"cv_auc": round(float(roc_auc_score(yv, q)), 3), "cv_logloss": round(float(log_loss(yv, q)), 3),
                    "flat_prior_logloss": round(float(log_loss(yv, np.full(len(yv), yv.mean()))), 3),
                    "NAMED_INTERCEPT": round(float(fit.intercept_[0] - coef @ mu), 4),
                    "NAMED_PER_STAGE_LOGIT": round(float(coef[0]), 5),
                    "NAMED_PER_BEST_VOICE": round(float(coef[1]), 4)})
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
