"""The strategy designer: assemble a fusion strategy layer by layer in a notebook.

``core`` (:class:`StrategyDesigner`: state, cost, estimate, diff), ``view`` (the ipywidgets and the
static HTML view), ``jobs`` (export, and stand-alone training in a background thread with its
record beside the estimate).
"""

from .core import StrategyDesigner

__all__ = ["StrategyDesigner"]
