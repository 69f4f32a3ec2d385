"""The figures a synthetic drama is calibrated on, the word lists it draws names from, and draws from them.

Calibrated on the shared real dramas (chen_mo_de_zhen_xiang, kuang_biao, ren_shi_jian) with
benchmarks/calibrate_synth.py; each quantile table is the per-drama average, so the largest
drama does not dominate. Re-run that script after changing anything here.
"""

from __future__ import annotations

import numpy as np

QUANTILE_LEVELS = np.array([0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 100]) / 100
DURATION_S = np.array([0.13, 0.5, 0.56, 0.64, 0.75, 0.89, 1.03, 1.18, 1.32, 1.46, 1.65, 1.88, 2.2, 2.51, 2.88,
                       3.13, 7.83])
# gaps after a line: same speaker next, another speaker next (both within a scene, < 6 s), scene break
GAP_SAME_S = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.12, 0.15, 0.36, 0.52, 0.73, 1.04, 1.72, 2.56, 3.83,
                       4.65, 5.96])
GAP_TURN_S = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.15, 0.33, 0.57, 0.87, 1.33, 1.95, 3.17, 4.19, 5.16,
                       5.55, 5.96])
GAP_BREAK_S = np.array([6.0, 6.05, 6.09, 6.29, 6.59, 7.37, 8.26, 9.47, 10.85, 13.03, 16.0, 20.73, 30.71, 42.27,
                        68.11, 82.68, 197.03])
SCENE_BREAK_GAP_S = 6.0
SCORE_KNOWN = np.array([0.453, 0.455, 0.458, 0.467, 0.49, 0.558, 0.62, 0.667, 0.705, 0.736, 0.763, 0.792, 0.828,
                        0.858, 0.903, 0.934, 0.996])
SCORE_UNKNOWN = np.array([0.453, 0.453, 0.454, 0.457, 0.462, 0.474, 0.491, 0.518, 0.552, 0.595, 0.652, 0.726,
                          0.818, 0.879, 0.925, 0.947, 0.99])
UNKNOWN_SCORE_ONE_SHARE = 0.12  # unknown-face clusters often carry score 1.0 exactly
EMBEDDING_NORM = np.array([182.06, 344.61, 396.77, 485.94, 565.54, 654.21, 711.21, 756.31, 796.5, 834.1, 871.95,
                           916.35, 974.51, 1022.12, 1077.34, 1113.85, 1371.22])
EMBEDDING_DIM = 192
NAMED_PER_SQRT_LINES = 0.40  # speaking named characters ~ 0.40 * sqrt(lines): 37, 73, 90 in the release
UNSEEN_CAST_RATIO = 0.3  # face_info roles that never appear in face tracks (so are not "named")
ZIPF_SHIFT, ZIPF_EXPONENT = 11.0, 2.9  # Zipf-Mandelbrot line shares (rank + q) ** -s, fitted to the release
OPEN_SHARE = 0.10  # lines by extras / unnamed roles: 0.135, 0.105, 0.075
NARRATION_SHARE = 0.0016  # 0, 0.0020, 0.0026
DELETED_SHARE = 0.0008
SCENE_MEAN_LINES = 17.0  # P(gap >= 6 s) = 0.079, 0.049, 0.045
TURN_CONTINUE = 0.68  # P(next line has the same speaker): 0.65, 0.67, 0.66
SCENE_SIZE_P = {1: 0.06, 2: 0.44, 3: 0.32, 4: 0.18}  # named participants of a scene
RELATED_PARTNER_P = 0.6  # a scene partner is chosen among the lead's relations
RETURN_BOOST = 2.5  # the speaker of the turn before is this much likelier to speak next (A-B-A)
EXTRA_SCENE_P = 0.8  # scenes joined by an extra (open-set speaker)
EXTRA_TURN_FACTOR = 0.75  # extras take more turns than their weight says (turns alternate)
OTHER_LABEL_P = 0.04  # extras labelled 其他 instead of a role title
CHARS_PER_S = 4.7  # median text length per second: 4.0, 4.9, 5.2
# voice: x = a * common + b * (gender, own) + scene channel + drift(scene, voice) + noise(d),
# |noise|^2 = NOISE_BASE + NOISE_SHORT / d; mean cosines per duration bin as in the release
VOICE_COMMON, VOICE_GENDER = 0.64, 0.34  # gender weight keeps the between-character cos once drift is added
NOISE_BASE, NOISE_SHORT = 0.23, 1.38
# Separability (benchmarks/calibrate_synth.py --separability). Own voices and all variation
# share one basis with exp-decaying variance: the release's within-character residuals decay
# as exp(-k / 45) (participation ratio 90-98 of 192 dims) and its character centroids span
# ~15 effective dims (participation ratio 12-20), so near-neighbour voices (nearest centroid
# cosine 0.71) and noise pointing at other characters (23-26% of residual variance in the top
# 20 centroid directions, 10% if isotropic).
VOICE_DECAY_DIMS, NOISE_DECAY_DIMS = 8.0, 45.0
# Lines of a character in one scene agree more (cos 0.50) than across scenes (0.39-0.41, the
# same within an episode as across episodes): a per-(scene, voice) drift, plus a small room
# channel shared by a scene's voices (between-character cos +0.03 in the same scene). Drift is
# set below the release's (+0.07 instead of +0.11) because one seed per character, as in a
# 900-line drama, cannot reach across stronger drift: the demo would then measure the seeds,
# not the method.
SCENE_CHANNEL, SCENE_DRIFT = 0.04, 0.15
# heavy tail: noise, music, overlapping speech; more often on long lines (release: LP and
# nearest-centroid accuracy of >= 3 s lines are below those of 2-3 s lines)
NOISE_TAIL_P, NOISE_TAIL_SCALE, NOISE_TAIL_LONG = 0.03, 1.8, 4.0
# faces: probability the speaker's face is on screen by duration bin (<1, 1-2, 2-3, >=3 s)
SPEAKER_VISIBLE_P = np.array([0.65, 0.73, 0.78, 0.80])
DURATION_BINS_S = np.array([1.0, 2.0, 3.0])
SPEAKER_DETECTIONS_PER_S = 0.12  # beyond the first detection
LISTENER_VISIBLE_P = 0.4
LISTENER_DETECTIONS_PER_S = 0.15
EXTRA_FACE_P = 0.22  # an extra's visible face gets an unknown-face id
BACKGROUND_UNKNOWN_P = 0.05
GAP_DETECTIONS_PER_S = 1.3
GAP_DETECTION_WINDOW_S = 20.0
MISRECOGNISED_P = 0.03
# text: names mentioned per line (0.093, 0.060, 0.033) and who they point at
MENTION_SHARE = 0.06
MENTION_KIND_P = {"next": 0.09, "previous": 0.04, "self": 0.02, "third": 0.85}
THIRD_AT_START_P = 0.4
RELATIONS_PER_LISTED = 4.2  # 3.8, 5.0, 3.8
LISTED_NAMED_SHARE = 0.65  # named characters in relation.json's character_list: 0.74, 0.80, 0.64

