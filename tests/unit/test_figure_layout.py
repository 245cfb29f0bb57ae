"""Publication figures keep their text apart: every figure function of ``workbench.plots``, drawn at
single- and double-column width on small synthetic data, has no two text boxes (tick labels, axis
labels, titles, annotations, legend texts) overlapping, no text outside the figure, and no legend
over the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from test_plots import _history, net  # noqa: E402, F401  (net: the template fixture)

import workbench.plots as wp  # noqa: E402
from workbench.analysis import estimates_dataset, layer_importance, marginals  # noqa: E402
from workbench.strategy import preset  # noqa: E402

WIDTHS = ("single", "double")

# (name, source, GMACs, top-1) as a tiny template's estimates come out: presets in a cluster
# (opt next to s+st, mc5 next to st), sampled strategies crowding the top right
PRESETS = [("s", 0.007163, 0.51), ("st", 0.008034, 0.8425), ("s+st", 0.008469, 0.8525),
           ("bottom-heavy", 0.007982, 0.83), ("top-heavy", 0.007214, 0.6025), ("opt", 0.008461, 0.845),
           ("mc3", 0.007818, 0.7725), ("rmc3", 0.007378, 0.755), ("mc5", 0.008023, 0.845),
           ("rmc5", 0.007173, 0.5425)]


def _estimates(template, scale: float = 1.0, n: int = 60):
    rng = np.random.default_rng(0)
    rows = [{"strategy": s, "top1": float(np.clip(0.86 - rng.gamma(1.0, 0.02), 0.3, 1)),
             "gmacs": scale * float(rng.uniform(0.0072, 0.0085)), "params": 1000}
            for s in template.sample(n, torch.Generator().manual_seed(0))]
    rows += [{"strategy": preset(name, template.backbone), "top1": a, "gmacs": scale * g, "params": 1200}
             for name, g, a in PRESETS]
    best = template.most_probable()
    rows.append({"strategy": best.__class__(best.backbone, best.units, best.stem, name="most-probable"),
                 "top1": 0.8575, "gmacs": scale * 0.00814, "params": 1100})
    return estimates_dataset(rows, sources=["sampled"] * n + ["preset"] * len(PRESETS) + ["most-probable"])


@pytest.fixture(scope="module")
def data(net):  # noqa: F811
    est = _estimates(net)
    m = marginals(net)
    rng = np.random.default_rng(1)
    names = ["", "s", "st", "s+st", "opt", "mc5", "", "most-probable"]
    k = len(names)
    acc = 0.7 + 0.1 * rng.random((k, 2))
    study = xr.Dataset({"standalone_top1": (("strategy", "seed"), acc), "standalone_mean": ("strategy", acc.mean(1)),
                        "prediction": (("predictor", "strategy"), acc.mean(1)[None] + 0.01 * rng.random((2, k))),
                        "tau": ("predictor", [0.61, 0.2]), "tau_lo": ("predictor", [0.35, -0.1]),
                        "tau_hi": ("predictor", [0.82, 0.5]),
                        "name": ("strategy", np.array(names, dtype=object))},
                       coords={"predictor": ["shared", "log_prob"], "strategy": np.arange(k), "seed": [0, 1]})
    levers = ["baseline", "sandwich 0.25", "long warm-up", "recalibrate BN 8"]
    predictors = ["shared weights", "log-probability", "few-shot"]
    rows = [(lv, p) for lv in levers for p in predictors]
    tau = np.linspace(0.7, -0.1, len(rows))
    table = xr.Dataset({"lever": ("row", np.array([r[0] for r in rows], dtype=object)),
                        "predictor": ("row", np.array([r[1] for r in rows], dtype=object)),
                        "tau": ("row", tau), "tau_lo": ("row", tau - 0.2), "tau_hi": ("row", tau + 0.15)},
                       attrs={"seed_tau": 0.8})
    b = m.copy(data=np.roll(m.values, 1, axis=1))
    # the committed literature comparison (reports/literature.md): c3d and r3d_18 nearly on one spot
    lit = [("two-stream late", "two-stream", 0.062, 1.000), ("rmc3_18", "literature", 0.018, 0.955),
           ("r3d_18", "literature", 0.032, 0.920), ("most probable", "probability space", 0.008, 0.900),
           ("best sampled", "probability space", 0.008, 0.868), ("r2plus1d_18", "literature", 0.027, 0.850),
           ("ip_csn_50", "literature", 0.011, 0.760), ("ir_csn_50", "literature", 0.010, 0.757),
           ("p3d_resnet50", "literature", 0.013, 0.710), ("two-stream pyramid", "two-stream", 0.064, 0.708),
           ("mc3_18", "literature", 0.034, 0.675), ("c3d", "literature", 0.029, 0.378)]
    acc = np.array([r[3] for r in lit])
    comparison = xr.Dataset(
        {"test_top1": (("model", "seed"), np.stack([acc - 0.01, acc + 0.01], 1)), "mean_top1": ("model", acc),
         "gmacs": ("model", np.array([r[2] for r in lit])),
         "source": ("model", np.array([r[1] for r in lit], dtype=object))},
        coords={"model": [r[0] for r in lit], "seed": [0, 1]})
    return {"est": est, "m": m, "b": b, "history": _history(net), "study": study, "table": table,
            "comparison": comparison}


# every figure function of workbench.plots, with its arguments
FIGURES = {
    "unit_heatmap": lambda d, w: wp.unit_heatmap(d["m"], width=w),
    "unit_bars": lambda d, w: wp.unit_bars(d["m"], width=w, title="synthetic-mixed"),
    "gate_trajectories": lambda d, w: wp.gate_trajectories(d["history"], width=w),
    "compare_marginals": lambda d, w: wp.compare_marginals(d["m"], d["b"], labels=("synthetic-mixed", "synthetic-motion"),
                                                           width=w),
    "accuracy_histogram": lambda d, w: wp.accuracy_histogram(d["est"], width=w),
    "accuracy_vs_gmacs": lambda d, w: wp.accuracy_vs_gmacs(d["est"], width=w,
                                                           trust="estimates UNVALIDATED (no rank study)"),
    "layer_importance_plot": lambda d, w: wp.layer_importance_plot(layer_importance(d["est"]), width=w),
    "estimate_vs_standalone": lambda d, w: wp.estimate_vs_standalone(d["study"], width=w),
    "lever_forest": lambda d, w: wp.lever_forest(d["table"], width=w),
    "comparison_figure": lambda d, w: wp.comparison_figure(d["comparison"], width=w),
    "training_curves": lambda d, w: wp.training_curves(_curves(), width=w),
    "gblend_figure": lambda d, w: wp.gblend_figure(_gblend(), width=w),
    "run_curves": lambda d, w: wp.run_curves({f"runs/standalone/seed-{i}": (np.arange(1, 13), 0.9 - 0.8 * np.exp(
        -np.arange(12) / (3 + i))) for i in range(4)}, width=w),
    "best_so_far_plot": lambda d, w: wp.best_so_far_plot(d["est"], width=w),
    "layer_importance_bars": lambda d, w: wp.layer_importance_bars(d["est"], width=w),
}


def _curves():
    n = 12
    ep = np.arange(n)
    return {"epoch": list(ep), "train_loss": list(2 * np.exp(-ep / 4)), "val_loss": list(2.1 * np.exp(-ep / 5)),
            "train_acc": list(1 - np.exp(-ep / 4)), "val_acc": list(0.9 - 0.8 * np.exp(-ep / 5))}


def _gblend():
    runs = ["RGB only", "audio only", "naive joint", "offline G-Blend", "online G-Blend"]
    acc = np.array([[0.80, 0.82], [0.40, 0.42], [0.65, 0.66], [0.80, 0.81], [0.70, 0.74]])
    return xr.Dataset({"test_top1": (("run", "seed"), acc), "mean_top1": ("run", acc.mean(1))},
                      coords={"run": runs, "seed": [0, 1]})
INTERACTIVE = {"interactive_heatmap", "interactive_scatter", "parallel_units"}  # plotly: tests/unit/test_plots.py


def test_every_figure_function_is_checked():
    assert set(wp.FIGURE_FUNCTIONS) - INTERACTIVE == set(FIGURES)


def _texts(fig):
    """The visible, non-empty texts of ``fig`` with a label saying what each is."""
    out = []

    def add(kind, t):
        if t is not None and t.get_visible() and t.get_text().strip():
            out.append((kind, t))

    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            for tick in axis._update_ticks():  # the ticks inside the view, as drawn
                add(f"{name} tick", tick.label1)
                add(f"{name} tick", tick.label2)
            add(f"{name} label", axis.label)
            add(f"{name} offset", axis.get_offset_text())
        for t in (ax.title, ax._left_title, ax._right_title):
            add("title", t)
        for t in ax.texts:
            add("annotation", t)
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            for t in leg.get_texts():
                add("legend", t)
            add("legend title", leg.get_title())
    for leg in fig.legends:
        for t in leg.get_texts():
            add("legend", t)
        add("legend title", leg.get_title())
    for t in fig.texts:
        add("figure text", t)
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        add(name, getattr(fig, name, None))
    return out


def _data_boxes(fig, renderer):
    """Display-space boxes of the data: scatter points, line vertices, bars."""
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        inside = ax.get_window_extent(renderer)
        for c in ax.collections:
            if isinstance(c, PathCollection) and len(c.get_offsets()):
                for x, y in c.get_offset_transform().transform(c.get_offsets()):
                    boxes.append(matplotlib.transforms.Bbox.from_bounds(x - 1, y - 1, 2, 2))
        for line in ax.lines:
            if line.get_visible():
                xy = line.get_transform().transform(line.get_path().vertices)  # as drawn (steps too)
                for a, b in zip(xy[:-1], xy[1:]):  # points every 2 pixels along each segment
                    for x, y in a + (b - a) * np.linspace(0, 1, int(np.hypot(*(b - a)) // 2) + 2)[:, None]:
                        if inside.contains(x, y):
                            boxes.append(matplotlib.transforms.Bbox.from_bounds(x - 1, y - 1, 2, 2))
        for p in ax.patches:
            if isinstance(p, Rectangle) and p.get_visible() and p.get_height() and p.get_width():
                boxes.append(p.get_window_extent(renderer))
    return boxes


def _overlap(a, b, gap=0.0):
    """Whether boxes ``a`` and ``b`` overlap or come closer than ``gap`` pixels."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > -gap and min(a.y1, b.y1) - max(a.y0, b.y0) > -gap


