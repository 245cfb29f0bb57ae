"""The surrogate, the anchors, the recommendation and the coverage of its intervals, on a
synthetic truth whose answer is known."""

import numpy as np
import pytest

from workbench.studies.recommend import (
    Surrogate,
    choose_anchors,
    interval_coverage,
    recommend,
    simulate_recommend,
    trust_flag_rates,
)

UNITS = "s3b0"


def _world(n=60, seed=0, noise=0.02):
    """Strategies whose stand-alone accuracy is a per-(layer, unit) effect sum; the estimate sees
    it through a monotone distortion with its own error, and skip-heavy ones are underrated."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 0.03, (8, 4))
    codes = sorted({"densenet-tiny[2D]:" + "".join(rng.choice(list(UNITS), 8)) for _ in range(n)})
    idx = {u: j for j, u in enumerate(UNITS)}
    true = {c: 0.6 + sum(effect[i, idx[u]] for i, u in enumerate(c.split(":")[1])) for c in codes}
    est = {c: 0.5 * true[c] + 0.1 - 0.02 * c.split(":")[1].count("0") + rng.normal(0, 0.01) for c in codes}
    truth = {c: true[c] + rng.normal(0, noise, 3) for c in codes}
    return codes, true, est, truth


def test_without_anchors_the_surrogate_ranks_like_the_estimates():
    codes, _, est, _ = _world()
    mean, sd = Surrogate(codes, [est[c] for c in codes]).predict()
    assert np.array_equal(np.argsort(mean), np.argsort([est[c] for c in codes])) and (sd > 0).all()


def test_anchors_correct_the_offset_and_shrink_the_uncertainty():
    codes, true, est, _ = _world()
    sur = Surrogate(codes, [est[c] for c in codes])
    _, sd0 = sur.predict()
    anchors = choose_anchors(est, 12, seed=1)
    sur.fit({c: true[c] for c in anchors})
    mean, sd = sur.predict()
    err0 = np.mean([abs(est[c] - true[c]) for c in codes])
    err = np.mean(np.abs(mean - np.array([true[c] for c in codes])))
    assert err < 0.5 * err0 and sd.mean() < sd0.mean()


def test_anchors_are_spread_over_the_estimates_and_checked():
    _, _, est, _ = _world()
    a = choose_anchors(est, 8, seed=0)
    ranks = sorted(sorted(est, key=est.get).index(c) for c in a)
    assert len(set(a)) == 8 and ranks[0] <= len(est) / 8 and ranks[-1] >= len(est) * 7 / 8 - 1
    with pytest.raises(ValueError, match="k must lie"):
        choose_anchors(est, 0)


def test_recommend_spends_its_budget_and_returns_verified_evidence():
    codes, true, est, _ = _world()
    calls = []
    r = recommend(est, lambda c: calls.append(c) or true[c], 5)
    assert len(calls) == len(set(calls)) == 5 and r["verified"] == calls and r["best"] in calls
    assert r["standalone"] == true[r["best"]] and r["interval"][0] < r["predicted"] < r["interval"][1]
    top = recommend(est, lambda c: 1 / 0, 0)  # no budget: the top estimate, unverified
    assert top["best"] == max(est, key=est.get) and top["standalone"] is None
    with pytest.raises(ValueError, match="budget"):
        recommend(est, lambda c: 0.0, -1)


def test_verification_lowers_the_regret_of_trusting_the_estimates():
    _, _, est, truth = _world(noise=0.01)
    sim = simulate_recommend(truth, est, [0, 8], repeats=10)
    assert sim["budgets"][8]["mean"] < sim["budgets"][0]["mean"]
    assert sim["strategies"] == len(est) and sim["seed_sd"] > 0 and sim["held_back"]
    # seeds that only other settings of the table have (all NaN here) do not stop the held-back seed
    wider = {c: np.append(v, [np.nan, np.nan]) for c, v in truth.items()}
    again = simulate_recommend(wider, est, [0, 8], repeats=10)
    assert again["held_back"] and again["budgets"][8]["mean"] == pytest.approx(sim["budgets"][8]["mean"])


def test_the_intervals_cover_about_what_they_claim():
    _, _, est, truth = _world(noise=0.02)
    cov = interval_coverage(truth, est, 16, repeats=10, level=0.9)
    assert 0.8 <= cov["coverage"] <= 0.99 and cov["checked"] > 300


def test_the_trust_figure_calls_a_random_ranking_low_and_a_good_one_not():
    codes, true, est, truth = _world(noise=0.002)
    rng = np.random.default_rng(3)
    noise = {c: float(rng.normal()) for c in codes}  # estimates that know nothing
    good = trust_flag_rates(truth, {c: true[c] for c in codes}, 8, repeats=20)
    bad = trust_flag_rates(truth, noise, 8, repeats=20)
    assert good["full_tau"] > 0.9 and abs(bad["full_tau"]) < 0.3
    assert good["low"] <= 0.1 and bad["low"] >= 0.6
    assert good["low"] + good["unproven"] + good["ok"] == pytest.approx(1.0)
    assert good["ok"] > bad["ok"]
    with pytest.raises(ValueError, match="k must lie"):
        trust_flag_rates(truth, noise, 2)


def test_decision_report_from_template_scores():
    import xarray as xr

    from workbench.studies.trust import decision_report

    codes, _, est, truth = _world(n=30)
    table = xr.Dataset({"test_top1": (("setting", "strategy", "seed"), np.array([[truth[c] for c in codes]]))},
                       coords={"setting": ["mixed"], "strategy": codes, "seed": [0, 1, 2]})
    scores = [{"setting": "mixed", "estimates": est}, {"setting": "mixed", "estimates": {c: v + 0.01 for c, v in est.items()}}]
    text = decision_report(table, {"default": scores}, budgets=(0, 4), repeats=3, anchors=8)
    row = [line for line in text.splitlines() if line.startswith("| default")][0]
    assert "| mixed | 2 | a held-back seed |" in row and row.count("+-") == 2 and "regret B=4" in text
