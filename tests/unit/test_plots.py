"""Every figure function returns its figure; exported files are valid (PDF opens, SVG parses,
PNG has the requested size)."""

import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from workbench.analysis import estimates_dataset, history_dataset, layer_importance, marginals  # noqa: E402
from workbench.plots import (  # noqa: E402
    COLUMN_WIDTHS,
    UNIT_COLOURS,
    accuracy_histogram,
    accuracy_vs_gmacs,
    compare_marginals,
    gate_trajectories,
    layer_importance_plot,
    lever_forest,
    save_figure,
    unit_bars,
    unit_heatmap,
)
from workbench.strategy import Strategy  # noqa: E402
from workbench.template.network import TemplateNetwork  # noqa: E402


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = TemplateNetwork(num_classes=3, growth=4, bn_size=2)
    with torch.no_grad():
        m.gate_logits.copy_(torch.randn_like(m.gate_logits))
    return m


@pytest.fixture(scope="module")
def est(net):
    rng = np.random.default_rng(0)
    strategies = net.sample(40, torch.Generator().manual_seed(0))
    rows = [{"strategy": s, "top1": float(rng.uniform(0.3, 0.9)), "gmacs": float(rng.uniform(0.01, 0.05)),
             "params": 1000, "n_eval": 200} for s in strategies]
    preset = Strategy(net.backbone, ("ST",) * 8, net.config.stem, name="st")
    rows.append({"strategy": preset, "top1": 0.8, "gmacs": 0.05, "params": 1200, "n_eval": 200})
    return estimates_dataset(rows, sources=["sampled"] * 40 + ["preset"])


def _history(net, epochs=6):
    g = [torch.sigmoid(net.gate_logits.detach() * (e / epochs)).tolist() for e in range(epochs)]
    h = {"epoch": list(range(epochs)), "phase": ["warmup"] * 2 + ["gated"] * (epochs - 2),
         "lr": [1e-3] * epochs, "train_loss": [1.0] * epochs, "train_reg": [0.0] * epochs,
         "train_acc": [0.5] * epochs, "val_loss": [1.0] * epochs, "val_acc": [0.5] * epochs,
         "seconds": [1.0] * epochs, "gates": g}
    return history_dataset(h, backbone=net.backbone, branches=net.branches, units=net.units)


def test_space_figures_return_figures(net, est):
    m = marginals(net)
    for fig in (unit_heatmap(m), unit_bars(m), gate_trajectories(_history(net)),
                gate_trajectories(_history(net), units=False), accuracy_histogram(est),
                accuracy_vs_gmacs(est, trust="estimates UNVALIDATED"), layer_importance_plot(layer_importance(est))):
        assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    # drawing into a given axes uses it
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert unit_bars(m, ax=ax) is fig
    # unit colours: one per unit, the same everywhere
    bars = [p for p in ax.patches]
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == UNIT_COLOURS["S"].lower()
    b = marginals(net)
    b = b.copy(data=np.roll(b.values, 1, axis=1))
    fig = compare_marginals(m, b, labels=("appearance", "motion"))
    assert len(fig.axes) >= 3
    with pytest.raises(ValueError, match="unit set"):
        compare_marginals(m, m.isel(layer=slice(0, 4)))
    with pytest.raises(ValueError, match="gate trajectories"):
        gate_trajectories(_history(net).drop_vars(["drop_p", "unit_probability"]))


def test_layer_importance_finds_the_layer_that_matters(net):
    rng = np.random.default_rng(1)
    strategies = net.sample(200, torch.Generator().manual_seed(1))
    # accuracy depends on layer 5 only: ST there is worth 0.3
    rows = [{"strategy": s, "top1": 0.5 + 0.3 * (s.units[5] == "ST") + rng.normal(0, 0.01)} for s in strategies]
    imp = layer_importance(estimates_dataset(rows))
    assert int(np.nanargmax(imp["importance"].values)) == 5
    j = list(imp["unit"].values).index("ST")
    assert imp["effect"].values[5, j] > 0.15


def test_exported_files_are_valid(tmp_path, net):
    fig = unit_heatmap(marginals(net), width="single")
    paths = save_figure(fig, tmp_path / "fig", formats=("pdf", "svg", "png"), dpi=100)
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-64:]
    assert b"/FontFile2" in pdf  # TrueType font embedded (fonttype 42)
    root = ET.parse(tmp_path / "fig.svg").getroot()
    assert root.tag.endswith("svg")
    with Image.open(tmp_path / "fig.png") as im:
        w, h = im.size
    fw, fh = fig.get_size_inches()
    assert fw == pytest.approx(COLUMN_WIDTHS["single"])
    assert (w, h) == (round(fw * 100), round(fh * 100)) and len(paths) == 3
    with pytest.raises(ValueError, match="format"):
        save_figure(fig, tmp_path / "x", formats=("jpg",))


