"""Spatiotemporal compact bilinear fusion (STCB): a Tensor Sketch of the outer product.

The bilinear (outer) product ``x (x) y`` of an ``n``-vector and an ``m``-vector keeps every pairwise
interaction but has ``n * m`` entries. A count sketch ``Psi(x)`` of ``x`` into ``d`` bins adds
``s(i) * x_i`` into bin ``h(i)`` (random hash ``h: [n] -> [d]``, random signs ``s``); the count
sketch of ``x (x) y`` with the hash ``(h_x(i) + h_y(j)) mod d`` and sign ``s_x(i) s_y(j)`` is the
circular convolution of the two sketches, computed as ``IFFT(FFT(Psi(x)) * FFT(Psi(y)))``. More
inputs multiply more spectra. In expectation over the hashes, inner products are kept:
``E <TS(x, y), TS(x', y')> = <x, x'> <y, y'>``.

:class:`CompactBilinear` is that operator for two or more inputs, on the last dimension of
tensors of any leading shape (vectors, or every location of a feature map); its hashes are buffers,
saved with the weights, so a trained model is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CompactBilinear", "count_sketch", "tensor_sketch"]


def count_sketch(x: torch.Tensor, h: torch.Tensor, s: torch.Tensor, d: int) -> torch.Tensor:
    """Count sketch of ``x`` (``... n``) into ``d`` bins: ``out[..., h[i]] += s[i] * x[..., i]``."""
    out = x.new_zeros(*x.shape[:-1], d)
    return out.index_add_(-1, h, x * s)


def tensor_sketch(xs: Sequence[torch.Tensor], hashes: Sequence[torch.Tensor], signs: Sequence[torch.Tensor],
                  d: int) -> torch.Tensor:
    """The Tensor Sketch of ``xs[0] (x) xs[1] (x) ...`` in ``d`` dimensions (leading dims broadcast)."""
    spectrum = None
    for x, h, s in zip(xs, hashes, signs):
        f = torch.fft.rfft(count_sketch(x.float(), h, s.to(torch.float32), d), n=d, dim=-1)
        spectrum = f if spectrum is None else spectrum * f
    return torch.fft.irfft(spectrum, n=d, dim=-1)


class CompactBilinear(nn.Module):
    """STCB of ``len(input_dims)`` inputs into ``output_dim`` dimensions.

    ``forward(x_1, ..., x_k)``: each ``x_i`` is ``... input_dims[i]``, leading dimensions
    broadcast; the output is ``... output_dim``. ``signed_sqrt`` and ``normalize`` apply the usual
    ``sign(z) sqrt(|z|)`` and L2 normalisation (off by default: the raw sketch). Hashes and signs
    are drawn from ``seed`` or given as ``hashes`` / ``signs`` (one tensor per input).
    """

    def __init__(self, input_dims: Sequence[int], output_dim: int, *, seed: int = 0,
                 signed_sqrt: bool = False, normalize: bool = False,
                 hashes: Sequence[torch.Tensor] | None = None, signs: Sequence[torch.Tensor] | None = None) -> None:
        super().__init__()
        dims = [int(n) for n in input_dims]
        if len(dims) < 2:
            raise ValueError(f"compact bilinear fusion needs at least two inputs, got input_dims={list(input_dims)}")
        if any(n < 1 for n in dims) or int(output_dim) < 1:
            raise ValueError(f"input_dims and output_dim must be positive, got {dims} -> {output_dim}")
        self.input_dims = tuple(dims)
        self.output_dim = int(output_dim)
        self.signed_sqrt = signed_sqrt
        self.normalize = normalize
        g = torch.Generator().manual_seed(int(seed))
        for i, n in enumerate(dims):
            h = torch.randint(0, self.output_dim, (n,), generator=g) if hashes is None else torch.as_tensor(hashes[i])
            s = (torch.randint(0, 2, (n,), generator=g) * 2 - 1) if signs is None else torch.as_tensor(signs[i])
            if h.shape != (n,) or s.shape != (n,):
                raise ValueError(f"input {i}: hashes and signs must have shape ({n},), got {tuple(h.shape)}, {tuple(s.shape)}")
            if h.min() < 0 or h.max() >= self.output_dim:
                raise ValueError(f"input {i}: hashes must lie in 0..{self.output_dim - 1}")
            if not torch.all(s.abs() == 1):
                raise ValueError(f"input {i}: signs must be +1 or -1")
            self.register_buffer(f"hash{i}", h.long())
            self.register_buffer(f"sign{i}", s.to(torch.int8))

    @property
    def hashes(self) -> list[torch.Tensor]:
        return [getattr(self, f"hash{i}") for i in range(len(self.input_dims))]

    @property
    def signs(self) -> list[torch.Tensor]:
        return [getattr(self, f"sign{i}") for i in range(len(self.input_dims))]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) != len(self.input_dims):
            raise ValueError(f"CompactBilinear was built for {len(self.input_dims)} inputs, got {len(xs)}")
        for i, (x, n) in enumerate(zip(xs, self.input_dims)):
            if x.shape[-1] != n:
                raise ValueError(f"input {i} must end in dimension {n}, got shape {tuple(x.shape)}")
        dtype = xs[0].dtype
        z = tensor_sketch(xs, self.hashes, self.signs, self.output_dim)
        if self.signed_sqrt:
            z = torch.sign(z) * torch.sqrt(z.abs() + 1e-12)
        if self.normalize:
            z = nn.functional.normalize(z, dim=-1)
        return z.to(dtype)

    def extra_repr(self) -> str:
        return (f"input_dims={self.input_dims}, output_dim={self.output_dim}, signed_sqrt={self.signed_sqrt}, "
                f"normalize={self.normalize}")
