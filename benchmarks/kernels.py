"""The kernels behind the tiny model's speed on CPU, each timed on its own at the tiny size's
shapes (250 Hz, batch 64): why the tiny model stays far from the matmul peak.

1. The decoder's widest product, (77,568 x 64) @ (64 x 256): into a freshly allocated output,
   into a preallocated one (``out=``), and fresh again after ``keep_freed_memory``; then the
   decoder's whole MLP (64 -> 256 -> 64 with GELU), forward and backward.
2. The decoder's self-attention, (768 sequences, 4 heads, 101 tokens, 16 wide), forward and
   backward: torch's fused (flash) CPU kernel, the math backend, and written out with matmuls.
3. The lead field's solves, 64 x 100 systems of 8 x 8 with 25 right-hand sides, forward and
   backward: LU (``linalg.solve``), Cholesky, an explicit inverse, and the inverse with one
   step of iterative refinement (``refined_solve``, what ``LeadField.sources`` does); then
   each one's float32 accuracy on the lead field's own systems against float64.
4. The decoder's read of the latents, 12 leads x 101 positions reading 2 latents per position
   (4 heads of 16), forward and backward: the scores laid out with the K latents last (as
   commit 697a1ab wrote them), and with K on an inner axis (``read_latents`` today); and the softmax
   over a last axis of 2 against the same softmax over an inner axis.
5. The encoder router's moves between positions and tokens, forward and backward, at the tiny
   size's shapes and at a ViT-S router's at 500 Hz (batch 16, 26 tokens of 101 positions per
   lead, 192 and 384 wide): rows read by position and tokens summed per position, as the router
   does them (``index_select`` and ``index_add``, which run as a scatter_add on CPU), and as row
   copies onto the lead x position grid summed over its leads (tried on 2026-12-03 because a
   profile taken beside other work showed the scatter_add at 3% of a step; slower on its own,
   and level in a whole step).

    python benchmarks/kernels.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from lamae.models.layers import _flat_rows, read_latents, take_rows, to_grid
from lamae.models.leadfield import LeadField, refined_solve
from lamae.utils.flops import matmul_peak
from lamae.utils.memory import keep_freed_memory
from _cli import run  # benchmarks/, the folder this script runs from


def timed(fn, repeats: int = 7) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def backward_of(fn, *inputs):
    """A call that runs ``fn`` on ``inputs`` (made to need gradients) and backpropagates a dense
    random gradient, as a model's backward does. (Not ``.sum().backward()``: its gradient is
    one value expanded with stride 0, on which some backward formulas take slow paths; the
    explicit inverse's backward took 45 ms on it against 6 ms on a dense gradient.)"""
    inputs = [t.requires_grad_() for t in inputs]
    grad = torch.randn_like(fn(*inputs))

    def run():
        fn(*inputs).backward(grad)
    return run


def attention_written_out(q, k, v):
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1) @ v


def attention_math(q, k, v):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


def spd(shape):
    a = torch.randn(*shape)
    return a @ a.transpose(-1, -2) + torch.eye(shape[-1])


def read_latents_k_last(q, kv, heads):
    """The decoder's read as commit 697a1ab wrote it: scores (B, P, L, H, K), softmax over the last axis."""
    b, n_leads, s, d = q.shape
    hd = d // heads
    k, v = (t.unflatten(-1, (heads, hd)) for t in kv.chunk(2, dim=-1))
    weights = (torch.einsum("blphd,bpkhd->bplhk", q.view(b, n_leads, s, heads, hd), k) * hd ** -0.5).softmax(-1)
    return torch.einsum("bplhk,bpkhd->blphd", weights, v).reshape(b, n_leads, s, d)


SOLVERS = {"LU (torch.linalg.solve)": torch.linalg.solve,
           "Cholesky": lambda m, r: torch.cholesky_solve(r, torch.linalg.cholesky(m)),
           "explicit inverse": lambda m, r: torch.linalg.inv(m) @ r,
           "inverse, refined once (LeadField)": refined_solve}


def read_by_index(values, pos):
    """Each token's row of its position, ``values[b, pos]`` as an index_select (what the router does)."""
    return take_rows(values, pos.reshape(pos.shape[0], -1)).view(*pos.shape, values.shape[-1])


