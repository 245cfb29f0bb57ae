"""What every video model of the zoo shares: input checking and the memory-format policy."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VideoModel", "check_clip", "init_weights", "paired_init"]


def check_clip(x: torch.Tensor, in_channels: int = 3, what: str = "model") -> None:
    """Raise a ValueError unless ``x`` is a ``B C T H W`` float tensor with ``in_channels`` channels."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} expects a torch.Tensor of shape B C T H W, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{what} expects a 5-D clip batch B C T H W (C={in_channels}), got shape {tuple(x.shape)}"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{what} expects {in_channels} input channels (B C T H W), got {x.shape[1]} in shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{what} expects a floating-point clip (normalise uint8 frames first), got {x.dtype}")


class VideoModel(nn.Module):
    """Mixin for zoo models: validates the input and applies ``channels_last_3d`` when asked.

    channels_last_3d is the largest single CPU win for factorised and depthwise units (see
    benchmarks/models.py), and is what cuDNN prefers under mixed precision.
    """

    in_channels: int = 3
    channels_last: bool = False

    def set_channels_last(self, enabled: bool = True) -> VideoModel:
        self.channels_last = enabled
        fmt = torch.channels_last_3d if enabled else torch.contiguous_format
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        return self

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` checked (``B C T H W`` float) and in this model's memory format."""
        return self._prepare(x)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, self.in_channels, type(self).__name__)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x


def init_weights(model: nn.Module) -> None:
    """torchvision's video-ResNet initialisation: Kaiming-normal (fan_out) convs, BN gamma 1 and
    beta 0, linear layers N(0, 0.01) with zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def paired_init(model, seed: int) -> None:
    """Re-initialise every module that owns parameters from a random stream keyed by ``seed`` and
    its name: two networks of one seed whose layers coincide (the same unit at the same place
    carries the same module names and shapes) start those layers from the same weights."""
    import zlib

    import torch

    for name, module in model.named_modules():
        if hasattr(module, "reset_parameters") and next(module.parameters(recurse=False), None) is not None:
            torch.manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            module.reset_parameters()