def test_lever_forest(tmp_path):
    import xarray as xr

    t = xr.Dataset({"lever": ("row", np.array(["a", "b"], dtype=object)),
                    "predictor": ("row", np.array(["shared", "log_prob"], dtype=object)),
                    "tau": ("row", [0.5, 0.2]), "tau_lo": ("row", [0.3, -0.1]), "tau_hi": ("row", [0.7, 0.4])},
                   attrs={"seed_tau": 0.8})
    fig = lever_forest(t)
    labels = [tk.get_text() for tk in fig.axes[0].get_yticklabels()]
    assert labels[0].startswith("b") or labels[-1].startswith("b")


def test_comparison_and_gblend_figures():
    import numpy as np
    import xarray as xr

    from workbench.streams.study import gblend_figure
    from workbench.studies.compare import comparison_figure

    rng = np.random.default_rng(0)
    ds = xr.Dataset({"test_top1": (("model", "seed"), rng.random((3, 2))), "mean_top1": ("model", rng.random(3)),
                     "gmacs": ("model", rng.random(3)),
                     "source": ("model", np.array(["literature", "two-stream", "probability space"], dtype=object))},
                    coords={"model": ["c3d", "two-stream pyramid", "most probable"], "seed": [0, 1]})
    fig = comparison_figure(ds)
    ax = fig.axes[0]
    assert len(ax.collections) >= 3 and {t.get_text() for t in ax.texts} >= {"c3d", "two-stream pyramid"}
    runs = ["rgb only", "audio only", "naive joint", "G-Blend offline", "G-Blend online"]
    gb = xr.Dataset({"test_top1": (("run", "seed"), rng.random((5, 2))), "mean_top1": ("run", rng.random(5))},
                    coords={"run": runs, "seed": [0, 1]})
    fig = gblend_figure(gb)
    assert [t.get_text().replace("\n", " ") for t in fig.axes[0].get_xticklabels()] == runs


_FAKE_INLINE = '''
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401
matplotlib.interactive(True)  # as matplotlib_inline does when the kernel's first figure loads it
'''

_FIRST_FIGURE = '''
import matplotlib, numpy as np, xarray as xr
from workbench.plots import unit_bars
m = xr.DataArray(np.full((3, 2), 0.5), dims=("layer", "unit"), coords={"layer": [0, 1, 2], "unit": ["S", "ST"]})
assert not matplotlib.is_interactive()
unit_bars(m)
print(matplotlib.is_interactive(), matplotlib.get_backend())
'''


def test_first_figure_keeps_the_kernels_interactive_mode(tmp_path):
    """In a fresh Jupyter kernel the first figure resolves the inline backend, which turns the
    interactive mode on; drawing that figure in paper style must leave it on (else no later figure
    of the kernel displays)."""
    import os
    import subprocess
    import sys

    (tmp_path / "fake_inline.py").write_text(_FAKE_INLINE)
    env = {**os.environ, "MPLBACKEND": "module://fake_inline",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _FIRST_FIGURE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "module://fake_inline"]


def test_figures_leave_interactive_mode_and_backend_alone(net, est):
    import matplotlib.pyplot as plt

    from workbench.plots import paper_style

    backend = matplotlib.get_backend()
    for on in (True, False):
        matplotlib.interactive(on)
        try:
            for fig in (unit_bars(marginals(net)), accuracy_vs_gmacs(est), gate_trajectories(_history(net))):
                plt.close(fig)
            assert matplotlib.is_interactive() is on and matplotlib.get_backend() == backend
            with paper_style():  # a switch inside the block stays
                matplotlib.interactive(not on)
            assert matplotlib.is_interactive() is (not on)
        finally:
            matplotlib.interactive(False)
    with paper_style():
        assert matplotlib.rcParams["font.size"] == 8
    assert matplotlib.rcParams["font.size"] == matplotlib.rcParamsDefault["font.size"]


def _est_without_skip_at(net, layer=6):
    """Estimates where one layer never holds ``skip`` (and so has fewer categories than the rest)."""
    rng = np.random.default_rng(2)
    rows = []
    for s in net.sample(60, torch.Generator().manual_seed(2)):
        units = list(s.units)
        if units[layer] == "skip":
            units[layer] = "S+ST"
        rows.append({"strategy": Strategy(s.backbone, units, s.stem), "top1": float(rng.uniform(0.4, 0.9)),
                     "gmacs": float(rng.uniform(0.007, 0.009)), "params": 1000})
    return estimates_dataset(rows)


