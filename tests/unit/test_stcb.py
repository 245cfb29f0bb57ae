"""Compact bilinear fusion (Tensor Sketch through torch.fft)."""

import itertools

import pytest
import torch

from workbench.streams import CompactBilinear


def _brute(xs, hashes, signs, d):
    """The count sketch of the outer product, entry by entry."""
    out = torch.zeros(d, dtype=torch.float64)
    for idx in itertools.product(*(range(len(x)) for x in xs)):
        b = sum(int(h[i]) for h, i in zip(hashes, idx)) % d
        v = 1.0
        for x, s, i in zip(xs, signs, idx):
            v *= float(s[i]) * float(x[i])
        out[b] += v
    return out


def test_exact_on_hand_made_vectors():
    # x = (1, 2, 3) hashed to bins (0, 1, 3) with signs (+, -, +); y = (4, 5) to bins (2, 0), signs (+, +).
    # Products land in bin (h_x + h_y) mod 4: bin 0: 1*5; bin 1: -2*5 + 3*4; bin 2: 1*4; bin 3: -2*4 + 3*5
    m = CompactBilinear((3, 2), 4, hashes=[torch.tensor([0, 1, 3]), torch.tensor([2, 0])],
                        signs=[torch.tensor([1, -1, 1]), torch.tensor([1, 1])])
    out = m(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0]))
    assert torch.allclose(out, torch.tensor([5.0, 2.0, 4.0, 7.0]), atol=1e-5)


@pytest.mark.parametrize("dims,d", [((5, 7), 16), ((4, 3, 6), 8), ((3, 3, 2, 4), 5)])
def test_exact_against_the_explicit_sketch(dims, d):
    m = CompactBilinear(dims, d, seed=3)
    xs = [torch.randn(n, generator=torch.Generator().manual_seed(i)) for i, n in enumerate(dims)]
    out = m(*xs)
    ref = _brute(xs, m.hashes, m.signs, d)
    assert torch.allclose(out.double(), ref, atol=1e-4)
    # leading dimensions broadcast: a batch of maps and one vector
    batch = m(*[x.expand(2, 3, -1) if i == 0 else x for i, x in enumerate(xs)])
    assert batch.shape == (2, 3, d) and torch.allclose(batch[1, 2], out, atol=1e-5)


def test_inner_products_are_kept_in_expectation():
    """E_h <TS(x, y), TS(x', y')> = <x, x'> <y, y'>; checked over 2000 hash draws with a 4-sigma bound,
    and the same bound rejects a sketch without random signs (it is biased)."""
    g = torch.Generator().manual_seed(0)
    n, m, d, draws = 12, 9, 32, 2000
    x, x2 = torch.randn(n, generator=g) + 0.5, torch.randn(n, generator=g) + 0.5
    y, y2 = torch.randn(m, generator=g) + 0.5, torch.randn(m, generator=g) + 0.5
    truth = float((x @ x2) * (y @ y2))

    def sample(signed: bool):
        vals = []
        for seed in range(draws):
            sk = CompactBilinear((n, m), d, seed=seed)
            if not signed:
                sk = CompactBilinear((n, m), d, hashes=sk.hashes, signs=[torch.ones(n), torch.ones(m)])
            vals.append(float(sk(x, y) @ sk(x2, y2)))
        v = torch.tensor(vals, dtype=torch.float64)
        return v.mean().item(), v.std().item() / draws**0.5

    mean, se = sample(True)
    assert abs(mean - truth) < 4 * se, (mean, truth, se)
    biased, se_b = sample(False)
    assert abs(biased - truth) > 4 * se_b, "the bound cannot tell a biased sketch from the right one"


def test_gradients_flow_to_every_input():
    m = CompactBilinear((6, 5, 4), 16, signed_sqrt=True, normalize=True)
    xs = [torch.randn(3, n, requires_grad=True) for n in (6, 5, 4)]
    m(*xs).sum().backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0 for x in xs)


def test_hashes_are_saved_with_the_weights():
    a = CompactBilinear((8, 8), 32, seed=1)
    b = CompactBilinear((8, 8), 32, seed=2)
    x, y = torch.randn(8), torch.randn(8)
    assert not torch.allclose(a(x, y), b(x, y))
    b.load_state_dict(a.state_dict())
    assert torch.allclose(a(x, y), b(x, y))


def test_bad_input():
    with pytest.raises(ValueError, match="at least two inputs"):
        CompactBilinear((8,), 16)
    m = CompactBilinear((8, 4), 16)
    with pytest.raises(ValueError, match="input 1 must end in dimension 4"):
        m(torch.randn(2, 8), torch.randn(2, 5))
    with pytest.raises(ValueError, match="built for 2 inputs"):
        m(torch.randn(8))
    with pytest.raises(ValueError, match="hashes must lie"):
        CompactBilinear((2, 2), 4, hashes=[torch.tensor([0, 4]), torch.tensor([0, 1])])