def sum_by_index_add(tokens, pos, n_pos):
    """Tokens summed per position with ``index_add`` (what the router does)."""
    b, _, _, c = tokens.shape
    rows = _flat_rows(pos.reshape(b, -1), n_pos)
    return tokens.new_zeros(b * n_pos, c).index_add(0, rows, tokens.reshape(-1, c)).view(b, n_pos, c)


def sum_on_grid(tokens, pos, n_pos):
    """The same sum as row copies onto the (lead x position) grid and a sum over its leads."""
    return to_grid(tokens, pos, n_pos).sum(dim=1)


class ReadOnGrid(torch.autograd.Function):
    """The read with a backward that sums on the grid instead of index_add."""

    @staticmethod
    def forward(ctx, values, pos):
        ctx.save_for_backward(pos)
        ctx.n_pos = values.shape[1]
        return read_by_index(values, pos)

    @staticmethod
    def backward(ctx, grad):
        return sum_on_grid(grad, ctx.saved_tensors[0], ctx.n_pos), None


def token_positions(b, n_leads, s, n_pos):
    """Each lead's CLS at 0 and s - 1 distinct patch positions, as the encoder's tokens hold them."""
    return torch.stack([torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(n_pos - 1)[:s - 1]])
                        for _ in range(b * n_leads)]).view(b, n_leads, s)


def solver_accuracy(seeds: int = 25):
    """Each solver's float32 error against float64 LU on the lead field's own systems (8 sources,
    8 ECGs x 50 positions, half the patches visible), for its values and the gradients of the
    loadings and noise: the error norm relative to float32 LU's, median and largest over
    ``seeds`` seeds x 3 noise levels (as initialised, psi ~ 2e-4, psi ~ 1e-4: the floor)."""
    ratios = {name: [] for name in SOLVERS}
    largest = {name: 0.0 for name in SOLVERS}  # largest error of one source / the largest source
    conditions = []
    for seed in range(seeds):
        for raw_noise in (None, -9.0, -12.0):
            torch.manual_seed(seed)
            field = LeadField(12, 8, 5, 16)
            if raw_noise is not None:
                with torch.no_grad():
                    field.raw_noise.fill_(raw_noise)
            leads = torch.arange(12)[None].expand(8, -1)
            x, visible = torch.randn(8, 12, 50, 5), torch.rand(8, 12, 50) < 0.5
            grad = torch.randn(8, 50, 8, 5, dtype=torch.float64)

            def errors(solve, dtype=torch.float32):
                field.zero_grad()
                out = solve(*field.system(x, leads, visible, dtype))
                (out.double() * grad).sum().backward()
                return [out.detach().double()] + [p.grad.double().clone() for p in (field.loadings, field.raw_noise)]

            exact = errors(torch.linalg.solve, torch.float64)
            with torch.no_grad():
                conditions.append(float(torch.linalg.cond(field.system(x, leads, visible, torch.float64)[0]).max()))
            got = {name: errors(solve) for name, solve in SOLVERS.items()}
            lu = got["LU (torch.linalg.solve)"]
            for name, values in got.items():
                ratios[name] += [float((v - e).norm() / max(float((u - e).norm()), 1e-30))
                                 for v, u, e in zip(values, lu, exact)]
                largest[name] = max(largest[name], float((values[0] - exact[0]).abs().max() / exact[0].abs().max()))
    print(f"\nlead-field solvers' float32 accuracy against float64, {seeds} seeds x 3 noise levels "
          f"(condition up to {max(conditions):.0f}); error norms of values and gradients as a ratio to LU's")
    for name in SOLVERS:
        r = ratios[name]
        print(f"  {name:<34} median {statistics.median(r):5.2f}x  largest {max(r):6.2f}x  "
              f"largest source error {largest[name]:.1e} of the largest source")


