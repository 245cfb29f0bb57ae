"""Moved to :mod:`workbench.models.units`; this name stays importable for one release."""

import sys

from workbench.models import units as _moved

sys.modules[__name__] = _moved
