"""Figures of the truth and of trust: FusionBench's learning curves per setting, and the regret of
a recommendation against its budget of stand-alone verifications."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .layout import fit_axis_label, fit_ticks, legend_above
from .paper import EXTRA_COLOURS, UNIT_COLOURS, figure_axes, paper_style

__all__ = ["bench_curves", "regret_vs_budget"]

COLOURS = [c for u, c in UNIT_COLOURS.items() if u != "skip"] + EXTRA_COLOURS


def bench_curves(table, *, ax=None, width: str = "single"):
    """Per setting, the learning curve on the fixed curve clips averaged over the finished
    strategies (the band: the spread of the seeds' own means), and a dotted
    line at the epoch from which the curve has flattened. Returns the figure."""
    from workbench.studies.fusionbench_score import flattening_epoch

    with paper_style():
        fig, ax = figure_axes(ax, width, 0.7)
        epochs = table.epoch.values
        for i, s in enumerate(table.setting.values.tolist()):
            curve = table["curve_top1"].sel(setting=s).values  # strategy x seed x epoch
            done = np.isfinite(curve).all(-1)
            if not done.any():
                continue
            colour = COLOURS[i % len(COLOURS)]
            mean = curve[done].mean(0)
            # the band: each seed's mean over the strategies every such seed has finished (a seed
            # being built covers the first strategies only; a mean over others would not compare)
            seeds = [j for j in range(curve.shape[1]) if done[:, j].sum() >= 3]
            common = done[:, seeds].all(1)
            per_seed = [curve[common, j].mean(0) for j in seeds] if common.sum() >= 3 else []
            n = int(done.any(1).sum())
            ax.plot(epochs, mean, color=colour, label=f"{s} ({n} strategies)")
            if len(per_seed) >= 2:
                lo, hi = np.min(per_seed, 0), np.max(per_seed, 0)
                ax.fill_between(epochs, lo, hi, color=colour, alpha=0.2, linewidth=0)
            flat = flattening_epoch(table, s)
            if flat is not None:
                ax.axvline(flat, color=colour, linestyle=":", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("top-1 on the curve clips")
        fit_ticks(ax, "x")
        fit_axis_label(ax, "y")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty table has no handles
            legend_above(ax, fontsize=6)
    return fig


def regret_vs_budget(curves: Mapping[str, Mapping[int, Sequence[float]]], *, goals: Sequence[float] = (1.0, 0.5),
                     ax=None, width: str = "single"):
    """``curves``: ``{label: {budget B: [mean regret of each template seed]}}``; the mean over
    template seeds against B with error bars of their SD, and dashed lines at the ``goals``
    (regret in seed standard deviations). Returns the figure."""
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.7)
        for i, (label, by_b) in enumerate(curves.items()):
            b = sorted(by_b)
            m = [float(np.mean(by_b[k])) for k in b]
            sd = [float(np.std(by_b[k], ddof=1)) if len(by_b[k]) > 1 else 0.0 for k in b]
            ax.errorbar(b, m, yerr=sd, marker="o", markersize=2.5, capsize=2, linewidth=1,
                        color=COLOURS[i % len(COLOURS)], label=label)
        for g in goals:
            ax.axhline(g, color="#999999", linestyle="--", linewidth=0.7)
        ax.set_xlabel("stand-alone verifications B")
        ax.set_ylabel("regret (seed SD)")
        ax.set_ylim(bottom=0)
        fit_ticks(ax, "x")
        fit_axis_label(ax, "y")
        legend_above(ax, fontsize=6)
    return fig
