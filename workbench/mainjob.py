"""Moved to :mod:`workbench.studies.mainjob`; this name stays importable for one release."""

import sys

from workbench.studies import mainjob as _moved

sys.modules[__name__] = _moved
