import itertools

import pytest
import torch
from torch import nn

from workbench.models.units import UNITS, make_unit, r2plus1d_mid_channels, unit_stride


def _ones(unit: nn.Module) -> nn.Module:
    for m in unit.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.ones_(m.weight)
        elif isinstance(m, nn.BatchNorm3d):  # identity BN in eval mode
            m.eval()
    return unit


def _impulse(t=5, h=5, w=5):
    x = torch.zeros(1, 1, t, h, w)
    x[0, 0, t // 2, h // 2, w // 2] = 1.0
    return x


def test_spatial_temporal_full_exact_values():
    x = torch.ones(1, 1, 3, 4, 4)
    s = _ones(make_unit("S", 1, 1))(x)[0, 0]
    # 1x3x3 box filter with zero padding: 4 at corners, 6 on edges, 9 inside, identical in time
    assert s[1].tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    assert torch.equal(s[0], s[2])
    t = _ones(make_unit("T", 1, 1))(x)[0, 0]
    assert t[:, 0, 0].tolist() == [2, 3, 2]  # 3x1x1 over 3 frames, zero padded ends
    st = _ones(make_unit("ST", 1, 1))(x)[0, 0]
    assert st[1, 1, 1].item() == 27 and st[0, 0, 0].item() == 8


def test_impulse_response_support():
    x = _impulse()
    # the receptive field of each unit, read from its impulse response
    supports = {"S": (1, 3, 3), "T": (3, 1, 1), "ST": (3, 3, 3), "2D": (1, 3, 3), "S+T": None}
    for name, extent in supports.items():
        y = _ones(make_unit(name, 1, 1))(x)[0, 0]
        nz = y.nonzero()
        ext = tuple(int(nz[:, d].max() - nz[:, d].min() + 1) for d in range(3))
        if extent is not None:
            assert ext == extent, name
    # S+T is a cross: 3 frames at the centre pixel, 3x3 in the centre frame, centre counted twice
    y = _ones(make_unit("S+T", 1, 1))(x)[0, 0]
    assert y[2, 2, 2].item() == 2 and y[1, 2, 2].item() == 1 and y[2, 1, 1].item() == 1
    assert y[1, 1, 1].item() == 0
    assert y.sum().item() == 9 + 3


def test_sums_equal_sum_of_branches():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 6, 6)
    for name in ("S+T", "S+ST", "T+ST", "S+T+ST"):
        u = make_unit(name, 3, 5)
        expect = sum(u.branches[b](x) for b in name.split("+"))
        assert torch.allclose(u(x), expect)
        # each branch is the standalone unit with the same weights
        for b in name.split("+"):
            single = make_unit(b, 3, 5)
            single.conv.weight.data.copy_(u.branches[b].weight.data)
            assert torch.allclose(single(x), u.branches[b](x))


def test_p3d_and_csn_exact_compositions():
    torch.manual_seed(2)
    x = torch.randn(1, 4, 4, 6, 6)
    a, b, c = (make_unit(n, 4, 4).eval() for n in ("P3D-A", "P3D-B", "P3D-C"))
    assert torch.allclose(a(x), a.temporal(torch.relu(a.bn(a.spatial(x)))))
    assert torch.allclose(b(x), b.spatial(x) + b.temporal(x))
    s = c.spatial(x)
    assert torch.allclose(c(x), s + c.temporal(torch.relu(c.bn(s))))
    ip = make_unit("ip-CSN", 4, 8).eval()
    assert ip.depthwise.groups == 8 and ip.pointwise.kernel_size == (1, 1, 1)
    ir = _ones(make_unit("ir-CSN", 2, 2))
    x2 = torch.zeros(1, 2, 3, 3, 3)
    x2[0, 0] = 1.0  # only channel 0 carries signal: depthwise keeps channel 1 at zero
    y = ir(x2)[0]
    assert y[0, 1, 1, 1].item() == 27 and y[1].abs().sum().item() == 0


def test_conv2plus1d_mid_rule():
    assert r2plus1d_mid_channels(64, 64) == 144
    assert r2plus1d_mid_channels(64, 128) == (27 * 64 * 128) // (9 * 64 + 3 * 128)
    u = make_unit("ST(2+1)D", 64, 64)
    assert u.mid_channels == 144
    # the factorisation keeps the parameter count close to the full 3x3x3 conv
    full = 64 * 64 * 27
    assert abs(sum(p.numel() for p in u.parameters()) - full) / full < 0.01
    assert make_unit("ST(2+1)D", 8, 8, mid_channels=5).mid_channels == 5


@pytest.mark.parametrize("name", list(UNITS))
def test_shapes_under_every_stride(name):
    x = torch.randn(2, 8, 8, 12, 12)
    for ts, ss in itertools.product((1, 2), (1, 2)):
        ts_eff, ss_eff = unit_stride(name, ts, ss)
        u = make_unit(name, 8, 16, temporal_stride=ts_eff, spatial_stride=ss_eff)
        y = u(x)
        assert y.shape == (2, 16, 8 // ts_eff, 12 // ss_eff, 12 // ss_eff), (name, ts, ss)
    # odd sizes: ceil division, as strided 'same' convolutions give
    u = make_unit(name, 8, 8, temporal_stride=unit_stride(name, 2, 2)[0], spatial_stride=2)
    y = u(torch.randn(1, 8, 5, 7, 7))
    assert y.shape[-1] == 4 and y.shape[2] in (3, 5)


def _count(name, cin, cout, **kw):
    return sum(p.numel() for p in make_unit(name, cin, cout, **kw).parameters())


def test_parameter_counts():
    ci, co = 16, 32
    assert _count("S", ci, co) == ci * co * 9
    assert _count("T", ci, co) == ci * co * 3
    assert _count("ST", ci, co) == ci * co * 27
    assert _count("2D", ci, co) == ci * co * 9
    assert _count("S+T", ci, co) == ci * co * 12
    assert _count("S+ST", ci, co) == ci * co * 36
    assert _count("T+ST", ci, co) == ci * co * 30
    assert _count("S+T+ST", ci, co) == ci * co * 39
    m = r2plus1d_mid_channels(ci, co)
    assert _count("ST(2+1)D", ci, co) == ci * m * 9 + 2 * m + m * co * 3
    assert _count("P3D-A", ci, co) == ci * co * 9 + 2 * co + co * co * 3
    assert _count("P3D-B", ci, co) == ci * co * 9 + ci * co * 3
    assert _count("P3D-C", ci, co) == ci * co * 9 + 2 * co + co * co * 3
    assert _count("ip-CSN", ci, co) == ci * co + 2 * co + co * 27
    assert _count("ir-CSN", ci, co) == co * 27


def test_bad_input():
    with pytest.raises(ValueError, match=r"unknown unit 'X'.*S, T, ST"):
        make_unit("X", 4, 4)
    with pytest.raises(ValueError, match=r"'2D' keeps the temporal resolution .* temporal stride 2.*allowed temporal strides: 1"):
        make_unit("2D", 4, 4, temporal_stride=2)
    with pytest.raises(ValueError, match=r"'ir-CSN' is depthwise: out_channels \(6\) must be a multiple of in_channels \(4\)"):
        make_unit("ir-CSN", 4, 6)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        make_unit("S", 0, 4)
    with pytest.raises(ValueError, match="spatial_stride must be a positive integer"):
        make_unit("S", 4, 4, spatial_stride=1.5)
    with pytest.raises(ValueError, match="takes no mid_channels"):
        make_unit("ST", 4, 4, mid_channels=3)
    assert unit_stride("2D", 2, 2) == (1, 2) and unit_stride("S", 2, 2) == (2, 2)
