"""Moved to :mod:`workbench.studies.compare`; this name stays importable for one release."""

import sys

from workbench.studies import compare as _moved

sys.modules[__name__] = _moved
