"""Moved to :mod:`workbench.studies.known_answer`; this name stays importable for one release."""

import sys

from workbench.studies import known_answer as _moved

sys.modules[__name__] = _moved
