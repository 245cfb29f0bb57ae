"""The strategy designer, driven programmatically: set a control, the cost and estimate change."""

import json

import pytest
import torch
from conftest import random_clips

from workbench.analysis import estimates_dataset
from workbench.engine.checkpoint import load_checkpoint
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork
from workbench.widgets import StrategyDesigner


@pytest.fixture(scope="module")
def designer():
    torch.manual_seed(0)
    net = TemplateNetwork(num_classes=3, growth=4, bn_size=2)
    with torch.no_grad():
        net.gate_logits.copy_(torch.randn_like(net.gate_logits) * 2)
    data = random_clips(12)
    sampled = net.sample(6, torch.Generator().manual_seed(0))
    est = estimates_dataset([{"strategy": s, "top1": 0.1 * i} for i, s in enumerate(sampled)], sources=["sampled"] * 6)
    return StrategyDesigner(net, data, estimates=est, batch_size=6)


def test_controls_change_cost_and_estimate(designer):
    box = designer.widget()
    assert box.children
    designer.fill_from_marginals()
    assert designer.strategy.units == designer.template.most_probable().units
    layers = designer.controls["layers"]
    layers[0].value = "S"
    before = designer.displayed()
    assert designer.strategy.units[0] == "S"
    layers[0].value = "S+ST"  # through the widget, as a user would
    after = designer.displayed()
    assert designer.strategy.units[0] == "S+ST"
    assert after["params"] != before["params"] and after["gmacs"] != before["gmacs"]
    s = designer.summary()
    assert after["estimate"] == f"{s['estimate']:.3f}" and after["params"] == f"{s['params']:,}"
    from workbench.plots import macs_unit

    factor, unit = macs_unit([s["gmacs"]])  # multiply-adds in the unit that fits them
    assert after["gmacs"] == f"{s['gmacs'] * factor:.4g}" and f"{unit} <b class='wb-gmacs'>" in \
        designer.controls["info"].value
    # the estimate is the template's own evaluation of that strategy
    from torch.utils.data import DataLoader

    from workbench.engine.loop import evaluate

    designer.template.set_strategy(designer.strategy)
    ref = evaluate(designer.template, DataLoader(designer.eval_set, batch_size=6))["top1"]
    designer.template.set_strategy(None)
    assert s["estimate"] == pytest.approx(ref)
    # presets and best sampled move every dropdown
    designer.controls["preset"].value = "st"
    assert [d.value for d in layers] == ["ST"] * 8
    designer.best_sampled()
    assert designer.strategy.units == designer.sampled()[0].units == designer.template.sample(
        6, torch.Generator().manual_seed(0))[5].units
    assert [d.value for d in layers] == list(designer.strategy.units)


def test_diff_against_a_preset(designer):
    designer.apply_preset("st")
    designer.set_unit(2, "S")
    d = designer.diff("st")
    assert d["changed"] == [2]
    assert d["layers"][2] == {"layer": 2, "current": "S", "reference": "ST", "changed": True}
    assert d["d_params"] == designer.cost()[0] - designer.cost(designer.presets["st"])[0] < 0
    designer.widget()
    designer.controls["diff_to"].value = "st"
    assert "changed layers: [2]" in designer.controls["diff"].value
    with pytest.raises(ValueError, match="unknown preset"):
        designer.diff("nope")
    with pytest.raises(ValueError, match="not in the template"):
        designer.set_unit(0, "T")


def test_export_round_trip(designer, tmp_path):
    designer.apply_preset("s+st")
    paths = designer.export(tmp_path, name="mine")
    s = Strategy.from_dict(json.loads(paths["strategy"].read_text()))
    assert s.units == ("S+ST",) * 8
    model, meta, _ = load_checkpoint(tmp_path / "mine-weights")
    x = torch.randn(2, 3, 4, 32, 32)
    designer.template.set_strategy(s)
    with torch.no_grad():
        ref = designer.template.eval()(x)
        assert torch.allclose(model.eval()(x), ref, atol=1e-5)
    designer.template.set_strategy(None)
    assert "def build()" in paths["module"].read_text()


def test_stream_fusion_choice(designer, tmp_path):
    designer.widget()
    designer.set_stream_fusion("none")
    assert "two_stream_params" not in designer.summary()
    designer.controls["fusion"].value = "pyramid"  # through the control
    assert designer.stream_fusion == "pyramid"
    s = designer.summary()
    params, gmacs = designer.cost()
    assert s["two_stream_params"] > 2 * params * 0.9 and s["two_stream_gmacs"] > gmacs
    assert "wb-streams-params" in designer.controls["info"].value
    late = designer.set_stream_fusion("late") and designer.summary()
    assert late["two_stream_params"] != s["two_stream_params"]
    # the two-stream network runs on RGB + flow clips of the design's shape
    net = designer.two_stream_model()
    out = net({"rgb": torch.randn(2, 3, 4, 32, 32), "flow": torch.randn(2, 2, 4, 32, 32)})
    assert out.shape == (2, 3)
    paths = designer.export(tmp_path, name="d2")
    spec = json.loads(paths["streams"].read_text())
    assert spec["fusion"] == "late" and Strategy.from_dict(spec["backbone"]).units == designer.strategy.units
    import importlib.util

    mod_spec = importlib.util.spec_from_file_location("d2", paths["module"])
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    assert sum(p.numel() for p in mod.build_two_stream().parameters()) == late["two_stream_params"]
    with pytest.raises(ValueError, match="unknown stream fusion"):
        designer.set_stream_fusion("early")
    designer.set_stream_fusion("none")


def test_the_shown_static_view_follows_every_change(designer):
    """The table shown under the widget is redrawn for each new design, from the widget or code."""
    shown = []

    class Handle:  # what IPython's display(..., display_id=True) returns in a notebook
        def update(self, obj):
            shown.append(obj.data)

    designer.widget()
    designer.static_handle = Handle()
    designer.apply_preset("st")
    assert shown and designer.strategy.code in shown[-1]
    designer.controls["layers"][0].value = "S" if designer.strategy.units[0] != "S" else "ST"  # through the widget
    assert designer.strategy.code in shown[-1] and shown[-1] != shown[0]
