"""The encoders of the model family. Each maps per-lead token sequences to encoded tokens.

Input: ``seq`` (B, L, S, D), each lead's CLS followed by its visible patch tokens (position
and lead embeddings already added); ``pos`` (B, L, S), each item's position on the
(lead x position) grid (0 is the CLS, 1 + t the patch at time t); ``present`` (B, L);
``intervene`` (ablate the latents) and ``leads`` (B, L) lead indices, which every encoder
accepts and those without latents or per-lead parts ignore.
Output: an :class:`Encoded` with the tokens (B, L, S, D) and, for the router encoder, the
time-resolved latents (B, P, K, D) and the latents' attention over leads (B, P, L).

- ``PerLeadEncoder``   one transformer shared by all leads, each lead on its own (IndS, LAMAE-global)
- ``PrivateEncoder``   one transformer per lead (IndP)
- ``JointEncoder``     one sequence over all leads' tokens (ST-MEM's design, "Joint")
- ``RouterEncoder``    LAMAE: per-lead temporal blocks, each followed (or every other one) by a
                       ``LeadRouter``: at every position K latents gather from the leads' tokens
                       at that position and every token reads them back (Crossformer's two-stage
                       attention; Set Transformer's ISAB). Linear in the number of leads,
                       permutation invariant over leads, and mask-aware.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BLOCK_TO_GROUPED, Block, GroupedBlock, Mlp, gather_over_leads, read_latents, sincos_1d, to_grid


@dataclass
class Encoded:
    tokens: torch.Tensor                      # (B, L, S, D)
    latents: torch.Tensor | None = None       # (B, P, K, D): router latents per position (P = 1 + N)
    lead_weights: torch.Tensor | None = None  # (B, P, L): the last router's attention over leads
    visible: torch.Tensor | None = None       # (B, L, P): which grid cells held a token


def _blocks(cfg, n: int | None = None) -> nn.ModuleList:
    return nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(n or cfg.depth))


class PerLeadEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.blocks = _blocks(cfg)

    def forward(self, seq, pos, present, intervene=None, leads=None, field=None) -> Encoded:
        b, n_leads, s, d = seq.shape
        x = seq.flatten(0, 1)
        for blk in self.blocks:
            x = blk(x)
        return Encoded(x.view(b, n_leads, s, d))


class PrivateEncoder(nn.Module):
    """A separate stack of blocks for each of the twelve standard leads, run as grouped weights:
    all leads' tokens pass their own lead's weights in one batched matmul per layer.

    State dicts written when the stacks were twelve lists of ``Block``s
    (``encoder.stacks.{lead}.{layer}.…``, lamae 0.1 and 0.2) are converted on load."""

    def __init__(self, cfg, n_vocab: int):
        super().__init__()
        self.n_vocab = n_vocab
        self.layers = nn.ModuleList(GroupedBlock(n_vocab, cfg.dim, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self._register_load_state_dict_pre_hook(self._from_stacks)

    def _from_stacks(self, state, prefix, *args):
        old = [k for k in state if k.startswith(prefix + "stacks.")]
        if not old:
            return
        parts = {}
        for key in old:
            lead, layer, rest = key[len(prefix) + len("stacks."):].split(".", 2)
            for a, b in BLOCK_TO_GROUPED.items():
                if rest.startswith(a):
                    parts.setdefault((int(layer), b + rest[len(a):]), {})[int(lead)] = state.pop(key)
                    break
        for (layer, name), by_lead in parts.items():
            if len(by_lead) != self.n_vocab:
                raise ValueError(f"{prefix}stacks: layer {layer} {name} has weights for {len(by_lead)} leads, "
                                 f"expected {self.n_vocab}")
            state[f"{prefix}layers.{layer}.{name}"] = torch.stack([by_lead[i] for i in range(self.n_vocab)])

    def forward(self, seq, pos, present, intervene=None, leads=None, field=None) -> Encoded:
        b, n_leads, s, d = seq.shape
        if bool((leads == leads[:1]).all()):
            # the usual case: every ECG's lead slots hold the same leads (e.g. all twelve, in order)
            ids = leads[0]
            groups = None if n_leads == self.n_vocab and bool((ids == torch.arange(n_leads, device=ids.device)).all()) else ids
            x = seq.transpose(0, 1)                                   # (L, B, S, D)
            for layer in self.layers:
                x = layer(x, groups)
            return Encoded(x.transpose(0, 1))
        out = torch.empty_like(seq)  # slots hold different leads in different ECGs: lead by lead
        for lead in leads.unique().tolist():
            sel = leads == lead
            x = seq[sel][None]                                        # (1, n, S, D)
            ids = torch.tensor([lead], device=seq.device)
            for layer in self.layers:
                x = layer(x, ids)
            out[sel] = x[0]
        return Encoded(out)


class JointEncoder(nn.Module):
    """All leads' tokens in one sequence; absent leads are masked out of the attention."""

    def __init__(self, cfg):
        super().__init__()
        self.blocks = _blocks(cfg)

    def forward(self, seq, pos, present, intervene=None, leads=None, field=None) -> Encoded:
        b, n_leads, s, d = seq.shape
        # no mask when every lead is present: attention then needs no mask tensor at all
        attend = None if bool(present.all()) else present[:, :, None].expand(-1, -1, s).reshape(b, n_leads * s)
        x = seq.reshape(b, n_leads * s, d)
        for blk in self.blocks:
            x = blk(x, attend)
        return Encoded(x.view(b, n_leads, s, d))


