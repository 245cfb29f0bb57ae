"""Moved to :mod:`workbench.engine.checkpoint`; this name stays importable for one release."""

import sys

from workbench.engine import checkpoint as _moved

sys.modules[__name__] = _moved
