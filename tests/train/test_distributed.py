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
    run = subprocess.run(torchrun + ["-m", "lamae.cli", "pretrain", "--out", str(tmp_path / "two"), *args],
                         check=True, env=env, capture_output=True, text=True, timeout=300)
    assert run.stdout.count("pretrained ") == 1, run.stdout  # one process reports, not each
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


def test_more_processes_than_gpus_share_them_through_gloo(monkeypatch):
    """NCCL refuses two processes on one GPU (and cuda:1 does not exist on a one-GPU machine):
    torchrun --nproc_per_node 2 there shares the GPU and reduces through gloo, with a warning;
    one process per GPU keeps NCCL. (The GPU run itself is in the README's GPU figures.)"""
    import warnings

    import torch.distributed as dist

    from lamae.train import common

    started = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: started.append(backend))

    class Cfg:
        batch_size = 8

    for rank, per_node, gpus, backend, index in ((0, 2, 1, "gloo", 0), (1, 2, 1, "gloo", 0), (1, 2, 2, "nccl", 1)):
        monkeypatch.setattr(torch.cuda, "device_count", lambda gpus=gpus: gpus)
        for name, value in (("WORLD_SIZE", 2), ("RANK", rank), ("LOCAL_RANK", rank), ("LOCAL_WORLD_SIZE", per_node)):
            monkeypatch.setenv(name, str(value))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = common.distributed_context(Cfg, torch.device("cuda"))
        assert got == (rank, 2, torch.device("cuda", index))
        assert started[-1] == backend
        warned = [w for w in caught if "share" in str(w.message)]
        assert len(warned) == (1 if backend == "gloo" and rank == 0 else 0)
