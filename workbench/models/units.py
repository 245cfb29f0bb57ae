"""Spatiotemporal fusion units behind one registry.

Every unit replaces the spatiotemporal convolution of one layer and has the same constructor::

    Unit(in_channels, out_channels, *, temporal_stride=1, spatial_stride=1, mid_channels=None)

so that a backbone picks one per layer by name (as torchvision's video ResNets pick conv makers).
Units map ``B C T H W`` to ``B C' T' H' W'`` with ``T' = ceil(T / temporal_stride)`` and
``H' = ceil(H / spatial_stride)``; they contain no trailing BN/ReLU (the block adds those) and
no bias. Names follow the literature:

========== ===================================================================================
``S``       1x3x3 spatial convolution (the paper's 2D unit; a temporal stride subsamples frames)
``T``       3x1x1 temporal convolution
``ST``      3x3x3 convolution (R3D / C3D / I3D)
``ST(2+1)D`` 1x3x3 -> BN -> ReLU -> 3x1x1 with R(2+1)D's M_i rule for the middle width
``S+T`` ..  element-wise sums of the branches (``S+T``, ``S+ST``, ``T+ST``, ``S+T+ST``)
``P3D-A``   T(S(x)) (cascade; P3D's residual is the block's)
``P3D-B``   S(x) + T(x) (parallel)
``P3D-C``   S(x) + T(S(x)) (cascade plus direct path)
``ip-CSN``  1x1x1 -> BN -> 3x3x3 depthwise (interaction preserved; no ReLU between, as in VMZ)
``ir-CSN``  3x3x3 depthwise (interaction reduced)
``2D``      1x3x3 that never touches time (MCx / rMCx / f-R2D / R2D): it cannot take a temporal
            stride, and backbones keep the temporal resolution where it sits
========== ===================================================================================
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.strategy import UNIT_NAMES

__all__ = [
    "UNITS",
    "FusionUnit",
    "make_unit",
    "unit_stride",
    "r2plus1d_mid_channels",
    "list_units",
]


def r2plus1d_mid_channels(in_channels: int, out_channels: int, t: int = 3, d: int = 3) -> int:
    """R(2+1)D's M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)): keeps the parameter count
    of the factorised conv close to the full t x d x d conv."""
    return (t * d * d * in_channels * out_channels) // (d * d * in_channels + t * out_channels)


def _conv(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int], groups: int = 1) -> nn.Conv3d:
    pad = tuple(k // 2 for k in kernel)
    return nn.Conv3d(cin, cout, kernel, stride=stride, padding=pad, groups=groups, bias=False)


def _check_pos_int(name: str, value: object, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"unit {unit!r}: {name} must be a positive integer, got {value!r}")
    return value


class FusionUnit(nn.Module):
    """Base class: validates the common signature and records the unit's geometry."""

    name: str = ""
    #: False for units that never subsample time (``2D``): backbones ask :func:`unit_stride`.
    temporal_downsampling: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        temporal_stride: int = 1,
        spatial_stride: int = 1,
        mid_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _check_pos_int("in_channels", in_channels, self.name)
        self.out_channels = _check_pos_int("out_channels", out_channels, self.name)
        self.temporal_stride = _check_pos_int("temporal_stride", temporal_stride, self.name)
        self.spatial_stride = _check_pos_int("spatial_stride", spatial_stride, self.name)
        if mid_channels is not None:
            _check_pos_int("mid_channels", mid_channels, self.name)
        if not self.temporal_downsampling and temporal_stride != 1:
            raise ValueError(
                f"unit {self.name!r} keeps the temporal resolution and cannot take temporal stride "
                f"{temporal_stride}; allowed temporal strides: 1 (use 'S' to subsample frames)"
            )

    @property
    def stride(self) -> tuple[int, int, int]:
        return (self.temporal_stride, self.spatial_stride, self.spatial_stride)

    def extra_repr(self) -> str:
        return f"{self.name}: {self.in_channels}->{self.out_channels}, stride={self.stride}"


