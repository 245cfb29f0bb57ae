"""Figures of the probability space, publication style: layer-level preferences (the paper's
Fig. 4 as heatmap and stacked bars, gate trajectories, two runs and their difference) and
network-level estimates (accuracy distribution, accuracy versus GMACs with the Pareto front and
the presets, per-layer importance). Every function takes xarray data from
:mod:`workbench.analysis` and returns its figure; one-panel functions draw on ``ax`` when given,
whole-figure ones (:func:`gate_trajectories`, :func:`compare_marginals`) make their own figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from .layout import (
    fit_axis_label,
    fit_ticks,
    freeze_tick_sizes,
    legend_above,
    macs_unit,
    place_labels,
    text_size,
    wrap_text,
)
from .paper import COLUMN_WIDTHS, UNIT_COLOURS, figure_axes, paper_style, unit_colour

__all__ = ["unit_heatmap", "unit_bars", "gate_trajectories", "compare_marginals", "accuracy_histogram",
           "accuracy_vs_gmacs", "layer_importance_plot"]


def _fig(ax, width: str, aspect: float):
    return figure_axes(ax, width, aspect)


def _rotate_if_crowded(ax, labels, fontsize: float = 7):
    """Turn categorical x tick labels 45 degrees when they are wider than their slots."""
    fig = ax.figure
    slot = ax.get_position().width * fig.bbox.width / max(len(labels), 1)
    if labels and max(text_size(fig, str(t), fontsize)[0] for t in labels) > 0.85 * slot:
        ax.tick_params(axis="x", labelrotation=45)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
            t.set_rotation_mode("anchor")


def _layer_labels(da) -> list[str]:
    if "group" in da.coords:
        return [f"{int(layer)} ({g})" for layer, g in zip(da["layer"].values, da["group"].values)]
    return [str(int(v)) for v in da["layer"].values]


def unit_heatmap(marginals, *, ax=None, width: str = "single", annotate: bool = True, cmap: str = "viridis"):
    """P(unit) at each layer as a heatmap (layers as rows, units as columns)."""
    probs = np.asarray(marginals.values, float)
    with paper_style():
        fig, ax = _fig(ax, width, 0.25 + 0.09 * probs.shape[0])
        im = ax.imshow(probs, vmin=0, vmax=1, cmap=cmap, aspect="auto")
        units = [str(u) for u in marginals["unit"].values]
        ax.set_xticks(range(len(units)), units)
        _rotate_if_crowded(ax, units)
        ax.set_yticks(range(probs.shape[0]), _layer_labels(marginals))
        ax.set_xlabel("unit")
        ax.set_ylabel("layer")
        if annotate:
            for i in range(probs.shape[0]):
                for j in range(probs.shape[1]):
                    ax.text(j, i, f"{probs[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                            color="white" if probs[i, j] < 0.55 else "black")
        fig.colorbar(im, ax=ax, label="P(unit)", fraction=0.05, pad=0.02)
        freeze_tick_sizes(fig)
    return fig


def unit_bars(marginals, *, ax=None, width: str = "single", title: str | None = None, legend: bool = True):
    """Stacked bars: one bar per layer, one colour per unit (the paper's Fig. 4); the unit legend
    above the axes (``legend=False``: none)."""
    probs = np.asarray(marginals.values, float)
    units = [str(u) for u in marginals["unit"].values]
    with paper_style():
        fig, ax = _fig(ax, width, 0.6)
        x = np.arange(probs.shape[0])
        bottom = np.zeros(len(x))
        for j, u in enumerate(units):
            ax.bar(x, probs[:, j], bottom=bottom, color=unit_colour(u), label=u, width=0.8, linewidth=0)
            bottom += probs[:, j]
        ax.set_xticks(x, [str(int(v)) for v in marginals["layer"].values])
        ax.set_xlabel("layer")
        ax.set_ylabel("P(unit)")
        ax.set_ylim(0, 1)
        if title:
            ax.set_title(title)
        if legend:
            legend_above(ax)
    return fig


def gate_trajectories(history, *, width: str = "double", units: bool = True):
    """P(unit) (or each gate's drop probability with ``units=False``) over the epochs, one small
    panel per layer; the warm-up is shaded. A whole figure (no ``ax``)."""
    var = "unit_probability" if units and "unit_probability" in history else "drop_p"
    if var not in history:
        raise ValueError("this history has no gate trajectories (not a template run)")
    da = history[var]
    names = [str(v) for v in da[da.dims[-1]].values]
    L = da.sizes["layer"]
    cols = min(4, L)
    rows = int(np.ceil(L / cols))
    w = COLUMN_WIDTHS[width]
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(w, 0.35 + 1.05 * rows), sharex=True, sharey=True,
                                 squeeze=False, layout="constrained")
        freeze_tick_sizes(fig)
        epochs = history["epoch"].values + 1
        warm = (history["phase"].values == "warmup").sum() if "phase" in history else 0
        for li in range(rows * cols):
            ax = axes.flat[li]
            if li >= L:
                ax.set_visible(False)
                continue
            if warm:
                ax.axvspan(epochs[0] - 0.5, warm + 0.5, color="#eeeeee", lw=0)
            for j, n in enumerate(names):
                ax.plot(epochs, da.values[:, li, j], color=unit_colour(n), label=n)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            ax.set_title(f"layer {li}", pad=2)
            ax.set_ylim(-0.02, 1.02)
        for ax in axes[-1]:
            ax.set_xlabel("epoch")
        for ax in axes[:, 0]:
            ax.set_ylabel("P(unit)" if var == "unit_probability" else "drop p")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncol=len(names), frameon=False, fontsize=7,
                   handlelength=1.2, columnspacing=1.0)
    return fig


def compare_marginals(a, b, *, labels: tuple[str, str] = ("a", "b"), width: str = "double"):
    """Two runs' P(unit) side by side (stacked bars) and their difference b - a (heatmap). A whole
    figure (no ``ax``): one row at double-column width, the difference below the two runs at
    single-column width."""
    if list(a["unit"].values) != list(b["unit"].values) or a.sizes["layer"] != b.sizes["layer"]:
        raise ValueError("the two runs must share the unit set and the number of layers")
    w = COLUMN_WIDTHS[width]
    with paper_style():
        if width == "single":
            fig, axd = plt.subplot_mosaic([["a", "b"], ["d", "d"]], figsize=(w, w * 1.15), layout="constrained",
                                          gridspec_kw={"height_ratios": [1, 1.1]})
        else:
            fig, axd = plt.subplot_mosaic([["a", "b", "d"]], figsize=(w, w * 0.36), layout="constrained",
                                          gridspec_kw={"width_ratios": [1, 1, 0.9]})
        unit_bars(a, ax=axd["a"], title=labels[0], legend=False)
        unit_bars(b, ax=axd["b"], title=labels[1], legend=False)
        axd["b"].set_ylabel("")
        handles, names = axd["a"].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=len(names), frameon=False, fontsize=7,
                   handlelength=1.2, columnspacing=1.0)
        ax = axd["d"]
        d = np.asarray(b.values, float) - np.asarray(a.values, float)
        im = ax.imshow(d, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
        units = [str(u) for u in a["unit"].values]
        ax.set_xticks(range(len(units)), units)
        _rotate_if_crowded(ax, units)
        ax.set_yticks(range(d.shape[0]), [str(int(v)) for v in a["layer"].values])
        ax.set_ylabel("layer")
        room = ax.get_position().width * w
        ax.set_title(wrap_text(fig, f"{labels[1]} - {labels[0]}", room, plt.rcParams["axes.titlesize"]))
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                ax.text(j, i, f"{d[i, j]:+.2f}", ha="center", va="center", fontsize=5)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        freeze_tick_sizes(fig)
    return fig


def _presets(est):
    src = est["source"].values if "source" in est else np.array(["sampled"] * est.sizes["strategy"])
    return np.array([s == "preset" or s == "most-probable" for s in src])


def accuracy_histogram(est, *, ax=None, width: str = "single", bins: int = 20):
    """Distribution of the sampled strategies' estimated accuracy; presets marked by a line each,
    labelled without overlaps."""
    acc = est["top1"].values
    src = est["source"].values if "source" in est else np.array(["sampled"] * len(acc))
    with paper_style():
        fig, ax = _fig(ax, width, 0.6)
        counts, _, _ = ax.hist(acc[src == "sampled"], bins=bins, color=UNIT_COLOURS["S"], alpha=0.85,
                               label="sampled")
        marked = np.flatnonzero(src != "sampled")
        top = max(float(np.max(counts, initial=0)), 1.0)
        if marked.size:
            # room above the bars for the labels; each preset's line ends where its label is tied
            ax.vlines(acc[marked], 0, top * 1.1, color=UNIT_COLOURS["ST"], lw=0.8, label="preset")
            ax.set_ylim(0, top * 1.6)
        ax.set_xlabel("estimated top-1 (shared weights)")
        ax.set_ylabel("strategies")
        fit_ticks(ax, "x")
        if marked.size:
            names = [str(n or s) for n, s in zip(est["name"].values[marked], src[marked])]
            place_labels(ax, acc[marked], np.full(marked.size, top * 1.1), names)
    return fig


def accuracy_vs_gmacs(est, *, ax=None, width: str = "single", trust: str | None = None):
    """Estimated accuracy against multiply-adds (GMACs, or MMACs for tiny networks: the unit that
    fits the numbers), Pareto front drawn, presets labelled without overlaps, legend above the
    axes; ``trust``: the run's trust line, shown as the title."""
    from ..analysis import pareto_front

    factor, unit = macs_unit(est["gmacs"].values)
    x, y = est["gmacs"].values * factor, est["top1"].values
    front = pareto_front(est)
    preset = _presets(est)
    with paper_style():
        fig, ax = _fig(ax, width, 0.75)
        ax.scatter(x[~preset], y[~preset], s=9, color=UNIT_COLOURS["S"], alpha=0.7, label="sampled", lw=0)
        ax.scatter(x[preset], y[preset], s=16, marker="s", color=UNIT_COLOURS["ST"], label="preset", lw=0)
        o = np.argsort(x[front])
        ax.step(x[front][o], y[front][o], where="post", color="black", lw=0.8, label="Pareto front")
        ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.set_xlabel(f"{unit} per clip")
        ax.set_ylabel("estimated top-1")
        if trust:
            room = ax.get_position().width * fig.get_figwidth() * 1.1
            ax.set_title(wrap_text(fig, trust, room, 5.5), fontsize=5.5)
        legend_above(ax)
        fit_ticks(ax, "x")
        names = est["name"].values
        keep = np.flatnonzero(preset & np.array([bool(n) for n in names]))
        place_labels(ax, x[keep], y[keep], [str(names[i]) for i in keep])
    return fig


def layer_importance_plot(importance, *, ax=None, width: str = "single"):
    """Per layer: the mean estimate of the strategies with each unit there, relative to all
    (bars coloured by unit, legend above the axes); ``importance`` from
    :func:`workbench.analysis.layer_importance`."""
    effect = importance["effect"]
    units = [str(u) for u in effect["unit"].values]
    L = effect.sizes["layer"]
    with paper_style():
        fig, ax = _fig(ax, width, 0.6)
        wbar = 0.8 / len(units)
        for j, u in enumerate(units):
            ax.bar(np.arange(L) + (j - (len(units) - 1) / 2) * wbar, np.nan_to_num(effect.values[:, j]), wbar,
                   color=unit_colour(u), label=u, linewidth=0)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xticks(range(L), [str(int(v)) for v in effect["layer"].values])
        ax.set_xlabel("layer")
        ax.set_ylabel("mean estimate - overall mean")
        legend_above(ax)
        fit_axis_label(ax, "y")
    return fig
