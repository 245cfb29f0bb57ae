"""Predictors scored over template seeds: ensembles, the anchor-corrected surrogate, the report."""

import numpy as np
import pytest
import xarray as xr

from workbench.studies.agreement import kendall_tau
from workbench.studies.predictors import (
    ensemble,
    predictor_report,
    predictor_rows,
    surrogate_scores,
)

UNITS = "s3b0"


def _world(n=60, seed=0, noise=0.01, bias=0.03):
    """Stand-alone accuracy is a per-(layer, unit) effect sum; the estimates see it with their own
    error and underrate skip-heavy strategies by ``bias`` per skipped layer."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 0.03, (8, 4))
    codes = sorted({"densenet-tiny[2D]:" + "".join(rng.choice(list(UNITS), 8)) for _ in range(n)})
    idx = {u: j for j, u in enumerate(UNITS)}
    true = {c: 0.6 + sum(effect[i, idx[u]] for i, u in enumerate(c.split(":")[1])) for c in codes}
    est = {c: 0.5 * true[c] + 0.1 - bias * c.split(":")[1].count("0") + rng.normal(0, 0.01) for c in codes}
    truth = {c: true[c] + rng.normal(0, noise, 3) for c in codes}
    return codes, true, est, truth


def _table(codes, truth, sources=None):
    sources = sources or ["uniform" if i % 2 else "gates" for i in range(len(codes))]
    return xr.Dataset({"test_top1": (("setting", "strategy", "seed"), np.array([[truth[c] for c in codes]]))},
                      coords={"setting": ["mixed"], "strategy": codes, "seed": [0, 1, 2],
                              "source": ("strategy", sources)})


def test_ensemble_averages_the_strategies_every_template_scored():
    a, b = {"x": 0.2, "y": 0.4, "z": 0.9}, {"x": 0.4, "y": 0.6}
    assert ensemble([a, b]) == pytest.approx({"x": 0.3, "y": 0.5})
    assert ensemble([a]) == a
    with pytest.raises(ValueError):
        ensemble([])


def test_anchors_correct_a_biased_predictor():
    codes, true, est, truth = _world()
    raw = kendall_tau([est[c] for c in codes], [np.mean(truth[c]) for c in codes])
    s = surrogate_scores(truth, est, 24, repeats=5)
    # the surrogate learns the skip bias from 24 anchors and ranks the other strategies better
    assert s["tau"] > raw + 0.1 and s["strategies"] == len(codes)
    # an unbiased predictor has little to gain and nothing to lose
    _, _, fair, truth2 = _world(bias=0.0)
    raw2 = kendall_tau([fair[c] for c in codes], [np.mean(truth2[c]) for c in codes])
    assert surrogate_scores(truth2, fair, 8, repeats=5)["tau"] > raw2 - 0.1
    with pytest.raises(ValueError, match="anchors"):
        surrogate_scores(truth, est, len(codes), repeats=1)


def test_rows_and_report_cover_every_predictor_ensemble_and_anchor_count():
    codes, _, est, truth = _world(n=40)
    table = _table(codes, truth)
    rng = np.random.default_rng(1)
    preds = {"shared+bn2": [{"estimates": {c: v + rng.normal(0, 0.01) for c, v in est.items()},
                             "per_strategy_s": 0.05} for _ in range(3)],
             "shared": [{"estimates": {c: rng.random() for c in codes}, "per_strategy_s": 0.04} for _ in range(3)]}
    table["params"] = (("setting", "strategy"), np.array([[1000.0 + 10 * i for i in range(len(codes))]]))
    rows = predictor_rows(table, "mixed", preds, standalone_s=30.0, anchors=(8,), repeats=3)
    names = [r["predictor"] for r in rows]
    assert names[:2] == ["baseline: params", "baseline: temporal layers"]
    assert all(r["per_strategy_s"] == 0 and r["templates"] == 1 for r in rows[:2])
    rows = rows[2:]
    names = names[2:]
    assert names == ["shared+bn2", "shared", "shared+bn2 x2 templates", "shared+bn2 x3 templates",
                     "shared+bn2 + surrogate, 8 anchors"]
    by = dict(zip(names, rows))
    assert len(by["shared+bn2"]["all"]["tau"]) == 3 and len(by["shared+bn2 x2 templates"]["all"]["tau"]) == 3
    assert by["shared+bn2"]["all"]["tau_mean"] > by["shared"]["all"]["tau_mean"] + 0.3  # random ranks nothing
    assert by["shared+bn2"]["share_of_standalone"] == pytest.approx(0.05 / 30)
    assert by["shared+bn2 x3 templates"]["per_strategy_s"] == pytest.approx(0.15)
    assert {"gates", "uniform"} <= set(by["shared"])
    text = predictor_report(rows)
    assert text.count("\n| mixed |") == 5 and "+ 8 trainings" in text


def test_baselines_count_temporal_layers_and_read_the_parameter_count():
    from workbench.studies.predictors import baseline_estimates

    codes = ["densenet-tiny[2D]:ssssssss", "densenet-tiny[2D]:3b000000", "densenet-tiny[2D]:33333333"]
    table = xr.Dataset({"params": (("setting", "strategy"), np.array([[1.0, 2.0, 3.0]]))},
                       coords={"setting": ["mixed"], "strategy": codes})
    assert list(baseline_estimates(table, "mixed", "temporal layers").values()) == [0.0, 2.0, 8.0]
    assert list(baseline_estimates(table, "mixed", "params").values()) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_estimates(table, "mixed", "flops")


def test_a_cached_prediction_is_keyed_by_weights_settings_and_threads(tmp_path):
    from workbench.studies.predictors import _cache_key

    (tmp_path / "last.safetensors").write_bytes(b"weights of one template")
    codes = ["densenet-tiny[2D]:ssssssss", "densenet-tiny[2D]:33333333"]
    k = _cache_key(tmp_path, codes, "shared+bn2", 1)
    assert _cache_key(tmp_path, codes, "shared+bn2", 1) == k
    assert _cache_key(tmp_path, codes[:1], "shared+bn2", 1) != k
    assert _cache_key(tmp_path, codes, "shared+bn8", 1) != k
    assert _cache_key(tmp_path, codes, "shared+bn2", 2) != k
    (tmp_path / "last.safetensors").write_bytes(b"weights of a retrained template")
    assert _cache_key(tmp_path, codes, "shared+bn2", 1) != k
