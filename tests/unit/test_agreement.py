"""Rank agreement: the vectorised bootstrap gives scipy's numbers, sample by sample."""

import numpy as np
import pytest

from workbench.studies.agreement import kendall_tau, rank_metrics, seed_sd, spearman_rho


@pytest.mark.parametrize("n", [3, 8, 40])
def test_bootstrap_intervals_equal_scipy_on_each_resample(n):
    rng = np.random.default_rng(n)
    pred = np.round(rng.normal(size=n), 1)  # rounded: ties in both rankings, as in accuracies
    truth = np.round(pred + rng.normal(size=n), 1)
    m = rank_metrics(pred, truth, bootstrap=200, seed=3)
    draws = np.random.default_rng(3)
    taus, rhos = [], []
    for _ in range(200):  # the loop the vectorised version replaces, scipy on each resample
        idx = draws.integers(0, n, n)
        if np.ptp(pred[idx]) == 0 or np.ptp(truth[idx]) == 0:
            continue
        taus.append(kendall_tau(pred[idx], truth[idx]))
        rhos.append(spearman_rho(pred[idx], truth[idx]))
    assert m["tau_ci"] == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])), abs=1e-12)
    assert m["rho_ci"] == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])), abs=1e-12)
    assert m["tau"] == pytest.approx(kendall_tau(pred, truth))
    assert m["tau_ci"][0] <= m["tau"] <= m["tau_ci"][1]


def test_infinite_scores_rank_like_any_other_and_large_n_uses_scipy():
    pred = np.array([0.1, 0.2, np.inf, 0.4, -np.inf, 0.3])
    truth = np.array([0.1, 0.3, 0.9, 0.5, 0.0, 0.2])
    ranked = rank_metrics(np.argsort(np.argsort(pred)).astype(float), truth, bootstrap=300, seed=1)
    m = rank_metrics(pred, truth, bootstrap=300, seed=1)
    assert m["tau_ci"] == pytest.approx(ranked["tau_ci"]) and m["tau"] == pytest.approx(ranked["tau"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    big = rank_metrics(x, x + rng.normal(size=200), bootstrap=50, seed=2)  # the loop: same definition
    assert big["tau_ci"][0] < big["tau"] < big["tau_ci"][1]


def test_no_bootstrap_gives_no_interval():
    m = rank_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], bootstrap=0)
    assert m["tau"] == pytest.approx(1.0) and np.isnan(m["tau_ci"][0])
    with pytest.raises(ValueError, match="at least 3"):
        rank_metrics([1.0, 2.0], [1.0, 2.0])


def test_seed_sd_is_the_mean_sd_of_strategies_with_two_seeds():
    assert seed_sd([[0.5, 0.7, np.nan], [0.1, np.nan, np.nan], [0.2, 0.2, 0.2]]) == pytest.approx(np.std([0.5, 0.7], ddof=1) / 2)
    assert np.isnan(seed_sd([[0.1, np.nan]]))
