"""State-space layers: S4D (a diagonal state-space kernel per channel, applied by FFT) and the
residual block the state-space members build on (cpc.py: CPC and S4-MAE; s4lead.py: the
per-lead cells of the factorial)."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


class S4D(nn.Module):
    """A diagonal state-space model per channel (S4D: Gu, Gupta, Goel and Re, NeurIPS 2022).

    Each of the ``d`` channels runs x'(t) = A x(t) + B u(t), y(t) = C x(t) + D u(t) with a
    diagonal complex A of ``n_state / 2`` modes (conjugate pairs make y real), discretised with
    step dt by zero-order hold: x_k = exp(dt A) x_{k-1} + (exp(dt A) - 1) / A u_k. Unrolled, the
    layer is a causal convolution with the kernel K_j = 2 Re(C exp(dt A)^j (exp(dt A) - 1) / A),
    applied by FFT in O(L log L). Initialisation S4D-Lin: A_n = -1/2 + i pi n, dt log-uniform
    in [1e-3, 1e-1], C standard complex normal, B = 1 (absorbed into C).
    """

    def __init__(self, d: int, n_state: int = 32, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        if n_state < 2 or n_state % 2:
            raise ValueError(f"s4_state must be an even number >= 2, got {n_state}")
        modes = n_state // 2
        self.log_dt = nn.Parameter(torch.rand(d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_a_real = nn.Parameter(torch.full((d, modes), math.log(0.5)))
        self.a_imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).expand(d, modes).clone())
        self.c = nn.Parameter(torch.randn(d, modes, 2) * math.sqrt(0.5))   # real and imaginary parts
        self.d = nn.Parameter(torch.randn(d))

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(A_bar, B_bar, C) of the discretised system, each (d, modes) complex."""
        a = torch.complex(-self.log_a_real.exp(), self.a_imag)
        dt_a = a * self.log_dt.exp()[:, None]
        a_bar = dt_a.exp()
        return a_bar, (a_bar - 1) / a, torch.view_as_complex(self.c)

    def kernel(self, length: int) -> torch.Tensor:
        """The convolution kernel (d, length)."""
        a_bar, b_bar, c = self.discrete()
        steps = torch.arange(length, device=a_bar.device, dtype=torch.float32)
        # exp(j log A_bar) = A_bar^j, computed for all j at once (|A_bar| < 1: no overflow)
        powers = torch.exp(a_bar.log()[..., None] * steps)                       # (d, modes, L)
        return 2 * torch.einsum("dn,dnl->dl", c * b_bar, powers).real

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, d, L) -> (B, d, L), causal: y_t depends on u_0..u_t only."""
        length = u.shape[-1]
        with _float32(u):
            u = u.float()
            k = self.kernel(length)
            n = 2 * length  # zero-padded: a linear, not circular, convolution
            y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :length]
            return y + u * self.d[:, None]


def _float32(t: torch.Tensor):
    """FFTs and complex kernels in float32, also under bf16 autocast."""
    kind = t.device.type
    return torch.autocast(kind, enabled=False) if kind in ("cuda", "cpu") else contextlib.nullcontext()


class S4Block(nn.Module):
    """Pre-norm residual block: S4D -> GELU -> linear gated (GLU), then an MLP of ``mlp_ratio``.
    ``bidirectional``: a second S4D runs over the reversed sequence and the two are summed, so
    each output sees the whole sequence (S4-MAE); otherwise the block is causal (CPC)."""

    def __init__(self, d: int, n_state: int, mlp_ratio: float, bidirectional: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.ssm = S4D(d, n_state)
        self.ssm_back = S4D(d, n_state) if bidirectional else None
        self.out = nn.Linear(d, 2 * d)
        self.norm2 = nn.LayerNorm(d)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, d)."""
        u = self.norm1(x).transpose(1, 2)
        y = self.ssm(u)
        if self.ssm_back is not None:
            y = y + self.ssm_back(u.flip(-1)).flip(-1)
        y = y.transpose(1, 2).to(x.dtype)
        x = x + F.glu(self.out(F.gelu(y)), dim=-1)
        return x + self.mlp(self.norm2(x))
