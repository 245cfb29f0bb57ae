"""Moved to :mod:`workbench.template.network`; this name stays importable for one release."""

import sys

from workbench.template import network as _moved

sys.modules[__name__] = _moved