def layout_problems(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # the text's own box (an annotation's extent would include its leader line)
    texts = [(k, t, Text.get_window_extent(t, renderer)) for k, t in _texts(fig)]
    assert texts
    problems = []
    page = fig.bbox
    for k, t, b in texts:
        if b.x0 < page.x0 - 0.5 or b.y0 < page.y0 - 0.5 or b.x1 > page.x1 + 0.5 or b.y1 > page.y1 + 0.5:
            problems.append(f"{k} {t.get_text()!r} outside the figure")
    gap = fig.dpi / 72  # one point between any two texts: numbers that touch read as one
    for i, (k1, t1, b1) in enumerate(texts):
        for k2, t2, b2 in texts[i + 1:]:
            if _overlap(b1, b2, gap):
                problems.append(f"{k1} {t1.get_text()!r} overlaps {k2} {t2.get_text()!r}")
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    data = _data_boxes(fig, renderer)
    for leg in legends:
        box = leg.get_window_extent(renderer)
        hits = sum(_overlap(box, d) for d in data)
        if hits:
            problems.append(f"legend {[t.get_text() for t in leg.get_texts()]} over {hits} data marks")
    return problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_text_does_not_collide(name, width, data):
    fig = FIGURES[name](data, width)
    try:
        assert fig.get_size_inches()[0] == pytest.approx(wp.COLUMN_WIDTHS[width])
        problems = layout_problems(fig)
        assert not problems, "\n".join(problems)
    finally:
        plt.close(fig)