def intervene_latents(z: torch.Tensor, how: str | None) -> torch.Tensor:
    """The ablation of the cross-lead path: ``zero`` the latents, or ``shuffle`` them across the
    batch (each ECG gets another ECG's latents)."""
    if how is None:
        return z
    if how == "zero":
        return torch.zeros_like(z)
    if how == "shuffle":
        return z.roll(1, dims=0)
    raise ValueError(f"intervene must be None, 'zero' or 'shuffle', got {how!r}")


class LeadGates(nn.Module):
    """A learned vector per standard lead (looked up by lead, like the lead embedding), starting
    at 1, that multiplies what a lead sends to the latents or receives from them.

    Every lead is a projection of one cardiac dipole (lead_l(t) = u_l . d(t)), so gathering the
    dipole from leads, or a lead from it, is a lead-specific linear map with signs (III = II - I).
    Shared projections can express that only through sharp per-head selection of leads; a gate
    per lead expresses it directly. Lead identity still enters only by lead, so the model stays
    invariant to lead order.
    """

    def __init__(self, n_vocab: int, dim: int):
        super().__init__()
        self.gate = nn.Parameter(torch.ones(n_vocab, dim))

    def forward(self, values, leads):
        """values (B, L, ..., D); leads (B, L) lead indices."""
        g = self.gate[leads]
        return values * g.view(*g.shape[:2], *([1] * (values.ndim - 3)), g.shape[-1])


