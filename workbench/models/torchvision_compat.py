"""Load torchvision's video ResNet weights (r3d_18, mc3_18, r2plus1d_18) into our models.

torchvision wraps each conv in ``Sequential(conv_maker, BN, ReLU)`` and R(2+1)D's conv maker is a
``Sequential(1x3x3, BN, ReLU, 3x1x1)``; ours names the same tensors after what they are. The
mapping is explicit and the load is strict, so any mismatch is an error, not a silent skip.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

SUPPORTED = ("r3d_18", "mc3_18", "r2plus1d_18")

_RULES: list[tuple[re.Pattern, str]] = [
    # R(2+1)D conv maker: Sequential(spatial, BN, ReLU, temporal)
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.0\.weight$"), r"\1.conv\2.spatial.weight"),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.1\.(\w+)$"), r"\1.conv\2.bn.\3"),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.3\.weight$"), r"\1.conv\2.temporal.weight"),
    # Conv3DSimple / Conv3DNoTemporal: a plain conv
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.weight$"), r"\1.conv\2.conv.weight"),
    # the BN that follows each conv maker
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.1\.(\w+)$"), r"\1.bn\2.\3"),
]


def convert_key(key: str) -> str:
    for pattern, repl in _RULES:
        if pattern.match(key):
            return pattern.sub(repl, key)
    return key  # stem.*, layerN.M.downsample.*, fc.* share torchvision's names


def torchvision_state_dict_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """torchvision key -> our key."""
    return {k: convert_key(k) for k in state_dict}


def from_torchvision_state_dict(name: str, state_dict: Mapping[str, torch.Tensor], **kw):
    """Our ``name`` model (one of r3d_18, mc3_18, r2plus1d_18) holding torchvision's weights.

    The number of classes is taken from the state dict's ``fc.weight``.
    """
    from . import create_model

    if name not in SUPPORTED:
        raise ValueError(f"no torchvision converter for {name!r}; supported: {', '.join(SUPPORTED)}")
    if "fc.weight" not in state_dict:
        raise ValueError("state dict has no 'fc.weight': is this a torchvision video ResNet state dict?")
    num_classes = state_dict["fc.weight"].shape[0]
    model = create_model(name, num_classes=num_classes, **kw)
    converted = {convert_key(k): v for k, v in state_dict.items()}
    ours = model.state_dict()
    missing = sorted(set(ours) - set(converted))
    unexpected = sorted(set(converted) - set(ours))
    if missing or unexpected:
        raise ValueError(
            f"torchvision state dict does not fit {name}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for k, v in converted.items():
        if ours[k].shape != v.shape:
            raise ValueError(f"shape mismatch for {k}: ours {tuple(ours[k].shape)}, torchvision {tuple(v.shape)}")
    model.load_state_dict(converted, strict=True)
    return model
