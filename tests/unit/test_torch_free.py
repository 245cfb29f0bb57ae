"""The analysis side of the workbench imports no torch: a fresh interpreter proves it."""

import subprocess
import sys

import pytest

TORCH_FREE = ["workbench.strategy", "workbench.analysis", "workbench.plots", "workbench.runs", "workbench.study",
              "workbench.studies.rank", "workbench.studies.trust", "workbench.studies.trust_record",
              "workbench.studies.agreement", "workbench.studies.levers", "workbench.studies.recommend",
              "workbench.studies.anchors", "workbench.engine.config",
              "workbench.cli"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_no_torch(module):
    code = f"import sys, {module}; bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; print(bad)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"importing {module} pulls in {r.stdout.strip()}"


def test_trust_line_and_strategy_list_need_no_torch(tmp_path):
    code = ("import sys\nfrom workbench.studies.trust_record import trust_line\nfrom workbench.cli import main\n"
            f"trust_line({str(tmp_path)!r})\nmain(['strategy', '--list', '--backbone', 'c3d'])\n"
            "main(['strategy', 'opt', '--backbone', 'densenet121'])\n"
            "print('TORCH', 'torch' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "TORCH False" in r.stderr
