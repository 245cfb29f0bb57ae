"""Moved to :mod:`workbench.studies.fusionbench`; this name stays importable for one release."""

import sys

from workbench.studies import fusionbench as _moved

sys.modules[__name__] = _moved
