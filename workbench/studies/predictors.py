"""Predictors of stand-alone accuracy, each with its cost, scored against FusionBench.

A *predictor* turns a trained template into one number per strategy. Those measured here:

* ``shared``: the shared weights as trained (the template's own BatchNorm statistics);
* ``shared+bnN``: the shared weights with each strategy's BatchNorm statistics re-estimated on
  ``N`` training batches (the default predictor is ``shared+bn2``);
* ``mcN``: the template in ``conditioned`` mode, the softmax averaged over ``N`` Monte-Carlo masks;
* ``finetuneN``: each strategy extracted with the template's weights and fine-tuned ``N`` steps;
* ``fewshot``: a few-shot template (:mod:`workbench.template.fewshot`), each strategy scored by
  the part that matches its unit at the split layer;
* ensembles of template seeds (the estimates of several templates averaged), and
* a surrogate corrected by ``K`` stand-alone anchors (:mod:`workbench.studies.recommend`), whose
  ``K`` trainings count in its cost;
* zero-cost baselines that need no template (:data:`BASELINES`): the parameter count and the number
  of layers with a temporal unit. A predictor that does not beat them has not earned its cost.

:func:`predict_run` computes one predictor's estimates for a list of strategies and caches them in
the run folder (``RUN/predictors/NAME.json``, keyed by the strategy list), so that a table that
grows is re-scored in seconds. :func:`predictor_rows` scores every predictor over template seeds
(mean and spread, never one template) and :func:`predictor_report` writes the markdown table.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["BASELINES", "PREDICTORS", "baseline_estimates", "ensemble", "predict_run", "predictor_report", "predictor_rows", "surrogate_scores"]

#: name -> (EstimateConfig fields, description)
PREDICTORS: dict[str, tuple[dict, str]] = {
    "shared": ({"recalibrate_batches": 0}, "shared weights, the template's BN statistics"),
    "shared+bn2": ({"recalibrate_batches": 2}, "shared weights, BN re-estimated on 2 batches (default)"),
    "shared+bn8": ({"recalibrate_batches": 8}, "shared weights, BN re-estimated on 8 batches"),
    "shared+bn2-nll": ({"recalibrate_batches": 2, "score": "nll"},
                       "shared weights, BN re-estimated on 2 batches, ranked by validation loss (lower is "
                       "better) instead of top-1"),
    "shared+bn2+val5x": ({"recalibrate_batches": 2, "val_scale": 5},
                         "shared weights, BN re-estimated on 2 batches, scored on 5x the validation clips"),
    "mc8": ({"mc_samples": 8}, "conditioned mode, softmax averaged over 8 Monte-Carlo masks"),
    "finetune50": ({"finetune_steps": 50}, "each strategy fine-tuned 50 steps (batch 64, AdamW 1e-3)"),
    "gate-logp": ({"gate_logp": True}, "the log-probability of the strategy under the template's learned gates "
                                       "(the sum over layers of its unit's log marginal; no forward pass)"),
    "fewshot": ({"recalibrate_batches": 2, "few_shot_epochs": 4},
                "few-shot template: split on its least sure layer, one part per unit trained 4 more epochs "
                "(RUN/fewshot-<weights>, trained when missing; its training time counts), each strategy scored "
                "by its part with 2 BN batches"),
}


#: name -> description of the zero-cost baselines (:func:`baseline_estimates`)
BASELINES: dict[str, str] = {
    "params": "parameter count (no template)",
    "temporal layers": "number of layers with a temporal unit (no template)",
}


def baseline_estimates(table, setting: str, name: str) -> dict[str, float]:
    """A zero-cost baseline's score of every strategy of the table (see :data:`BASELINES`)."""
    from workbench.strategy import is_temporal, parse_strategy

    codes = table.strategy.values.tolist()
    if name == "params":
        return dict(zip(codes, map(float, table["params"].sel(setting=setting).values)))
    if name == "temporal layers":
        return {c: float(sum(is_temporal(u) for u in parse_strategy(c).units)) for c in codes}
    raise ValueError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")


def _checkpoint_fingerprint(run: Path) -> str:
    """A hash of the run's trained weights: a retrained template never reads old predictions back."""
    h = hashlib.sha256()
    for name in ("last.safetensors",):
        p = run / name
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()[:16]


