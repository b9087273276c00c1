"""Training-step speed of every family member at one configuration: ST-MEM's published one.

ST-MEM's pretraining (Na et al., ICLR 2024): ViT-S encoder 384 wide x 12 deep with 6 heads, a
decoder 256 wide x 4 deep, 12 leads x 2250 samples (9 s at 250 Hz), patch 75, 75% of the
patches masked, batch 16, AdamW, float32. Each member is built at exactly that configuration
(LAMAE adds its routers after every third block; IndP has twelve encoders, as it is defined),
and full optimizer steps (forward, backward, AdamW) are timed on random 12-lead batches, the
members' steps interleaved in one process so that a noisy, shared machine slows them alike.

Prints, per member: s/step (median), ECGs/s, FLOPs per step (torch's FlopCounterMode, with
the CPU attention kernels counted), achieved FLOP/s, and MFU against the matmul peak measured
in the same run (float32 on CPU; bf16 under autocast on GPU).

    python benchmarks/equal_config.py                          # all members, 5 interleaved rounds
    python benchmarks/equal_config.py --members LAMAE Joint --rounds 3
    python benchmarks/equal_config.py --members IndS IndP --batch-size 16
    python benchmarks/equal_config.py --profile Joint          # + where that member's time goes
    python benchmarks/equal_config.py --previous               # + lamae 0.2's code paths, interleaved
    python benchmarks/equal_config.py --input mimic500         # MIMIC-IV-ECG's native 12 x 5000 at 500 Hz
    python benchmarks/equal_config.py --size tiny --members LAMAE IndS Joint   # lamae's tiny size there
    python benchmarks/equal_config.py --breakdown --members LAMAE IndS   # parameters and FLOPs by component
    python benchmarks/equal_config.py --members IndS Joint \
        --variant LAMAE:router_width=1.0,latent_mlp=true           # + a member with settings changed
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import yaml

from lamae.models.family import FAMILY, count_parameters, make_model, match_parameters
from lamae.models.config import SIZES, LamaeConfig
from lamae.train.common import make_optimizer, param_groups
from lamae.utils.memory import keep_freed_memory
from lamae.utils.flops import matmul_peak, training_step_flops
from throughput import WARMUP  # benchmarks/throughput.py: the steps every benchmark runs untimed

STMEM = dict(fs=250.0, window_s=9.0, patch_size=75, dim=384, depth=12, heads=6, mlp_ratio=4.0,
             decoder_dim=256, decoder_depth=4, decoder_heads=4, mask_ratio=0.75,
             latent_heads=6, router_every=3, router_latents=2, n_latents=8)
# The two inputs of issue 27: ST-MEM's (12 x 2250 at 250 Hz, patch 75) and MIMIC-IV-ECG's native
# one (12 x 5000 at 500 Hz, patch 50), each with the same ViT-S encoder and decoder.
# ptbxl100: the comparisons' input (PTB-XL at 100 Hz, 10 s, patch 25), where issue 40 asks the
# state-space cells' cost of.
INPUTS = {"stmem": {}, "mimic500": dict(fs=500.0, window_s=10.0, patch_size=50),
          "ptbxl100": dict(fs=100.0, window_s=10.0, patch_size=25)}
# The model: ST-MEM's ViT-S (above), or one of lamae's named sizes (its widths, depths and router
# spacing) at the same input.
MODEL_SIZES = {"vit-s": {}, **{k: v for k, v in SIZES.items() if k != "base"}}
MEMBERS = ["LAMAE", "Joint", "IndS", "IndP", "MVMAE"]


def config(name: str, setting: dict | None = None, **over) -> LamaeConfig:
    """Member ``name`` at ST-MEM's configuration, changed by ``setting`` (an input of INPUTS, a
    router spacing) and ``over``."""
    return LamaeConfig(**{**STMEM, **(setting or {}), **FAMILY[name]["model"], **over})


def component_table(cfg: LamaeConfig, batch: int = 2) -> list[tuple[str, int, int]]:
    """(component, parameters, forward FLOPs for ``batch`` ECGs): where a member's size and
    arithmetic go, by module. Forward only: torch's counter files the backward's operations under
    whichever module ran last, so per-module backward figures would mislead (the backward costs
    about twice the forward, module by module)."""
    from lamae.utils.flops import flops_by_module

    model = make_model(cfg)
    x, leads = torch.randn(batch, 12, cfg.n_samples), torch.arange(12)
    with torch.no_grad():
        flops = flops_by_module(lambda: model(x, leads), depth=4)

    def under(prefix: str) -> int:  # a module's FLOPs, or its items' (a ModuleList is never called)
        if prefix in flops:
            return flops[prefix]
        depth = prefix.count(".") + 1
        return sum(f for k, f in flops.items() if k.startswith(prefix + ".") and k.count(".") == depth)
    top = type(model).__name__
    rows = []
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        rows.append((name, n, under(f"{top}.{name}")))
        if name in ("encoder", "decoder", "context"):
            for sub, grand in child.named_children():
                rows.append((f"  {name}.{sub}", sum(p.numel() for p in grand.parameters()),
                             under(f"{top}.{name}.{sub}")))
    own = sum(p.numel() for p in model.parameters(recurse=False))
    rows.append(("(top-level parameters, loss and glue)", own,
                 flops.get("Global", 0) - sum(under(f"{top}.{n}") for n, _ in model.named_children())))
    rows.append(("total", model.num_parameters(), flops.get("Global", 0)))
    return rows


class Stepper:
    """One model, optimizer and fixed batch; ``step()`` runs one full training step.

    ``lead_by_lead`` gives every other ECG its leads in reverse slot order, which sends IndP's
    encoder down its lead-by-lead path (twelve small matmuls per layer, as lamae 0.2 ran it);
    ``optimizer="loop"`` is torch's per-tensor AdamW (what lamae 0.2 used on CPU)."""

    def __init__(self, label: str, cfg: LamaeConfig, batch: int, device: torch.device, *, compile_=False,
                 lead_by_lead=False, optimizer="fused"):
        torch.manual_seed(0)
        self.name, self.device, self.cfg, self.batch = label, device, cfg, batch
        self.model = make_model(cfg).to(device)
        groups = param_groups(self.model, 0.05)
        self.opt = (make_optimizer(groups, 1e-4, device) if optimizer == "fused" else
                    torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), foreach=False))
        self.net = torch.compile(self.model) if compile_ else self.model
        self.x = torch.randn(batch, 12, cfg.n_samples, device=device)
        leads = torch.arange(12, device=device).repeat(batch, 1)
        if lead_by_lead:
            leads[1::2] = leads[1::2].flip(1)
        self.leads = leads

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = self.net(self.x, self.leads)["loss"]
        loss.backward()
        self.opt.step()


