import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from workbench.engine.cost import count_cost
from workbench.models import build_model, create_model
from workbench.models.units import make_unit
from workbench.strategy import preset


@pytest.mark.parametrize(
    "name,gmacs", [("r3d_18", 40.70), ("mc3_18", 43.34), ("r2plus1d_18", 40.52)]
)
def test_torchvision_documented_gmacs(name, gmacs):
    r = count_cost(create_model(name), (3, 16, 112, 112))
    assert round(r.gmacs, 2) == gmacs


def test_layer_rows_sum_to_total():
    m = build_model(preset("mc3"), tiny=True)
    r = count_cost(m, (3, 8, 32, 32))
    assert len(r.layers) == 8 + 1
    assert sum(row.macs for row in r.layers) == r.macs
    assert sum(row.params for row in r.layers) == r.params
    assert [row.unit for row in r.layers[:8]] == list(preset("mc3").units)


def _analytic_conv_macs(conv: nn.Conv3d, out_shape) -> int:
    k = conv.kernel_size[0] * conv.kernel_size[1] * conv.kernel_size[2]
    return int(torch.tensor(out_shape).prod()) * (conv.in_channels // conv.groups) * k


@pytest.mark.parametrize("name", ["ST", "ir-CSN", "ip-CSN", "S+T+ST", "ST(2+1)D"])
def test_grouped_and_factorised_units_match_analytic_count(name):
    # cross-check the counter on grouped convolutions, where its backward count is known to inflate
    unit = make_unit(name, 16, 16, temporal_stride=2, spatial_stride=2)
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.__setitem__(m, o.shape[1:]))
             for m in unit.modules() if isinstance(m, nn.Conv3d)]
    unit(torch.zeros(1, 16, 8, 16, 16))
    for h in hooks:
        h.remove()
    expected = sum(_analytic_conv_macs(m, s) for m, s in shapes.items())

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.unit = unit

        def forward(self, x):
            return self.unit(x)

    assert count_cost(Wrap(), (16, 8, 16, 16)).macs == expected


def test_cost_does_not_touch_model():
    m = create_model("r3d_18", tiny=True)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    count_cost(m, (3, 8, 32, 32))
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    with pytest.raises(ValueError, match="four positive integers"):
        count_cost(m, (3, 8, 32))


def test_cli_cost_json():
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "cost", "--model", "r3d_18", "--frames", "16", "--size", "112", "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    d = json.loads(out)
    assert isinstance(d["params"], int) and d["params"] == 33_371_472
    assert isinstance(d["gmacs"], float) and round(d["gmacs"], 2) == 40.70
