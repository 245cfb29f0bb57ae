"""Figures of the probability space, publication style: layer-level preferences (the paper's
Fig. 4 as heatmap and stacked bars, gate trajectories, two runs and their difference) and
network-level estimates (accuracy distribution, accuracy versus GMACs with the Pareto front and
the presets, per-layer importance). Every function takes xarray data from
:mod:`workbench.analysis`, draws on ``ax`` when given, and returns the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .paper import COLUMN_WIDTHS, UNIT_COLOURS, figure_axes, paper_style, unit_colour

__all__ = ["unit_heatmap", "unit_bars", "gate_trajectories", "compare_marginals", "accuracy_histogram",
           "accuracy_vs_gmacs", "layer_importance_plot"]


def _fig(ax, width: str, aspect: float):
    return figure_axes(ax, width, aspect)


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
        ax.set_yticks(range(probs.shape[0]), _layer_labels(marginals))
        ax.set_xlabel("unit")
        ax.set_ylabel("layer")
        if annotate:
            for i in range(probs.shape[0]):
                for j in range(probs.shape[1]):
                    ax.text(j, i, f"{probs[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                            color="white" if probs[i, j] < 0.55 else "black")
        fig.colorbar(im, ax=ax, label="P(unit)", fraction=0.05, pad=0.02)
    return fig


def unit_bars(marginals, *, ax=None, width: str = "single", title: str | None = None):
    """Stacked bars: one bar per layer, one colour per unit (the paper's Fig. 4)."""
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
        ax.legend(frameon=False, ncol=len(units), loc="upper center", bbox_to_anchor=(0.5, 1.16))
        if title:
            ax.set_title(title, pad=14)
    return fig


def gate_trajectories(history, *, width: str = "double", units: bool = True):
    """P(unit) (or each gate's drop probability with ``units=False``) over the epochs, one small
    panel per layer; the warm-up is shaded."""
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
            ax.set_title(f"layer {li}", pad=2)
            ax.set_ylim(-0.02, 1.02)
        for ax in axes[-1]:
            ax.set_xlabel("epoch")
        for ax in axes[:, 0]:
            ax.set_ylabel("P(unit)" if var == "unit_probability" else "drop p")
        axes.flat[0].legend(frameon=False, fontsize=6, loc="best")
    return fig


def compare_marginals(a, b, *, labels: tuple[str, str] = ("a", "b"), width: str = "double"):
    """Two runs' P(unit) side by side (stacked bars) and their difference b - a (heatmap)."""
    if list(a["unit"].values) != list(b["unit"].values) or a.sizes["layer"] != b.sizes["layer"]:
        raise ValueError("the two runs must share the unit set and the number of layers")
    w = COLUMN_WIDTHS[width]
    with paper_style():
        fig, axes = plt.subplots(1, 3, figsize=(w, w * 0.32), gridspec_kw={"width_ratios": [1, 1, 0.9]},
                                 layout="constrained")
        unit_bars(a, ax=axes[0], title=labels[0])
        unit_bars(b, ax=axes[1], title=labels[1])
        axes[1].get_legend().remove()
        d = np.asarray(b.values, float) - np.asarray(a.values, float)
        im = axes[2].imshow(d, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
        units = [str(u) for u in a["unit"].values]
        axes[2].set_xticks(range(len(units)), units)
        axes[2].set_yticks(range(d.shape[0]), [str(int(v)) for v in a["layer"].values])
        axes[2].set_ylabel("layer")
        axes[2].set_title(f"{labels[1]} - {labels[0]}")
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                axes[2].text(j, i, f"{d[i, j]:+.2f}", ha="center", va="center", fontsize=5)
        fig.colorbar(im, ax=axes[2], fraction=0.05, pad=0.02)
    return fig


def _presets(est):
    src = est["source"].values if "source" in est else np.array(["sampled"] * est.sizes["strategy"])
    return np.array([s == "preset" or s == "most-probable" for s in src])


def accuracy_histogram(est, *, ax=None, width: str = "single", bins: int = 20):
    """Distribution of the sampled strategies' estimated accuracy; presets marked."""
    acc = est["top1"].values
    src = est["source"].values if "source" in est else np.array(["sampled"] * len(acc))
    with paper_style():
        fig, ax = _fig(ax, width, 0.6)
        ax.hist(acc[src == "sampled"], bins=bins, color=UNIT_COLOURS["S"], alpha=0.85, label="sampled")
        for a, s, n in zip(acc, src, est["name"].values):
            if s != "sampled":
                ax.axvline(a, color=UNIT_COLOURS["ST"], lw=0.8)
                ax.annotate(str(n or s), (a, ax.get_ylim()[1] * 0.95), rotation=90, fontsize=5.5,
                            ha="right", va="top")
        ax.set_xlabel("estimated top-1 (shared weights)")
        ax.set_ylabel("strategies")
    return fig


def accuracy_vs_gmacs(est, *, ax=None, width: str = "single", trust: str | None = None):
    """Estimated accuracy against GMACs, Pareto front drawn, presets labelled; ``trust``: the
    run's trust line, shown as a caption."""
    from ..analysis import pareto_front

    x, y = est["gmacs"].values, est["top1"].values
    front = pareto_front(est)
    preset = _presets(est)
    with paper_style():
        fig, ax = _fig(ax, width, 0.75)
        ax.scatter(x[~preset], y[~preset], s=9, color=UNIT_COLOURS["S"], alpha=0.7, label="sampled", lw=0)
        ax.scatter(x[preset], y[preset], s=16, marker="s", color=UNIT_COLOURS["ST"], label="preset", lw=0)
        o = np.argsort(x[front])
        ax.step(x[front][o], y[front][o], where="post", color="black", lw=0.8, label="Pareto front")
        for xi, yi, n, p in zip(x, y, est["name"].values, preset):
            if p and n:
                ax.annotate(str(n), (xi, yi), xytext=(2, 2), textcoords="offset points", fontsize=5.5)
        ax.set_xlabel("GMACs per clip")
        ax.set_ylabel("estimated top-1")
        ax.legend(frameon=False, loc="lower right")
        if trust:
            ax.set_title(trust, fontsize=5.5)
    return fig


def layer_importance_plot(importance, *, ax=None, width: str = "single"):
    """Per layer: the mean estimate of the strategies with each unit there, relative to all
    (bars coloured by unit); ``importance`` from :func:`workbench.analysis.layer_importance`."""
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
        ax.legend(frameon=False, ncol=len(units), fontsize=6, loc="best")
    return fig