def test_parallel_units_same_category_order_hover_and_clear_colour_bar(net):
    from workbench.plots import parallel_units, unit_order

    est = _est_without_skip_at(net)
    assert "skip" not in set(est["units"].values[:, 6]) and "skip" in set(est["units"].values[:, 0])
    fig = parallel_units(est)
    (trace,) = fig.data
    layers = [d for d in trace.dimensions if d.label.startswith("layer")]
    assert len(layers) == 8
    order = unit_order(est["units"].values)
    assert order == ["S", "ST", "S+ST", "skip"]
    # one category order on every axis, also where a unit never occurs (layer 6: no skip)
    assert all(d.categoryorder == "array" and list(d.categoryarray) == order for d in layers)
    assert trace.arrangement == "fixed"  # the order stays as drawn
    # hover says what is under the pointer
    assert trace.hoveron and "%{count}" in trace.hovertemplate and "%{category}" in trace.hovertemplate
    # the colour bar, titled, sits right of the plot area, clear of the last axis' labels
    bar = trace.line.colorbar
    assert trace.line.showscale and bar.title.text == "estimated top-1"
    assert trace.domain.x[1] <= 0.9 and bar.x >= 1.0 and bar.xanchor == "left"
    # the last axis: top-1 in bins, best on top
    top = trace.dimensions[-1]
    assert top.label == "top-1" and list(top.categoryarray) == sorted(top.categoryarray, reverse=True)


def test_interactive_heatmap_and_scatter_titles(net, est):
    from workbench.plots import interactive_heatmap, interactive_scatter

    fig = interactive_heatmap(marginals(net))
    assert fig.layout.xaxis.title.text == "unit" and fig.layout.yaxis.title.text == "layer"
    assert fig.data[0].colorbar.title.text == "P(unit)"
    assert "%{z" in fig.data[0].hovertemplate
    fig = interactive_scatter(est, trust="estimates UNVALIDATED (no rank study)")
    assert fig.layout.xaxis.title.text == "MMACs per clip"  # the fixture's networks are tiny
    assert max(fig.data[0].x) == pytest.approx(1000 * est["gmacs"].values[:40].max())
    assert all("layer 7:" in h for h in fig.data[0].hovertext)
    assert "top1_low" in est  # every estimate's evaluation-noise interval, labelled as such
    assert all("(95%, evaluation noise)" in h for h in fig.data[0].hovertext)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "bottom"  # above the data
    # a long trust line wraps; the top margin makes room for every line of it above the legend
    long = interactive_scatter(est, trust="estimates UNVALIDATED: " + "a long explanation of what is wrong " * 8)
    lines = long.layout.title.text.count("<br>") + 1
    assert lines >= 3 and long.layout.title.yref == "container" and long.layout.title.yanchor == "top"
    assert long.layout.margin.t >= 40 + 15 * lines > fig.layout.margin.t


def test_macs_unit_fits_the_numbers():
    from workbench.plots import macs_unit

    assert macs_unit([40.7, 3.2]) == (1.0, "GMACs")
    assert macs_unit([0.0081, 0.0072]) == (1e3, "MMACs")
    assert macs_unit([2e-5]) == (1e6, "KMACs")
    assert macs_unit([]) == (1.0, "GMACs")


def test_comparison_table_shows_the_seed_spread_or_says_there_is_none():
    import json

    import numpy as np
    import xarray as xr

    from workbench.studies.compare import comparison_table

    def table(acc):
        acc = np.asarray(acc, float)
        ds = xr.Dataset({"test_top1": (("model", "seed"), acc), "mean_top1": ("model", acc.mean(1)),
                         "params": ("model", np.array([10, 20])), "gmacs": ("model", np.array([0.1, 0.2])),
                         "source": ("model", np.array(["literature", "probability space"], dtype=object))},
                        coords={"model": ["c3d", "opt"], "seed": list(range(acc.shape[1]))},
                        attrs={"dataset": "synthetic-mixed",
                               "train_config": json.dumps({"epochs": 2, "batch_size": 4, "optimizer": "adamw", "lr": 0.1})})
        return comparison_table(ds)

    two = table([[0.5, 0.7], [0.8, 0.8]])
    assert "SD and range" in two and "| c3d | literature | 10 | 0.1000 | 0.600 | 0.141 | 0.500-0.700 |" in two
    assert two.index("| opt ") < two.index("| c3d ")  # best first
    one = table([[0.5], [0.8]])
    assert "one seed: no seed spread to show" in one and "SD" not in one.split("\n")[2]
