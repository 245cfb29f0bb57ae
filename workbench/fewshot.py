"""Moved to :mod:`workbench.template.fewshot`; this name stays importable for one release."""

import sys

from workbench.template import fewshot as _moved

sys.modules[__name__] = _moved
