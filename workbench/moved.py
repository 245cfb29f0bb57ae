"""Old module names, still importable for one release: ``workbench.train`` is
``workbench.engine.loop``, and so on (:data:`MOVED`). A finder on ``sys.meta_path`` answers
``import workbench.<old>`` with the module at its new place (the same object: attributes,
monkeypatching and pickling all see one module); nothing is imported until asked for."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "workbench.units": "workbench.models.units",
    "workbench.supernet": "workbench.template.network",
    "workbench.fewshot": "workbench.template.fewshot",
    "workbench.train": "workbench.engine.loop",
    "workbench.estimate": "workbench.engine.estimate",
    "workbench.sharing": "workbench.engine.sharing",
    "workbench.cost": "workbench.engine.cost",
    "workbench.checkpoint": "workbench.engine.checkpoint",
    "workbench.distributed": "workbench.engine.distributed",
    "workbench.pipeline": "workbench.studies.pipeline",
    "workbench.study": "workbench.studies.rank",
    "workbench.compare": "workbench.studies.compare",
    "workbench.mainjob": "workbench.studies.mainjob",
    "workbench.fusionbench": "workbench.studies.fusionbench",
    "workbench.known_answer": "workbench.studies.known_answer",
    "workbench.data.cli": "workbench.cli.data",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module) -> None:
        real = importlib.import_module(MOVED[module.__name__])
        sys.modules[module.__name__] = real  # the import statement returns what sys.modules holds
        parent, _, leaf = module.__name__.rpartition(".")
        setattr(sys.modules[parent], leaf, real)


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
