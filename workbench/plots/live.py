"""Training curves as a run goes: loss, top-1 and the mean probability of each unit over epochs."""

from __future__ import annotations

import numpy as np

from .layout import legend_above
from .paper import COLUMN_WIDTHS, paper_style, unit_colour

__all__ = ["training_curves"]


def training_curves(history, model=None, *, width: str = "double"):
    """The whole figure (three panels: loss, top-1, P(unit) averaged over layers when ``model``
    is a template and the history holds its gates). ``history``: a History or its dict."""
    import matplotlib.pyplot as plt

    h = history.to_dict() if hasattr(history, "to_dict") else history
    ep = np.arange(1, len(h["epoch"]) + 1)
    with paper_style():
        fig, ax = plt.subplots(1, 3, figsize=(COLUMN_WIDTHS[width], 1.9), layout="constrained")
        ax[0].plot(ep, h["train_loss"], label="train")
        ax[0].plot(ep, h["val_loss"], label="val")
        ax[0].set_ylabel("loss")
        ax[1].plot(ep, h["train_acc"], label="train")
        ax[1].plot(ep, h["val_acc"], label="val")
        ax[1].set_ylabel("top-1")
        if h.get("gates") and model is not None:
            from ..analysis import unit_probabilities_from_p

            probs = unit_probabilities_from_p(np.asarray(h["gates"]), model.branches, model.units)
            mean = probs.mean(1)  # epoch x unit, averaged over layers
            for j, u in enumerate(model.units):
                ax[2].plot(ep, mean[:, j], color=unit_colour(u), label=u)
            ax[2].set_ylim(0, 1)
            legend_above(ax[2], fontsize=6)
        ax[2].set_ylabel("P(unit), layer mean")
        for a in ax:
            a.set_xlabel("epoch")
        legend_above(ax[0])  # outside the data: train and validation
    return fig
