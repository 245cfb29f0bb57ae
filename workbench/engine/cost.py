"""Parameters and multiply-adds, per strategy layer and in total.

MACs come from torch's own ``torch.utils.flop_counter.FlopCounterMode`` on a forward pass, which
counts FLOPs = 2 x MACs; we divide by two and report GMACs (never bare "FLOPs"). Only the forward
pass is counted: the counter's backward count for grouped convolutions is inflated (see
benchmarks/README), and the literature quotes forward cost.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["CostReport", "LayerCost", "count_cost", "count_params", "count_stream_cost"]


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@dataclass
class LayerCost:
    name: str  # module path
    unit: str  # fusion unit ("" for stem / head rows)
    params: int
    macs: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


@dataclass
class CostReport:
    model: str
    input_shape: tuple[int, ...]  # C T H W
    params: int
    macs: int
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gmacs"] = self.gmacs
        d["input_shape"] = list(self.input_shape)
        for row in d["layers"]:
            row["gmacs"] = row["macs"] / 1e9
        return d


def count_cost(
    model: nn.Module,
    input_shape: tuple[int, int, int, int] = (3, 16, 112, 112),
    *,
    name: str = "",
) -> CostReport:
    """Params and forward MACs of ``model`` on one clip of ``input_shape`` (C T H W).

    ``layers`` has one row per strategy layer (when the model exposes ``layer_modules()``), plus
    a row for everything else (stem, transitions, head) so that the rows sum to the total.
    """
    if len(input_shape) != 4 or any((not isinstance(s, int)) or s < 1 for s in input_shape):
        raise ValueError(f"input_shape must be four positive integers C T H W, got {input_shape!r}")
    # Count on a copy on the meta device: shapes propagate, no arithmetic is done.
    probe = copy.deepcopy(model).to("meta").eval()
    x = torch.zeros((1, *input_shape), device="meta")
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        probe(x)
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    total = sum(counts.get("Global", {}).values()) // 2
    rows: list[LayerCost] = []
    layer_modules = model.layer_modules() if hasattr(model, "layer_modules") else []
    units = getattr(getattr(model, "strategy", None), "units", None)
    used_macs = used_params = 0
    for i, (path, mod) in enumerate(layer_modules):
        macs = sum(counts.get(f"{prefix}.{path}", {}).values()) // 2
        params = count_params(mod)
        rows.append(LayerCost(path, units[i] if units and i < len(units) else "", params, macs))
        used_macs += macs
        used_params += params
    total_params = count_params(model)
    if rows:
        rows.append(LayerCost("other (stem, transitions, head)", "", total_params - used_params, total - used_macs))
    return CostReport(name or type(model).__name__, tuple(input_shape), total_params, total, rows)


def count_stream_cost(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> tuple[int, int]:
    """``(params, MACs)`` of a multi-input model (a two-stream or multi-modal network) on one
    example whose inputs have ``shapes`` (``{"rgb": (3, T, H, W), "flow": (2, T, H, W), ...}``).
    The FFTs of compact bilinear fusion are not matrix products and are not counted (they are
    ``O(d log d)`` per fused vector, small beside the streams)."""
    probe = copy.deepcopy(model).to("meta").eval()
    x = {k: torch.zeros((1, *s), device="meta") for k, s in shapes.items()}
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        probe(x)
    return count_params(model), sum(counter.get_flop_counts().get("Global", {}).values()) // 2
