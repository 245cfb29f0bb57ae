"""Stand-alone anchors of a template run: its trust figure, and recommendations with a budget.

* :func:`run_trust`: trains ``k`` (default 8) strategies of the run, chosen by the tool over the
  range of its estimates (:func:`workbench.studies.recommend.choose_anchors`), at the study budget,
  and writes the run's trust figure from them: Kendall tau between the estimates and the
  stand-alone results, with a bootstrap interval, and the width of the surrogate's prediction
  interval. Stand-alone trainings of the run's strategies at the same budget that are recorded
  already (the designer's, earlier anchors) count too; nothing is trained twice.
* :func:`run_recommend`: spends a budget of stand-alone trainings where the surrogate rates a
  strategy highest or least surely, and returns the best verified strategy with its evidence.

Every training lands in the run's records (``RUN/records.json``) beside its estimate, in the one
schema every writer uses. Selection uses the validation top-1; the test top-1 is only reported.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from workbench.engine.config import TrainConfig
from workbench.runs import Run, add_record, cache_key, read_records, write_json
from workbench.strategy import Strategy

__all__ = ["STUDY_BUDGET", "candidates", "run_recommend", "run_trust", "train_and_record"]

#: the stand-alone budget of anchors: the truth table's (FusionBench) recipe
STUDY_BUDGET = TrainConfig(epochs=30, batch_size=16, lr=6e-3, optimizer="adamw")
#: anchors a trust figure needs at the least
MIN_ANCHORS = 8


def _budget(cfg: TrainConfig) -> dict:
    return {k: cfg.to_dict()[k] for k in ("epochs", "batch_size", "lr", "optimizer")}


def candidates(estimates) -> dict[str, tuple[Strategy, float]]:
    """``{code: (strategy, estimate)}``: each distinct strategy of an estimates Dataset once."""
    from workbench.analysis import strategies_from, unique_strategies

    rows = strategies_from(estimates)
    top1 = estimates["top1"].values
    return {rows[i].code: (rows[i], float(top1[i])) for i, _ in unique_strategies(estimates, None)}


def _recorded(run, cfg: TrainConfig) -> dict[str, dict]:
    """The run's recorded stand-alone results at the budget of ``cfg`` (latest per strategy):
    RGB networks trained from scratch only (not the fused head of a two-stream design, not a
    network that started from the template's weights)."""
    want = _budget(cfg)
    out = {}
    for r in read_records(run):
        tc = r.get("train_config") or {}
        if {k: tc.get(k) for k in want} != want or r.get("standalone_val_top1") is None:
            continue
        if r.get("stream_fusion") not in (None, "none") or r.get("inherited_weights"):
            continue
        out[r["code"]] = r
    return out


def anchor_folder(out, strategy: Strategy, train_config: TrainConfig) -> Path:
    """Where a stand-alone training of ``strategy`` at ``train_config`` lives under ``out`` (the
    budget in the name: a training at another budget is never read back as this one)."""
    return Path(out) / f"{strategy.key}-{cache_key(_budget(train_config))[:8]}-s{train_config.seed}"


def train_and_record(run, strategy: Strategy, estimate: float, out, *, train_config: TrainConfig = STUDY_BUDGET,
                     source: str) -> dict:
    """Train ``strategy`` stand-alone on the run's data at ``train_config`` (its folder under
    ``out``: reused when finished, resumed when interrupted), record it in the run's records and
    return the record."""
    from workbench.studies.pipeline import read_run, train_strategy
    from workbench.template.network import load_template

    spec = read_run(run)
    template, _ = load_template(run)
    folder = anchor_folder(out, strategy, train_config)

    res = Run(folder).reuse_or(lambda resume: train_strategy(
        strategy, folder, dataset=spec["dataset"], root=spec.get("root"), data_kw=spec["data_kw"],
        model_kw=template.config.model_kwargs(), train_config=train_config, resume=resume))
    record = {"strategy": strategy.to_dict(), "code": strategy.code, "estimate": float(estimate),
              "standalone_test_top1": res["test"]["top1"], "standalone_val_top1": res["val_top1"],
              "test_clips": res["test"].get("n"), "train_config": train_config.to_dict(), "out": str(folder),
              "source": source}
    add_record(run, record)
    return record


def run_trust(run, estimates, out, *, k: int = MIN_ANCHORS, train_config: TrainConfig = STUDY_BUDGET,
              seed: int = 0, bootstrap: int = 2000, parallel: int = 1) -> dict:
    """Train the tool-chosen anchors the run still lacks and write its trust figure
    (``RUN/trust.json``); returns it. ``parallel``: anchor trainings at once, one thread each."""
    from workbench.studies.agreement import rank_metrics
    from workbench.studies.recommend import Surrogate, choose_anchors
    from workbench.studies.trust_record import TRUST_FILE

    if k < MIN_ANCHORS:
        raise ValueError(f"a trust figure needs at least {MIN_ANCHORS} anchors, got --anchors {k}")
    cands = candidates(estimates)
    if len(cands) < k:
        raise ValueError(f"the estimates hold {len(cands)} distinct strategies, fewer than {k} anchors")
    est = {c: e for c, (_, e) in cands.items()}
    chosen = choose_anchors(est, k, seed=seed)
    done = _recorded(run, train_config)
    missing = [c for c in chosen if c not in done]
    if parallel > 1 and len(missing) > 1:  # train side by side; recorded below, one at a time
        from workbench.engine.parallel import run_jobs
        from workbench.studies.pipeline import read_run, train_cached
        from workbench.template.network import load_template

        spec = read_run(run)
        model_kw = load_template(run)[0].config.model_kwargs()
        tc = replace(train_config, progress=False).to_dict()
        run_jobs(train_cached, [(cands[c][0].to_dict(), anchor_folder(out, cands[c][0], train_config), spec, model_kw,
                                 tc) for c in missing], parallel, progress=True, desc="anchor trainings")
    for c in chosen:
        if c not in done:
            done[c] = train_and_record(run, cands[c][0], est[c], out, train_config=train_config, source="anchor")
    # tau on the tool's choice alone (other recorded trainings are a biased sample: the user's
    # designs, the recommendation's picks); every recorded training informs the surrogate
    pred = np.array([est[c] for c in chosen])
    test = np.array([done[c]["standalone_test_top1"] for c in chosen])
    m = rank_metrics(pred, test, bootstrap=bootstrap, seed=seed)
    others = sorted(c for c in done if c in est and c not in chosen)
    sur = Surrogate(list(est), list(est.values())).fit({c: done[c]["standalone_val_top1"] for c in chosen + others})
    rest = [c for c in est if c not in done]
    _, sd = sur.predict(rest or None)
    trust = {"predictor": "anchors", "source": "anchors", "tau": m["tau"], "tau_ci": list(m["tau_ci"]),
             "rho": m["rho"], "strategies": len(chosen), "seeds": 1, "chosen_by_tool": chosen,
             "other_records": others, "budget": _budget(train_config),
             # the surrogate's 90% model-error half-width for a strategy not yet trained (median)
             "interval_90": float(1.645 * np.median(sd)),
             "study": str(out)}
    write_json(Path(run) / TRUST_FILE, trust)
    return trust


def run_recommend(run, estimates, out, *, budget: int, train_config: TrainConfig = STUDY_BUDGET,
                  kappa: float = 1.0) -> dict:
    """Verify ``budget`` strategies of the run (surrogate-guided, recorded) and return the best
    verified one with its evidence; also written to ``OUT/recommendation.json``."""
    from workbench.studies.recommend import recommend

    cands = candidates(estimates)
    est = {c: e for c, (_, e) in cands.items()}
    known = {c: r["standalone_val_top1"] for c, r in _recorded(run, train_config).items() if c in est}
    records: dict[str, dict] = {}

    def train(code: str) -> float:
        records[code] = train_and_record(run, cands[code][0], est[code], out, train_config=train_config,
                                         source="recommend")
        return records[code]["standalone_val_top1"]

    res = recommend(est, train, budget, kappa=kappa, anchors=known)
    best = res["best"]
    rec = records.get(best) or _recorded(run, train_config).get(best)
    out_d = {"best": best, "strategy": cands[best][0].to_dict(), "estimate": res["estimate"],
             "predicted_val_top1": res["predicted"], "interval_95": list(res["interval"]),
             "standalone_val_top1": res["standalone"],
             "standalone_test_top1": rec["standalone_test_top1"] if rec else None,
             "verified": res["verified"], "known_before": sorted(known), "budget": budget,
             "train_config": _budget(train_config)}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "recommendation.json").write_text(json.dumps(out_d, indent=1) + "\n")
    return out_d
