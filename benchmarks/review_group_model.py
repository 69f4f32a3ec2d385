"""The chance that an unnamed new-character group is mostly one named character's, as
`dramasr review --suggest` reckons it (`dramasr.review.suggest.named_probability`): fitted on
a TRAINING drama, and evaluated (never fitted) on any drama.

    python benchmarks/review_group_model.py --fit                    # zhen_huan_zhuan: fit, 5-fold CV
    python benchmarks/review_group_model.py --drama chen_mo_de_zhen_xiang --pred /tmp/cm.jsonl

The drama is attributed (seeds init_seeds_1pct.json, the shipped model; or --pred, predictions
of the same code); each new-character group the predictions leave unnamed gets the group
stage's view (`group_guesses`: its best named candidate's probability, and the cosine of the
group's voice to the nearest named character's), and its truth: mostly (more than half of its
scored lines) one named character's, or not. --fit fits a logistic model of the stage's logit
and that cosine (standardised, sklearn's default L2) and prints its 5-fold cross-validated AUC
and log-loss against the flat prior, and the coefficients in raw units for suggest.py. Without
--fit: how the shipped constants rank and score the drama's groups.

zhen_huan_zhuan (a training drama of the protocol that the shipped model was not fitted on)
is the one to fit on; the test dramas are for evaluation only.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    parser.add_argument("--pred", type=Path, help="reuse (or write) the drama's predictions here")
    parser.add_argument("--fit", action="store_true", help="fit the model (training dramas only)")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from dramasr.data import load_drama
    from dramasr.data.model import DELETED_MARK, NEW_CHARACTER_PREFIX
    from dramasr.review.suggest import group_guesses

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
        shipped.append(guess.named)
    yv = np.asarray(y)
    p = np.clip(np.asarray(stage), 1e-4, 1 - 1e-4)
    X = np.stack([np.log(p / (1 - p)), np.asarray(voice)], axis=1)
    out: dict = {"drama": args.drama, "groups": len(yv), "mostly_named": int(yv.sum()),
                 "share": round(float(yv.mean()), 3), "seconds": round(seconds, 1)}
    both = 0 < yv.sum() < len(yv)
    if both:
        out["auc_shipped"] = round(float(roc_auc_score(yv, shipped)), 3)
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
