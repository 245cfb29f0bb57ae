"""Interactive views (plotly): hover shows the exact numbers, and for a strategy its units layer by
layer. Each returns a ``plotly.graph_objects.Figure``; ``fig.write_html(path,
include_plotlyjs=True)`` writes a file that opens offline."""

from __future__ import annotations

import textwrap

import numpy as np

from .layout import macs_unit
from .paper import COLUMN_WIDTHS, UNIT_COLOURS

__all__ = ["strategy_hover", "unit_order", "interactive_heatmap", "interactive_scatter", "parallel_units"]


def strategy_hover(units) -> str:
    """A strategy layer by layer, for hover text."""
    return "<br>".join(f"layer {i}: {u}" for i, u in enumerate(units))


def unit_order(units) -> list[str]:
    """The distinct units of ``units`` in one fixed order, the same on every axis: the order of
    :data:`UNIT_COLOURS` (S, ST, S+ST, T, ...), other units alphabetically, ``skip`` last."""
    table = [u for u in UNIT_COLOURS if u != "skip"]
    names = {str(u) for u in np.asarray(units, dtype=object).ravel()}
    return sorted(names, key=lambda u: (u == "skip", table.index(u) if u in table else len(table), u))


def _wrap(text: str, width: int = 110) -> str:
    return "<br>".join(textwrap.wrap(text, width)) if text else ""


def interactive_heatmap(marginals, *, title: str = "P(unit) at each layer"):
    """Plotly heatmap of P(unit), layers as rows and units as columns, axis and colour-bar titles
    (hover: layer, unit, probability)."""
    import plotly.graph_objects as go

    z = np.asarray(marginals.values, float)
    layers = [str(int(v)) for v in marginals["layer"].values]
    fig = go.Figure(go.Heatmap(z=z, x=[str(u) for u in marginals["unit"].values], y=layers, zmin=0, zmax=1,
                               colorscale="Viridis", text=np.round(z, 2), texttemplate="%{text}",
                               colorbar={"title": {"text": "P(unit)", "side": "right"}, "thickness": 14},
                               hovertemplate="layer %{y}, unit %{x}: P = %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, width=int(COLUMN_WIDTHS["single"] * 140), height=420,
                      xaxis={"title": {"text": "unit"}, "type": "category"},
                      yaxis={"title": {"text": "layer"}, "type": "category", "autorange": "reversed"},
                      margin={"l": 60, "r": 20, "t": 40, "b": 50})
    return fig


def interactive_scatter(est, *, trust: str | None = None):
    """Estimated accuracy against multiply-adds (GMACs, or MMACs for tiny networks): hover shows
    the strategy layer by layer, presets and the Pareto front marked, the legend above the plot."""
    import plotly.graph_objects as go

    from ..analysis import pareto_front

    factor, unit = macs_unit(est["gmacs"].values)
    x, y = est["gmacs"].values * factor, est["top1"].values
    src = np.asarray([str(s) for s in est["source"].values])
    names = [str(n) for n in est["name"].values]
    codes = [str(c) for c in est["code"].values]
    if "top1_low" in est and "top1_high" in est:  # the evaluation-noise interval, labelled as such
        noise = [f" [{lo:.3f}, {hi:.3f}] (95%, evaluation noise)" for lo, hi in
                 zip(est["top1_low"].values, est["top1_high"].values)]
    else:
        noise = [""] * len(y)
    hover = [f"<b>{n or c}</b><br>top-1 {a:.3f}{e}, {g:.4g} {unit}<br>{strategy_hover(u)}"
             for n, c, a, e, g, u in zip(names, codes, y, noise, x, est["units"].values)]
    fig = go.Figure()
    for label, mask, colour, symbol in (("sampled", src == "sampled", UNIT_COLOURS["S"], "circle"),
                                        ("preset", src != "sampled", UNIT_COLOURS["ST"], "square")):
        idx = np.flatnonzero(mask)
        fig.add_trace(go.Scatter(x=x[idx], y=y[idx], mode="markers", name=label, customdata=idx,
                                 marker={"color": colour, "symbol": symbol, "size": 7},
                                 hovertext=[hover[i] for i in idx], hoverinfo="text"))
    front = np.flatnonzero(pareto_front(est))
    o = front[np.argsort(x[front])]
    fig.add_trace(go.Scatter(x=x[o], y=y[o], mode="lines", name="Pareto front", line={"shape": "hv", "color": "black"},
                             hoverinfo="skip"))
    title = _wrap(trust or "")
    lines = title.count("<br>") + 1 if title else 0
    # the title's lines at the top of the figure, the legend in a row of its own below them and
    # above the data: the top margin grows with the lines, so neither covers the other
    top = 40 + 15 * lines
    fig.update_layout(title={"text": title, "font": {"size": 11}, "y": 1.0, "yanchor": "top", "yref": "container",
                             "pad": {"t": 8}},
                      xaxis_title=f"{unit} per clip", yaxis_title="estimated top-1", width=720, height=440 + 15 * lines,
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
                      margin={"t": top})
    return fig


def parallel_units(est, *, bins: int = 4):
    """Parallel categories: one axis per layer with the unit chosen there, in the same order on
    every axis (:func:`unit_order`), then the estimated top-1 in ``bins`` quantile bins (best on
    top); paths coloured by estimated top-1 (colour bar right of the plot, clear of the last axis'
    labels). Hover a category for its count and share of the strategies."""
    import plotly.graph_objects as go

    units = np.asarray(est["units"].values).astype(str)
    acc = np.asarray(est["top1"].values, float)
    order = unit_order(units)
    dims = [{"label": f"layer {li}", "values": list(units[:, li]), "categoryorder": "array",
             "categoryarray": order} for li in range(units.shape[1])]
    edges = np.unique(np.quantile(acc, np.linspace(0, 1, bins + 1)))
    if len(edges) > 2:
        which = np.clip(np.searchsorted(edges, acc, side="right") - 1, 0, len(edges) - 2)
        names = [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(edges[:-1], edges[1:])]
        dims.append({"label": "top-1", "values": [names[i] for i in which], "categoryorder": "array",
                     "categoryarray": names[::-1]})
    fig = go.Figure(go.Parcats(
        dimensions=dims, arrangement="fixed", domain={"x": [0, 0.86]},
        hoveron="category", hovertemplate="%{category}: %{count} strategies (%{probability:.0%})<extra></extra>",
        line={"color": acc, "colorscale": "Viridis", "shape": "hspline", "showscale": True,
              "colorbar": {"title": {"text": "estimated top-1", "side": "right"}, "x": 1.0, "xanchor": "left",
                           "thickness": 14}}))
    fig.update_layout(width=900, height=440, margin={"l": 40, "r": 40, "t": 50, "b": 30})
    return fig
