"""A template that fails says so: skipped layers, accuracy near chance or stalled, squeezed estimates."""

from __future__ import annotations

import json

import pytest

from workbench.template.health import RULES, estimate_problems, problem_lines, template_problems


def test_a_healthy_template_has_no_problems():
    assert template_problems([0.01] * 8, [0.3, 0.5, 0.7, 0.8, 0.85], 8) == []


def test_the_seed_that_failed_silently_is_named():
    # the rank study's template seed 2: near 0.50 until epoch 9, layers 1-4 mostly skipped
    p_skip = [0.8, 0.7, 0.9, 0.6, 0.1, 0.05, 0.02, 0.01]
    val = [0.50, 0.50, 0.51, 0.49, 0.50, 0.50, 0.51, 0.50, 0.52, 0.60, 0.64, 0.66]
    probs = {p["problem"]: p for p in template_problems(p_skip, val, 8)}
    assert set(probs) == {"skipped-layers", "stalled"}
    assert probs["skipped-layers"]["layers"] == [0, 1, 2, 3]
    assert all("--seed" in line for line in problem_lines(probs.values()))


def test_near_chance_and_thresholds():
    chance = 1 / 4
    floor = chance + RULES["near_chance_share"] * (1 - chance)
    assert [p["problem"] for p in template_problems([0.0] * 4, [0.2, 0.25, floor - 0.01], 4)] == ["near-chance"]
    assert template_problems([0.0] * 4, [0.2, 0.25, floor + 0.01], 4) == []
    # NaN epochs (no validation) are ignored
    assert template_problems([0.0] * 4, [float("nan")] * 3, 4) == []


def test_squeezed_estimates():
    assert estimate_problems([0.50, 0.55, 0.66, 0.60])[0]["problem"] == "squeezed"
    assert estimate_problems([0.51, 0.84, 0.86]) == []  # the shipped template: presets spread wide
    assert estimate_problems([0.5, 0.5]) == []  # too few to say


def test_training_writes_health_and_warns(tmp_path):
    from workbench.engine.config import TrainConfig
    from workbench.studies.pipeline import train_template
    from workbench.template.network import TemplateConfig

    with pytest.warns(RuntimeWarning, match="near chance"):
        train_template(tmp_path / "t", data_kw={"train_per_class": 4, "val_per_class": 2},
                       template=TemplateConfig(num_classes=8, growth=4, bn_size=2),
                       train_config=TrainConfig(epochs=1, warmup_epochs=1, batch_size=8, lr=1e-5, progress=False))
    health = json.loads((tmp_path / "t" / "health.json").read_text())
    assert "near-chance" in [p["problem"] for p in health["template"]]


def test_trust_line_carries_the_template_problems(tmp_path):
    from workbench.studies.trust_record import trust_line, trust_short

    (tmp_path / "health.json").write_text(json.dumps({"template": template_problems([0.9] * 4, [0.2] * 5, 4)}))
    assert "TEMPLATE PROBLEMS: skipped-layers, near-chance, stalled" in trust_short(tmp_path)
    assert "near chance" in trust_line(tmp_path)
    (tmp_path / "health.json").write_text(json.dumps({"template": []}))
    assert "PROBLEMS" not in trust_short(tmp_path)


def test_trust_line_names_the_run_as_the_user_types_it(tmp_path, monkeypatch):
    from workbench.studies.trust_record import trust_line

    (tmp_path / "runs" / "demo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    line = trust_line(tmp_path / "runs" / "demo")
    assert "--run runs/demo --out" in line and str(tmp_path) not in line


def test_trust_report_summarises_template_seeds():
    from workbench.studies.trust import seed_summary, trust_report

    def score(t):
        part = {"strategies": 40, "tau": t, "rho": t + 0.1, "top5_precision": 0.4, "noise_ceiling_tau": 0.7}
        return {"setting": "motion", "all": part, "gates": {**part, "strategies": 20}}

    scores = [score(0.3), score(0.5), score(-0.1)]
    s = seed_summary(scores)
    assert s["all"]["per_seed"] == [0.3, 0.5, -0.1] and abs(s["all"]["mean"] - 0.2333) < 1e-3 and s["all"]["min"] == -0.1
    text = trust_report({"default": scores})
    assert "| default | motion | all | 40 | +0.30, +0.50, -0.10 | +0.23 +- 0.31 | -0.10 |" in text
    assert "| default | motion | gates | 20 |" in text


def test_a_run_whose_estimates_rank_poorly_says_so(tmp_path):
    from workbench.studies.trust_record import LOW_TAU, trust_line, trust_short, trust_verdict

    def figure(tau, lo, hi):
        t = {"predictor": "anchors", "source": "anchors", "tau": tau, "tau_ci": [lo, hi], "rho": tau,
             "strategies": 8, "seeds": 1, "interval_90": 0.05, "study": "x"}
        (tmp_path / "trust.json").write_text(json.dumps(t))
        return t

    assert trust_verdict(figure(0.2, -0.3, 0.7))[0] == "low"
    assert "LOW rank agreement" in trust_line(tmp_path) and "LOW (below 0.4)" in trust_short(tmp_path)
    assert trust_verdict(figure(0.6, 0.1, 0.9))[0] == "unproven"
    assert "cannot rule out a tau below 0.4" in trust_line(tmp_path)
    assert "not shown above 0.4" in trust_short(tmp_path) and "LOW" not in trust_short(tmp_path)
    assert trust_verdict(figure(0.8, LOW_TAU + 0.01, 0.95))[0] == "ok"
    assert "LOW" not in trust_line(tmp_path) and "not shown" not in trust_short(tmp_path)
    assert trust_verdict(figure(LOW_TAU, LOW_TAU, 0.9))[0] == "ok"  # the threshold itself is not low
    # constant anchors: no tau (NaN, as JSON writes it) is no evidence, never "ok"
    assert trust_verdict(figure(float("nan"), float("nan"), float("nan")))[0] == "low"
    assert "no rank agreement could be measured" in trust_line(tmp_path)
    assert trust_verdict(figure(0.7, float("nan"), float("nan")))[0] == "unproven"
