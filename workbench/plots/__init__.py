"""Figures. ``paper``: publication style with matplotlib (vector PDF/SVG with embedded fonts,
PNG; single- and double-column widths; one colour-blind-safe colour per unit, used everywhere).
Plot functions take labelled data (xarray), an optional ``ax``, and return the figure."""

from .paper import (
    COLUMN_WIDTHS,
    UNIT_COLOURS,
    estimate_vs_standalone,
    paper_style,
    save_figure,
    unit_colour,
)

__all__ = ["COLUMN_WIDTHS", "UNIT_COLOURS", "estimate_vs_standalone", "paper_style", "save_figure", "unit_colour"]