def parse_variant(spec: str) -> tuple[str, dict]:
    """``NAME:key=value,...`` -> (member, model settings); values read as YAML (``false``, ``0.25``)."""
    name, _, rest = spec.partition(":")
    if name not in FAMILY:
        raise SystemExit(f"--variant {spec}: no family member {name!r} (choose from {', '.join(sorted(FAMILY))})")
    over = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant {spec}: {item!r} is not key=value")
        over[key] = yaml.safe_load(value)
    return name, over


def variants(members, with_previous: bool, setting: dict | None = None,
             extra: list[str] = ()) -> list[tuple[str, LamaeConfig, dict]]:
    """(label, config, Stepper options) to time: each member, each ``extra`` variant
    (``NAME:key=value,...``), IndP also at IndS's parameter count (the comparison's setting), and
    with ``with_previous`` the code paths lamae 0.2 ran."""
    out = [(name, config(name, setting), {}) for name in members]
    for spec in extra:
        name, over = parse_variant(spec)
        out.append((spec, config(name, setting, **over), {}))
    if "IndP" in members:
        matched, _ = match_parameters(config("IndP", setting), count_parameters(config("IndS", setting)))
        out.append((f"IndP at IndS's parameters (width {matched.dim}, MLP {matched.mlp_ratio:g})", matched, {}))
        if with_previous:
            out.append(("IndP at IndS's parameters, lead by lead (0.2)", matched, {"lead_by_lead": True}))
    for name in ("CPC", "S4-MAE"):  # as lamae compare runs them: matched to LAMAE's parameter count
        if name in members:
            matched, _ = match_parameters(config(name, setting), count_parameters(config("LAMAE", setting)))
            out.append((f"{name} at LAMAE's parameters (width {matched.dim}, MLP {matched.mlp_ratio:g})",
                        matched, {}))
    if with_previous:
        for name in members:
            if name != "IndP":
                out.append((f"{name}, per-tensor AdamW (0.2)", config(name, setting), {"optimizer": "loop"}))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", nargs="+", default=MEMBERS, choices=sorted(FAMILY))
    ap.add_argument("--input", default="stmem", choices=sorted(INPUTS),
                    help="stmem: 12 x 2250 at 250 Hz, patch 75 (ST-MEM's); mimic500: 12 x 5000 at 500 Hz, patch 50; "
                         "ptbxl100: 12 x 1000 at 100 Hz, patch 25 (the comparisons')")
    ap.add_argument("--size", default="vit-s", choices=sorted(MODEL_SIZES),
                    help="vit-s: ST-MEM's encoder and decoder (default); tiny, small: lamae's sizes at the same input")
    ap.add_argument("--router-every", type=int, help="LAMAE: a router after every k-th block (default 3)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                    help="also a member with model settings changed (repeatable), e.g. LAMAE:router_width=1.0")
    ap.add_argument("--breakdown", action="store_true",
                    help="only print each member's parameters and step FLOPs by component, then exit")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5, help="timed steps per member (interleaved)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--profile", help="also profile one step of this member")
    ap.add_argument("--fresh-memory", action="store_true",
                    help="CPU: leave glibc's allocator at its defaults (see lamae.utils.memory.keep_freed_memory)")
    ap.add_argument("--previous", action="store_true",
                    help="also time the code paths lamae 0.2 ran (IndP lead by lead, per-tensor AdamW)")
    args = ap.parse_args(argv)
    setting = {**INPUTS[args.input], **MODEL_SIZES[args.size],
               **({} if args.router_every is None else {"router_every": args.router_every})}
    if args.breakdown:
        for name, cfg, _ in variants(args.members, False, setting, args.variant):
            print(f"\n{name} ({args.input}): parameters and forward FLOPs per ECG by component\n")
            print("| component | parameters | forward GFLOP per ECG |")
            print("|---|---|---|")
            for comp, n, f in component_table(cfg):
                print(f"| {comp} | {n / 1e6:.2f}M | {f / 2 / 1e9:.2f} |")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not args.fresh_memory:
        keep_freed_memory(device)  # as lamae's training does
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg0 = config("IndS", setting)
    model = "ST-MEM's model configuration" if args.size == "vit-s" else f"lamae's {args.size} size"
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; {model} "
          f"on input {args.input} (12 x {cfg0.n_samples} at {cfg0.fs:g} Hz, patch {cfg0.patch_size}), "
          f"LAMAE's router every {config('LAMAE', setting).router_every} blocks, batch {args.batch_size}")
    todo = variants(args.members, args.previous, setting, args.variant)
    flops = {}
    for label, cfg, _ in todo:  # counted on the CPU with a batch of 2, scaled (FLOPs are linear in it)
        if repr(cfg) not in flops:
            flops[repr(cfg)] = training_step_flops(make_model(cfg), 2) * args.batch_size / 2
    steppers = [Stepper(label, cfg, args.batch_size, device, compile_=args.compile, **opts) for label, cfg, opts in todo]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for s in steppers:  # warm-up (and compilation)
        for _ in range(WARMUP):
            s.step()
    sync()
    times = {s.name: [] for s in steppers}
    peak = 0.0
    for _ in range(args.rounds):
        for s in steppers:
            t0 = time.perf_counter()
            s.step()
            sync()
            times[s.name].append(time.perf_counter() - t0)
        # the peak is sampled between rounds too: one burst of noise on this shared machine
        # would otherwise lower it (and raise every MFU) for the whole table
        peak = max(peak, matmul_peak(device, dtype, seconds=0.5))
    print(f"measured matmul peak: {peak / 1e12:.3f} TFLOP/s ({dtype}; best over {args.rounds} samples, "
          "one after each round)\n")
    print("| member | parameters | s/step | ECGs/s | GFLOP/step | achieved GFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|")
    for s in steppers:
        t = statistics.median(times[s.name])
        rate = flops[repr(s.cfg)] / t
        print(f"| {s.name} | {s.model.num_parameters() / 1e6:.1f}M | {t:.2f} | {args.batch_size / t:.2f} | "
              f"{flops[repr(s.cfg)] / 1e9:.0f} | {rate / 1e9:.0f} | {rate / peak:.0%} |")
    # the ratios: each member's step, parameters and FLOPs against IndS's and Joint's
    med = {s.name: statistics.median(times[s.name]) for s in steppers}
    ref = {s.name: s for s in steppers}
    if {"IndS", "Joint"} & set(ref):
        print("\n| member | step / IndS | step / Joint | parameters / IndS | FLOPs / IndS |")
        print("|---|---|---|---|---|")
        for s in steppers:
            cells = []
            for other in ("IndS", "Joint"):
                cells.append(f"{med[s.name] / med[other]:.2f}x" if other in ref else "-")
            if "IndS" in ref:
                cells.append(f"{s.model.num_parameters() / ref['IndS'].model.num_parameters():.2f}x")
                cells.append(f"{flops[repr(s.cfg)] / flops[repr(ref['IndS'].cfg)]:.2f}x")
            else:
                cells += ["-", "-"]
            print(f"| {s.name} | " + " | ".join(cells) + " |")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        s = next(s for s in steppers if s.name == args.profile)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            s.step()
            sync()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25))


if __name__ == "__main__":
    main()