def main(argv=None):
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    peak = matmul_peak("cpu", torch.float32)
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; matmul peak {peak / 1e9:.0f} GFLOP/s\n")

    a, b = torch.randn(77_568, 64), torch.randn(64, 256)
    out = torch.empty(77_568, 256)
    flop = 2 * a.shape[0] * a.shape[1] * b.shape[1]
    rows = [("fresh output, glibc defaults", timed(lambda: a @ b)),
            ("preallocated output (out=)", timed(lambda: torch.mm(a, b, out=out)))]
    keep_freed_memory("cpu")
    rows.append(("fresh output, keep_freed_memory", timed(lambda: a @ b)))
    print("(77,568 x 64) @ (64 x 256)")
    for label, t in rows:
        print(f"  {label:<34}{t * 1e3:8.1f} ms {flop / t / 1e9:7.0f} GFLOP/s {flop / t / peak:6.0%} of peak")

    mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
    flop = 3 * 2 * 2 * 77_568 * 64 * 256  # two products, forward + backward (twice the forward)
    t = timed(backward_of(mlp, torch.randn(77_568, 64)))
    print("\ndecoder MLP, 77,568 tokens, 64 -> 256 (GELU) -> 64, forward + backward")
    print(f"  {'nn.Linear, GELU, nn.Linear':<34}{t * 1e3:8.1f} ms {flop / t / 1e9:7.0f} GFLOP/s {flop / t / peak:6.0%} of peak")

    shape = (768, 4, 101, 16)
    flop = 3 * 4 * shape[0] * shape[1] * shape[2] ** 2 * shape[3]  # QK^T and AV, forward + backward
    print("\nattention (768, 4, 101, 16), forward + backward")
    for label, fn in (("fused (flash) kernel", F.scaled_dot_product_attention), ("math backend", attention_math),
                      ("written out with matmuls", attention_written_out)):
        t = timed(backward_of(fn, *(torch.randn(*shape) for _ in range(3))))
        print(f"  {label:<34}{t * 1e3:8.1f} ms {flop / t / 1e9:7.0f} GFLOP/s")

    systems, rhs = (64, 100, 8, 8), (64, 100, 8, 25)
    print("\nlead-field solves, 64 x 100 systems of 8 x 8, 25 right-hand sides, forward + backward")
    for label, fn in SOLVERS.items():
        print(f"  {label:<34}{timed(backward_of(fn, spd(systems), torch.randn(*rhs))) * 1e3:8.1f} ms")
    solver_accuracy()

    q, kv = torch.randn(64, 12, 101, 64), torch.randn(64, 101, 2, 128)
    print("\ndecoder read of the latents, (64, 12, 101, 64) tokens, 2 latents per position, 4 heads, forward + backward")
    for label, fn in (("scores with K last (697a1ab)", read_latents_k_last),
                      ("K on an inner axis (read_latents)", read_latents)):
        print(f"  {label:<34}{timed(backward_of(lambda a, c: fn(a, c, 4), q, kv)) * 1e3:8.1f} ms")
    scores = torch.randn(64, 101, 12, 4, 2)
    print("softmax of 64 x 101 x 12 x 4 pairs, forward")
    print(f"  {'over a last axis of 2':<34}{timed(lambda: scores.softmax(-1)) * 1e3:8.1f} ms")
    inner = scores.movedim(-1, 2).contiguous()
    print(f"  {'over an inner axis of 2':<34}{timed(lambda: inner.softmax(2)) * 1e3:8.1f} ms")

    print("\nencoder router: rows between positions and tokens, forward + backward")
    for label, (b, n_leads, s, n_pos, c) in (("tiny, 250 Hz, batch 64, 32 wide", (64, 12, 9, 31, 32)),
                                             ("ViT-S, 500 Hz, batch 16, 192 wide", (16, 12, 26, 101, 192)),
                                             ("ViT-S, 500 Hz, batch 16, 384 wide", (16, 12, 26, 101, 384))):
        pos = token_positions(b, n_leads, s, n_pos)
        values, tokens = torch.randn(b, n_pos, c), torch.randn(b, n_leads, s, c)
        print(f"  {label}")
        for name, fn, x in (("read by index_select (the router)", lambda v: read_by_index(v, pos), values),
                            ("read, backward on the grid", lambda v: ReadOnGrid.apply(v, pos), values),
                            ("sum by index_add (the router)", lambda t: sum_by_index_add(t, pos, n_pos), tokens),
                            ("sum on the grid", lambda t: sum_on_grid(t, pos, n_pos), tokens)):
            print(f"    {name:<36}{timed(backward_of(fn, x.clone())) * 1e3:8.2f} ms")


if __name__ == "__main__":
    run(main)
