"""Figures of the stream-fusion studies (Gradient-Blending)."""

from __future__ import annotations

import numpy as np

from .paper import UNIT_COLOURS, figure_axes, paper_style

__all__ = ["gblend_figure"]


def gblend_figure(ds, *, ax=None, width: str = "single"):
    """Bars of test top-1 per run, with the seeds as dots."""


    with paper_style():
        fig, ax = figure_axes(ax, width, 0.62)
        runs = [str(r) for r in ds["run"].values]
        colours = [UNIT_COLOURS["S"] if r.endswith(" only") else UNIT_COLOURS["T"] if r == "naive joint"
                   else UNIT_COLOURS["ST"] for r in runs]
        x = np.arange(len(runs))
        ax.bar(x, ds["mean_top1"].values, color=colours, width=0.7)
        for i in range(len(runs)):
            ax.scatter(np.full(ds.sizes["seed"], x[i]), ds["test_top1"].values[i], color="black", s=5, zorder=3)
        # horizontal labels, one word per line (rotated ones collide on a single column)
        ax.set_xticks(x, [r.replace(" ", "\n") for r in runs])
        ax.set_ylabel("test top-1")
    return fig
