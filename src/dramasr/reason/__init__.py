"""Reasoning over the tools' evidence: the trained attribution model (`model`), its pair
features (`features`) and the cost-aware loop with refinement passes (`policy`)."""

from dramasr.reason.model import AttributionModel, load_default_model
from dramasr.reason.policy import Decisions, run_policy

__all__ = ["AttributionModel", "Decisions", "load_default_model", "run_policy"]
