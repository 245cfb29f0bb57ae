"""The literature comparison figure: every model's test accuracy against its cost."""

from __future__ import annotations

from matplotlib.ticker import ScalarFormatter

from .layout import fit_ticks, freeze_tick_sizes, legend_above, macs_unit, place_labels
from .paper import UNIT_COLOURS, figure_axes, paper_style

__all__ = ["comparison_figure"]


def comparison_figure(ds, *, ax=None, width: str = "single"):
    """Test accuracy against multiply-adds (in the unit that fits the numbers), one labelled point
    per model (labels placed without overlaps), coloured by source, the seed range as error bars
    when there are several seeds, legend above the axes. ``ds``: from
    :func:`workbench.compare.literature_comparison`. Returns the figure."""
    factor, unit = macs_unit(ds["gmacs"].values)
    x = ds["gmacs"].values * factor
    y = ds["mean_top1"].values
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.75)
        freeze_tick_sizes(fig)
        colours = {"literature": UNIT_COLOURS["S"], "probability space": UNIT_COLOURS["ST"],
                   "two-stream": UNIT_COLOURS["T"]}
        for src, c in colours.items():
            m = ds["source"].values == src
            if m.any():
                ax.scatter(x[m], y[m], color=c, s=16, label=src, zorder=2)
        if ds.sizes["seed"] > 1:
            a = ds["test_top1"].values
            ax.errorbar(x, a.mean(1), yerr=[a.mean(1) - a.min(1), a.max(1) - a.mean(1)], fmt="none",
                        ecolor="#bbbbbb", lw=0.6, zorder=1)
        ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.set_xlabel(f"{unit} per clip")
        ax.set_ylabel("test top-1")
        legend_above(ax)
        fit_ticks(ax, "x")
        place_labels(ax, x, y, [str(n) for n in ds["model"].values])
    return fig
