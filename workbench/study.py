"""Moved to :mod:`workbench.studies.rank`; this name stays importable for one release."""

import sys

from workbench.studies import rank as _moved

sys.modules[__name__] = _moved
