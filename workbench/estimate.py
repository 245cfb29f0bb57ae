"""Moved to :mod:`workbench.engine.estimate`; this name stays importable for one release."""

import sys

from workbench.engine import estimate as _moved

sys.modules[__name__] = _moved
