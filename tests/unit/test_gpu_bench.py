"""The GPU benchmark script runs at tiny size on CPU with only torch, numpy and safetensors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from workbench.engine.loop import amp_dtype
from workbench.template.network import TemplateNetwork

ROOT = Path(__file__).resolve().parents[2]

# what a bare GPU box may lack: the script must not need any of it
BLOCKER = """
import importlib.abc, sys
BLOCKED = {"tqdm", "yaml", "xarray", "netCDF4", "h5netcdf", "pandas", "matplotlib", "scipy", "av", "plotly", "ipywidgets"}
class Block(importlib.abc.MetaPathFinder):
    # an import of a blocked package fails as if it were not installed; a mere spec lookup
    # (torch._dynamo asks where some packages live without importing them) is left alone
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            caller = sys._getframe(1).f_back  # importlib._bootstrap._find_spec's caller
            if caller is not None and caller.f_code.co_name == "_find_and_load_unlocked":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
        return None
sys.meta_path.insert(0, Block())
import runpy
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_gpu_benchmark_runs_tiny_on_cpu_without_optional_packages(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--tiny",
         "--out", str(out), "--budget-s", "900"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "gpu-bench.json").read_text())
    sec = res["sections"]
    for name in ("environment", "max_batch", "train_step", "gate_overhead", "estimates", "loader"):
        assert sec[name]["status"] == "ok", (name, sec[name])
    assert sec["environment"]["torch"] == torch.__version__
    assert sec["max_batch"]["fp32_checkpointing"]["largest_batch"] >= 4
    assert sec["train_step"]["fp32"]["clips_per_s"] > 0
    assert isinstance(sec["gate_overhead"]["gate_overhead"], float)
    assert sec["estimates"]["fp32"]["strategies_per_minute"] > 0
    assert "PyAV" in sec["loader"]["mp4"]["skipped"]
    assert sec["sync_check"]["status"] == "skipped" and sec["compile"]["status"] == "skipped"


def test_gpu_benchmark_refuses_real_size_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--tiny" in r.stderr.strip().splitlines()[-1]


def _grads(checkpointing: bool):
    torch.manual_seed(0)
    m = TemplateNetwork(num_classes=5, growth=4, bn_size=2)
    if checkpointing:
        m.set_activation_checkpointing(True)
    m.train()
    x = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)  # the same concrete masks in both runs
    loss = m(x).logsumexp(1).sum() + m.regularizer(100)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    return grads, {n: b.clone() for n, b in m.named_buffers()}


def test_activation_checkpointing_replays_the_gate_masks_exactly():
    (plain, plain_bn), (ckpt, ckpt_bn) = _grads(False), _grads(True)
    assert plain.keys() == ckpt.keys() and len(plain) > 10
    for n in plain:
        torch.testing.assert_close(ckpt[n], plain[n], rtol=1e-5, atol=1e-6, msg=n)
    # the recomputation in backward does not update the BatchNorm statistics a second time
    assert plain_bn.keys() == ckpt_bn.keys()
    for n in plain_bn:
        torch.testing.assert_close(ckpt_bn[n], plain_bn[n], rtol=1e-5, atol=1e-6, msg=n)


def test_activation_checkpointing_is_refused_for_the_resnet_template():
    m = TemplateNetwork(backbone="resnet26-template", num_classes=5, base_width=4)
    try:
        m.set_activation_checkpointing(True)
    except ValueError as e:
        assert "DenseNet" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected a ValueError")


def test_amp_is_a_gpu_feature():
    assert amp_dtype("cpu") is None
