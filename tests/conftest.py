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
