"""FusionBench: the fast path trains exactly what the study's path trains; a tiny build and score."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from workbench import fusionbench as fb
from workbench.engine.config import TrainConfig
from workbench.strategy import Strategy
from workbench.studies.pipeline import train_strategy, train_template
from workbench.template.network import TemplateConfig

TINY_KW = {"train_per_class": 6, "val_per_class": 3, "test_per_class": 3}
CFG = fb.BenchConfig(epochs=2, batch_size=8, seeds=(0, 1), uniform=2, gate_draws=3, curve_clips=10)


@pytest.fixture
def tiny_setting(monkeypatch):
    monkeypatch.setitem(fb.SETTINGS, "tiny", {"dataset": "synthetic-mixed", "data_kw": dict(TINY_KW)})
    return "tiny"


def test_fast_path_trains_what_the_study_path_trains(tiny_setting, tmp_path):
    data = fb.setting_data(tiny_setting, tmp_path / "cache")
    s = Strategy("densenet-tiny", ("ST", "S", "S+ST", "skip", "ST", "S", "S+ST", "ST"), "2D")
    rec = fb.train_item(s, data, CFG, 0)
    tc = TrainConfig(epochs=CFG.epochs, batch_size=CFG.batch_size, lr=CFG.lr, optimizer=CFG.optimizer, seed=0,
                     progress=False)
    model_kw = {a: b for a, b in CFG.model_kw(data["classes"]).items() if a != "num_classes"}
    _, hist, test = train_strategy(s, tmp_path / "today", dataset="synthetic-mixed", data_kw=TINY_KW,
                                   model_kw=model_kw, train_config=tc)
    # same weights, batches, schedule and step: per-epoch losses agree to float64 round-off
    np.testing.assert_allclose(rec["train_loss"], hist.train_loss, rtol=1e-12, atol=0)
    assert rec["test_top1"] == test["top1"] and rec["val_top1"] == hist.val_acc[-1]
    assert rec["environment"]["threads"] == torch.get_num_threads()


def test_tiny_build_is_resumable_collects_and_scores(tiny_setting, tmp_path):
    out = tmp_path / "bench"
    r = fb.build(out, settings=[tiny_setting], config=CFG, limit=3, progress=False)
    assert r["trained"] == 3 and r["finished"] == 3
    n = len(fb.bench_strategies(CFG))
    assert r["total"] == n * 2
    # a second call trains only what is missing
    r = fb.build(out, settings=[tiny_setting], config=CFG, progress=False)
    assert r["trained"] == n * 2 - 3 and r["finished"] == n * 2
    ds = fb.collect(out)
    assert dict(ds["curve_top1"].sizes) == {"setting": 1, "strategy": n, "seed": 2, "epoch": 2}
    assert np.isfinite(ds["test_top1"].values).all() and (ds["params"] > 0).all()
    assert set(ds["source"].values.tolist()) == {"preset", "uniform", "gates"}
    table = fb.load_table(out)
    q = fb.truth_quality(table, tiny_setting)
    assert q["strategies"] == n and q["seeds"] == 2
    # a perfect predictor: the seed mean itself
    truth = table["test_top1"].sel(setting=tiny_setting).mean("seed")
    est = dict(zip(table.strategy.values.tolist(), truth.values.tolist()))
    sc = fb.score_estimates(table, tiny_setting, est, bootstrap=50)
    assert sc["regret_sd"] == 0 and sc["top5_precision"] == 1.0
    # the scoring half imports on its own, and a table ranks like itself
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "from workbench.studies.fusionbench_score import fidelity"], check=True)
    f = fb.fidelity(table, table, tiny_setting)
    assert f["tau_short_vs_full"] == 1.0 and f["strategies"] == n
    # reliability stays within [0, 1] however the seeds disagree
    for v in (q["reliability"], q["noise_ceiling_tau"]):
        assert v != v or 0 <= v <= 1  # NaN only when a seed ranks nothing (all accuracies equal)
    # another configuration in the same folder is refused
    with pytest.raises(ValueError, match="another configuration"):
        fb.build(out, settings=[tiny_setting], config=replace(CFG, epochs=3), progress=False)
    # a corrupt item is named
    item = next((out / "items" / tiny_setting).glob("*.json"))
    item.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt bench item"):
        fb.collect(out)


def test_score_run_estimates_exactly_the_table_strategies(tiny_setting, tmp_path):
    out = tmp_path / "bench"
    fb.build(out, settings=[tiny_setting], config=replace(CFG, seeds=(0,)), progress=False)
    fb.collect(out)
    run = tmp_path / "template"
    train_template(run, dataset="synthetic-mixed", data_kw=dict(TINY_KW),
                   template=TemplateConfig(num_classes=8, growth=8, bn_size=2),
                   train_config=TrainConfig(epochs=1, warmup_epochs=0, batch_size=8, progress=False))
    r = fb.score_run(run, out, bootstrap=20)
    assert r["setting"] == tiny_setting
    assert len(r["estimates"]) == len(fb.bench_strategies(CFG))
    assert -1 <= r["all"]["tau"] <= 1 and "gates" in r
    assert "tau" in fb.score_report(r)
    json.dumps(r)  # JSON-able for --json
    # the predictor study's default predictor is bench score's, cached in the run for this list
    from workbench.studies.predictors import predict_run

    codes = list(r["estimates"])
    p = predict_run(run, codes, "shared+bn2")
    assert p["estimates"] == pytest.approx(r["estimates"], abs=1e-6)
    assert (run / "predictors" / "shared+bn2.json").exists() and p["environment"]["torch"] == torch.__version__
    p["estimates"][codes[0]] = -1.0
    (run / "predictors" / "shared+bn2.json").write_text(json.dumps(p))
    assert predict_run(run, codes, "shared+bn2")["estimates"][codes[0]] == -1.0  # read from the cache
    assert predict_run(run, codes[:3], "shared+bn2")["estimates"][codes[0]] != -1.0  # another list: recomputed
    more = predict_run(run, codes, "shared+bn2+val5x", cache=False)
    assert set(more["estimates"]) == set(codes) and more["config"]["val_scale"] == 5
    with pytest.raises(ValueError, match="unknown predictor"):
        predict_run(run, codes, "oracle")
    # the gates' log-probability: no forward pass, the sum of each layer's log marginal
    from workbench.strategy import parse_strategy
    from workbench.template.network import load_template

    lp = predict_run(run, codes, "gate-logp", cache=False)["estimates"]
    template = load_template(run)[0]
    up = template.unit_probabilities()
    s = template.on_scaffold(parse_strategy(codes[1]))
    want = sum(math.log(float(up[i, template.units.index(u)])) for i, u in enumerate(s.units))
    assert lp[codes[1]] == pytest.approx(want, abs=1e-5) and all(v <= 0 for v in lp.values())
    # ranked by loss: minus each strategy's validation loss, as the estimator computes it
    from workbench.engine.estimate import EstimateConfig, estimate_strategies
    from workbench.runs import Run
    from workbench.studies.pipeline import open_splits

    nll = predict_run(run, codes, "shared+bn2-nll", cache=False)["estimates"]
    spec = Run(run).spec()
    splits = open_splits(spec["dataset"], root=spec.get("root"), splits=("train", "val"), **spec["data_kw"])
    est = estimate_strategies(template, [template.on_scaffold(parse_strategy(c)) for c in codes[:4]], splits["val"],
                              train_set=splits["train"], config=EstimateConfig(progress=False, recalibrate_batches=2))
    assert [nll[c] for c in codes[:4]] == pytest.approx((-est["loss"].values).tolist(), abs=1e-5)
    # few-shot: the parts are trained once (their time counts), each strategy scored by its part
    fs = predict_run(run, codes, "fewshot", cache=False)
    manifest = json.loads(next(run.glob("fewshot-*/fewshot.json")).read_text())
    assert all(np.isfinite(v) for v in fs["estimates"].values())
    assert fs["seconds"] >= sum(manifest["seconds"].values())
    again = predict_run(run, codes, "fewshot", cache=False)  # parts kept, their time still counted
    assert again["estimates"] == fs["estimates"] and again["seconds"] >= sum(manifest["seconds"].values())


def test_truth_quality_at_the_edges():
    import xarray as xr

    def table(acc):
        acc = np.asarray(acc, dtype=float)
        return xr.Dataset({"test_top1": (("setting", "strategy", "seed"), acc[None])},
                          coords={"setting": ["s"], "strategy": [f"x{i}" for i in range(acc.shape[0])],
                                  "seed": list(range(acc.shape[1]))})

    # seeds that disagree: reliability 0 and a zero ceiling, never negative or above 1
    q = fb.truth_quality(table([[0.1, 0.9, 0.5], [0.5, 0.1, 0.9], [0.9, 0.5, 0.1], [0.3, 0.7, 0.2]]), "s")
    assert q["reliability"] == 0 and q["noise_ceiling_tau"] == 0
    # a seed that ranks nothing: NaN, not a ceiling of 1
    q = fb.truth_quality(table([[0.5, 0.1], [0.5, 0.4], [0.5, 0.9]]), "s")
    assert q["noise_ceiling_tau"] != q["noise_ceiling_tau"]
    # seeds that agree perfectly
    q = fb.truth_quality(table([[0.1, 0.2], [0.5, 0.6], [0.9, 0.95]]), "s")
    assert q["reliability"] == 1 and q["noise_ceiling_tau"] == 1 and q["seeds_for_goal"] == 1
    # seeds that agree at Kendall tau 1/3 (r = 0.5 on ranks): 2 seeds give 0.667, 4 reach 0.8
    q = fb.truth_quality(table([[0.1, 0.1], [0.2, 0.3], [0.3, 0.2], [0.4, 0.4]]), "s")
    assert q["tau_between_seeds"] == pytest.approx(2 / 3, abs=1e-3)
    q = fb.truth_quality(table([[1, 1], [2, 3], [3, 4], [4, 2]]), "s")
    assert q["tau_between_seeds"] == pytest.approx(1 / 3, abs=1e-3) and q["reliability"] == pytest.approx(2 / 3, abs=1e-3)
    assert q["seeds_for_goal"] == 4


def test_truth_quality_while_a_seed_is_being_built():
    import xarray as xr

    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.9, 40)
    acc = np.stack([base + rng.normal(0, 0.02, 40), base + rng.normal(0, 0.02, 40), np.full(40, np.nan)], 1)
    acc[:3, 2] = base[:3]  # the third seed has just begun
    t = xr.Dataset({"test_top1": (("setting", "strategy", "seed"), acc[None])},
                   coords={"setting": ["s"], "strategy": [f"x{i}" for i in range(40)], "seed": [0, 1, 2]})
    q = fb.truth_quality(t, "s")
    assert q["strategies"] == 40 and q["seeds"] == 2  # not 3 strategies on 3 seeds
    assert q["finished"] == 83 and q["best"] == round(float(np.nanmax(np.nanmean(acc, 1))), 4)
    # a large table: a second seed with 24 strategies already counts (agreement on those 24)
    big = rng.uniform(0.3, 0.9, 74)
    acc = np.stack([big + rng.normal(0, 0.02, 74), np.full(74, np.nan), np.full(74, np.nan)], 1)
    acc[:24, 1] = big[:24]
    t = xr.Dataset({"test_top1": (("setting", "strategy", "seed"), acc[None])},
                   coords={"setting": ["s"], "strategy": [f"x{i}" for i in range(74)], "seed": [0, 1, 2]})
    q = fb.truth_quality(t, "s")
    assert q["strategies"] == 24 and q["seeds"] == 2 and q["tau_between_seeds"] > 0.8
    # three whole seeds and a fourth at 30 of 74: the three seeds on every strategy, until the
    # fourth covers 90% of the list
    acc = np.stack([big + rng.normal(0, 0.02, 74) for _ in range(4)], 1)
    acc[30:, 3] = np.nan
    t = xr.Dataset({"test_top1": (("setting", "strategy", "seed"), acc[None])},
                   coords={"setting": ["s"], "strategy": [f"x{i}" for i in range(74)], "seed": [0, 1, 2, 3]})
    q = fb.truth_quality(t, "s")
    assert q["strategies"] == 74 and q["seeds"] == 3
    acc[30:70, 3] = big[30:70]
    t["test_top1"].values[0] = acc
    q = fb.truth_quality(t, "s")
    assert q["strategies"] == 70 and q["seeds"] == 4


def test_paired_init_gives_coinciding_layers_the_same_weights():
    """Under the paired design two strategies of one seed start every layer they share (same unit,
    same place) from the same weights, and differ where their units differ; another seed differs."""
    import torch

    from workbench.models import build_model
    from workbench.models.base import paired_init
    from workbench.strategy import Strategy
    from workbench.studies.fusionbench import BenchConfig

    kw = {a: b for a, b in BenchConfig().model_kw(4).items() if a != "num_classes"}

    def net(units, seed):
        torch.manual_seed(123 + len(units[0]))  # unpaired initialisation would differ
        m = build_model(Strategy("densenet-tiny", units, "2D"), num_classes=4, **kw)
        paired_init(m, seed)
        return dict(m.named_parameters())

    a = net(("S", "ST", "S+ST", "S", "ST", "S", "S", "ST"), 0)
    b = net(("ST", "ST", "S+ST", "skip", "ST", "S", "S", "ST"), 0)
    c = net(("S", "ST", "S+ST", "S", "ST", "S", "S", "ST"), 1)
    shared = sorted(set(a) & set(b))
    assert len(shared) > 40 and all(torch.equal(a[n], b[n]) for n in shared)
    assert "blocks.0.0.branch_s.conv.weight" in a and "blocks.0.0.branch_s.conv.weight" not in b
    convs = [n for n in a if n.endswith("conv.weight")]
    assert not any(torch.equal(a[n], c[n]) for n in convs)  # another seed, other weights
    assert BenchConfig(paired=True).budget()["paired"] and "paired" not in BenchConfig().budget()


def test_flattening_epoch_curves_figure_and_build_command(tiny_setting, tmp_path):
    import json as js

    import matplotlib.pyplot as plt
    import xarray as xr

    from workbench.plots.trust import bench_curves

    curve = np.array([0.2, 0.5, 0.7, 0.8, 0.852, 0.855, 0.86, 0.86])  # flat (within 0.01) from epoch 5
    c = np.broadcast_to(curve, (1, 3, 2, 8)).copy()
    t = xr.Dataset({"curve_top1": (("setting", "strategy", "seed", "epoch"), c),
                    "test_top1": (("setting", "strategy", "seed"), np.full((1, 3, 2), 0.8))},
                   coords={"setting": ["s"], "strategy": ["a", "b", "c"], "seed": [3, 4], "epoch": np.arange(1, 9)},
                   attrs={"config": js.dumps({"epochs": 8, "paired": True, "seeds": [3, 4]})})
    assert fb.flattening_epoch(t, "s") == 5
    c[0, 0, 0] = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.9]  # one training that jumps at the end ...
    t["curve_top1"].values[:] = c
    assert fb.flattening_epoch(t, "s") == 8
    c[0, 0, 0, 6] = np.nan  # ... left out while it is unfinished
    t["curve_top1"].values[:] = c
    assert fb.flattening_epoch(t, "s") == 5
    t["curve_top1"].values[:] = np.nan
    assert fb.flattening_epoch(t, "s") is None
    assert fb.build_command(t, "tab") == "workbench bench build --out tab --epochs 8 --paired --seeds 3 4 --setting s --workers 2"
    t["curve_top1"].values[:] = np.broadcast_to(curve, (1, 3, 2, 8))
    fig = bench_curves(t)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.collections  # the mean, the flattening line, the band of the seeds
    plt.close(fig)
    # a real tiny table: README and figure written together
    out = tmp_path / "bench"
    fb.build(out, settings=[tiny_setting], config=replace(CFG, seeds=(0,)), progress=False, limit=3)
    fb.write_readme(out)
    assert (out / "curves.png").stat().st_size > 1000
    text = (out / "README.md").read_text()
    assert f"--out {out} --epochs 2 --seeds 0 --setting tiny" in text and "curves flat by" in text
