"""Pretraining throughput and model FLOPs utilisation (MFU).

For each size and sampling rate: ECGs/s and tokens/s of full optimizer steps (forward,
backward, AdamW) on random 12-lead batches, the FLOPs of one step counted by torch's
FlopCounterMode, achieved FLOP/s, and MFU against the matmul peak measured on the same
machine in the same run (float32 on CPU, bfloat16 on GPU, where training runs under
bf16 autocast).

    python benchmarks/throughput.py                      # tiny/small/base at 250 and 500 Hz
    python benchmarks/throughput.py --sizes small --rates 250 --batch-size 32
    python benchmarks/throughput.py --sizes small --rates 500 --profile   # + where the time goes
    python benchmarks/throughput.py --sizes tiny --rates 250 --breakdown  # the same, without a profiler
    python benchmarks/throughput.py --sizes base --rates 500 --attention math   # unfused attention
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from lamae.models.family import model_config
from lamae.models.lamae import Lamae
from lamae.train.common import make_optimizer, param_groups
from lamae.utils.memory import keep_freed_memory
from lamae.utils.flops import matmul_peak, training_step_flops
from _cli import SIZES, positive_float, positive_int, run  # benchmarks/, the folder this script runs from

DEFAULT_BATCH = {"cpu": {"tiny": 64, "small": 16, "base": 4}, "cuda": {"tiny": 512, "small": 256, "base": 128}}


def lamae(size: str, fs: float) -> Lamae:
    """The family's LAMAE (with its lead field) at ``size``, taking ``fs`` Hz."""
    return Lamae(model_config("LAMAE", size, {"fs": fs}))


ATTENTION = ("auto", "flash", "efficient", "cudnn", "math")


def attention_backend(name: str):
    """A context in which scaled_dot_product_attention may use only kernel ``name`` (auto: any)."""
    if name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                        "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[name])


# Steps run before any is timed or profiled: torch.compile compiles in the first, and on CPU
# glibc's heap takes about three to settle (until then a step spends ~0.1 s per fresh 80 MB
# buffer in page faults, which a profile charges to whichever operator first writes it).
WARMUP = 4


def _trainer(size: str, fs: float, batch: int, device: torch.device, attention: str = "auto",
             compile_: str | None = None):
    """A fresh model on ``device``, a forward that returns its loss as timed (bf16 autocast on
    GPU, only the ``attention`` kernel allowed, through torch.compile in mode ``compile_`` if
    one is named: "default", "max-autotune-no-cudagraphs", ...), its AdamW, and one training
    step (zero_grad, backward, step)."""
    model = lamae(size, fs).to(device)
    net = torch.compile(model, mode=compile_) if compile_ else model
    x = torch.randn(batch, 12, model.cfg.n_samples, device=device)
    leads = torch.arange(12, device=device)

    def loss():
        with attention_backend(attention), \
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return net(x, leads)["loss"]
    opt = make_optimizer(param_groups(model, 0.05), 1e-4, device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()
    return model, loss, opt, step


def measure(size: str, fs: float, batch: int, steps: int, device: torch.device, compile_: str | None,
            attention: str = "auto") -> dict:
    torch.manual_seed(0)
    # FLOPs counted on a CPU copy at a small batch (the count is linear in the batch)
    flops = training_step_flops(lamae(size, fs), min(batch, 4)) * batch / min(batch, 4)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model, _, _, step = _trainer(size, fs, batch, device, attention, compile_)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(WARMUP):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]  # median step
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    cfg = model.cfg
    n_keep = max(1, round(cfg.n_patches * (1 - cfg.mask_ratio)))
    return {"size": size, "fs": fs, "batch": batch, "params_m": model.num_parameters() / 1e6,
            "step_s": t, "ecgs_s": batch / t,
            # tokens the encoder sees (visible patches + CLS, all leads) and the decoder predicts
            "enc_tokens_s": batch * 12 * (n_keep + 1) / t, "patches_s": batch * 12 * cfg.n_patches / t,
            "gflop_step": flops / 1e9, "tflops": flops / t / 1e12, "memory_gib": memory}


