"""Shared fixtures. Real-data tests reach the benchmark at ../shared and skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder beside the repository (benchmark data, reference figures)."""
    if not (SHARED / "dramasr").is_dir():
        pytest.skip(f"real benchmark data absent: no {SHARED / 'dramasr'}")
    return SHARED


@pytest.fixture(scope="module")
def small():
    """A small synthetic drama attributed by the CPU reasoner: (drama, context of its final
    labels, prediction records). The LLM agent's tests ask about its lines."""
    from dramasr.attribute import attribute, propagate_labels
    from dramasr.synth import synth_drama
    from dramasr.tools import Context

    drama = synth_drama(seed=3, episodes=2, lines_per_episode=60, name="small")
    state = propagate_labels(drama, "1pct")
    result = attribute(drama, labels=state)
    ctx = Context.build(drama, state.with_labels(result.labels))
    return drama, ctx, result.records
