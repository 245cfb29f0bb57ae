"""Fusion Workbench: spatiotemporal fusion in 3D CNNs, on the probabilistic view of Zhou et al.

Light at import: torch-dependent parts live in submodules (``workbench.units``,
``workbench.models``, ``workbench.cost``).
"""

from .strategy import Strategy, list_backbones, list_presets, parse_strategy, preset

__version__ = "0.1.0"
__all__ = ["Strategy", "list_backbones", "list_presets", "parse_strategy", "preset", "__version__"]
