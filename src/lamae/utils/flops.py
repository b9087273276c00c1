"""Measured FLOPs of a training step, with torch's FlopCounterMode.

torch's counter has no formula for the CPU flash-attention kernels that
``scaled_dot_product_attention`` dispatches to, so attention would count as free on CPU;
they are mapped here onto torch's own SDPA formulas. Nor has it one for FFTs, so the
state-space members' long convolutions (S4D kernels applied by FFT, models/ssm.py) would count as
free: an FFT of n points is counted as the radix-2 figure, 5 n log2 n real operations for a
complex transform and half that for a real one (forward and inverse), per transform.
Elementwise work (the spectra's product, activations, norms) is not counted, for any member.
"""

from __future__ import annotations

import math

import torch
from torch.utils import flop_counter as fc


def _cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs):
    return fc.sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    return fc.sdpa_backward_flop_count(grad_out, query, key, value)


def _fft_points(shape, dim) -> tuple[int, int]:
    """(transforms, points per transform) of an FFT over the dims ``dim`` of ``shape``."""
    dims = [d % len(shape) for d in dim]
    n = math.prod(shape[d] for d in dims)
    return math.prod(shape) // max(n, 1), n


def _fft_flops(n_transforms: int, n: int, real: bool) -> int:
    return int(n_transforms * (2.5 if real else 5.0) * n * math.log2(max(n, 2)))


def _fft_r2c(self, dim, normalization, onesided, *args, out_shape=None, **kwargs):
    return _fft_flops(*_fft_points(self, dim), real=True)


def _fft_c2r(self, dim, normalization, last_dim_size, *args, out_shape=None, **kwargs):
    return _fft_flops(*_fft_points(out_shape, dim), real=True)


def _fft_c2c(self, dim, normalization, forward, *args, out_shape=None, **kwargs):
    return _fft_flops(*_fft_points(self, dim), real=False)


def _custom_mapping():
    aten = torch.ops.aten
    mapping = {aten._fft_r2c: _fft_r2c, aten._fft_c2r: _fft_c2r, aten._fft_c2c: _fft_c2c}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward
    return mapping


def count_flops(fn) -> int:
    """Total FLOPs of everything ``fn()`` runs (forward and backward if it calls backward)."""
    with fc.FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_by_module(fn, depth: int = 3) -> dict[str, int]:
    """FLOPs of everything ``fn()`` runs, per module (names as torch's counter gives them,
    ``Lamae.encoder.blocks``, down to ``depth`` levels; ``Global`` is the total)."""
    with fc.FlopCounterMode(display=False, depth=depth, custom_mapping=_custom_mapping()) as counter:
        fn()
    return {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}


def training_step_flops(model, batch_size: int, n_leads: int = 12, **forward_kwargs) -> int:
    """FLOPs of one pretraining step (forward + backward) on a random batch."""
    x = torch.randn(batch_size, n_leads, model.cfg.n_samples)
    leads = torch.arange(n_leads)

    def step():
        model(x, leads, **forward_kwargs)["loss"].backward()

    flops = count_flops(step)
    model.zero_grad(set_to_none=True)
    return flops


def supervised_step_flops(model, n_labels: int, batch_size: int, n_leads: int = 12, pooling: str = "latent") -> int:
    """FLOPs of one supervised step (features, linear head, BCE, backward)."""
    x = torch.randn(batch_size, n_leads, model.cfg.n_samples)
    y = torch.randint(0, 2, (batch_size, n_labels)).float()
    head = torch.nn.Linear(model.cfg.dim, n_labels)
    leads = torch.arange(n_leads)

    def step():
        feats, _ = model.features(x, leads, None, pooling)
        torch.nn.functional.binary_cross_entropy_with_logits(head(feats), y).backward()

    flops = count_flops(step)
    model.zero_grad(set_to_none=True)
    return flops


def matmul_peak(device="cpu", dtype=torch.float32, n: int = 2048, seconds: float = 2.0) -> float:
    """Measured FLOP/s of a large square matmul on ``device`` in ``dtype`` (the practical peak).

    Model FLOPs utilisation is reported against this, measured on the same machine in the
    same run, rather than against a datasheet figure.
    """
    import time

    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best
