"""3D ResNets (basic blocks: 18/34, bottlenecks: 50/101/152) in the torchvision / VMZ layout,
with one fusion unit per residual block chosen by a :class:`~workbench.strategy.Strategy`.

The spatiotemporal conv of every block (both convs of a basic block, the middle conv of a
bottleneck) is the block's unit. Stages 2-4 start with stride 2 in time and space; units that keep
the temporal resolution (``2D``) take stride 1 in time, as torchvision's mc3_18 does.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.units import make_unit, r2plus1d_mid_channels, unit_stride

from ..strategy import Strategy, branches_of
from .base import VideoModel, init_weights
from .gating import Gated

__all__ = ["VideoResNet", "BasicBlock", "Bottleneck", "TemplateBottleneck", "make_stem", "RESNET_DEPTHS"]

# depth -> (block type, blocks per stage)
RESNET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)),
    26: ("bottleneck", (2, 2, 2, 2)),  # only as the tiny ResNet-bottleneck template
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _mid(rule: str, unit: str, block_in: int, planes: int, cin: int, cout: int) -> int | None:
    if unit != "ST(2+1)D":
        return None
    if rule == "torchvision":  # computed once per block from (inplanes, planes), reused for both convs
        return (block_in * planes * 27) // (block_in * 9 + 3 * planes)
    if rule == "paper":  # per conv, as the R(2+1)D paper and VMZ
        return r2plus1d_mid_channels(cin, cout)
    raise ValueError(f"unknown mid-channel rule {rule!r}; expected 'paper' or 'torchvision'")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, unit: str, stride: tuple[int, int], mid_rule: str) -> None:
        super().__init__()
        ts, ss = unit_stride(unit, *stride)
        self.conv1 = make_unit(
            unit, inplanes, planes, temporal_stride=ts, spatial_stride=ss,
            mid_channels=_mid(mid_rule, unit, inplanes, planes, inplanes, planes),
        )
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = make_unit(unit, planes, planes, mid_channels=_mid(mid_rule, unit, inplanes, planes, planes, planes))
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, planes, (ts, ss))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, unit: str, stride: tuple[int, int], mid_rule: str) -> None:
        super().__init__()
        ts, ss = unit_stride(unit, *stride)
        self.conv1 = nn.Conv3d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = make_unit(
            unit, planes, planes, temporal_stride=ts, spatial_stride=ss,
            mid_channels=_mid(mid_rule, unit, inplanes, planes, planes, planes),
        )
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, planes * 4, (ts, ss))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TemplateBottleneck(Gated, nn.Module):
    """The ResNet-bottleneck template (Zhou et al., Table 6): the first conv is a 1x1x1 (``S``), a
    3x1x1 (``ST``) or their sum (``S+ST``), then BN-ReLU, a 1x3x3 (spatial stride) and a 1x1x1.
    Time keeps its resolution. ``skip``: neither branch, the 1x3x3 path sees zeros."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, unit: str, stride: tuple[int, int], mid_rule: str) -> None:
        super().__init__()
        if unit not in ("S", "ST", "S+ST", "skip"):
            raise ValueError(f"template bottleneck unit must be one of S, ST, S+ST, skip; got {unit!r}")
        parts = branches_of(unit)
        ss = stride[1]
        self.unit, self.width = unit, planes
        self.branch_s = nn.Conv3d(inplanes, planes, 1, bias=False) if "S" in parts else None
        self.branch_st = nn.Conv3d(inplanes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False) if "ST" in parts else None
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), stride=(1, ss, ss), padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, planes * 4, (1, ss))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        mid = self.branch_sum((("S", self.branch_s), ("ST", self.branch_st)), x)
        if mid is None:
            b, _, t, h, w = x.shape
            mid = x.new_zeros((b, self.width, t, h, w))
        out = self.relu(self.bn1(mid))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(cin: int, cout: int, stride: tuple[int, int]) -> nn.Module | None:
    ts, ss = stride
    if cin == cout and ts == 1 and ss == 1:
        return None
    return nn.Sequential(
        nn.Conv3d(cin, cout, 1, stride=(ts, ss, ss), bias=False), nn.BatchNorm3d(cout)
    )


