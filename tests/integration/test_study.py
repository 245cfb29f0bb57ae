"""The rank study end to end at a tiny size (K = 8): schema, real trainings, caching, trust mark."""

import json

import numpy as np
import pytest

from workbench.analysis import load_netcdf
from workbench.pipeline import train_supernet
from workbench.study import (
    StudyConfig,
    rank_metrics,
    read_trust,
    run_rank_study,
    top_k_precision,
    trust_line,
)
from workbench.train import TrainConfig

DATA = {"train_per_class": 12, "val_per_class": 6, "test_per_class": 6}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    run = tmp_path_factory.mktemp("template")
    train_supernet(run, dataset="synthetic-mixed", data_kw=DATA, supernet={"growth": 4},
                   train_config=TrainConfig(epochs=3, warmup_epochs=1, batch_size=16, progress=False))
    return run


def test_rank_study_end_to_end(template, tmp_path):
    assert "UNVALIDATED" in trust_line(template)
    cfg = StudyConfig(strategies=8, pool=24, epochs=2, batch_size=16, recalibrate=(0, 2), bootstrap=200)
    ds = run_rank_study(template, tmp_path / "study", config=cfg, progress=False)
    assert ds.sizes["strategy"] == 8 and ds.sizes["seed"] == 1
    assert list(ds["predictor"].values) == ["shared", "shared+recal2", "log_prob", "rank_avg(shared+recal2, log_prob)"]
    for v in ("tau", "tau_lo", "tau_hi", "rho", "top_k_precision", "standalone_top1", "prediction", "gmacs"):
        assert v in ds
    assert np.all((ds.tau_lo <= ds.tau + 1e-9) & (ds.tau <= ds.tau_hi + 1e-9) | np.isnan(ds.tau))
    # every stand-alone number is a real training's test accuracy, read back from its run folder
    folders = json.loads(ds.attrs["standalone_folders"])
    for j, (folder,) in enumerate(folders):
        res = json.loads((tmp_path / "study" / "standalone" / folder.split("/")[-1] / "result.json").read_text())
        assert res["epochs"] == 2
        assert ds.standalone_top1.values[j, 0] == pytest.approx(res["test"]["top1"])
        hist = json.loads((tmp_path / "study" / "standalone" / folder.split("/")[-1] / "history.json").read_text())
        assert len(hist["train_loss"]) == 2 and hist["train_loss"][0] > 0
    # presets first, then sampled strategies spread over the estimate range
    names = [str(n) for n in ds["name"].values]
    assert "s" in names and "st" in names
    # outputs
    out = tmp_path / "study"
    for f in ("study.nc", "report.md", "strategies.json", "estimate_vs_standalone.png", "estimate_vs_standalone.pdf"):
        assert (out / f).is_file(), f
    assert load_netcdf(out / "study.nc").sizes == ds.sizes
    assert "Kendall tau" in (out / "report.md").read_text()
    t = read_trust(template)
    assert t is not None and t["strategies"] == 8
    assert "validated: Kendall tau" in trust_line(template)
    # a second study on the same strategies recomputes no training
    before = {p: p.stat().st_mtime_ns for p in (out / "standalone").glob("*/result.json")}
    ds2 = run_rank_study(template, tmp_path / "again", config=cfg, progress=False,
                         cache=out / "standalone",
                         strategies=__import__("workbench.analysis", fromlist=["x"]).strategies_from(ds))
    after = {p: p.stat().st_mtime_ns for p in (out / "standalone").glob("*/result.json")}
    assert before == after
    np.testing.assert_allclose(ds2.standalone_top1.values, ds.standalone_top1.values)


def test_rank_metrics_known_values():
    truth = np.arange(10.0)
    m = rank_metrics(truth, truth, bootstrap=100)
    assert m["tau"] == pytest.approx(1.0) and m["rho"] == pytest.approx(1.0)
    assert m["top_k_precision"] == 1.0
    m = rank_metrics(-truth, truth, bootstrap=100)
    assert m["tau"] == pytest.approx(-1.0) and m["tau_ci"][1] <= -0.9
    assert top_k_precision([3, 2, 1, 0], [0, 1, 2, 3], 2) == 0.0
    with pytest.raises(ValueError, match="at least 3"):
        rank_metrics([1, 2], [1, 2])


def test_bad_study_and_check_input(tmp_path):
    from workbench.known_answer import known_answer_study

    with pytest.raises(ValueError, match="at least 3 strategies"):
        StudyConfig(strategies=2)
    with pytest.raises(ValueError, match="pool"):
        StudyConfig(strategies=10, pool=5)
    with pytest.raises(ValueError, match="recalibrate"):
        StudyConfig(recalibrate=(-1,))
    with pytest.raises(ValueError, match="seeds"):
        known_answer_study([], tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        known_answer_study([0], tmp_path, jobs=0)
    (tmp_path / "run.json").write_text('{"kind": "standalone", "dataset": "synthetic-mixed", "data_kw": {}}')
    with pytest.raises(ValueError, match="not a template run"):
        run_rank_study(tmp_path, tmp_path / "s")
