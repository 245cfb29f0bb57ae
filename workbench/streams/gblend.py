"""Gradient-Blending (Wang, Tran, Feiszli, CVPR 2020): loss weights for the heads of a multi-modal
network from each head's overfitting-to-generalisation ratio.

Between checkpoints ``N`` and ``N + n`` a head's held-out loss ``L^V`` (standing in for the true
loss) and training loss ``L^T`` give

* the generalisation gain ``dG = L^V_N - L^V_{N+n}``,
* the change in overfitting ``dO = O_{N+n} - O_N`` with ``O = L^V - L^T``,

and the weights ``w_k ∝ dG_k / dO_k^2`` (the first-order minimiser of the blended gradient's
OGR^2), normalised to sum to one. A head that did not generalise over the window (``dG <= 0``)
gets weight zero; ``dO^2`` is floored at ``min_overfit**2`` so that a head that neither over- nor
under-fits does not take all the weight.

*Offline* G-Blend estimates the weights once, from separately trained single-modality models and
the naive joint model (:func:`offline_weights`), then retrains with them; *online* G-Blend
re-estimates them from the model's own heads every super-epoch (see
:func:`workbench.streams.train.train_multimodal`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

__all__ = ["ogr_terms", "gblend_weights", "offline_weights", "overfit_noise", "smooth_weights"]


def ogr_terms(train_loss: tuple[float, float], val_loss: tuple[float, float]) -> dict[str, float]:
    """``dG``, ``dO`` and ``OGR = |dO / dG|`` from (train, held-out) losses at the window's two ends."""
    (t0, t1), (v0, v1) = train_loss, val_loss
    for x in (t0, t1, v0, v1):
        if not math.isfinite(x):
            raise ValueError(f"G-Blend needs finite losses, got train {train_loss} and held-out {val_loss}")
    d_g = v0 - v1
    d_o = (v1 - t1) - (v0 - t0)
    return {"dG": d_g, "dO": d_o, "OGR": abs(d_o / d_g) if d_g else math.inf}


def gblend_weights(train_losses: Mapping[str, tuple[float, float]], val_losses: Mapping[str, tuple[float, float]],
                   *, min_overfit: float = 1e-2, noise: Mapping[str, float] | None = None) -> dict[str, float]:
    """Normalised G-Blend weights per head from each head's (start, end) train and held-out losses.

    ``noise``: per head, the variance of the ``dO`` estimate itself (from a finite held-out set
    and training probe, see :func:`overfit_noise`). It is added to ``dO^2``: the squared
    overfitting a head shows over a window is, in expectation, its true square plus that
    variance, so a head whose measured ``dO`` is within noise of zero is not given a weight set by
    ``min_overfit`` alone (what made online weights jump from one super-epoch to the next)."""
    if set(train_losses) != set(val_losses):
        raise ValueError(f"train and held-out losses name different heads: {sorted(train_losses)} vs {sorted(val_losses)}")
    if not train_losses:
        raise ValueError("G-Blend needs the losses of at least one head")
    noise = dict(noise or {})
    unknown = [k for k in noise if k not in train_losses]
    if unknown or any(not (math.isfinite(v) and v >= 0) for v in noise.values()):
        raise ValueError(f"noise must give a finite variance >= 0 for heads among {sorted(train_losses)}, got {noise}")
    raw = {}
    for k in train_losses:
        t = ogr_terms(train_losses[k], val_losses[k])
        raw[k] = max(t["dG"], 0.0) / max(t["dO"] ** 2 + noise.get(k, 0.0), min_overfit**2)
    z = sum(raw.values())
    if z <= 0:
        warnings.warn("no head generalised better over the window (every dG <= 0): uniform weights", stacklevel=2)
        return {k: 1.0 / len(raw) for k in raw}
    return {k: v / z for k, v in raw.items()}


def overfit_noise(train_clips: tuple, val_clips: tuple) -> float:
    """The variance of the ``dO`` estimate of one head from its per-clip losses at the window's two
    ends: ``train_clips = (start, end)`` over the same training probe clips, ``val_clips`` over
    the same held-out clips. ``dO = (mean(v1) - mean(v0)) - (mean(t1) - mean(t0))``, the two
    splits independent and each difference paired by clip, so its variance is
    ``var(v1 - v0) / n_val + var(t1 - t0) / n_train``."""
    import numpy as np

    total = 0.0
    for a, b in (train_clips, val_clips):
        d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
        if d.ndim != 1 or len(d) < 2:
            raise ValueError(f"per-clip losses must be two equally long series of 2 or more clips, got {len(a)}, {len(b)}")
        total += float(d.var(ddof=1)) / len(d)
    return total


def smooth_weights(previous: Mapping[str, float] | None, estimate: Mapping[str, float], smoothing: float) -> dict:
    """``smoothing * previous + (1 - smoothing) * estimate`` per head (online G-Blend across
    super-epochs; ``previous=None``: the estimate as it is), renormalised to sum to one."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if previous is None or smoothing == 0.0:
        return dict(estimate)
    w = {k: smoothing * float(previous.get(k, 0.0)) + (1 - smoothing) * float(v) for k, v in estimate.items()}
    z = sum(w.values())
    return {k: v / z for k, v in w.items()}


def _at(history: Mapping, key: str, head: str, epoch: int) -> float:
    epochs = list(history["epoch"])
    if epoch not in epochs:
        raise ValueError(f"the history has no epoch {epoch} (it has {epochs[0]}..{epochs[-1]})")
    return float(history[key][head][epochs.index(epoch)])


def offline_weights(histories: Mapping[str, tuple[Mapping, str]], window: tuple[int, int], *,
                    min_overfit: float = 1e-2) -> dict[str, float]:
    """Offline G-Blend: weights from separately trained models.

    ``histories`` maps each head of the blended model to ``(history, head_in_that_run)``, e.g.
    ``{"rgb": (rgb_only, "rgb"), "audio": (audio_only, "audio"), "fused": (naive_joint, "fused")}``;
    each history is a :func:`train_multimodal` history (``epoch``, ``train_loss`` and
    ``val_loss`` per head). ``window=(N, N + n)`` are the epochs compared.
    """
    n0, n1 = window
    if not n0 < n1:
        raise ValueError(f"window must be (N, N + n) with n > 0, got {window}")
    tr, va = {}, {}
    for k, (hist, head) in histories.items():
        tr[k] = (_at(hist, "train_loss", head, n0), _at(hist, "train_loss", head, n1))
        va[k] = (_at(hist, "val_loss", head, n0), _at(hist, "val_loss", head, n1))
    return gblend_weights(tr, va, min_overfit=min_overfit)
