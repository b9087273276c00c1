"""Two gloo processes started by torchrun take the same steps as one process with the combined batch."""

import os
import subprocess
import sys

import torch

from lamae.checkpoint import load_checkpoint
from lamae.train.pretrain import PretrainConfig, pretrain

# Summation order differs (gradients averaged over two half-batches): a few float32 ulps per
# step, compounded by Adam over the steps below.
TOLERANCE = 1e-4


def test_two_gloo_processes_match_one_process(store, tmp_path):
    args = ["--store", str(store.path), "--size", "tiny", "--steps", "6", "--batch-size", "16",
            "--base-lr", "0.05", "--device", "cpu", "--set", "warmup_steps=2", "--set", "model.n_latents=4",
            "--checkpoint-every", "3"]
    pretrain(PretrainConfig(store=str(store.path), out=str(tmp_path / "one"), size="tiny", steps=6, batch_size=16,
                            base_lr=0.05, device="cpu", warmup_steps=2, model={"n_latents": 4},
                            checkpoint_every=3), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    subprocess.run(torchrun + ["-m", "lamae.cli", "pretrain", "--out", str(tmp_path / "two"), *args],
                   check=True, env=env, capture_output=True, timeout=300)
    one, _ = load_checkpoint(tmp_path / "one")
    two, _ = load_checkpoint(tmp_path / "two")
    worst = max((a - b).abs().max().item() for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    print(f"max |one - two| = {worst:.2e}")
    assert worst < TOLERANCE, worst
    assert any(not torch.equal(a, b) for a, b in zip(one.state_dict().values(),
                                                     load_checkpoint(tmp_path / "two" / "checkpoints" /
                                                                     "step-0000003")[0].state_dict().values()))
    # rank 0 alone wrote the log, with the mean loss over both processes
    lines = (tmp_path / "two" / "loss.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss") and len(lines) == 1 + 1  # log_every=10 > 6 steps: final row only
