"""The main job (``workbench demo``) end to end at smoke size: template, estimates, figures, report."""

import json

import numpy as np
from PIL import Image

from workbench.analysis import load_netcdf
from workbench.cli import main
from workbench.studies.mainjob import SMOKE


def test_main_job_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--smoke", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "jupyter lab notebooks/" in printed and "report.md" in printed
    hist = json.loads((out / "template" / "history.json").read_text())
    assert len(hist["epoch"]) == SMOKE.epochs
    est = load_netcdf(out / "estimates.nc")
    src = list(est["source"].values)
    assert src.count("sampled") == SMOKE.samples and "preset" in src and "most-probable" in src
    report = (out / "report.md").read_text()
    assert "UNVALIDATED" in report  # no rank study for this run yet: the estimates say so
    best = float(est["top1"].values[[s == "sampled" for s in src]].max())
    assert f"best {best:.3f}" in report
    names = ("unit_probability_heatmap", "unit_probability_bars", "estimate_histogram", "accuracy_vs_gmacs",
             "layer_importance", "gate_trajectories")
    for n in names:
        for ext in ("pdf", "svg", "png"):
            assert (out / "figures" / f"{n}.{ext}").stat().st_size > 1000, (n, ext)
        assert f"figures/{n}.png" in report
    with Image.open(out / "figures" / "unit_probability_bars.png") as im:
        assert im.size[0] == round(3.3 * 300)  # single column at 300 dpi
    # a second call reuses the trained template (nothing retrained)
    before = (out / "template" / "last.safetensors").stat().st_mtime_ns
    assert main(["demo", "--smoke", "--no-progress", "--out", str(out)]) == 0
    assert (out / "template" / "last.safetensors").stat().st_mtime_ns == before
    assert np.array_equal(load_netcdf(out / "estimates.nc")["top1"].values, est["top1"].values)
    # a template of another schedule (an earlier version's default) is named, not resumed or reused
    from dataclasses import replace

    import pytest

    from workbench.runs import RunError
    from workbench.studies.mainjob import run_main_job

    with pytest.raises(RunError, match="another schedule .2 epochs, 1 warm-up.*trains 3, 1 warm-up"):
        run_main_job(out, settings=replace(SMOKE, epochs=3), progress=False)
    assert (out / "template" / "last.safetensors").stat().st_mtime_ns == before


def test_designer_trains_in_the_background(tmp_path):
    from workbench.studies.mainjob import run_main_job
    from workbench.widgets import StrategyDesigner

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    d = StrategyDesigner.from_run(r["run"], estimates=r["estimates"])
    assert "UNVALIDATED" in d.trust
    d.best_sampled()
    seen = []
    thread = d.train(tmp_path / "design", epochs=2, batch_size=16, on_epoch=lambda h: seen.append(len(h)))
    assert thread.daemon  # the notebook's kernel is not blocked
    thread.join(timeout=300)
    assert not thread.is_alive() and "error" not in d.last_training, d.last_training
    assert seen == [1, 2] and 0 <= d.last_training["test"]["top1"] <= 1
    res = json.loads((tmp_path / "design" / "result.json").read_text())
    assert tuple(res["strategy"]["units"]) == d.strategy.units
    with __import__("pytest").raises(ValueError, match="run folder"):
        StrategyDesigner(d.template, d.eval_set).train(tmp_path / "x")
    # the same design as the backbone of a two-stream (RGB + flow) network
    d.set_stream_fusion("stcb")
    seen.clear()
    d.train(tmp_path / "design-streams", epochs=1, batch_size=16, on_epoch=lambda h: seen.append(len(h)), wait=True)
    assert "error" not in d.last_training, d.last_training
    assert seen == [1] and d.last_training["stream_fusion"] == "stcb"
    assert json.loads((tmp_path / "design-streams" / "result.json").read_text())["modalities"] == ["rgb", "flow"]


