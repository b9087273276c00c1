import torch

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
