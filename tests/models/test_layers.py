import pytest
import torch
import torch.nn.functional as F

from lamae.models.layers import read_latents


def reference_read(q, kv, heads, pos):
    """Each token's softmax attention over the K latents of its position, one token at a time."""
    b, n_leads, s, d = q.shape
    hd = d // heads
    out = torch.empty_like(q)
    for i in range(b):
        for lead in range(n_leads):
            for j in range(s):
                k, v = kv[i, pos[i, lead, j]].chunk(2, dim=-1)                  # (K, D) each
                qh, kh, vh = (t.view(-1, heads, hd).transpose(0, 1) for t in (q[i, lead, j][None], k, v))
                w = (qh @ kh.transpose(1, 2) * hd ** -0.5).softmax(-1)          # (H, 1, K)
                out[i, lead, j] = (w @ vh).transpose(0, 1).reshape(d)
    return out


def test_both_reads_of_the_latents_are_attention_over_the_latents_of_a_position():
    torch.manual_seed(0)
    b, n_leads, p, k, d, heads = 2, 3, 5, 2, 8, 2
    kv = torch.randn(b, p, k, 2 * d)
    # the decoder's read: every lead holds the whole grid, in order
    q = torch.randn(b, n_leads, p, d)
    grid = torch.arange(p).expand(b, n_leads, p)
    torch.testing.assert_close(read_latents(q, kv, heads), reference_read(q, kv, heads, grid))
    # the encoder's read: each lead's tokens sit at their own positions
    pos = torch.stack([torch.randperm(p)[:3] for _ in range(b * n_leads)]).view(b, n_leads, 3)
    q = torch.randn(b, n_leads, 3, d)
    torch.testing.assert_close(read_latents(q, kv, heads, pos), reference_read(q, kv, heads, pos))


# ---------------------------------------------------------------------- the lead router, narrow and full
def _router_reference(r, x, z, pos, visible):
    """The router written densely, one position at a time: at position p the latents attend over
    the tokens of the leads visible there (plain softmax attention), then every token attends over
    the latents at its own position. Slow and obvious, for checking the indexed implementation."""
    b, n_leads, s, _ = x.shape
    p_count, k_count = z.shape[1], z.shape[2]
    h = r.heads
    k, v = r.kv_tok(r.norm_tok(x)).chunk(2, dim=-1)
    q = r.q_lat(r.norm_lat(z))
    inner = q.shape[-1]
    hd = inner // h
    gathered = torch.zeros(b, p_count, k_count, inner)
    for bi in range(b):
        for p in range(p_count):
            cells = [(lead, j) for lead in range(n_leads) for j in range(s)
                     if int(pos[bi, lead, j]) == p and bool(visible[bi, lead, p])]
            if not cells:
                continue
            kk = torch.stack([k[bi, lead, j] for lead, j in cells]).view(-1, h, hd).transpose(0, 1)
            vv = torch.stack([v[bi, lead, j] for lead, j in cells]).view(-1, h, hd).transpose(0, 1)
            qq = q[bi, p].view(k_count, h, hd).transpose(0, 1)
            gathered[bi, p] = F.scaled_dot_product_attention(qq, kk, vv).transpose(0, 1).reshape(k_count, inner)
    z = z + r.proj_lat(gathered)
    if r.mlp is not None:
        z = z + r.mlp(r.norm_mlp(z))
    kl, vl = r.kv_lat(r.norm_src(z)).chunk(2, dim=-1)
    qt = r.q_tok(r.norm_read(x))
    msg = torch.zeros(b, n_leads, s, inner)
    for bi in range(b):
        for lead in range(n_leads):
            for j in range(s):
                p = int(pos[bi, lead, j])
                qq = qt[bi, lead, j].view(1, h, hd).transpose(0, 1)
                kk, vv = (t[bi, p].view(k_count, h, hd).transpose(0, 1) for t in (kl, vl))
                msg[bi, lead, j] = F.scaled_dot_product_attention(qq, kk, vv).transpose(0, 1).reshape(inner)
    return x + r.proj_tok(msg), z


def _router_case(n_leads=3, b=2):
    """Tokens of ``n_leads`` leads at positions 0 (CLS), 1, 2, 4 of a 6-position grid, lead 1 of ECG 0
    absent (never visible); position 3 held by no lead (masked everywhere) and 5 only by lead 0."""
    pos = torch.tensor([0, 1, 2, 4]).expand(b, n_leads, 4).clone()
    pos[:, 0, 3] = 5
    visible = torch.zeros(b, n_leads, 6, dtype=torch.bool)
    visible.scatter_(2, pos, True)
    if n_leads > 1:
        visible[0, 1] = False
    x = torch.randn(b, n_leads, 4, 32)
    z = torch.randn(b, 6, 2, 32)
    return x, z, pos, visible