class LeadRouter(nn.Module):
    """Cross-lead exchange at every position: latents gather from the leads there, tokens read back.

    ``width``: the attention's inner width (queries, keys and values; ``dim`` unless narrower).
    The latents and tokens stay ``dim`` wide; only what crosses between them is projected down
    and back up. A narrow router (a quarter of ``dim``, without the latents' MLP) holds 2 dim^2
    weights against a full-width one's 16 dim^2 (of which the latents' MLP 8).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, lead_gates: int = 0, width: int | None = None,
                 latent_mlp: bool = True):
        super().__init__()
        inner = width or dim
        if inner % heads:
            raise ValueError(f"width {inner} is not divisible by {heads} latent heads")
        self.heads = heads
        self.norm_tok = nn.LayerNorm(dim)
        self.norm_lat = nn.LayerNorm(dim)
        self.q_lat = nn.Linear(dim, inner)
        self.kv_tok = nn.Linear(dim, 2 * inner)
        self.proj_lat = nn.Linear(inner, dim)
        self.norm_mlp = nn.LayerNorm(dim) if latent_mlp else None
        self.mlp = Mlp(dim, mlp_ratio) if latent_mlp else None
        self.norm_read = nn.LayerNorm(dim)
        self.norm_src = nn.LayerNorm(dim)
        self.q_tok = nn.Linear(dim, inner)
        self.kv_lat = nn.Linear(dim, 2 * inner)
        self.proj_tok = nn.Linear(inner, dim)
        self.send = LeadGates(lead_gates, inner) if lead_gates else None
        self.receive = LeadGates(lead_gates, dim) if lead_gates else None

    def forward(self, x, z, pos, visible, intervene=None, leads=None):
        """x (B, L, S, D) tokens; z (B, P, K, D) latents; pos (B, L, S); visible (B, L, P);
        leads (B, L) lead indices (used by the lead gates)."""
        # 1. gather: the latents at each position attend over the leads' tokens there
        k, v = self.kv_tok(self.norm_tok(x)).chunk(2, dim=-1)
        if self.send is not None:
            v = self.send(v, leads)
        out, weights = gather_over_leads(self.q_lat(self.norm_lat(z)), k, v, pos, visible, self.heads)
        z = z + self.proj_lat(out)
        if self.mlp is not None:
            z = z + self.mlp(self.norm_mlp(z))
        # 2. broadcast: each token reads the latents at its position
        src = intervene_latents(z, intervene)
        kv = self.kv_lat(self.norm_src(src))
        msg = self.proj_tok(read_latents(self.q_tok(self.norm_read(x)), kv, self.heads, pos))
        if self.receive is not None:
            msg = self.receive(msg, leads)
        return x + msg, z, weights


class RouterEncoder(nn.Module):
    """Per-lead temporal blocks interleaved with lead routers (LAMAE).

    ``router_every`` k: a router after every k-th block and always after the last one;
    0 puts a single router after the encoder (per-time summary latents, read by the decoder:
    the Perceiver-IO / EEGPT-style alternative, with no cross-lead exchange inside the encoder).
    """

    def __init__(self, cfg, n_vocab: int):
        super().__init__()
        self.blocks = _blocks(cfg)
        every = cfg.router_every
        after = {cfg.depth - 1} | ({i for i in range(cfg.depth) if (i + 1) % every == 0} if every > 0 else set())
        self.after = sorted(after)
        gates = n_vocab if cfg.lead_gates else 0
        self.routers = nn.ModuleList(LeadRouter(cfg.dim, cfg.latent_heads, cfg.mlp_ratio, gates,
                                                cfg.inner_width(cfg.dim, cfg.latent_heads), cfg.latent_mlp)
                                     for _ in self.after)
        self.latents = nn.Parameter(torch.randn(cfg.router_latents, cfg.dim) * 0.02)
        self.cls_position = nn.Parameter(torch.zeros(1, cfg.dim))
        self.register_buffer("positions", sincos_1d(cfg.n_patches, cfg.dim), persistent=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, seq, pos, present, intervene=None, leads=None, field=None) -> Encoded:
        """``field`` (B, N, D): the lead field's sources at each patch position, added to its latents."""
        b, n_leads, s, d = seq.shape
        n_pos = self.positions.shape[0] + 1
        visible = to_grid(present[:, :, None].expand(-1, -1, s)[..., None], pos, n_pos)[..., 0].bool()
        where = torch.cat([self.cls_position, self.positions.to(self.cls_position.dtype)])  # (P, D)
        z = (self.latents[None, None] + where[None, :, None]).expand(b, -1, -1, -1)
        if field is not None:
            z = z + F.pad(field, (0, 0, 1, 0))[:, :, None, :].to(z.dtype)   # nothing at the CLS position
        x, weights, routers = seq, None, iter(self.routers)
        for i, blk in enumerate(self.blocks):
            x = blk(x.flatten(0, 1)).view(b, n_leads, s, d)
            if i in self.after:
                x, z, weights = next(routers)(x, z, pos, visible, intervene, leads)
        return Encoded(x, self.norm(z), weights, visible)


def build_encoder(cfg, n_vocab: int) -> nn.Module:
    return {"per_lead": lambda: PerLeadEncoder(cfg), "private": lambda: PrivateEncoder(cfg, n_vocab),
            "joint": lambda: JointEncoder(cfg), "router": lambda: RouterEncoder(cfg, n_vocab)}[cfg.encoder]()