class _FoldStem(nn.Module):
    """R2D stem: folds the L frames into channels, then a 1x7x7 conv (time collapses to 1)."""

    def __init__(self, num_frames: int, width: int) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.conv = nn.Conv3d(3 * num_frames, width, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
        self.bn = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if t != self.num_frames:
            raise ValueError(f"R2D stem was built for {self.num_frames} frames, got {t}")
        x = x.reshape(b, c * t, 1, h, w)
        return self.relu(self.bn(self.conv(x)))


def make_stem(kind: str, width: int, *, num_frames: int | None = None) -> nn.Module:
    """ResNet stems: '3D' 3x7x7, '2D' 1x7x7, '(2+1)D' 1x7x7 -> 45 -> 3x1x1 (torchvision), 'fold' (R2D)."""
    if kind == "3D":
        return nn.Sequential(
            nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            nn.BatchNorm3d(width), nn.ReLU(inplace=True),
        )
    if kind == "2D":
        return nn.Sequential(
            nn.Conv3d(3, width, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(width), nn.ReLU(inplace=True),
        )
    if kind == "(2+1)D":
        mid = max(1, round(45 * width / 64))
        return nn.Sequential(
            nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
            nn.Conv3d(mid, width, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
            nn.BatchNorm3d(width), nn.ReLU(inplace=True),
        )
    if kind == "fold":
        if not num_frames:
            raise ValueError("the R2D ('fold') stem needs num_frames, the clip length it folds into channels")
        return _FoldStem(num_frames, width)
    raise ValueError(f"unknown stem {kind!r}; expected one of: 3D, 2D, (2+1)D, fold")


class VideoResNet(VideoModel):
    """A 3D ResNet whose blocks use the units of ``strategy``.

    Input ``B 3 T H W``; output logits ``B num_classes``.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        depth: int | None = None,
        num_classes: int = 400,
        base_width: int = 64,
        mid_rule: str = "paper",
        num_frames: int | None = None,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        stem_pool: bool = False,
        template_compat: bool = False,  # accepted for symmetry with the DenseNet template
    ) -> None:
        super().__init__()
        layout = strategy.layout
        if layout.family not in ("resnet", "resnet-template"):
            raise ValueError(f"VideoResNet needs a resnet backbone strategy, got backbone {strategy.backbone!r}")
        depth = depth or int(strategy.backbone.removeprefix("resnet").removesuffix("-template"))
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"unknown ResNet depth {depth}; expected one of {sorted(RESNET_DEPTHS)}")
        kind, blocks = RESNET_DEPTHS[depth]
        if layout.family == "resnet-template":
            kind = "template"
        if tuple(blocks) != layout.groups:
            raise ValueError(f"depth {depth} has blocks {blocks}, strategy backbone has {layout.groups}")
        if mid_rule not in ("paper", "torchvision"):
            raise ValueError(f"unknown mid-channel rule {mid_rule!r}; expected 'paper' or 'torchvision'")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.strategy = strategy
        self.num_classes = num_classes
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck, "template": TemplateBottleneck}[kind]
        self.stem = make_stem(strategy.stem, base_width, num_frames=num_frames)
        # ImageNet-style 1x3x3 max-pool after the stem (VMZ's CSN and P3D); torchvision's video
        # ResNets have none.
        self.stem_pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)) if stem_pool else nn.Identity()
        inplanes = base_width
        units = iter(strategy.units)
        for s, n in enumerate(blocks):
            planes = base_width * 2**s
            stage = []
            for b in range(n):
                stride = (2, 2) if (s > 0 and b == 0) else (1, 1)
                stage.append(block_cls(inplanes, planes, next(units), stride, mid_rule))
                inplanes = planes * block_cls.expansion
            self.add_module(f"layer{s + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(inplanes, num_classes)
        self.feature_dim = inplanes
        _init_resnet(self, zero_init_residual)

    def layer_modules(self) -> list[tuple[str, nn.Module]]:
        """(name, module) for each strategy layer, in order."""
        out = []
        for s in range(1, 5):
            for i, blk in enumerate(getattr(self, f"layer{s}")):
                out.append((f"layer{s}.{i}", blk))
        return out

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, ``B feature_dim T' H' W'`` (before pooling)."""
        x = self._prepare(x)
        x = self.stem_pool(self.stem(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.forward_map(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def _init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    init_weights(model)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