class _Single(FusionUnit):
    kernel: tuple[int, int, int] = (1, 1, 1)

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.conv = _conv(in_channels, out_channels, self.kernel, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Spatial(_Single):
    name = "S"
    kernel = (1, 3, 3)


class Temporal(_Single):
    name = "T"
    kernel = (3, 1, 1)


class Full3D(_Single):
    name = "ST"
    kernel = (3, 3, 3)


class Frame2D(_Single):
    name = "2D"
    kernel = (1, 3, 3)
    temporal_downsampling = False


_BRANCH_KERNELS = {"S": (1, 3, 3), "T": (3, 1, 1), "ST": (3, 3, 3)}


class BranchSum(FusionUnit):
    """Element-wise sum of parallel branches, each with the unit's full stride."""

    branches_: tuple[str, ...] = ()

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.branches = nn.ModuleDict(
            {b: _conv(in_channels, out_channels, _BRANCH_KERNELS[b], self.stride) for b in self.branches_}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for conv in self.branches.values():
            y = conv(x)
            out = y if out is None else out + y
        return out


def _sum_unit(branches: tuple[str, ...]) -> type[BranchSum]:
    name = "+".join(branches)
    return type(f"Sum_{'_'.join(branches)}", (BranchSum,), {"name": name, "branches_": branches})


class Conv2Plus1D(FusionUnit):
    """R(2+1)D: 1x3x3 (spatial stride) -> BN -> ReLU -> 3x1x1 (temporal stride)."""

    name = "ST(2+1)D"

    def __init__(self, in_channels: int, out_channels: int, *, mid_channels: int | None = None, **kw) -> None:
        super().__init__(in_channels, out_channels, mid_channels=mid_channels, **kw)
        mid = mid_channels or r2plus1d_mid_channels(in_channels, out_channels)
        self.mid_channels = mid
        self.spatial = _conv(in_channels, mid, (1, 3, 3), (1, self.spatial_stride, self.spatial_stride))
        self.bn = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = _conv(mid, out_channels, (3, 1, 1), (self.temporal_stride, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.relu(self.bn(self.spatial(x))))


class P3DA(FusionUnit):
    """P3D-A, cascade: T(ReLU(BN(S(x)))); S takes the spatial stride, T the temporal one."""

    name = "P3D-A"

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.spatial = _conv(in_channels, out_channels, (1, 3, 3), (1, self.spatial_stride, self.spatial_stride))
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = _conv(out_channels, out_channels, (3, 1, 1), (self.temporal_stride, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.relu(self.bn(self.spatial(x))))


class P3DB(FusionUnit):
    """P3D-B, parallel: S(x) + T(x), both with the full stride."""

    name = "P3D-B"

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.spatial = _conv(in_channels, out_channels, (1, 3, 3), self.stride)
        self.temporal = _conv(in_channels, out_channels, (3, 1, 1), self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(x) + self.temporal(x)


class P3DC(FusionUnit):
    """P3D-C, cascade with a direct path: y = S(x); y + T(ReLU(BN(y))); S takes the full stride."""

    name = "P3D-C"

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.spatial = _conv(in_channels, out_channels, (1, 3, 3), self.stride)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=False)
        self.temporal = _conv(out_channels, out_channels, (3, 1, 1), (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.spatial(x)
        return y + self.temporal(self.relu(self.bn(y)))


class IpCSN(FusionUnit):
    """ip-CSN: 1x1x1 (channel interaction) -> BN -> 3x3x3 depthwise (spatiotemporal interaction)."""

    name = "ip-CSN"

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        self.pointwise = _conv(in_channels, out_channels, (1, 1, 1), (1, 1, 1))
        self.bn = nn.BatchNorm3d(out_channels)
        self.depthwise = _conv(out_channels, out_channels, (3, 3, 3), self.stride, groups=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.bn(self.pointwise(x)))


class IrCSN(FusionUnit):
    """ir-CSN: a 3x3x3 depthwise conv alone (out_channels a multiple of in_channels)."""

    name = "ir-CSN"

    def __init__(self, in_channels: int, out_channels: int, **kw) -> None:
        super().__init__(in_channels, out_channels, **kw)
        if out_channels % in_channels:
            raise ValueError(
                f"unit 'ir-CSN' is depthwise: out_channels ({out_channels}) must be a multiple of "
                f"in_channels ({in_channels})"
            )
        self.depthwise = _conv(in_channels, out_channels, (3, 3, 3), self.stride, groups=in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(x)


UNITS: dict[str, type[FusionUnit]] = {
    "S": Spatial,
    "T": Temporal,
    "ST": Full3D,
    "ST(2+1)D": Conv2Plus1D,
    "S+T": _sum_unit(("S", "T")),
    "S+ST": _sum_unit(("S", "ST")),
    "T+ST": _sum_unit(("T", "ST")),
    "S+T+ST": _sum_unit(("S", "T", "ST")),
    "P3D-A": P3DA,
    "P3D-B": P3DB,
    "P3D-C": P3DC,
    "ip-CSN": IpCSN,
    "ir-CSN": IrCSN,
    "2D": Frame2D,
}
# "skip" exists only in template networks (every branch of a layer dropped)
assert tuple(UNITS) == tuple(u for u in UNIT_NAMES if u != "skip"), "strategy and units disagree"


def list_units() -> list[str]:
    return list(UNITS)


def _unit_class(name: str) -> type[FusionUnit]:
    try:
        return UNITS[name]
    except KeyError:
        raise ValueError(f"unknown unit {name!r}; expected one of: {', '.join(UNITS)}") from None


def unit_stride(name: str, temporal_stride: int, spatial_stride: int) -> tuple[int, int]:
    """The stride a backbone should give unit ``name`` when a layer asks for the given strides:
    units that keep the temporal resolution (``2D``) take temporal stride 1."""
    cls = _unit_class(name)
    return (temporal_stride if cls.temporal_downsampling else 1, spatial_stride)


def make_unit(
    name: str,
    in_channels: int,
    out_channels: int,
    *,
    temporal_stride: int = 1,
    spatial_stride: int = 1,
    mid_channels: int | None = None,
) -> FusionUnit:
    """Build fusion unit ``name``; see the module docstring for the catalogue."""
    cls = _unit_class(name)
    kw = dict(temporal_stride=temporal_stride, spatial_stride=spatial_stride)
    if mid_channels is not None:
        if cls is not Conv2Plus1D:
            raise ValueError(f"unit {name!r} takes no mid_channels; only 'ST(2+1)D' does")
        kw["mid_channels"] = mid_channels
    return cls(in_channels, out_channels, **kw)
