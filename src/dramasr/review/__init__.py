"""Review and correct: the corrections file, what to check first, corrections as seeds, and
the review page (`dramasr review`)."""

from dramasr.review.corrections import Correction, CorrectionSet, CorrectionsFile, read_corrections

__all__ = ["Correction", "CorrectionSet", "CorrectionsFile", "read_corrections"]
