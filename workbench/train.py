"""Moved to :mod:`workbench.engine.loop`; this name stays importable for one release."""

import sys

from workbench.engine import loop as _moved

sys.modules[__name__] = _moved
