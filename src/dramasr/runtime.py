"""Process-wide settings for long jobs, applied once by the CLI when it starts (a library
user may call them too): they change how memory is managed, never a result."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def one_malloc_arena() -> bool:
    """Ask glibc to serve every thread from one heap. By default each thread that allocates
    (the voice model's cross-fitting threads, ONNX Runtime's) gets a heap of its own and keeps
    what it freed there, so a long job's memory grows by several hundred MB that it never
    uses again. True when applied (glibc only; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


def cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
