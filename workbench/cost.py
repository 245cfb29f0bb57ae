"""Moved to :mod:`workbench.engine.cost`; this name stays importable for one release."""

import sys

from workbench.engine import cost as _moved

sys.modules[__name__] = _moved
