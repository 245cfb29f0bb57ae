"""The paper's densely connected template network (Zhou et al., CVPR 2020, Fig. 3 and supp Fig. 1).

Each dense layer sees the concatenation of all earlier outputs of its block. After a shared
BN-ReLU, up to three branches act on it:

* ``S``  branch: 1x1x1 conv to ``bn_size * growth`` channels,
* ``ST`` branch: 3x1x1 conv to ``bn_size * growth`` channels,

their sum goes through BN-ReLU and a 1x3x3 conv to ``growth`` channels; so the layer's unit is
``S`` (1x1x1 -> 1x3x3, a 2D layer), ``ST`` (3x1x1 -> 1x3x3, a (2+1)D layer) or ``S+ST`` (both,
summed). The larger unit set adds a ``T`` branch, a 3x1x1 conv straight to ``growth`` channels
added to the output (units ``T``, ``S+T``, ``T+ST``, ``S+T+ST``).

Transitions mirror the layer: BN-ReLU, a 1x1x1 and (unless the network is 2D-only) a 3x1x1 conv,
summed, halving the channels, then average pooling. ``temporal_reduction=8`` reproduces the
authors' ``v1`` variant (stem and pool0 and transition 1 stride 2 in time); ``1`` keeps time
(``v1d3``, supp Fig. 1).
"""

from __future__ import annotations

import contextlib

import torch
import torch.utils.checkpoint
from torch import nn

from ..strategy import Strategy, branches_of, is_temporal
from .base import VideoModel, init_weights
from .gating import Gated

__all__ = ["DenseTemplate", "DenseLayer", "Transition", "DENSENET_BLOCKS"]

DENSENET_BLOCKS = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet-tiny": (2, 2, 2, 2),
    "densenet-small": (3, 4, 6, 3),
}


def unit_branches(unit: str) -> tuple[bool, bool, bool]:
    """(S, ST, T) branches present in a template unit (``skip``: none)."""
    parts = branches_of(unit)
    return ("S" in parts, "ST" in parts, "T" in parts)


class DenseLayer(Gated, nn.Module):
    """One dense layer of the template. Output: ``growth`` new channels."""

    def __init__(self, in_channels: int, growth: int, bn_size: int, unit: str, keep_spatial: bool = False) -> None:
        super().__init__()
        has_s, has_st, has_t = unit_branches(unit)
        self.growth = growth
        width = bn_size * growth
        self.unit = unit
        # Every branch conv has its own BN-ReLU in front (as the authors' Conv3d_with_CD), so a
        # dropped branch takes its normalisation with it; this gives the paper's 21.40M params.
        self.branch_s = _PreAct(in_channels, width, (1, 1, 1)) if has_s else None
        self.branch_st = _PreAct(in_channels, width, (3, 1, 1)) if has_st else None
        # keep_spatial: a layer extracted from the template whose S and ST branches were both
        # dropped still runs BN-ReLU-1x3x3 on a zero input, exactly as the gated template computes
        self.width = width
        if has_s or has_st or keep_spatial:
            self.norm2 = nn.BatchNorm3d(width)
            self.spatial = nn.Conv3d(width, growth, (1, 3, 3), padding=(0, 1, 1), bias=False)
        else:
            self.norm2 = self.spatial = None
        self.branch_t = _PreAct(in_channels, growth, (3, 1, 1)) if has_t else None

    # the gate context (gate_kept, gate_mask) comes from models.gating.Gated, set by a template
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.branch_sum((("S", self.branch_s), ("ST", self.branch_st)), x)
        b, _, t, h, w = x.shape
        if mid is None and self.spatial is not None:
            # S and ST dropped: the 1x3x3 path sees zeros, exactly as the gated template computes
            mid = x.new_zeros((b, self.width, t, h, w))
        out = None
        if mid is not None:
            out = self.spatial(torch.relu(self.norm2(mid)))
        y = self.branch("T", self.branch_t, x)
        if y is not None:
            out = y if out is None else out + y
        if out is None:  # a fresh 'skip' layer adds zero features
            out = x.new_zeros((b, self.growth, t, h, w))
        return out


