"""Synthetic dramas in exactly the DramaSR release structure, for tests, the demo and benchmarks.

`synth_drama` builds a seeded, fully vectorised fake drama (lines, voice embeddings, face
detections, cast, relations, seeds); `drama_statistics` measures the statistics it is
calibrated against, on real and synthetic dramas alike (benchmarks/calibrate_synth.py).

Parts, one job each: `calibration` (the figures and word lists), `cast` (who exists),
`script` (who speaks when, and what), `signals` (voice embeddings, face detections),
`generate` (assembles a `Drama`, picks the seeds), `statistics` (the calibration targets).
"""

from dramasr.synth.calibration import QUANTILE_LEVELS, SCENE_BREAK_GAP_S
from dramasr.synth.generate import synth_drama
from dramasr.synth.statistics import drama_statistics

__all__ = ["QUANTILE_LEVELS", "SCENE_BREAK_GAP_S", "drama_statistics", "synth_drama"]
