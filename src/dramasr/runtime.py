"""Process-wide settings for long jobs, applied once by the CLI when it starts (a library
user may call them too): they change how memory is managed, never a result."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def one_malloc_arena() -> bool:
    """Ask glibc to serve every thread from one heap. By default each thread that allocates
    (the voice model's cross-fitting threads, ONNX Runtime's) gets a heap of its own and keeps
    what it freed there, so a long job's memory grows by several hundred MB that it never
    uses again. True when applied (glibc only; elsewhere nothing changes)."""
    libc = _libc()
    try:
        return bool(libc.mallopt(M_ARENA_MAX, 1)) if libc is not None else False
    except AttributeError:
        return False


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim). A label state's
    tables and temporaries, once freed, leave holes in the heap that stay in the process's
    RSS (about 200 MB on zhen_huan_zhuan) until then. Called where a job has just freed a
    large state; elsewhere nothing happens."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