FPS_MS = 40  # 25 frames per second; times sit on frame boundaries
FRAME_SIZE = (1920, 1080)
LINE_KEYS = ("episode_idx", "object_idx", "start_time", "end_time", "start_frame", "end_frame", "geometry",
             "text", "character")

# Nonsense syllables: the text of a synthetic drama must never pass for real dialogue.
SYLLABLES = "啦嗒咪呐哩噜嘟咕叭喔嘻哈咚叮铛呱"
SURNAMES = [("柏", "bai"), ("苍", "cang"), ("岑", "cen"), ("茆", "mao"), ("蔺", "lin"), ("阙", "que"), ("濮", "pu"),
            ("庹", "tuo"), ("逯", "lu"), ("郗", "xi"), ("甄", "zhen"), ("訾", "zi"), ("糜", "mi"), ("笪", "da"),
            ("凤", "feng"), ("厍", "she"), ("眭", "sui"), ("麴", "qu"), ("仉", "zhang"), ("巫", "wu")]
GIVEN = [("澜", "lan"), ("砚", "yan"), ("棠", "tang"), ("朔", "shuo"), ("蘅", "heng"), ("琰", "yan"), ("珩", "heng"),
         ("祁", "qi"), ("漪", "yi"), ("湛", "zhan"), ("昀", "yun"), ("翊", "yi"), ("筠", "yun"), ("骁", "xiao"),
         ("岚", "lan"), ("樾", "yue"), ("苒", "ran"), ("暄", "xuan"), ("橙", "cheng"), ("沅", "yuan"),
         ("芷", "zhi"), ("恪", "ke"), ("璟", "jing"), ("弈", "yi"), ("钺", "yue"), ("蓁", "zhen"), ("纾", "shu"),
         ("峤", "qiao"), ("泠", "ling"), ("晞", "xi")]
EXTRA_TITLES = ["警员", "服务员", "司机", "医生", "护士", "记者", "路人", "保安", "店员", "秘书", "工人", "邻居"]
RELATION_TYPES = {  # type of a toward b -> type of b toward a ("" = depends on b's gender)
    "挚友": "挚友", "敌人": "敌人", "同事": "同事", "同伙": "同伙", "恋人": "恋人",
    "上级": "下属", "下属": "上级", "师父": "徒弟", "徒弟": "师父", "老师": "学生", "学生": "老师",
}
FAMILY_TYPES = ["父母", "夫妻", "兄妹"]


def inverse_cdf(rng: np.random.Generator, table: np.ndarray, size: int | tuple[int, ...]) -> np.ndarray:
    """Draw from the distribution whose quantiles at QUANTILE_LEVELS are `table`."""
    return np.interp(rng.random(size), QUANTILE_LEVELS, table)


def to_unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def geometric(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    return rng.geometric(1.0 / mean, size)
