"""The lead field: a linear, mask-aware estimate of every lead from the leads visible at each time.

Every surface lead is, to a good approximation, one projection of a few cardiac sources:
lead_l(t) = u_l . s(t) + noise (a dipole plus some non-dipolar terms; III = II - I exactly,
aVF = (II + III) / 2). On PTB-XL a fixed linear map from eight leads rebuilds III with r = 0.93
(per-lead z-scored) to 1.00 (ECG z-scored), V2 with 0.92 and V5 with 0.98
(``benchmarks/lead_field_ceiling.py``). A transformer that must discover a signed difference
of two leads' fine waveforms through layer norms and softmax attention did not (III r = 0.2).

``LeadField`` learns, per standard lead, a loading vector u_l (K values) and a noise variance
psi_l, looked up by the lead's name like the lead embedding. At every patch position the
sources are the posterior mean of a factor-analysis model given the leads visible there:

    s(t) = (I + sum_v u_v u_v^T / psi_v)^-1  sum_v u_v x_v(t) / psi_v      (a K x K solve)

and the estimate of any lead i is u_i . s(t). Masked patches and absent leads simply drop out
of the sums, the result does not depend on the order of the leads, and the cost is linear in
the number of leads. In LAMAE the sources join the router latents of their position (so the
pooled embedding and every reader of the latents see them), and the estimate is the decoder's
starting point, which it corrects: the lead field is part of the cross-lead path, so the
ablation (``intervene``) zeroes or shuffles the sources with the latents.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


class LeadField(nn.Module):
    def __init__(self, n_vocab: int, n_sources: int, patch_size: int, dim: int):
        super().__init__()
        self.loadings = nn.Parameter(torch.randn(n_vocab, n_sources) * (0.5 / math.sqrt(n_sources)))
        # psi = softplus(raw) starts at 0.5: half of a z-scored lead's variance left to noise
        self.raw_noise = nn.Parameter(torch.full((n_vocab,), math.log(math.expm1(0.5))))
        self.to_latent = nn.Linear(n_sources * patch_size, dim)

    def noise(self, leads: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.raw_noise[leads]) + 1e-4

    def system(self, patches: torch.Tensor, leads: torch.Tensor, visible: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's linear system at every position, in ``dtype``: the precision
        I + sum_v u_v u_v^T / psi_v (B, N, K, K) and the right-hand side sum_v u_v x_v / psi_v
        (B, N, K, P), summed over the leads ``visible`` (B, L, N) there."""
        u = self.loadings[leads].to(dtype)                                   # (B, L, K)
        w = visible.to(dtype) / self.noise(leads).to(dtype)[..., None]       # (B, L, N)
        b, n_leads, k = u.shape
        n, p = patches.shape[2], patches.shape[3]
        eye = torch.eye(k, dtype=dtype, device=u.device)
        # Both sums over the leads as batched matmuls: (N x L) @ (L x K^2) and (K x L) @ (L x N P),
        # rather than three-operand einsums, which torch may contract through larger intermediates.
        outer = (u[..., :, None] * u[..., None, :]).reshape(b, n_leads, k * k)
        precision = torch.bmm(w.transpose(1, 2), outer).view(b, n, k, k) + eye
        weighted = (w[..., None] * patches.to(dtype)).reshape(b, n_leads, n * p)
        rhs = torch.bmm(u.transpose(1, 2), weighted).view(b, k, n, p).transpose(1, 2)
        return precision, rhs

    # Run eagerly, also inside a compiled model. With torch.compile's CPU code for it (torch 2.13),
    # glibc aborts ("double free or corruption") in the first compiled training step, right after
    # the generated kernel of the backward of ``system`` (a reduction over the leads that reads
    # ``visible`` as transposed tiles of booleans), not in the solve (it aborted with
    # ``linalg.solve`` and does with ``refined_solve``). Compiled alone, or in the model with the aot_eager backend, the same code runs.
    # tests/models/test_compile.py trains the compiled model. It is a small part of a step.
    @torch.compiler.disable
    def sources(self, patches: torch.Tensor, leads: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """patches (B, L, N, P), leads (B, L) lead indices, visible (B, L, N) -> sources (B, N, K, P).

        Positions where no lead is visible get zero sources (the prior mean). Computed in float32
        also under autocast: a K x K inverse has no bfloat16 kernel, and its sums need the digits."""
        kind = patches.device.type
        with torch.autocast(kind, enabled=False) if kind in ("cuda", "cpu") else contextlib.nullcontext():
            return refined_solve(*self.system(patches, leads, visible))

    def estimate(self, sources: torch.Tensor, leads: torch.Tensor) -> torch.Tensor:
        """sources (B, N, K, P), leads (B, L) -> every lead's estimate (B, L, N, P)."""
        return torch.einsum("blk,bnkp->blnp", self.loadings[leads].float(), sources)

    def latent(self, sources: torch.Tensor) -> torch.Tensor:
        """(B, N, K, P) -> (B, N, D): what the sources add to the router latents of each position."""
        return self.to_latent(sources.flatten(2).to(self.to_latent.weight.dtype))


def refined_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^-1 b for a batch of small well-scaled systems (a symmetric positive definite, eigenvalues
    >= 1, as the lead field's precisions): the explicit inverse, then one step of iterative
    refinement, x + a^-1 (b - a x).

    Not ``linalg.solve``: with one K x K system per (batch, position), its per-system LU work
    dominates (6,400 systems of 8 with 25 right-hand sides, forward + backward on CPU: 27-55 ms
    against 10 ms, ``benchmarks/kernels.py``), where the inverse's forward and backward are
    batched matmuls. The inverse alone loses digits when near-noiseless leads make the precision
    ill-conditioned; refined once, its errors, and its gradients', are within the spread
    between float32 solvers (Cholesky against LU). ``benchmarks/kernels.py`` prints the
    accuracy of each against float64; tests/models/test_leadfield.py holds it to 3x LU's."""
    inverse = torch.linalg.inv(a)
    x = inverse @ b
    return x + inverse @ (b - a @ x)
