"""Moved to :mod:`workbench.engine.distributed`; this name stays importable for one release."""

import sys

from workbench.engine import distributed as _moved

sys.modules[__name__] = _moved
