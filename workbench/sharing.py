"""Moved to :mod:`workbench.engine.sharing`; this name stays importable for one release."""

import sys

from workbench.engine import sharing as _moved

sys.modules[__name__] = _moved
