"""Process settings the CLI applies at start."""

from __future__ import annotations

import platform
import sys

import pytest

from dramasr.runtime import one_malloc_arena


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the malloc arena limit is a glibc setting")
def test_one_malloc_arena_is_applied_on_glibc():
    assert one_malloc_arena() is True
