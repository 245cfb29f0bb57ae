"""Moved to :mod:`workbench.studies.pipeline`; this name stays importable for one release."""

import sys

from workbench.studies import pipeline as _moved

sys.modules[__name__] = _moved
