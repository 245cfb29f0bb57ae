"""Gating: how a template layer runs its branches under the template's gate context.

As timm's ``DropPath`` wraps ``drop_path``, a pure function (:func:`gated_branch`) does the work
and a thin mixin (:class:`Gated`) holds the context the template network sets around each forward
pass: which branches run (``gate_kept``; None: every branch the layer has) and a per-example
multiplier per branch (``gate_mask``; None: 1). The DenseNet layer and the ResNet bottleneck of
the templates both use it; a zoo model without a template never sees a gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["gated_branch", "gated_sum", "Gated"]


def gated_branch(x: torch.Tensor, name: str, branch: nn.Module | None, kept: Sequence[str] | None,
                 mask: Mapping[str, torch.Tensor] | None) -> torch.Tensor | None:
    """``branch(x)`` under a gate context: None when the layer has no such branch or the context
    drops it (dropped branches are not computed); times its mask when one is given."""
    if branch is None or (kept is not None and name not in kept):
        return None
    y = branch(x)
    return y if mask is None else y * mask[name]


def gated_sum(x: torch.Tensor, branches: Sequence[tuple[str, nn.Module | None]], kept, mask) -> torch.Tensor | None:
    """The sum of the gated branches' outputs, in the order given (None when none runs)."""
    out = None
    for name, branch in branches:
        y = gated_branch(x, name, branch, kept, mask)
        if y is not None:
            out = y if out is None else out + y
    return out


class Gated:
    """Mixin of a template layer: the gate context, and its branches run under it."""

    gate_kept: tuple[str, ...] | None = None
    gate_mask: dict[str, torch.Tensor] | None = None

    def branch(self, name: str, module: nn.Module | None, x: torch.Tensor) -> torch.Tensor | None:
        return gated_branch(x, name, module, self.gate_kept, self.gate_mask)

    def branch_sum(self, branches: Sequence[tuple[str, nn.Module | None]], x: torch.Tensor) -> torch.Tensor | None:
        return gated_sum(x, branches, self.gate_kept, self.gate_mask)
