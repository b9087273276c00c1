"""How the process's C allocator treats memory torch frees (see ``keep_freed_memory``)."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

_GLIBC_M_TRIM_THRESHOLD, _GLIBC_M_MMAP_THRESHOLD = -1, -3
_applied = False


def keep_freed_memory(device: str | torch.device = "cpu") -> bool:
    """Let the C allocator keep the memory torch frees for the next step (work on the CPU).

    glibc hands every block above 32 MB back to the operating system when it is freed, so each
    training step maps its large activations afresh and the kernel zeroes every page on first
    touch: a tiny-size step at 500 Hz takes 3.5 s instead of 2.1 s (``benchmarks/throughput.py``
    with and without ``--fresh-memory``; ``benchmarks/kernels.py`` shows it on one matmul).
    Raising glibc's mmap and trim thresholds (what ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` set) keeps freed blocks in the heap for reuse; the process keeps
    its peak memory instead of returning it between steps. Training and embedding call this with
    their device; nothing happens for a GPU, off Linux/glibc, or with
    ``LAMAE_KEEP_FREED_MEMORY=0``. Process-wide and applied once. Returns whether it is in effect.
    """
    global _applied
    if _applied:
        return True
    if (torch.device(device).type != "cpu" or os.environ.get("LAMAE_KEEP_FREED_MEMORY", "1") == "0"
            or not sys.platform.startswith("linux")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        limit = ctypes.c_int(2**31 - 1)
        _applied = bool(libc.mallopt(_GLIBC_M_MMAP_THRESHOLD, limit)) and bool(
            libc.mallopt(_GLIBC_M_TRIM_THRESHOLD, limit))
    except (OSError, AttributeError):  # not glibc (musl, another allocator): nothing to tune
        return False
    return _applied
