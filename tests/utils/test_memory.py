"""The C allocator setting CPU training and embedding use (utils/memory.py)."""

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from lamae.utils import memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator; elsewhere it does nothing")
def test_keep_freed_memory_sets_glibcs_thresholds_once_on_cpu_only_and_can_be_turned_off(monkeypatch):
    calls = []

    class Libc:
        def __init__(self, name):
            assert name == "libc.so.6"

        def mallopt(self, option, value):
            calls.append((option, value.value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    monkeypatch.setattr(memory, "_applied", False)
    monkeypatch.setenv("LAMAE_KEEP_FREED_MEMORY", "0")
    assert memory.keep_freed_memory("cpu") is False and calls == []
    monkeypatch.delenv("LAMAE_KEEP_FREED_MEMORY")
    assert memory.keep_freed_memory("cuda") is False and calls == []
    assert memory.keep_freed_memory("cpu") is True
    assert calls == [(-3, 2**31 - 1), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert memory.keep_freed_memory("cpu") is True and len(calls) == 2  # applied once per process


# Six forward/backward passes of the tiny model at 250 Hz, batch 64 (activations of up to
# 80 MB, above glibc's 32 MB mmap limit); prints the page faults of the third to the sixth.
_FAULTS = """
import resource, torch
from lamae.models.family import model_config
from lamae.models.lamae import Lamae
from lamae.utils.memory import keep_freed_memory
print(keep_freed_memory("cpu"))
torch.manual_seed(0)
model = Lamae(model_config("LAMAE", "tiny", {"fs": 250.0}))
x, leads = torch.randn(64, 12, 2500), torch.arange(12)
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model(x, leads)["loss"].backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults[2:])
"""


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator; elsewhere it does nothing")
def test_a_training_step_stops_refaulting_its_activations_unless_turned_off():
    def later_steps(setting):
        env = {**os.environ, "LAMAE_KEEP_FREED_MEMORY": setting, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
        applied, *faults = out.stdout.split()
        return applied, [int(f) for f in faults]

    applied, kept = later_steps("1")
    off, default = later_steps("0")
    assert (applied, off) == ("True", "False") and len(kept) == len(default) == 4
    # Without the setting every step maps and zeroes its activations afresh: 52k to 123k pages
    # of 4 KB per step seen at steps 3-6 (glibc moves its mmap threshold as blocks are freed, so
    # the count varies from run to run and machine to machine); the floor asks for 25k pages
    # (100 MB) at every step. With it, the heap still grows now and then while its free blocks
    # settle (up to 24k pages at one step seen), but most steps reuse it whole (0 or 1 faults at
    # one or more of the four steps in every run seen), so the quietest step is compared.
    # The figures: LAMAE_KEEP_FREED_MEMORY=1 (or 0) OMP_NUM_THREADS=1 python -c
    # "from tests.utils.test_memory import _FAULTS; exec(_FAULTS)"
    assert min(default) > 25_000, f"page faults at steps 3-6 without the setting: {default}"
    assert min(kept) < min(default) / 10, f"page faults at steps 3-6: {kept} with the setting, {default} without"
