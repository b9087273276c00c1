"""kill -9 in the middle of ``prepare`` and ``pretrain``, then resume: the result equals an
uninterrupted run, bitwise (CPU, fixed seeds)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.torch import load_file

from lamae.data.store import EcgStore


def _start(args):
    return subprocess.Popen([sys.executable, "-m", "lamae.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _kill_when(proc, ready, timeout=120.0):
    """SIGKILL ``proc`` as soon as ``ready()`` is true; fails if it finished first."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the process finished before it could be killed: {proc.stderr.read().decode()[-500:]}")
        try:
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
        except (OSError, ValueError, KeyError):  # a file caught mid-replace: look again
            pass
        time.sleep(0.005)
    proc.kill()
    pytest.fail("timed out waiting to kill")


def _run(args):
    r = subprocess.run([sys.executable, "-m", "lamae.cli", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_kill_9_during_prepare_then_resume(synth_dir, store, tmp_path):
    out = tmp_path / "store"
    args = ["prepare", str(synth_dir), "--out", str(out), "--window", "2", "--chunk-size", "1"]
    proc = _start(args)
    progress = out / "_progress.json"
    _kill_when(proc, lambda: json.loads(progress.read_text())["next_item"] >= 20)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "meta.json").exists()
    done = json.loads(progress.read_text())["next_item"]
    assert 20 <= done < 90
    _run(args)  # the same command resumes
    resumed = EcgStore(out)  # opens with every checksum verified
    np.testing.assert_array_equal(np.asarray(resumed.signals), np.asarray(store.signals))
    cols = [c for c in store.index.columns if c != "codes"]
    assert resumed.index[cols].equals(store.index[cols])
    assert list(map(list, resumed.index["codes"])) == list(map(list, store.index["codes"]))


def test_kill_9_during_pretrain_then_resume(store, tmp_path):
    common = ["pretrain", "--store", str(store.path), "--steps", "40", "--batch-size", "8", "--checkpoint-every", "5",
              "--set", "model.n_latents=2", "--set", "warmup_steps=3", "--set", "log_every=5",
              "--set", "keep_checkpoints=2"]
    straight = tmp_path / "straight"
    _run([*common, "--out", str(straight)])
    killed = tmp_path / "killed"
    proc = _start([*common, "--out", str(killed)])
    _kill_when(proc, lambda: json.loads((killed / "latest.json").read_text())["step"] >= 15)
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((killed / "latest.json").read_text())["step"] < 40
    _run([*common, "--out", str(killed), "--resume"])
    a = load_file(str(straight / "checkpoints" / "step-0000040" / "model.safetensors"))
    b = load_file(str(killed / "checkpoints" / "step-0000040" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    # the loss log has each step once
    steps = [int(line.split(",")[0]) for line in (killed / "loss.csv").read_text().splitlines()[1:]]
    assert steps == list(range(5, 41, 5))