@contextlib.contextmanager
def _frozen_bn_statistics(module: nn.Module):
    """The recomputation of a checkpointed layer runs its BatchNorms in training mode again: their
    outputs (batch statistics) are the forward's, but the running statistics would be updated a
    second time. They are saved on entry and put back on exit."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
    try:
        yield
    finally:
        for m, (mean, var, n) in zip(bns, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(n)


def _run_layer(layer: DenseLayer, kept, mask, *feats: torch.Tensor) -> torch.Tensor:
    """``layer`` on the concatenated features with the given gate context: a pure function of its
    arguments, so a checkpointed layer recomputes exactly what its forward computed."""
    saved = layer.gate_kept, layer.gate_mask
    layer.gate_kept, layer.gate_mask = kept, mask
    try:
        return layer(torch.cat(feats, 1) if len(feats) > 1 else feats[0])
    finally:
        layer.gate_kept, layer.gate_mask = saved


class _PreAct(nn.Module):
    """BN -> ReLU -> conv (no bias)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int]) -> None:
        super().__init__()
        self.norm = nn.BatchNorm3d(cin)
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv3d(cin, cout, kernel, padding=tuple(k // 2 for k in kernel), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(self.norm(x)))


class Transition(nn.Module):
    """1x1x1 (+ 3x1x1 unless 2D-only) pre-activated convs, summed, halving channels; then pooling."""

    def __init__(self, in_channels: int, out_channels: int, temporal: bool, pool_t: int) -> None:
        super().__init__()
        self.conv = _PreAct(in_channels, out_channels, (1, 1, 1))
        self.conv_t = _PreAct(in_channels, out_channels, (3, 1, 1)) if temporal else None
        self.pool = nn.AvgPool3d((pool_t, 2, 2), stride=(pool_t, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.conv_t is not None:
            y = y + self.conv_t(x)
        return self.pool(y)


class DenseTemplate(VideoModel):
    """The DenseNet template with one unit per dense layer (``strategy.units``).

    Input ``B 3 T H W``; output logits ``B num_classes``.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        num_classes: int = 400,
        growth: int = 32,
        bn_size: int = 4,
        stem_width: int | None = None,
        block_config: tuple[int, ...] | None = None,
        temporal_reduction: int = 1,
        temporal_transitions: bool | None = None,
        dropout: float = 0.0,
        template_compat: bool = False,
    ) -> None:
        super().__init__()
        layout = strategy.layout
        if layout.family != "densenet":
            raise ValueError(f"DenseTemplate needs a densenet backbone strategy, got {strategy.backbone!r}")
        blocks = tuple(block_config or DENSENET_BLOCKS.get(strategy.backbone, layout.groups))
        if blocks != layout.groups:
            raise ValueError(f"block_config {blocks} does not match backbone {strategy.backbone!r} {layout.groups}")
        if temporal_reduction not in (1, 8):
            raise ValueError(f"temporal_reduction must be 1 (v1d3) or 8 (v1), got {temporal_reduction}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.strategy = strategy
        self.num_classes = num_classes
        stem_width = stem_width or 2 * growth
        tr = temporal_reduction == 8
        st = 5 if strategy.stem == "3D" else 1
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_width, (st, 7, 7), (2 if tr else 1, 2, 2), (st // 2, 3, 3), bias=False),
            nn.BatchNorm3d(stem_width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((3 if tr else 1, 3, 3), (2 if tr else 1, 2, 2), (1 if tr else 0, 1, 1)),
        )
        if temporal_transitions is None:  # a network without any temporal unit stays 2D throughout
            temporal_transitions = any(is_temporal(u) for u in strategy.units)
        c = stem_width
        units = iter(strategy.units)
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for b, n in enumerate(blocks):
            layers = nn.ModuleList()
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bn_size, next(units), keep_spatial=template_compat))
                c += growth
            self.blocks.append(layers)
            if b < len(blocks) - 1:
                self.transitions.append(Transition(c, c // 2, temporal_transitions, 2 if (tr and b == 0) else 1))
                c //= 2
        self.norm = nn.BatchNorm3d(c)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(c, num_classes)
        self.feature_dim = c
        init_weights(self)

    def layer_modules(self) -> list[tuple[str, nn.Module]]:
        return [(f"blocks.{b}.{i}", layer) for b, blk in enumerate(self.blocks) for i, layer in enumerate(blk)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.forward_map(x)).flatten(1)

    # Activation checkpointing (memory-efficient DenseNet): each dense layer's concatenation and
    # BN-ReLU-conv outputs are recomputed in the backward pass instead of stored.
    checkpoint_layers: bool = False

    def set_activation_checkpointing(self, enabled: bool = True) -> DenseTemplate:
        """Trade compute for memory in training: a dense layer keeps only its output; the rest is
        recomputed during backward (the gate masks of the step are replayed exactly)."""
        self.checkpoint_layers = bool(enabled)
        return self

    def _layer(self, layer: DenseLayer, feats: list[torch.Tensor]) -> torch.Tensor:
        if self.checkpoint_layers and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(
                _run_layer, layer, layer.gate_kept, layer.gate_mask, *feats, use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(), _frozen_bn_statistics(layer)))
        return layer(torch.cat(feats, 1) if len(feats) > 1 else feats[0])

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, ``B feature_dim T' H' W'`` (before pooling)."""
        x = self._prepare(x)
        x = self.stem(x)
        for b, layers in enumerate(self.blocks):
            feats = [x]
            for layer in layers:
                feats.append(self._layer(layer, feats))
            x = torch.cat(feats, 1)
            if b < len(self.transitions):
                x = self.transitions[b](x)
        return self.relu(self.norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))

    # ---- the forward pass in stages (what prefix-sharing evaluation walks) -----------------------
    # forward_map(x) == head_map(close_block(b, feats)) over the stages below, op for op
    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The input checked and through the stem: the first block's first feature map."""
        return self.stem(self._prepare(x))

    def layer_forward(self, layer: DenseLayer, feats: list[torch.Tensor]) -> torch.Tensor:
        """One dense layer on its block's features so far (its new ``growth`` channels)."""
        return self._layer(layer, feats)

    def close_block(self, b: int, feats: list[torch.Tensor]) -> torch.Tensor:
        """Block ``b``'s concatenated features, through its transition (none after the last)."""
        x = torch.cat(feats, 1)
        return self.transitions[b](x) if b < len(self.transitions) else x

    def head_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output through the final BN-ReLU (``forward_map``'s result)."""
        return self.relu(self.norm(x))
