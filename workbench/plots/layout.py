"""Text that does not collide: point labels placed where they overlap nothing (joined to their point by
a leader line when they had to move away), legends above the axes instead of over the data, text
wrapped to the room it has, and the unit of multiply-adds that fits the numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from matplotlib.text import Text

__all__ = ["macs_unit", "wrap_text", "legend_above", "place_labels", "fit_axis_label", "fit_ticks",
           "freeze_tick_sizes"]


def macs_unit(gmacs) -> tuple[float, str]:
    """``(factor, name)``: the unit of multiply-adds that fits ``gmacs`` (GMACs from 1 up, MMACs
    from 0.001, else KMACs); show ``gmacs * factor`` labelled ``name``."""
    g = np.abs(np.asarray(gmacs, float))
    g = g[np.isfinite(g)]
    top = g.max() if g.size else 1.0
    if top >= 1 or top == 0:
        return 1.0, "GMACs"
    if top >= 1e-3:
        return 1e3, "MMACs"
    return 1e6, "KMACs"


def _renderer(fig):
    return fig._get_renderer()


def text_size(fig, text: str, fontsize: float, **kw) -> tuple[float, float]:
    """Width and height in pixels of ``text`` drawn in ``fig``."""
    t = Text(0, 0, text, fontsize=fontsize, **kw)
    t.set_figure(fig)
    bb = t.get_window_extent(_renderer(fig))
    return bb.width, bb.height


def wrap_text(fig, text: str, width_inches: float, fontsize: float) -> str:
    """``text`` with line breaks (between words) so that no line is wider than ``width_inches``."""
    limit = width_inches * fig.dpi
    lines = []
    for para in str(text).split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}" if line else word
            if line and text_size(fig, trial, fontsize)[0] > limit:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return "\n".join(lines)


def freeze_tick_sizes(fig):
    """Give every axes of ``fig`` its tick label size explicitly (the current rcParams', in points),
    so the number of ticks that fit, and with it the layout, no longer depends on the settings in
    force when the figure is drawn (a paper-style figure looks the same displayed and saved)."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    for ax in fig.axes:
        for name in ("x", "y"):
            axis = getattr(ax, f"{name}axis")
            if "labelsize" not in getattr(axis, "_major_tick_kw", {}):
                size = FontProperties(size=mpl.rcParams[f"{name}tick.labelsize"]).get_size_in_points()
                ax.tick_params(axis=name, which="both", labelsize=size)


def _settle(fig, tries: int = 4):
    """Run the figure's layout until the axes stop moving (constrained layout measures the tick
    labels where the axes are, and a move can change them), so positions can be measured."""
    freeze_tick_sizes(fig)
    before = None
    for _ in range(tries):
        fig.draw_without_rendering()
        now = [tuple(np.round(ax.get_position().bounds, 6)) for ax in fig.axes]
        if now == before:
            return
        before = now


def fit_ticks(ax, which: str = "x", *, gap_points: float = 4.0, steps=(1, 2, 2.5, 5, 10)):
    """As many ticks on ``ax``'s x (or y) axis as leave ``gap_points`` between neighbouring tick
    labels (numbers such as ``0.755`` otherwise run together on a narrow axes)."""
    from matplotlib.ticker import MaxNLocator

    fig = ax.figure
    axis = ax.xaxis if which == "x" else ax.yaxis
    nbins = 9
    for _ in range(8):
        axis.set_major_locator(MaxNLocator(nbins=nbins, steps=list(steps), min_n_ticks=2))
        _settle(fig)
        r = _renderer(fig)
        lo, hi = sorted(axis.get_view_interval())
        shown = [t for loc, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                 if lo <= loc <= hi and t.get_visible() and t.get_text()]
        boxes = sorted((t.get_window_extent(r) for t in shown), key=lambda b: b.x0 if which == "x" else b.y0)
        gaps = [(b.x0 - a.x1) if which == "x" else (b.y0 - a.y1) for a, b in zip(boxes[:-1], boxes[1:])]
        if not gaps or min(gaps) >= gap_points * fig.dpi / 72 or nbins <= 2:
            return
        nbins -= 1


def fit_axis_label(ax, which: str = "y"):
    """Wrap ``ax``'s x or y label between words so it is no longer than the axes' side (a long
    label otherwise runs past the figure's edge)."""
    fig = ax.figure
    _settle(fig)
    label = ax.yaxis.label if which == "y" else ax.xaxis.label
    box = ax.get_window_extent(_renderer(fig))
    room = (box.height if which == "y" else box.width) / fig.dpi
    label.set_text(wrap_text(fig, label.get_text().replace("\n", " "), room, label.get_fontsize()))
    return label


def legend_above(ax, handles=None, labels=None, *, fontsize: float | None = None, **kw):
    """A frameless legend in rows above ``ax``, outside the data, with as many columns as fit the
    axes' width; an axes title set before it moves up above the legend. Returns the legend."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    fig = ax.figure
    renderer = _renderer(fig)
    room = ax.get_position().width * fig.bbox.width * 1.1
    opts = {"loc": "lower center", "bbox_to_anchor": (0.5, 1.0), "frameon": False, "borderaxespad": 0.3,
            "columnspacing": 1.0, "handlelength": 1.2, "handletextpad": 0.4, "fontsize": fontsize, **kw}
    for ncol in range(len(handles), 0, -1):
        leg = ax.legend(handles, labels, ncol=ncol, **opts)
        if leg.get_window_extent(renderer).width <= room:
            break
    title = ax.title
    if title.get_text():
        pts = leg.get_window_extent(renderer).height * 72 / fig.dpi
        ax.set_title(title.get_text(), pad=pts + 3, fontsize=title.get_fontsize())
    return leg


def _marks(ax, renderer, skip_lines=()) -> np.ndarray:
    """Boxes ``(x0, y0, x1, y1)`` in pixels of what ``ax`` shows as data: scatter markers, points
    along the lines (every 2 pixels), bars."""
    boxes = []
    px = renderer.points_to_pixels(1.0)
    for c in ax.collections:
        if isinstance(c, PathCollection) and c.get_visible() and len(c.get_offsets()):
            xy = c.get_offset_transform().transform(c.get_offsets())
            sizes = np.broadcast_to(np.asarray(c.get_sizes(), float), (len(xy),)) if len(c.get_sizes()) else np.full(len(xy), 16.0)
            r = np.sqrt(sizes) / 2 * px
            boxes.append(np.column_stack([xy[:, 0] - r, xy[:, 1] - r, xy[:, 0] + r, xy[:, 1] + r]))
    for line in ax.lines:
        if not line.get_visible() or line in skip_lines:
            continue
        xy = line.get_transform().transform(line.get_path().vertices)  # as drawn (steps too)
        xy = xy[np.isfinite(xy).all(1)]
        pts = [xy[:1]]
        for a, b in zip(xy[:-1], xy[1:]):
            n = max(1, int(np.hypot(*(b - a)) // 2))
            pts.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
        pts = np.concatenate(pts) if len(xy) else np.zeros((0, 2))
        w = max(line.get_linewidth() * px / 2, 1.0)
        boxes.append(np.column_stack([pts[:, 0] - w, pts[:, 1] - w, pts[:, 0] + w, pts[:, 1] + w]))
    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_visible() and p.get_width() and p.get_height():
            bb = p.get_window_extent(renderer)
            boxes.append(np.array([[bb.x0, bb.y0, bb.x1, bb.y1]]))
    return np.concatenate(boxes) if boxes else np.zeros((0, 4))


def _overlaps(box, boxes, pad=0.0):
    """Which of ``boxes`` (n x 4) overlap ``box`` (4,) grown by ``pad``."""
    return ((boxes[:, 0] < box[2] + pad) & (boxes[:, 2] > box[0] - pad)
            & (boxes[:, 1] < box[3] + pad) & (boxes[:, 3] > box[1] - pad))


def place_labels(ax, x: Sequence[float], y: Sequence[float], labels: Sequence[str], *, fontsize: float = 5.5,
                 leader_colour: str = "#555555", **text_kw) -> list:
    """Label the points ``(x, y)`` (data coordinates) of ``ax``: each label goes to the free spot
    nearest its point (tried on rings of growing radius around it), so that no two labels
    overlap, every label stays inside the axes, and labels cover as few data marks (markers, lines,
    bars) as they can; a label that had to move away is joined to its point by a thin leader
    line. Call it when the rest of the figure is drawn (it runs the layout first, to measure).
    Returns the annotations."""
    fig = ax.figure
    x, y = np.asarray(x, float), np.asarray(y, float)
    labels = [str(s) for s in labels]
    if not labels:
        return []
    _settle(fig)
    renderer = _renderer(fig)
    px = renderer.points_to_pixels(1.0)
    anchors = ax.transData.transform(np.column_stack([x, y]))
    frame = ax.get_window_extent(renderer)
    marks = _marks(ax, renderer)
    taken = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text()]
    leg = ax.get_legend()
    if leg is not None:
        taken.append(leg.get_window_extent(renderer))
    taken = np.array([[b.x0, b.y0, b.x1, b.y1] for b in taken]).reshape(-1, 4)
    sizes = np.array([text_size(fig, s, fontsize, **text_kw) for s in labels])
    own = np.column_stack([anchors - 2 * px, anchors + 2 * px])  # the labelled points themselves

    radii = np.array([1.5, 4, 8, 13, 19, 26, 35, 46, 60, 78, 100, 130, 170]) * px
    angles = np.deg2rad(np.r_[45, 135, 315, 225, 0, 180, 90, 270, 22.5, 157.5, 337.5, 202.5, 67.5, 112.5, 292.5, 247.5])
    c, s = np.cos(angles), np.sin(angles)
    # placement order: the most crowded labels choose first
    near = (np.hypot(*(anchors[:, None] - anchors[None]).transpose(2, 0, 1)) < 30 * px).sum(1)
    order = sorted(range(len(labels)), key=lambda i: (-near[i], anchors[i, 0]))
    placed = np.zeros((0, 4))
    out = [None] * len(labels)
    for i in order:
        w, h = sizes[i]
        best, best_cost = None, None
        for ri, r in enumerate(radii):
            for k in range(len(angles)):
                cx = anchors[i, 0] + r * c[k] + w / 2 * np.clip(2 * c[k], -1, 1)
                cy = anchors[i, 1] + r * s[k] + h / 2 * np.clip(2 * s[k], -1, 1)
                box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                inside = (box[0] >= frame.x0 + px and box[2] <= frame.x1 - px
                          and box[1] >= frame.y0 + px and box[3] <= frame.y1 - px)
                clash = _overlaps(box, placed, px).sum() + _overlaps(box, taken, px).sum()
                cost = (0 if inside else 1000) + 1000 * clash
                cost += _overlaps(box, marks).sum() + 3 * _overlaps(box, np.delete(own, i, 0)).sum()
                cost += r / px / 8 + 0.01 * k
                if best_cost is None or cost < best_cost:
                    best, best_cost = (box, r, cx, cy), cost
            if best_cost is not None and best_cost < 1 and ri >= 1:
                break  # a free spot this close: stop looking further out
        box, r, cx, cy = best
        placed = np.vstack([placed, box])
        offset = ((cx - anchors[i, 0]) / px, (cy - anchors[i, 1]) / px)
        crowded = near[i] > 1  # another labelled point close by: tie even a close label to its point
        arrow = ({"arrowstyle": "-", "color": leader_colour, "lw": 0.5, "shrinkA": 0.5, "shrinkB": 1.5}
                 if r > 6 * px or (crowded and r > 2 * px) else None)
        ann = ax.annotate(labels[i], (x[i], y[i]), xytext=offset, textcoords="offset points", ha="center",
                          va="center", fontsize=fontsize, arrowprops=arrow, annotation_clip=False, **text_kw)
        ann.set_in_layout(False)
        out[i] = ann
    return out
