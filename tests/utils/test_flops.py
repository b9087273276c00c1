"""The FLOP counter counts what torch's leaves out: CPU attention kernels and FFTs."""

import math

import torch

from lamae.utils.flops import count_flops


def test_ffts_are_counted_as_radix_2_transforms():
    x = torch.randn(3, 5, 256)
    assert count_flops(lambda: torch.fft.rfft(x)) == 15 * 2.5 * 256 * 8
    assert count_flops(lambda: torch.fft.fft(x.to(torch.complex64), dim=1)) == int(3 * 256 * 5.0 * 5 * math.log2(5))
    spectrum = torch.fft.rfft(x)
    assert count_flops(lambda: torch.fft.irfft(spectrum, n=256)) == 15 * 2.5 * 256 * 8
    # through autograd: the backward's transforms are counted too (torch runs at least a pair)
    y = torch.randn(2, 64, requires_grad=True)
    pair = 2 * 2 * 2.5 * 64 * 6
    assert count_flops(lambda: torch.fft.irfft(torch.fft.rfft(y), n=64).sum().backward()) >= 2 * pair


def test_cpu_attention_is_counted():
    q = torch.randn(1, 2, 16, 8)
    assert count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)) > 2 * 2 * 16 * 16 * 8
