"""Old module names stay importable (for one release) and are the modules at their new place."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from workbench.moved import MOVED


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_name_is_the_new_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_names_cost_nothing_until_used_and_keep_torch_out():
    code = ("import sys, workbench, workbench.study, workbench.runs; "
            "print('torch' in sys.modules, 'workbench.engine.loop' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_monkeypatching_an_old_name_patches_the_module(monkeypatch):
    import workbench.train as train

    import workbench.engine.loop as loop

    monkeypatch.setattr("workbench.train.amp_dtype", lambda device: "patched")
    assert loop.amp_dtype("cpu") == "patched" and train.amp_dtype is loop.amp_dtype
