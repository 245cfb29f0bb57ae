"""Inference fast path: fold every BatchNorm that follows a linear conv path into that path.

In eval mode a BatchNorm is an affine map per channel, so ``BN(conv(x))`` equals a conv with
scaled weights and a bias; for a unit that is a *sum* of branch convs, the scale goes into every
branch and the shift into one. This removes one full pass over the activations per BN, which is
what the memory-bound CPU path pays for. The result is numerically equal (float tolerance) and
only valid for inference: running statistics are baked in.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from workbench.models.units import BranchSum, Conv2Plus1D, Frame2D, Full3D, IrCSN, Spatial, Temporal

__all__ = ["fuse_for_inference"]

_SINGLE = (Spatial, Temporal, Full3D, Frame2D)


def _fold(convs: list[nn.Conv3d], bn: nn.BatchNorm3d) -> None:
    """BN(sum(convs)) -> sum(convs') with BN folded in; the shift goes into the first conv's bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    for i, conv in enumerate(convs):
        conv.weight.data.mul_(scale.view(-1, 1, 1, 1, 1))
        bias = conv.bias.data * scale if conv.bias is not None else torch.zeros_like(shift)
        if i == 0:
            bias = bias + shift
        conv.bias = nn.Parameter(bias.detach().clone())


def _unit_convs(unit: nn.Module) -> list[nn.Conv3d] | None:
    """The convs whose outputs sum to the unit's output, when the unit ends linearly."""
    if isinstance(unit, _SINGLE):
        return [unit.conv]
    if isinstance(unit, BranchSum):
        return list(unit.branches.values())
    if isinstance(unit, IrCSN):
        return [unit.depthwise]
    if isinstance(unit, Conv2Plus1D):
        return [unit.temporal]
    return None


def _fold_inner(unit: nn.Module) -> None:
    if isinstance(unit, Conv2Plus1D) and isinstance(unit.bn, nn.BatchNorm3d):
        _fold([unit.spatial], unit.bn)
        unit.bn = nn.Identity()


@torch.no_grad()
def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with BatchNorms folded into the preceding convs.

    Handles the zoo's ResNets (stems, blocks, shortcuts) and any block whose unit ends with a
    linear conv path; other BNs are left as they are.
    """
    from .resnet3d import BasicBlock, Bottleneck

    m = copy.deepcopy(model).eval()
    for mod in m.modules():
        if isinstance(mod, (BasicBlock, Bottleneck)):
            pairs = [("conv1", "bn1"), ("conv2", "bn2")] + ([("conv3", "bn3")] if isinstance(mod, Bottleneck) else [])
            for c_name, b_name in pairs:
                conv = getattr(mod, c_name)
                _fold_inner(conv)
                convs = [conv] if isinstance(conv, nn.Conv3d) else _unit_convs(conv)
                if convs is not None:
                    _fold(convs, getattr(mod, b_name))
                    setattr(mod, b_name, nn.Identity())
            if mod.downsample is not None:
                _fold([mod.downsample[0]], mod.downsample[1])
                mod.downsample[1] = nn.Identity()
        elif isinstance(mod, nn.Sequential):
            # stems: conv, BN, ReLU[, conv, BN, ReLU]
            items = list(mod)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv3d) and isinstance(items[i + 1], nn.BatchNorm3d):
                    _fold([items[i]], items[i + 1])
                    mod[i + 1] = nn.Identity()
    if getattr(m, "channels_last", False):
        m.set_channels_last(True)
    return m
