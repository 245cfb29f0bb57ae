"""``python -m workbench.cli`` works as ``python -m workbench``."""

from workbench.cli import main

raise SystemExit(main())
