"""The C allocator setting CPU training and embedding use (utils/memory.py)."""

import ctypes
import platform
import sys

import pytest
import torch

from lamae.utils.memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator; elsewhere it does nothing")
def test_keep_freed_memory_sets_glibcs_thresholds_and_can_be_turned_off(monkeypatch):
    calls = []
    real = ctypes.CDLL

    class Libc:
        def __init__(self, name):
            self._lib = real(name)

        def mallopt(self, option, value):
            calls.append((option, value.value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    monkeypatch.setenv("LAMAE_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False and calls == []
    monkeypatch.delenv("LAMAE_KEEP_FREED_MEMORY")
    assert keep_freed_memory() is True
    assert calls == [(-3, 2**31 - 1), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator; elsewhere it does nothing")
def test_memory_freed_under_kept_thresholds_is_reused_with_its_contents_intact():
    assert keep_freed_memory() is True  # the real call, process-wide (training does the same)
    for _ in range(3):  # 80 MB blocks, above glibc's default mmap limit of 32 MB
        a = torch.full((20_000_000,), 2.0)
        assert float(a.sum()) == 40_000_000.0
        del a
