"""How well one ranking of strategies agrees with another: Kendall tau and Spearman rho with
bootstrap intervals over strategies, top-k precision, and the rank average of several predictors.
No torch."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["kendall_tau", "rank_average", "rank_metrics", "seed_sd", "spearman_rho", "top_k_precision"]


def seed_sd(rows) -> float:
    """The seed standard deviation of a truth table (one row of seeds per strategy, NaN where not
    trained): the mean over strategies with two or more seeds of their sample SD; NaN without any.
    Regret everywhere is in these units."""
    sds = [np.std(v[np.isfinite(v)], ddof=1) for v in (np.asarray(r, float) for r in rows) if np.isfinite(v).sum() >= 2]
    return float(np.mean(sds)) if sds else float("nan")


def kendall_tau(x, y) -> float:
    """Kendall tau-b of two rankings (NaN when undefined)."""
    from scipy.stats import kendalltau

    t = kendalltau(x, y).statistic
    return float("nan") if t is None else float(t)


def spearman_rho(x, y) -> float:
    """Spearman rank correlation of two rankings."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def top_k_precision(pred, truth, k: int) -> float:
    """Share of the truly best ``k`` that the predictor also puts in its best ``k``."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    k = max(1, min(k, len(pred)))
    a = set(np.argsort(-pred, kind="stable")[:k].tolist())
    b = set(np.argsort(-truth, kind="stable")[:k].tolist())
    return len(a & b) / k


def _boot_tau_rho(pred: np.ndarray, truth: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kendall tau-b and Spearman rho of every bootstrap sample (rows of ``idx``), vectorised:
    the same numbers as :func:`kendall_tau` / :func:`spearman_rho` on each resampled pair."""
    from scipy.stats import rankdata

    p, t = pred[idx], truth[idx]
    n = idx.shape[1]
    dp = np.sign(p[:, :, None] - p[:, None, :])
    dt = np.sign(t[:, :, None] - t[:, None, :])
    n0 = n * (n - 1)  # ordered pairs: every sum below counts each pair twice
    s = (dp * dt).sum((1, 2))
    tau = s / np.sqrt((n0 - (dp == 0).sum((1, 2)) + n) * (n0 - (dt == 0).sum((1, 2)) + n))
    rp, rt = rankdata(p, axis=1), rankdata(t, axis=1)
    rp -= rp.mean(1, keepdims=True)
    rt -= rt.mean(1, keepdims=True)
    rho = (rp * rt).sum(1) / np.sqrt((rp ** 2).sum(1) * (rt ** 2).sum(1))
    return tau, rho


def rank_metrics(pred, truth, *, bootstrap: int = 2000, top_fraction: float = 0.25, seed: int = 0) -> dict:
    """Kendall tau and Spearman rho with percentile bootstrap 95% intervals (strategies resampled
    with replacement; samples in which either ranking is constant are left out), and top-k precision."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    if len(pred) != len(truth) or len(pred) < 3:
        raise ValueError(f"need two equally long score vectors of at least 3 strategies, got {len(pred)}, {len(truth)}")
    rng = np.random.default_rng(seed)
    n = len(pred)
    idx = rng.integers(0, n, (bootstrap, n)) if bootstrap > 0 else np.zeros((0, n), int)
    if n > 150:  # the vectorised pairs grow as n^2 per resample: scipy's O(n log n) one at a time wins
        return _rank_metrics_loop(pred, truth, idx, top_fraction)
    # both measures depend on the ranks alone: ranks are finite where values may be +-inf
    from scipy.stats import rankdata

    pred, truth = rankdata(pred), rankdata(truth)
    idx = idx[(np.ptp(pred[idx], axis=1) > 0) & (np.ptp(truth[idx], axis=1) > 0)]
    taus, rhos = [], []
    for i in range(0, len(idx), max(1, 4_000_000 // (n * n))):  # blocks of a few million pairs
        a, b = _boot_tau_rho(pred, truth, idx[i:i + max(1, 4_000_000 // (n * n))])
        taus += a.tolist()
        rhos += b.tolist()
    k = math.ceil(top_fraction * len(pred))
    lo_hi = lambda v: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) if v else (np.nan, np.nan)  # noqa: E731
    return {
        "tau": kendall_tau(pred, truth), "tau_ci": lo_hi(taus),
        "rho": spearman_rho(pred, truth), "rho_ci": lo_hi(rhos),
        "top_k": k, "top_k_precision": top_k_precision(pred, truth, k),
    }


def _rank_metrics_loop(pred, truth, idx, top_fraction: float) -> dict:
    taus, rhos = [], []
    for i in idx:
        if np.ptp(pred[i]) == 0 or np.ptp(truth[i]) == 0:
            continue
        taus.append(kendall_tau(pred[i], truth[i]))
        rhos.append(spearman_rho(pred[i], truth[i]))
    k = math.ceil(top_fraction * len(pred))
    lo_hi = lambda v: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) if v else (np.nan, np.nan)  # noqa: E731
    return {"tau": kendall_tau(pred, truth), "tau_ci": lo_hi(taus), "rho": spearman_rho(pred, truth),
            "rho_ci": lo_hi(rhos), "top_k": k, "top_k_precision": top_k_precision(pred, truth, k)}


def rank_average(*cols) -> np.ndarray:
    from scipy.stats import rankdata

    return np.mean([rankdata(c) for c in cols], axis=0)
