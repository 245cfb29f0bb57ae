"""Figures. ``paper``: publication style with matplotlib (vector PDF/SVG with embedded fonts,
PNG; single- and double-column widths; one colour-blind-safe colour per unit, used everywhere).
Plot functions take labelled data (xarray), an optional ``ax``, and return the figure.
``interactive``: plotly views (hover, offline HTML). ``layout``: text placement without collisions."""

from .browse import best_so_far_plot, layer_importance_bars, run_curves
from .compare import comparison_figure
from .interactive import (
    interactive_heatmap,
    interactive_scatter,
    parallel_units,
    strategy_hover,
    unit_order,
)
from .layout import (
    fit_axis_label,
    fit_ticks,
    freeze_tick_sizes,
    legend_above,
    macs_unit,
    place_labels,
    wrap_text,
)
from .live import training_curves
from .paper import (
    COLUMN_WIDTHS,
    UNIT_COLOURS,
    estimate_vs_standalone,
    figure_axes,
    lever_forest,
    paper_style,
    save_figure,
    unit_colour,
)
from .space import (
    accuracy_histogram,
    accuracy_vs_gmacs,
    compare_marginals,
    gate_trajectories,
    layer_importance_plot,
    unit_bars,
    unit_heatmap,
)
from .streams import gblend_figure

#: the public functions that draw a figure (matplotlib, or plotly for the interactive views)
FIGURE_FUNCTIONS = ("unit_heatmap", "unit_bars", "gate_trajectories", "compare_marginals", "accuracy_histogram",
                    "accuracy_vs_gmacs", "layer_importance_plot", "estimate_vs_standalone", "lever_forest",
                    "comparison_figure", "training_curves", "gblend_figure", "run_curves", "best_so_far_plot",
                    "layer_importance_bars",
                    "interactive_heatmap", "interactive_scatter", "parallel_units")

__all__ = [
    "FIGURE_FUNCTIONS", "comparison_figure", "training_curves", "gblend_figure", "COLUMN_WIDTHS", "UNIT_COLOURS", "paper_style", "figure_axes", "save_figure", "unit_colour",
    # figures (matplotlib)
    "unit_heatmap", "unit_bars", "gate_trajectories", "compare_marginals", "accuracy_histogram", "accuracy_vs_gmacs",
    "layer_importance_plot", "estimate_vs_standalone", "lever_forest", "run_curves", "best_so_far_plot",
    "layer_importance_bars",
    # interactive views (plotly)
    "interactive_heatmap", "interactive_scatter", "parallel_units", "strategy_hover", "unit_order",
    # text placement
    "place_labels", "legend_above", "fit_ticks", "fit_axis_label", "wrap_text", "macs_unit", "freeze_tick_sizes",
]