def test_designer_scores_like_the_estimates(tmp_path):
    from workbench.analysis import load_netcdf, strategies_from
    from workbench.studies.mainjob import run_main_job
    from workbench.widgets import StrategyDesigner

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    est = load_netcdf(r["estimates"])
    d = StrategyDesigner.from_run(r["run"], estimates=est)
    assert d.recalibrate_batches == est.attrs["recalibrate_batches"] >= 1
    rows = strategies_from(est)
    for i in (0, len(rows) // 2, len(rows) - 1):  # the same float, not merely close
        assert d.estimate(rows[i]) == float(est["top1"].values[i])


def test_comparison_says_what_it_will_train_before_it_trains(tmp_path, capsys):
    from workbench.engine.config import TrainConfig
    from workbench.studies.compare import literature_comparison
    from workbench.studies.mainjob import run_main_job

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    plan = literature_comparison(tmp_path / "lit", r["run"], models=("c3d", "r3d_18"), dry_run=True,
                                 train_config=TrainConfig(epochs=2, batch_size=8, progress=False))
    assert plan["trainings"] == 3 and plan["cached"] == 0 and plan["seconds"] > 0  # 2 models + most probable
    assert [p["model"] for p in plan["pending"]] == ["c3d", "r3d_18", "most probable"]
    assert "3 training(s) to run" in capsys.readouterr().out
    assert not (tmp_path / "lit" / "runs").exists()  # a dry run trains nothing
    # two at a time, one thread each; a second call finds every training cached
    tc = TrainConfig(epochs=1, batch_size=8, progress=False)
    ds = literature_comparison(tmp_path / "lit", r["run"], models=("c3d", "r3d_18"), train_config=tc, parallel=2,
                               progress=False)
    assert ds.sizes["model"] == 3 and np.isfinite(ds["test_top1"].values).all()
    envs = [json.loads(p.read_text())["environment"] for p in (tmp_path / "lit" / "runs").glob("*/result.json")]
    assert len(envs) == 3 and {e["threads"] for e in envs} == {1}
    again = literature_comparison(tmp_path / "lit", r["run"], models=("c3d", "r3d_18"), train_config=tc, dry_run=True)
    assert again["cached"] == 3 and again["trainings"] == 0


def test_designer_records_refuses_and_never_overwrites(tmp_path):
    from workbench.runs import read_records
    from workbench.studies.mainjob import run_main_job
    from workbench.widgets import StrategyDesigner

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    d = StrategyDesigner.from_run(r["run"], estimates=r["estimates"])
    labels = [s.label for s in d.sampled()]
    assert len(labels) == len(set(labels)) and all("(" in x for x in labels)  # distinct, with their estimate
    d.apply_preset("opt")
    d.set_unit(0, "ST" if d.strategy.units[0] != "ST" else "S")
    assert d.strategy.name is None  # an edited preset is a new design
    d.train(tmp_path / "t1", epochs=1, batch_size=16, wait=True)
    assert "error" not in d.last_training, d.last_training
    recs = read_records(r["run"])
    assert len(recs) == 1 and recs[0]["code"] == d.strategy.code and recs[0]["source"] == "designer"
    assert recs[0]["estimate"] == d.estimate() and 0 <= recs[0]["standalone_test_top1"] <= 1
    assert d.records() == recs
    a = d.export(tmp_path / "designs")
    b = d.export(tmp_path / "designs")
    assert a["strategy"].name == "design.json" and b["strategy"].name == "design-2.json"


def test_a_finished_training_stays_finished_when_its_record_cannot_be_written(tmp_path):
    from workbench.studies.mainjob import run_main_job
    from workbench.widgets import StrategyDesigner

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    (r["run"] / "records.json").write_text("{not json")
    d = StrategyDesigner.from_run(r["run"], estimates=r["estimates"])
    d.train(tmp_path / "t", epochs=1, batch_size=16, wait=True)
    assert "error" not in d.last_training and 0 <= d.last_training["test"]["top1"] <= 1
    assert "records file" in str(d.last_training["record_error"])
    # a second training while one runs is refused
    import threading

    gate = threading.Event()
    d.training = threading.Thread(target=gate.wait, daemon=True)
    d.training.start()
    d.running = True
    with __import__("pytest").raises(RuntimeError, match="already running"):
        d.train(tmp_path / "t2", epochs=1)
    gate.set()


def test_designer_queues_cancels_and_draws_curves_through_its_widgets(tmp_path):
    """Through the widget's own buttons: a second design queues behind the running one, cancel
    stops the running one (nothing recorded, its folder resumable), the queued one then trains,
    is recorded, and the curves image shows its epochs."""
    from workbench.runs import Run, read_records
    from workbench.studies.mainjob import run_main_job
    from workbench.widgets import StrategyDesigner

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    d = StrategyDesigner.from_run(r["run"], estimates=r["estimates"])
    d.widget()
    c = d.controls
    c["folder"].value = str(tmp_path / "designs")
    d.apply_preset("st")
    first = d.strategy
    c["epochs"].value = 50  # long enough to be cancelled while it runs
    c["train"].click()
    assert d.training_strategy == first and "training" in c["status"].value
    d.apply_preset("opt")
    second = d.strategy
    c["epochs"].value = 1
    c["train"].click()
    assert len(d.queue) == 1 and "queued" in c["status"].value and second.code in c["queue"].value
    c["cancel"].click()
    d.wait(timeout=600)
    assert [(f["strategy"].code, f["status"]) for f in d.finished] == [(first.code, "cancelled"),
                                                                          (second.code, "done")], d.finished
    assert "stopped in epoch" in d.finished[0]["cancelled"]
    assert [x["code"] for x in read_records(r["run"])] == [second.code]  # a cancelled training is not recorded
    assert "done:" in c["status"].value and c["queue"].value == ""
    assert bytes(c["curves"].value).startswith(b"\x89PNG")
    stopped = Run(tmp_path / "designs" / f"train-{first.key}-e50")
    assert not stopped.is_finished()  # resumable, never marked finished
    c["cancel"].click()
    assert c["status"].value == "nothing is training"
    # the same design at the same settings again: its finished folder is reused, nothing re-recorded
    c["train"].click()
    d.wait(timeout=600)
    assert d.finished[-1]["status"] == "done" and d.finished[-1]["reused"] and "already trained" in c["status"].value
    assert [x["code"] for x in read_records(r["run"])] == [second.code]
    assert d.running is False and not d.queue


def test_trust_from_anchors_and_recommend_at_tiny_size(tmp_path, capsys):
    """`workbench trust` trains 8 tool-chosen anchors and writes the run's trust figure (the trust
    line says so); a second call trains nothing; `workbench recommend --budget 2` verifies two
    more strategies, skips what is known, and returns a verified best with its evidence."""
    from workbench.cli import main
    from workbench.runs import read_records
    from workbench.studies.mainjob import run_main_job
    from workbench.studies.trust_record import read_trust, trust_line

    r = run_main_job(tmp_path / "demo", settings=SMOKE, progress=False)
    run = str(r["run"])
    tiny = ["--epochs", "1", "--batch-size", "16", "--no-progress"]
    # the anchors trained two at a time, each in a one-thread process
    assert main(["trust", "--run", run, "--out", str(tmp_path / "anchors"), "--parallel", "2", *tiny]) == 0
    envs = [json.loads(p.read_text())["environment"] for p in (tmp_path / "anchors").glob("*/result.json")]
    assert len(envs) == 8 and {e["threads"] for e in envs} == {1}
    t = read_trust(run)
    assert t["source"] == "anchors" and t["strategies"] == 8 and len(set(t["chosen_by_tool"])) == 8
    assert -1 <= t["tau"] <= 1 and t["interval_90"] > 0
    assert "8 tool-chosen stand-alone anchors" in trust_line(run)
    recs = read_records(run)
    assert len(recs) == 8 and {x["source"] for x in recs} == {"anchor"}
    assert main(["trust", "--run", run, "--out", str(tmp_path / "anchors"), *tiny]) == 0
    assert len(read_records(run)) == 8  # nothing trained twice
    capsys.readouterr()
    assert main(["recommend", "--run", run, "--out", str(tmp_path / "rec"), "--budget", "2", *tiny]) == 0
    rec = json.loads((tmp_path / "rec" / "recommendation.json").read_text())
    assert len(rec["verified"]) == 2 and not set(rec["verified"]) & set(rec["known_before"])
    assert rec["best"] in rec["verified"] + rec["known_before"] and rec["standalone_test_top1"] is not None
    assert len(read_records(run)) == 10 and "best:" in capsys.readouterr().out
