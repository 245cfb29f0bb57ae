"""The rank study end to end at a tiny size (K = 8): schema, real trainings, caching, trust mark."""

import json

import numpy as np
import pytest

from workbench.analysis import load_netcdf
from workbench.engine.config import TrainConfig
from workbench.studies.pipeline import train_template
from workbench.studies.rank import (
    StudyConfig,
    rank_metrics,
    read_trust,
    run_rank_study,
    top_k_precision,
    trust_line,
)

DATA = {"train_per_class": 12, "val_per_class": 6, "test_per_class": 6}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    run = tmp_path_factory.mktemp("template")
    train_template(run, dataset="synthetic-mixed", data_kw=DATA, template={"growth": 4},
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
    assert "checked against stand-alone training: Kendall tau" in trust_line(template)
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
    from workbench.studies.known_answer import known_answer_study

    with pytest.raises(ValueError, match="at least 3 strategies"):
        StudyConfig(strategies=2)
    with pytest.raises(ValueError, match="pool"):
        StudyConfig(strategies=10, pool=5)
    with pytest.raises(ValueError, match="recalibrate"):
        StudyConfig(recalibrate=(-1,))
    from workbench.studies.rank import _check_trust_predictor

    with pytest.raises(ValueError, match="not among this study's predictors"):
        _check_trust_predictor(StudyConfig(trust_predictor="mc4"), None)
    _check_trust_predictor(StudyConfig(mc_samples=(4,), trust_predictor="mc4+recal2"), None)
    with pytest.raises(ValueError, match="seeds"):
        known_answer_study([], tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        known_answer_study([0], tmp_path, jobs=0)
    (tmp_path / "run.json").write_text('{"kind": "standalone", "dataset": "synthetic-mixed", "data_kw": {}}')
    with pytest.raises(ValueError, match="not a template run"):
        run_rank_study(tmp_path, tmp_path / "s")


def test_levers_on_the_same_strategies(template, tmp_path, capsys):
    """Few-shot parts, Monte-Carlo masks and fine-tuning as predictors; the lever table compares
    studies on the same strategies (stand-alone results come from the cache) and refuses others."""
    from workbench.analysis import strategies_from
    from workbench.cli import main
    from workbench.studies.levers import lever_report, lever_table
    from workbench.template.fewshot import load_few_shot, train_few_shot

    cfg = StudyConfig(strategies=8, pool=24, epochs=1, batch_size=16, recalibrate=(0, 2), bootstrap=100)
    first = run_rank_study(template, tmp_path / "a", config=cfg, progress=False, parallel=2)
    envs = [json.loads(p.read_text())["environment"] for p in (tmp_path / "a" / "standalone").glob("*/result.json")]
    assert len(envs) == 8 and {e["threads"] for e in envs} == {1}  # two at a time, one thread each
    m = train_few_shot(template, tmp_path / "fs", layer=3, epochs=1, progress=False)
    assert m["layer"] == 3 and set(m["parts"]) == {"S", "ST", "S+ST", "skip"}
    fs = load_few_shot(tmp_path / "fs")
    for u, part in fs.parts.items():
        assert part.unit_probabilities()[3, list(part.units).index(u)] > 0.999
    cfg2 = StudyConfig(strategies=8, pool=24, epochs=1, batch_size=16, recalibrate=(0, 2), bootstrap=100,
                       mc_samples=(2,), finetune_steps=(2,), trust_predictor="mc2+recal2")
    second = run_rank_study(template, tmp_path / "b", config=cfg2, strategies=strategies_from(first),
                            cache=tmp_path / "a" / "standalone", few_shot=tmp_path / "fs", progress=False)
    preds = list(second["predictor"].values)
    assert {"mc2+recal2", "finetune2", "few-shot(layer 3)+recal2"} <= set(preds)
    assert second.attrs["few_shot_seconds"] > 0
    assert read_trust(template)["predictor"] == "mc2+recal2"
    np.testing.assert_allclose(second.standalone_top1.values, first.standalone_top1.values)
    assert np.isfinite(second.prediction.values).all()
    table = lever_table({"one-shot": tmp_path / "a", "more predictors": tmp_path / "b"})
    assert table.sizes["row"] == len(first["predictor"]) + len(preds)
    fs_row = [i for i, p in enumerate(table["predictor"].values) if str(p).startswith("few-shot")][0]
    assert table["extra_template_seconds"].values[fs_row] == pytest.approx(second.attrs["few_shot_seconds"])
    assert "| more predictors | finetune2 |" in lever_report(table)
    out = tmp_path / "levers"
    assert main(["study", "levers", "--study", f"a={tmp_path / 'a'}", "--study", f"b={tmp_path / 'b'}",
                 "--out", str(out)]) == 0
    for f in ("levers.md", "levers.nc", "levers.png", "levers.pdf", "levers.svg"):
        assert (out / f).is_file(), f
    # another set of strategies: refused
    other = run_rank_study(template, tmp_path / "c", config=StudyConfig(strategies=4, pool=24, epochs=1, batch_size=16,
                                                                        recalibrate=(0,), bootstrap=50, seed=5,
                                                                        include_presets=False),
                           cache=tmp_path / "a" / "standalone", progress=False)
    assert other.sizes["strategy"] == 4
    with pytest.raises(ValueError, match="same strategies"):
        lever_table({"a": tmp_path / "a", "c": tmp_path / "c"})
    assert main(["study", "levers", "--study", str(tmp_path / "a"), "--out", str(out)]) == 2
    assert "expected LABEL=STUDY_FOLDER" in capsys.readouterr().err


def test_the_known_answer_check_trains_with_the_template_defaults_and_takes_data_arguments(tmp_path):
    """The check's schedule is the one `workbench template train` uses; data arguments reach the
    data (and its sizes and seeds stay the check's); the threads asked for are used and recorded."""
    from workbench.engine.config import TEMPLATE_TRAINING
    from workbench.studies.known_answer import KNOWN_ANSWER, known_answer_study

    assert (KNOWN_ANSWER.epochs, KNOWN_ANSWER.warmup_epochs, KNOWN_ANSWER.batch_size, KNOWN_ANSWER.lr) == \
        (TEMPLATE_TRAINING.epochs, TEMPLATE_TRAINING.warmup_epochs, TEMPLATE_TRAINING.batch_size, TEMPLATE_TRAINING.lr)
    with pytest.raises(ValueError, match="set by the check itself"):
        known_answer_study([0], tmp_path, data_kw={"seed": 3})
    with pytest.raises(ValueError, match="threads must be"):
        known_answer_study([0], tmp_path, threads=0)


def test_known_answer_data_arguments_reach_the_run(tmp_path):
    import json as _json
    from dataclasses import replace as _replace

    from workbench.studies.known_answer import KNOWN_ANSWER, run_known_answer

    tiny = _replace(KNOWN_ANSWER, epochs=2, warmup_epochs=1, samples=2, train_per_class=(("appearance", 4), ("motion", 4)),
                    val_per_class=2)
    r = run_known_answer("motion", 0, tmp_path / "m", settings=tiny, data_kw={"noise": 0.0, "distractors": 2})
    spec = _json.loads((tmp_path / "m" / "run.json").read_text())
    assert spec["data_kw"]["noise"] == 0.0 and spec["data_kw"]["distractors"] == 2 and spec["data_kw"]["seed"] == 0
    assert r["data_kw"]["distractors"] == 2 and r["environment"]["threads"] >= 1