@pytest.mark.parametrize("width, latent_mlp", [(8, False), (32, True), (16, True)])
def test_the_router_matches_a_dense_reference(width, latent_mlp):
    from lamae.models.encoders import LeadRouter

    torch.manual_seed(0)
    r = LeadRouter(32, 4, 2.0, width=width, latent_mlp=latent_mlp)
    for n_leads in (3, 1):
        x, z, pos, visible = _router_case(n_leads)
        x.requires_grad_()
        z.requires_grad_()
        got_x, got_z, weights = r(x, z, pos, visible)
        want_x, want_z = _router_reference(r, x, z, pos, visible)
        torch.testing.assert_close(got_x, want_x, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got_z, want_z, atol=1e-5, rtol=1e-4)
        # and the gradients, through the indexed gathers and sums
        gx, gz = torch.randn_like(got_x), torch.randn_like(got_z)
        wanted = [x, z, *r.parameters()]
        got = torch.autograd.grad((got_x * gx).sum() + (got_z * gz).sum(), wanted)
        want = torch.autograd.grad((want_x * gx).sum() + (want_z * gz).sum(), wanted)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
        # the attention over leads is a distribution where a lead is visible, zero where none is
        held = visible.any(dim=1).float()                                   # (B, P)
        assert not held[:, 3].any()
        torch.testing.assert_close(weights.sum(-1), held, atol=1e-5, rtol=0)
        if n_leads == 1:
            torch.testing.assert_close(weights[..., 0], held, atol=1e-5, rtol=0)


def test_the_narrow_router_leaves_unheld_positions_alone_and_ignores_absent_leads():
    from lamae.models.encoders import LeadRouter

    torch.manual_seed(0)
    r = LeadRouter(32, 4, 2.0, width=8, latent_mlp=False)
    x, z, pos, visible = _router_case()
    out_x, out_z, _ = r(x, z, pos, visible)
    # position 3, masked in every lead: no token reaches its latents (they gain the projection's bias only)
    torch.testing.assert_close(out_z[:, 3], z[:, 3] + r.proj_lat.bias.detach())
    # an absent lead's tokens change nothing that other leads or the latents hold
    x2 = x.clone()
    x2[0, 1] += 5.0
    out2_x, out2_z, _ = r(x2, z, pos, visible)
    torch.testing.assert_close(out2_z, out_z)
    torch.testing.assert_close(out2_x[0, [0, 2]], out_x[0, [0, 2]])
    # every weight takes part: a gradient reaches the narrow projections
    (out_x.sum() + out_z.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in r.parameters())


def test_the_conv_stem_matches_a_direct_sum():
    """ConvStem against its definition written out sample by sample: frames of f samples, each
    frame mixed with its two neighbours (zero past the ends), then the frames of each patch."""
    from lamae.models.layers import ConvStem

    torch.manual_seed(0)
    patch, f, dim = 10, 5, 16
    stem = ConvStem(patch, f, dim)
    x, seen = torch.randn(2, 3, 40), (torch.rand(2, 3, 40) > 0.3).float()
    got = stem(x, seen)
    w1, b1 = stem.frames.weight, stem.frames.bias          # (C, 2, f)
    w2, b2 = stem.mix.weight, stem.mix.bias                # (C, C, 3)
    w3, b3 = stem.patch.weight, stem.patch.bias            # (D, C, patch / f)
    for b in range(2):
        for lead in range(3):
            inp = torch.stack([x[b, lead] * seen[b, lead], seen[b, lead]])          # (2, T)
            frames = [F.gelu(b1 + sum(w1[:, :, j] @ inp[:, i * f + j] for j in range(f))) for i in range(8)]
            pad = [torch.zeros_like(frames[0])] + frames + [torch.zeros_like(frames[0])]
            mixed = [F.gelu(b2 + sum(w2[:, :, k] @ pad[i + k] for k in range(3))) for i in range(8)]
            for n in range(4):
                want = b3 + sum(w3[:, :, j] @ mixed[n * 2 + j] for j in range(2))
                torch.testing.assert_close(got[b, lead, n], want, atol=1e-5, rtol=1e-5)
    assert got.shape == (2, 3, 4, dim)