def _cache_key(run: Path, codes: Sequence[str], predictor: str, threads: int | None) -> str:
    """What a cached prediction depends on: the strategies, the predictor's settings, the thread
    count its cost was measured at, and the template's weights."""
    text = json.dumps({"codes": list(codes), "predictor": predictor, "config": PREDICTORS[predictor][0],
                       "threads": threads, "weights": _checkpoint_fingerprint(run)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def predict_run(run: str | Path, codes: Sequence[str], predictor: str, *, threads: int | None = None,
                cache: bool = True, progress: bool = False) -> dict:
    """One predictor's estimates of ``codes`` (strategy codes) by the template of ``run``, on the
    run's own validation split. Returns ``{"predictor", "estimates", "seconds", "per_strategy_s",
    "environment", ...}``; cached in ``run/predictors/<predictor>.json`` for this list of codes."""
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; choose one of: {', '.join(PREDICTORS)}")
    codes = list(codes)
    if not codes:
        raise ValueError("no strategies to predict")
    run = Path(run)
    path = run / "predictors" / f"{predictor}.json"
    key = _cache_key(run, codes, predictor, threads)
    if cache and path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("codes_key") == key:
                return old
        except json.JSONDecodeError:
            pass  # a damaged cache is recomputed (writes are atomic, so only a hand edit gets here)
    import torch

    from workbench.runs import Run, environment, write_json
    from workbench.strategy import parse_strategy
    from workbench.template.network import load_template

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        spec = Run(run).spec()
        template, _ = load_template(run)
        strategies = [template.on_scaffold(parse_strategy(c)) for c in codes]
        fields, _ = PREDICTORS[predictor]
        fields = dict(fields)
        t0 = time.perf_counter()  # opening (and for val5x, rendering) the clips counts in the cost
        extra = 0.0
        if fields.pop("gate_logp", False):  # no clips, no forward pass
            top1 = _gate_log_probability(template, strategies)
        else:
            top1, extra = _forward_estimates(run, spec, template, strategies, predictor, fields, progress)
        seconds = time.perf_counter() - t0 + extra
        out = {"predictor": predictor, "config": PREDICTORS[predictor][0], "run": str(run), "codes_key": key,
               "estimates": dict(zip(codes, (round(float(v), 6) for v in top1))),
               "seconds": round(seconds, 2), "per_strategy_s": round(seconds / len(codes), 4),
               "environment": environment("cpu"),
               "computed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    finally:
        torch.set_num_threads(before)
    if cache:
        write_json(path, out)
    return out


def _forward_estimates(run: Path, spec: dict, template, strategies, predictor: str, fields: dict,
                       progress: bool) -> tuple[list[float], float]:
    """The shared-weight predictors: each strategy scored on the run's validation clips."""
    from workbench.engine.estimate import EstimateConfig, estimate_strategies
    from workbench.studies.pipeline import open_splits

    data_kw = dict(spec["data_kw"])
    scale = fields.pop("val_scale", 1)
    if scale != 1:  # more validation clips of the same generator (synthetic data only)
        if "val_per_class" not in data_kw:
            raise ValueError(f"predictor {predictor!r} needs a run on synthetic data with val_per_class")
        data_kw["val_per_class"] = int(data_kw["val_per_class"] * scale)
    splits = open_splits(spec["dataset"], root=spec.get("root"), splits=("train", "val"), **data_kw)
    few_epochs = fields.pop("few_shot_epochs", 0)
    score = fields.pop("score", "top1")
    if few_epochs:
        return _few_shot_top1(run, strategies, splits, few_epochs, EstimateConfig(progress=progress, **fields))
    est = estimate_strategies(template, strategies, splits["val"], train_set=splits["train"],
                              config=EstimateConfig(progress=progress, **fields))
    return (est["top1"].values if score == "top1" else -est["loss"].values).tolist(), 0.0


def _gate_log_probability(template, strategies) -> list[float]:
    """Each strategy's log-probability under the template's gates (layers independent)."""
    import torch

    with torch.no_grad():
        logp = torch.log(template.unit_probabilities().clamp_min(1e-12))
    col = {u: j for j, u in enumerate(template.units)}
    return [float(sum(logp[i, col[u]] for i, u in enumerate(s.units))) for s in strategies]


def _few_shot_top1(run: Path, strategies, splits, epochs: int, config) -> tuple[list[float], float]:
    """Each strategy scored by the part of the run's few-shot template (``run/fewshot-<weights>``, trained
    for ``epochs`` when missing or unfinished) that matches its unit at the split layer; and the
    seconds to add to this call's for the parts' training done by earlier calls."""
    from workbench.engine.estimate import estimate_strategies
    from workbench.template.fewshot import load_few_shot, train_few_shot

    folder = run / f"fewshot-{_checkpoint_fingerprint(run)[:8]}"  # parts of these weights only
    t0 = time.perf_counter()
    manifest = train_few_shot(run, folder, epochs=epochs, progress=False)  # finished parts are kept
    training = time.perf_counter() - t0
    fs = load_few_shot(folder)
    top1 = [float("nan")] * len(strategies)
    for u, part in fs.parts.items():
        idx = [i for i, s in enumerate(strategies) if s.units[fs.layer] == u]
        if idx:
            ds = estimate_strategies(part, [strategies[i] for i in idx], splits["val"], train_set=splits["train"],
                                     config=config)
            for i, v in zip(idx, ds["top1"].values):
                top1[i] = float(v)
    # the cost counts the parts' training as recorded, whether trained now or by an earlier call
    return top1, max(0.0, float(sum(manifest["seconds"].values())) - training)


def ensemble(estimates: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The estimates of several templates averaged, on the strategies all of them scored."""
    if not estimates:
        raise ValueError("an ensemble needs at least one template's estimates")
    common = [c for c in estimates[0] if all(c in e for e in estimates[1:])]
    return {c: float(np.mean([e[c] for e in estimates])) for c in common}


def surrogate_scores(truth: Mapping[str, Sequence[float]], estimates: Mapping[str, float], k: int, *,
                     repeats: int = 20, seed: int = 0) -> dict:
    """The anchor-corrected surrogate as a predictor: ``k`` tool-chosen anchors, each with one
    random seed's stand-alone result, then the posterior mean of every other strategy. Kendall tau
    on the strategies that were not anchors (against the seed mean), and the regret of its top
    strategy over all (anchors included, judged by the seed mean, in seed SDs), over ``repeats``."""
    from workbench.studies.agreement import kendall_tau, seed_sd
    from workbench.studies.recommend import Surrogate, choose_anchors

    codes = [c for c in estimates if c in truth and np.isfinite(np.asarray(truth[c], float)).any()]
    if not 1 <= k < len(codes) - 2:
        raise ValueError(f"k must lie in 1..{len(codes) - 3} anchors for {len(codes)} strategies, got {k}")
    table = [np.asarray(truth[c], float) for c in codes]
    finite = [v[np.isfinite(v)] for v in table]
    mean = np.array([v.mean() for v in finite])
    sd = seed_sd(table)
    taus, regrets = [], []
    for r in range(repeats):
        rng = np.random.default_rng([seed, k, r])
        est = {c: float(estimates[c]) for c in codes}
        anchors = choose_anchors(est, k, seed=int(rng.integers(1 << 31)))
        sur = Surrogate(codes, [est[c] for c in codes]).fit(
            {c: float(rng.choice(finite[codes.index(c)])) for c in anchors})
        pred, _ = sur.predict()
        rest = np.array([c not in anchors for c in codes])
        taus.append(kendall_tau(pred[rest], mean[rest]))
        regrets.append((mean.max() - mean[int(np.argmax(pred))]) / sd if sd > 0 else float("nan"))
    return {"anchors": k, "tau": float(np.mean(taus)), "tau_sd": float(np.std(taus)),
            "regret_sd": float(np.mean(regrets)), "repeats": repeats, "strategies": len(codes)}


def _scores(table, setting: str, estimates: Mapping[str, float], sources: Mapping[str, str]) -> dict:
    from workbench.studies.fusionbench_score import score_estimates

    out = {"all": score_estimates(table, setting, dict(estimates), bootstrap=200)}
    for s in sorted(set(sources.values())):
        sub = {c: v for c, v in estimates.items() if sources.get(c) == s}
        try:
            out[s] = score_estimates(table, setting, sub, bootstrap=200)
        except ValueError:  # fewer than 3 of this subset trained so far
            pass
    return out


def _nanmean(v) -> float:
    v = [x for x in v if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def predictor_rows(table, setting: str, predictions: Mapping[str, Sequence[dict]], *, standalone_s: float,
                   anchors: Sequence[int] = (8,), ensemble_of: Sequence[str] = ("shared+bn2",),
                   base_for_anchors: str = "shared+bn2", repeats: int = 20,
                   baselines: Sequence[str] = tuple(BASELINES)) -> list[dict]:
    """One row per predictor (and per ensemble and anchor count): tau on all strategies and on
    each source subset, per template seed with mean and SD, top-5 precision and regret, and the
    cost in seconds per strategy and as a share of one stand-alone training (``standalone_s``).

    ``predictions``: ``{predictor: [predict_run result per template seed]}``."""
    from itertools import combinations

    from workbench.studies.trust import table_truth

    sources = dict(zip(table.strategy.values.tolist(), table["source"].values.tolist()))
    truth = table_truth(table, setting)

    def row(name, per_seed_estimates, per_strategy_s, extra_standalone=0, note=""):
        scored = [_scores(table, setting, e, sources) for e in per_seed_estimates]
        r = {"predictor": name, "setting": setting, "templates": len(scored), "note": note,
             "per_strategy_s": per_strategy_s,
             "share_of_standalone": per_strategy_s / standalone_s if standalone_s else float("nan"),
             "extra_standalone": extra_standalone}
        for subset in ("all", "preset", "uniform", "gates"):
            got = [s[subset] for s in scored if subset in s]
            if not got:
                continue
            taus = [g["tau"] for g in got]
            r[subset] = {"tau": taus, "tau_mean": float(np.mean(taus)),
                         "tau_sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else float("nan"),
                         "rho_mean": float(np.mean([g["rho"] for g in got])),
                         "top5_mean": float(np.mean([g["top5_precision"] for g in got])),
                         "regret_mean": _nanmean([g["regret_sd"] for g in got]),
                         "strategies": got[0]["strategies"], "ceiling": got[0]["noise_ceiling_tau"],
                         "ceiling_n": got[0].get("noise_ceiling_strategies")}
        return r

    rows = []
    for name in baselines:
        est = {c: v for c, v in baseline_estimates(table, setting, name).items() if math.isfinite(v)}
        r = row(f"baseline: {name}", [est], 0.0, note=BASELINES[name])
        if len(set(est.values())) < len(est):  # tied scores: the top strategy and top-5 are arbitrary
            for subset in ("all", "preset", "uniform", "gates"):
                if subset in r:
                    r[subset].update(top5_mean=float("nan"), regret_mean=float("nan"))
            r["note"] += "; tied scores, so no top-5 or regret (Kendall's tau-b counts the ties)"
        rows.append(r)
    for name, preds in predictions.items():
        if preds:
            rows.append(row(name, [p["estimates"] for p in preds], float(np.mean([p["per_strategy_s"] for p in preds])),
                            note=PREDICTORS.get(name, ({}, ""))[1]))
    for name in ensemble_of:
        preds = predictions.get(name) or []
        cost = float(np.mean([p["per_strategy_s"] for p in preds])) if preds else 0.0
        for m in range(2, len(preds) + 1):
            ens = [ensemble([preds[i]["estimates"] for i in ix]) for ix in combinations(range(len(preds)), m)]
            rows.append(row(f"{name} x{m} templates", ens, m * cost,
                            note=f"mean of {m} template seeds' {name}; one tau per combination of {m} of the "
                                 f"{len(preds)} templates ({len(ens)}, overlapping, so their spread understates a "
                                 f"fresh ensemble's); costs {m} template trainings besides"))
    base = predictions.get(base_for_anchors) or []
    for k in anchors:
        if not base:
            break
        sims = [surrogate_scores(truth, p["estimates"], k, repeats=repeats) for p in base]
        cost = float(np.mean([p["per_strategy_s"] for p in base]))
        taus = [s["tau"] for s in sims]
        rows.append({"predictor": f"{base_for_anchors} + surrogate, {k} anchors", "setting": setting,
                     "templates": len(sims), "per_strategy_s": cost,
                     "share_of_standalone": cost / standalone_s if standalone_s else float("nan"),
                     "extra_standalone": k,
                     "note": f"tau on the {sims[0]['strategies'] - k} strategies that were not anchors, "
                             f"{repeats} anchor draws per template",
                     "all": {"tau": taus, "tau_mean": float(np.mean(taus)),
                             "tau_sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else float("nan"),
                             "rho_mean": float("nan"), "top5_mean": float("nan"),
                             "regret_mean": float(np.mean([s["regret_sd"] for s in sims])),
                             "strategies": sims[0]["strategies"] - k, "ceiling": None}})
    return rows


def _f(v, fmt="{:+.2f}"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _ceiling(a: dict) -> str:
    c, n = a.get("ceiling"), a.get("ceiling_n")
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return "-"
    return f"{c:.2f}" + (f" (on {n})" if n else "")


def predictor_report(rows: Sequence[dict], *, title: str = "Predictors and their cost", note: str = "") -> str:
    """Markdown: per setting and predictor, tau per template seed (all strategies), mean +- SD,
    tau on the gate draws and on the uniform draws, top-5 precision, regret, the noise ceiling
    (with the number of strategies it rests on: those with every counted seed), and the cost."""
    lines = [f"## {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| setting | predictor | tau per template (all) | mean +- SD | gate draws | uniform draws | top-5 | "
              "regret (seed SD) | noise ceiling | s per strategy | share of a stand-alone training | note |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r.get("all", {})
        g, u = r.get("gates", {}), r.get("uniform", {})
        extra = f" + {r['extra_standalone']} trainings" if r.get("extra_standalone") else ""
        lines.append(
            f"| {r['setting']} | {r['predictor']} | {', '.join(_f(t) for t in a.get('tau', []))} | "
            f"{_f(a.get('tau_mean'))} +- {_f(a.get('tau_sd'), '{:.2f}')} | {_f(g.get('tau_mean'))} | "
            f"{_f(u.get('tau_mean'))} | {_f(a.get('top5_mean'), '{:.2f}')} | {_f(a.get('regret_mean'), '{:.2f}')} | "
            f"{_ceiling(a)} | {r['per_strategy_s']:.2f} | "
            f"{_f(r['share_of_standalone'], '{:.3f}')}{extra} | {r.get('note', '')} |")
    return "\n".join(lines) + "\n"
