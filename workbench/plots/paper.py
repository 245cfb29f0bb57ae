"""Publication-style figures (matplotlib). No torch import: they take xarray Datasets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .layout import (
    fit_axis_label,
    fit_ticks,
    freeze_tick_sizes,
    legend_above,
    place_labels,
    wrap_text,
)

__all__ = ["COLUMN_WIDTHS", "UNIT_COLOURS", "unit_colour", "paper_style", "figure_axes", "save_figure",
           "estimate_vs_standalone", "lever_forest"]

# inches: a single column and a full page width of the common two-column conference layout
COLUMN_WIDTHS = {"single": 3.3, "double": 6.9}

# Okabe-Ito, colour-blind safe; one colour per unit everywhere in the workbench
UNIT_COLOURS = {
    "S": "#0072B2",  # blue: spatial only
    "ST": "#D55E00",  # vermillion: (2+1)D
    "S+ST": "#009E73",  # green: both
    "T": "#E69F00",  # orange
    "S+T": "#56B4E9",  # sky blue
    "T+ST": "#CC79A7",  # purple
    "S+T+ST": "#F0E442",  # yellow
    "skip": "#999999",  # grey
}
EXTRA_COLOURS = ["#000000", "#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74"]


def unit_colour(unit: str) -> str:
    """The unit's colour (units outside the table get a stable colour of their own)."""
    if unit in UNIT_COLOURS:
        return UNIT_COLOURS[unit]
    return EXTRA_COLOURS[sum(map(ord, unit)) % len(EXTRA_COLOURS)]


_STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False,
    "axes.linewidth": 0.6, "lines.linewidth": 1.2, "lines.markersize": 4, "figure.dpi": 150,
    "savefig.dpi": 300, "savefig.bbox": "standard",  # the file has exactly the figure's size
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType fonts embedded in PDF (editable, accepted by publishers)
    "svg.fonttype": "path",  # glyphs as paths: the SVG renders the same without the font installed
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
}


@contextlib.contextmanager
def paper_style():
    """Matplotlib settings for paper figures, for the duration of the block.

    Only the style's own settings are put back on exit. The interactive mode and the backend stay
    as the block leaves them: in a Jupyter kernel the first figure resolves the inline backend
    inside the block, which turns the interactive mode on, and resetting it (as ``plt.rc_context``
    does) would keep every later figure of that kernel from displaying."""
    rc = matplotlib.rcParams
    saved = {k: rc[k] for k in _STYLE}
    rc.update(_STYLE)
    try:
        yield
    finally:
        rc.update(saved)


def figure_axes(ax=None, width: str = "single", aspect: float = 0.75):
    """``(figure, axes)``: those of ``ax``, or a new constrained-layout figure ``width`` wide
    (``"single"`` or ``"double"`` column) and ``aspect`` times as high."""
    if ax is not None:
        return ax.figure, ax
    w = COLUMN_WIDTHS[width]
    fig, ax = plt.subplots(figsize=(w, w * aspect), layout="constrained")
    freeze_tick_sizes(fig)
    return fig, ax


def save_figure(fig, path: str | Path, *, formats: Iterable[str] = ("pdf", "svg", "png"), dpi: int = 300) -> list[Path]:
    """Write ``fig`` as ``path.<format>`` for each format (vector PDF/SVG with embedded fonts, PNG
    at ``dpi``); returns the paths. The files keep the figure's size exactly (a column width
    stays a column width): the workbench's figures fit their layout inside it (constrained
    layout); give your own figures ``layout="constrained"`` for the same."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    with paper_style():
        for fmt in formats:
            if fmt not in ("pdf", "svg", "png"):
                raise ValueError(f"unknown figure format {fmt!r}; expected pdf, svg or png")
            p = path.with_suffix(f".{fmt}")
            fig.savefig(p, format=fmt, dpi=dpi)
            out.append(p)
    return out


def estimate_vs_standalone(study, predictor: str | None = None, *, ax=None, width: str = "single"):
    """One point per strategy: the predictor's estimate (x) against the stand-alone accuracy (y,
    mean over seeds, bars: range over seeds); literature presets labelled without overlaps; Kendall
    tau with its interval in the title, the legend above the axes. ``study``: the Dataset of :func:`workbench.study.run_rank_study`."""
    names = list(study["predictor"].values)
    predictor = predictor or names[0]
    if predictor not in names:
        raise ValueError(f"unknown predictor {predictor!r}; the study has {names}")
    i = names.index(predictor)
    x = study["prediction"].values[i]
    y = study["standalone_mean"].values
    acc = study["standalone_top1"].values
    with paper_style():
        fig, ax = figure_axes(ax, width, 0.8)
        labels = [str(n) for n in study["name"].values]
        preset = np.array([bool(n) for n in labels])
        if acc.shape[1] > 1:
            ax.errorbar(x, y, yerr=[y - acc.min(1), acc.max(1) - y], fmt="none", ecolor="#bbbbbb", lw=0.6, zorder=1)
        ax.scatter(x[~preset], y[~preset], s=14, color=UNIT_COLOURS["S+ST"], label="sampled", zorder=2)
        ax.scatter(x[preset], y[preset], s=18, marker="s", color=UNIT_COLOURS["ST"], label="preset", zorder=3)
        ax.set_xlabel(f"estimate ({predictor})")
        ax.set_ylabel("stand-alone top-1")
        title = (f"Kendall tau {study['tau'].values[i]:.2f} [{study['tau_lo'].values[i]:.2f}, "
                 f"{study['tau_hi'].values[i]:.2f}], {len(x)} strategies")
        ax.set_title(wrap_text(fig, title, ax.get_position().width * fig.get_figwidth() * 1.1,
                               plt.rcParams["axes.titlesize"]))
        legend_above(ax)
        fit_ticks(ax, "x")
        place_labels(ax, x[preset], y[preset], [lab for lab in labels if lab])
    return fig


def lever_forest(table, *, ax=None, width: str = "single", top: int | None = None):
    """Kendall tau with its 95% interval for every (template lever, predictor) row of
    :func:`workbench.study.lever_table`, best first (``top``: only the best rows); the tau between
    stand-alone seeds as a dashed line (legend above the axes)."""
    tau = table["tau"].values
    order = np.argsort(-tau, kind="stable")[: top or len(tau)]
    labels = [f"{table['lever'].values[i]}: {table['predictor'].values[i]}" for i in order]
    with paper_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTHS[width], 0.9 + 0.16 * len(order)), layout="constrained")
            freeze_tick_sizes(fig)
        else:
            fig = ax.figure
        y = np.arange(len(order))[::-1]
        lo, hi = table["tau_lo"].values[order], table["tau_hi"].values[order]
        ax.errorbar(tau[order], y, xerr=[tau[order] - lo, hi - tau[order]], fmt="o", color=UNIT_COLOURS["S"],
                    ecolor="#888888", elinewidth=0.8, capsize=1.5, markersize=3)
        seed_tau = table.attrs.get("seed_tau")
        if seed_tau is not None and np.isfinite(seed_tau):
            ax.axvline(seed_tau, color=UNIT_COLOURS["ST"], lw=0.8, ls="--", label="between stand-alone seeds")
            legend_above(ax)
        ax.axvline(0, color="#cccccc", lw=0.6)
        ax.set_yticks(y, labels)
        ax.set_xlabel("Kendall tau vs stand-alone (95% CI)")
        fit_ticks(ax, "x")
        fit_axis_label(ax, "x")
    return fig
