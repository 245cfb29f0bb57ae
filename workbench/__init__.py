"""Fusion Workbench: spatiotemporal fusion in 3D CNNs, on the probabilistic view of Zhou et al.

The package reads as the pipeline: ``strategy`` (the space's language, no torch) -> ``data`` ->
``models`` (units and backbones) -> ``template`` (the gated network) -> ``engine`` (training,
evaluation, estimates, checkpoints) -> ``studies`` -> ``analysis`` / ``plots`` -> ``widgets`` and
``notebook`` -> ``cli``. Light at import: torch loads with the submodules that need it.
"""

from .moved import install as _install_moved_names
from .strategy import Strategy, list_backbones, list_presets, parse_strategy, preset

_install_moved_names()  # workbench.train, workbench.supernet, ...: see workbench.moved

__version__ = "0.1.0"
__all__ = ["Strategy", "list_backbones", "list_presets", "parse_strategy", "preset", "__version__"]
