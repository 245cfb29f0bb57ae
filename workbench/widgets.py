"""The strategy designer (:mod:`workbench.designer`), under the name notebooks import it by."""

from workbench.designer import StrategyDesigner

__all__ = ["StrategyDesigner"]