def kernel_kind(name: str) -> str:
    """A GPU kernel's kind by its name: matmul (cuBLAS / CUTLASS / Triton templates), attention,
    Triton code generated by inductor (fused elementwise work and reductions), or other."""
    low = name.lower()
    if any(t in low for t in ("gemm", "nvjet", "cutlass", "xmma", "triton_tem_")):
        return "matmul"
    if any(t in low for t in ("sdpa", "flash", "fmha", "attention")):
        return "attention"
    if low.startswith("triton_"):
        return "generated"
    return "other"


def profile_step(size: str, fs: float, batch: int, device: torch.device, attention: str = "auto",
                 top: int = 12, compile_: str | None = None) -> tuple[float, str]:
    """Where a training step's time goes by the torch profiler: the share in mm / addmm /
    bmm, and the ``top`` operators by self time (kernel time on GPU), each with its share.
    Under torch.compile most of the step runs as generated kernels that no aten operator
    owns, so on GPU the rows are then kernels, and the share is that of the matmul kernels
    (``kernel_kind``) in all kernel time. The
    profiler adds its own cost to every operator call (``breakdown`` times without it)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    _, _, _, step = _trainer(size, fs, batch, device, attention, compile_)
    for _ in range(WARMUP):
        step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = prof.key_averages()
    kinds = ""
    if compile_ and device.type == "cuda":  # kernels, by kind: the matmul share is that kind's
        events = [e for e in averages if e.device_type == DeviceType.CUDA and getattr(e, key) > 0]
        top = max(top, 25)
        total = max(sum(getattr(e, key) for e in events), 1)
        by_kind: dict[str, float] = {}
        for e in events:
            kind = kernel_kind(e.key)
            by_kind[kind] = by_kind.get(kind, 0.0) + getattr(e, key)
        mm = by_kind.get("matmul", 0.0)
        kinds = ("         kernel time by kind: "
                 + ", ".join(f"{k} {t / total:.0%}" for k, t in sorted(by_kind.items(), key=lambda kv: -kv[1]))
                 + f" (of {total / 1e3:.1f} ms)\n")
    else:  # operators only: on GPU the kernels are events too, and would count every kernel twice
        events = [e for e in averages if e.key.startswith("aten::") and getattr(e, key) > 0]
        total = max(sum(getattr(e, key) for e in events), 1)
        mm = sum(getattr(e, key) for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
    rows = sorted(events, key=lambda e: -getattr(e, key))[:top]
    table = kinds + "\n".join(f"         {getattr(e, key) / total:6.1%}  {getattr(e, key) / 1e3:8.1f} ms  {e.count:5d} calls  {e.key[:90]}"
                               for e in rows)
    return mm / total, table


def breakdown(size: str, fs: float, batch: int, device: torch.device, steps: int, attention: str = "auto",
              depth: int = 3) -> str:
    """Where a step's time goes without a profiler: forward, backward and optimizer (median of
    ``steps``), and the forward's wall time inside each module named with at most ``depth`` parts
    (inclusive of its children; timed by hooks, with a GPU sync at each)."""
    model, loss, opt, _ = _trainer(size, fs, batch, device, attention)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    inside: dict[str, list[float]] = {}

    def enter(module, args):
        sync()
        module._entered = time.perf_counter()

    def leave(module, args, out):
        sync()
        inside.setdefault(module._timed_as, []).append(time.perf_counter() - module._entered)

    hooks = []
    for name, module in model.named_modules():
        if name and name.count(".") < depth and not isinstance(module, torch.nn.ModuleList):
            module._timed_as = name
            hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    phases = {"forward": [], "backward": [], "optimizer": []}
    for i in range(steps + WARMUP):
        if i == WARMUP:
            inside.clear()
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        value = loss()
        sync()
        t1 = time.perf_counter()
        value.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        sync()
        if i >= WARMUP:
            for phase, t in zip(phases.values(), (t1 - t0, t2 - t1, time.perf_counter() - t2)):
                phase.append(t)
    for h in hooks:
        h.remove()
    median = {phase: sorted(t)[len(t) // 2] for phase, t in phases.items()}
    lines = ["       step: " + ", ".join(f"{phase} {t * 1e3:.0f} ms" for phase, t in median.items())]
    per_step = sorted(((sum(t) / steps, name) for name, t in inside.items()), reverse=True)
    lines += [f"         {t * 1e3:8.1f} ms  {t / median['forward']:6.1%} of the forward  {name}"
              for t, name in per_step if t >= 0.01 * median["forward"]]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small", "base"], choices=SIZES)
    ap.add_argument("--rates", nargs="+", type=positive_float, default=[250.0, 500.0])
    ap.add_argument("--batch-size", type=positive_int, default=None, help="default depends on size and device")
    ap.add_argument("--steps", type=positive_int, default=5, help="timed steps (median reported)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                    help="through torch.compile, in its default mode or MODE (for example "
                         "max-autotune-no-cudagraphs)")
    ap.add_argument("--attention", choices=ATTENTION, default="auto",
                    help="the only kernel scaled_dot_product_attention may use (default: torch's choice)")
    ap.add_argument("--fresh-memory", action="store_true",
                    help="CPU: leave glibc's allocator at its defaults (see lamae.utils.memory.keep_freed_memory)")
    ap.add_argument("--profile", action="store_true",
                    help="after each row, the share of step time in matrix multiplication and the top "
                         "operators (torch profiler)")
    ap.add_argument("--breakdown", action="store_true",
                    help="after each row, forward / backward / optimizer time and the forward's time in "
                         "each module (hooks, no profiler)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if not a.fresh_memory:
        keep_freed_memory(device)  # as lamae's training does
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    peak_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n_peak = 8192 if device.type == "cuda" else 2048
    peak = matmul_peak(device, peak_dtype, n=n_peak)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; attention: {a.attention}"
          f"{'; torch.compile' if a.compile else ''}{f' ({a.compile})' if a.compile not in (None, 'default') else ''}")
    head = (f"{'size':<6}{'Hz':>5}{'batch':>6}{'params':>9}{'step s':>9}{'ECGs/s':>9}"
            f"{'enc tok/s':>11}{'GFLOP/step':>11}{'TFLOP/s':>9}{'MFU':>7}")
    results = []
    for size in a.sizes:
        for fs in a.rates:
            if a.compile:
                torch._dynamo.reset()  # each model compiled afresh, not as a dynamic-shape variant
            batch = a.batch_size or DEFAULT_BATCH[device.type][size]
            r = measure(size, fs, batch, a.steps, device, a.compile, a.attention)
            peak_memory = f", {r['memory_gib']:.1f} GiB at most" if r["memory_gib"] is not None else ""
            print(f"  {size} at {fs:g} Hz: {r['step_s']:.3f} s/step{peak_memory}", flush=True)
            if a.profile:
                r["matmul_share"], r["top_ops"] = profile_step(size, fs, batch, device, a.attention,
                                                               compile_=a.compile)
            if a.breakdown:
                r["breakdown"] = breakdown(size, fs, batch, device, a.steps, a.attention)
            results.append(r)
            # sampled again after every row: one burst of noise on a shared machine would
            # otherwise lower the peak (and raise every MFU) for the whole table
            peak = max(peak, matmul_peak(device, peak_dtype, n=n_peak, seconds=0.5))
    print(f"\nmeasured matmul peak ({str(peak_dtype).removeprefix('torch.')}): {peak / 1e12:.3f} TFLOP/s "
          "(best of samples before and after each row)\n")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['size']:<6}{r['fs']:>5.0f}{r['batch']:>6}{r['params_m']:>8.1f}M{r['step_s']:>9.3f}{r['ecgs_s']:>9.1f}"
              f"{r['enc_tokens_s']:>11.0f}{r['gflop_step']:>11.1f}{r['tflops']:>9.3f}"
              f"{100 * r['tflops'] * 1e12 / peak:>6.1f}%")
        if "matmul_share" in r:
            print(f"       time in matmul: {100 * r['matmul_share']:.0f}% (one training step, self time); "
                  f"the top operators:\n{r['top_ops']}")
        if "breakdown" in r:
            print(r["breakdown"])


if __name__ == "__main__":
    run(main)
