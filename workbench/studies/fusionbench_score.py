"""FusionBench's truth quality and scoring: how reliable each setting's truth is, and how well a
predictor (a template's estimates, or any ``{strategy code: score}``) ranks against it."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from workbench.studies.agreement import kendall_tau, spearman_rho
from workbench.studies.agreement import seed_sd as _seed_sd

__all__ = ["truth_quality", "score_estimates", "matching_setting", "score_run", "score_report", "readme",
           "fidelity", "flattening_epoch", "build_command"]

#: strategies a partly built seed needs before the agreement between seeds counts it
MIN_AGREEMENT = 24
#: the reliability of the seed mean a table aims at on every setting
RELIABILITY_GOAL = 0.8
#: a learning curve has flattened once the mean curve is within this of its final value for good
FLAT_TOLERANCE = 0.01


# ---- truth quality and scoring -------------------------------------------------------------------------
def truth_quality(table, setting: str) -> dict:
    """Between-seed agreement of one setting: mean Kendall tau between seeds, the Spearman-Brown
    reliability of the seed mean, and the noise ceiling of any predictor's tau against it."""
    acc = table["test_top1"].sel(setting=setting).values  # strategy x seed
    # the seeds far enough along (a table being built has whole seeds and partial ones): the most
    # seeds whose strategies finished in all of them are at least 90% of the most any two or more
    # seeds share (and 3), so that a new seed joins once it covers the list, not while it
    # holds a biased first part of it; agreement is measured on those strategies
    counts = np.isfinite(acc).sum(0)
    order = np.argsort(-counts, kind="stable")
    shared = {k: int(np.isfinite(acc[:, order[:k]]).all(1).sum()) for k in range(2, acc.shape[1] + 1)}
    best = max(shared.values(), default=0)
    ks = [k for k, n in shared.items() if n >= max(3, 0.9 * best)]
    seeds_ok = sorted(order[:max(ks)].tolist()) if ks else []
    any_seed = np.isfinite(acc).any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_any = np.nanmean(acc[any_seed], 1) if any_seed.any() else np.array([np.nan])
    partial = {"finished": int(np.isfinite(acc).sum()), "strategies_with_a_seed": int(any_seed.sum()),
               "best": round(float(np.nanmax(mean_any)), 4) if any_seed.any() else None,
               "worst": round(float(np.nanmin(mean_any)), 4) if any_seed.any() else None}
    acc = acc[:, seeds_ok] if seeds_ok else acc[:, :0]
    ok = np.isfinite(acc).all(1)
    acc = acc[ok]
    n, k = acc.shape
    if n < 3 or k < 2:
        return {"strategies": int(n), "seeds": int(k), "tau_between_seeds": None, "reliability": None,
                "noise_ceiling_tau": None, "seed_sd": None, "seeds_for_goal": None, **partial}
    taus = [kendall_tau(acc[:, i], acc[:, j]) for i in range(k) for j in range(i + 1, k)]
    r1 = float(np.mean(taus))
    if not math.isfinite(r1):  # a seed whose accuracies are all equal: no ranking to agree on
        rel = ceiling_tau = float("nan")
        need = None
    else:
        # Spearman-Brown on the rank correlation between seeds (Kendall's tau -> Pearson's r on
        # ranks); seeds that disagree on average carry no signal: reliability 0, not negative
        r_single = max(0.0, math.sin(math.pi * r1 / 2))
        rel = k * r_single / (1 + (k - 1) * r_single)
        # a perfect predictor correlates with the seed mean at sqrt(reliability)
        ceiling_tau = 2 / math.pi * math.asin(min(1.0, math.sqrt(rel)))
        # Spearman-Brown solved for the seeds whose mean reaches the goal (None: seeds never agree)
        g = RELIABILITY_GOAL
        need = max(1, math.ceil(g * (1 - r_single) / ((1 - g) * r_single) - 1e-9)) if r_single > 0 else None
    seed_sd = _seed_sd(acc)
    return {"strategies": int(n), "seeds": int(k), "tau_between_seeds": round(r1, 4), "reliability": round(rel, 4),
            "noise_ceiling_tau": round(ceiling_tau, 4), "seed_sd": round(seed_sd, 4), "seeds_for_goal": need,
            **partial}


def flattening_epoch(table, setting: str, tol: float = FLAT_TOLERANCE) -> int | None:
    """The first epoch from which the setting's mean learning curve (over strategies and seeds,
    on the fixed curve clips) stays within ``tol`` of its final value: the budget at which the
    curves have flattened. None before any training has finished."""
    curve = table["curve_top1"].sel(setting=setting).values  # strategy x seed x epoch
    done = np.isfinite(curve).all(-1)
    if not done.any():
        return None
    mean = curve[done].mean(0)
    far = np.abs(mean - mean[-1]) > tol
    last_far = int(np.nonzero(far)[0].max()) if far.any() else -1
    return int(table.epoch.values[last_far + 1])


def score_estimates(table, setting: str, estimates: dict[str, float], *, top_k: int = 5, bootstrap: int = 2000,
                    seed: int = 0) -> dict:
    """Score a predictor (``{strategy code: estimate}``) against one setting's seed-mean truth:
    Kendall tau, Spearman rho, top-k precision and regret, with bootstrap intervals over
    strategies, and the truth's noise ceiling."""
    acc = table["test_top1"].sel(setting=setting)
    codes = [c for c in acc.strategy.values.tolist() if c in estimates]
    if len(codes) < 3:
        raise ValueError(f"only {len(codes)} of the table's strategies have an estimate; need at least 3")
    truth_all = acc.sel(strategy=codes).values
    ok = ~np.isnan(truth_all).all(1)
    codes = [c for c, o in zip(codes, ok) if o]
    if len(codes) < 3:
        raise ValueError(f"only {len(codes)} of the estimated strategies have a finished stand-alone training on "
                         f"setting {setting!r}; need at least 3 (build more of the table)")
    truth_seeds = truth_all[ok]
    truth = np.nanmean(truth_seeds, 1)
    pred = np.asarray([estimates[c] for c in codes], dtype=float)
    with warnings.catch_warnings():  # strategies with a single finished seed have no SD
        warnings.simplefilter("ignore", RuntimeWarning)
        seed_sd = _seed_sd(truth_seeds)

    def metrics(idx):
        p, t = pred[idx], truth[idx]
        k = min(top_k, len(idx))
        top_p = set(np.argsort(-p, kind="stable")[:k])
        top_t = set(np.argsort(-t, kind="stable")[:k])
        regret = (t.max() - t[int(np.argmax(p))]) / seed_sd if seed_sd > 0 else float("nan")
        return np.array([kendall_tau(p, t), spearman_rho(p, t), len(top_p & top_t) / k, regret])

    point = metrics(np.arange(len(codes)))
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # a resample may hold one distinct strategy: its tau is NaN
        warnings.simplefilter("ignore")
        boots = np.array([metrics(rng.integers(0, len(codes), len(codes))) for _ in range(bootstrap)])
    with warnings.catch_warnings():  # regret is NaN throughout with a single seed (no seed SD)
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(boots, 2.5, 0), np.nanpercentile(boots, 97.5, 0)
    names = ("tau", "rho", f"top{top_k}_precision", "regret_sd")
    out = {"setting": setting, "strategies": len(codes), "seed_sd": round(seed_sd, 4)}
    for i, n in enumerate(names):
        out[n] = round(float(point[i]), 4)
        out[f"{n}_ci"] = [round(float(lo[i]), 4), round(float(hi[i]), 4)]
    # the ceiling of these strategies (a subset spreads less than the whole table)
    q = truth_quality(table.sel(strategy=codes), setting)
    out["noise_ceiling_tau"] = q["noise_ceiling_tau"]
    out["noise_ceiling_strategies"] = q["strategies"]  # the strategies with every counted seed: what it rests on
    return out


# ---- a template run against the table -----------------------------------------------------------------
def matching_setting(spec: dict, settings) -> str | None:
    """The table setting whose data generator is the run's (split sizes aside), or None."""
    from workbench.studies.fusionbench import SETTINGS

    sizes = {"train_per_class", "val_per_class", "test_per_class"}
    mine = {k: v for k, v in (spec.get("data_kw") or {}).items() if k not in sizes}
    for name in settings:
        s = SETTINGS.get(name)
        if s and s["dataset"] == spec.get("dataset") and \
                {k: v for k, v in s["data_kw"].items() if k not in sizes} == mine:
            return name
    return None


def score_run(run: str | Path, table: str | Path, *, setting: str | None = None, recalibrate: int = 2,
              sources=None, top_k: int = 5, bootstrap: int = 2000, progress: bool = False) -> dict:
    """Estimate exactly the table's strategies with the template of ``run`` (shared weights,
    ``recalibrate`` BN batches, on the run's own validation split) and score them against the
    table's setting (all strategies, and each ``source`` subset such as the gate draws)."""
    from workbench.engine.estimate import EstimateConfig, estimate_strategies
    from workbench.runs import Run
    from workbench.strategy import parse_strategy
    from workbench.studies.fusionbench import load_table
    from workbench.studies.pipeline import open_splits
    from workbench.template.network import load_template

    tab = load_table(table)
    spec = Run(run).spec()
    settings = tab.setting.values.tolist()
    if setting is None:
        setting = matching_setting(spec, settings)
        if setting is None:
            raise ValueError(f"the run was trained on {spec.get('dataset')} {spec.get('data_kw')}, which is none of "
                             f"the table's settings ({', '.join(settings)}); name one with --setting")
    elif setting not in settings:
        raise ValueError(f"setting {setting!r} is not in the table; it has: {', '.join(settings)}")
    template, _ = load_template(run)
    codes = tab.strategy.values.tolist()
    strategies = [template.on_scaffold(parse_strategy(c)) for c in codes]
    splits = open_splits(spec["dataset"], root=spec.get("root"), splits=("train", "val"), **spec["data_kw"])
    est = estimate_strategies(template, strategies, splits["val"], train_set=splits["train"],
                              config=EstimateConfig(recalibrate_batches=recalibrate, progress=progress))
    estimates = dict(zip(codes, est["top1"].values.tolist()))
    out = {"run": str(run), "setting": setting, "recalibrate": recalibrate,
           "all": score_estimates(tab, setting, estimates, top_k=top_k, bootstrap=bootstrap)}
    src = tab["source"].values.tolist()
    for s in sources if sources is not None else sorted(set(src)):
        sub = {c: v for c, v, x in zip(codes, estimates.values(), src) if x == s}
        if len(sub) >= 3:
            try:
                out[s] = score_estimates(tab, setting, sub, top_k=top_k, bootstrap=bootstrap)
            except ValueError:  # fewer than 3 of this source trained so far
                continue
    out["estimates"] = estimates
    return out


def score_report(result: dict) -> str:
    """The scores of :func:`score_run` as a few readable lines."""
    lines = [f"{result['run']} against setting {result['setting']!r} "
             f"(shared weights, {result['recalibrate']} BN recalibration batches)"]
    for part, r in result.items():
        if not isinstance(r, dict) or "tau" not in r:
            continue
        topk = next(k for k in r if k.startswith("top") and not k.endswith("_ci"))
        lines.append(
            f"  {part:8s} n={r['strategies']:3d}  tau {r['tau']:+.3f} [{r['tau_ci'][0]:+.2f}, {r['tau_ci'][1]:+.2f}]"
            f"  rho {r['rho']:+.3f}  {topk.replace('_', ' ')} {r[topk]:.2f}  regret {r['regret_sd']:.2f} seed SD"
            f"  (noise ceiling tau {r['noise_ceiling_tau']})")
    return "\n".join(lines)


def build_command(table, out: str | Path = "reports/fusionbench") -> str:
    """The command that builds (or continues) the table in ``out``, from its stored configuration."""
    cfg = json.loads(table.attrs["config"])
    parts = ["workbench bench build --out", str(out), "--epochs", str(cfg["epochs"])]
    if cfg.get("paired"):
        parts.append("--paired")
    parts += ["--seeds", *map(str, cfg["seeds"])]
    for s in table.setting.values.tolist():
        parts += ["--setting", s]
    return " ".join(parts + ["--workers", "2"])


def readme(table, out: str | Path = "reports/fusionbench") -> str:
    """How the table in ``out`` was made, and the quality of its truth per setting."""
    cfg = json.loads(table.attrs["config"])
    settings = json.loads(table.attrs["settings"])
    n_items = int(np.isfinite(table["test_top1"].values).sum())
    lines = [
        "# FusionBench: stand-alone truth for the fusion space of the DenseNet template",
        "",
        f"{table.sizes['strategy']} strategies of `densenet-tiny` (growth {cfg['growth']}, bn_size {cfg['bn_size']}, "
        "2D stem and transitions, units S / ST / S+ST / skip per layer): "
        + ", ".join(f"{(table['source'] == s).sum().item()} {s}" for s in ("preset", "uniform", "gates"))
        + f"; seeds {cfg['seeds']}; {n_items} of {table['test_top1'].size} trainings finished.",
        "",
        f"Budget: {cfg['epochs']} epochs, batch {cfg['batch_size']}, {cfg['optimizer']} lr {cfg['lr']}, cosine"
        + ("; paired design (one seed's strategies start their common layers from the same weights)"
           if cfg.get("paired") else "; unpaired initialisation") + "; "
        f"learning curve on {cfg['curve_clips']} fixed validation clips each epoch, the full validation and "
        f"test splits at the end. Environments: {table.attrs.get('environments')}.",
        "",
        "Best and worst: seed means of the strategies with a finished training; the agreement columns need two "
        f"seeds on at least three strategies. Seeds for {RELIABILITY_GOAL}: how many seeds the seed mean needs to "
        f"reach a reliability of {RELIABILITY_GOAL} (Spearman-Brown from the agreement between seeds so far).",
        "",
        f"Curves flat by: the first epoch from which the mean learning curve stays within {FLAT_TOLERANCE} of its final "
        "value (the curves: curves.png).",
        "",
        "| setting | data | clips train/val/test | trainings finished | best | worst | seed SD | tau between seeds | "
        f"reliability of the seed mean | seeds for {RELIABILITY_GOAL} | noise ceiling tau | curves flat by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in table.setting.values.tolist():
        q = truth_quality(table, s)
        d = settings.get(s, {})
        kw = d.get("data_kw", {})
        knobs = ", ".join(f"{k}={v}" for k, v in kw.items() if not k.endswith("_per_class")) or "defaults"
        per = "/".join(str(kw.get(f"{x}_per_class", "?")) for x in ("train", "val", "test"))

        def f(v):
            return "-" if v is None else f"{v:.3f}"

        lines.append(f"| {s} | {d.get('dataset')} ({knobs}) | {per} per class | {q['finished']} | {f(q.get('best'))} | "
                     f"{f(q.get('worst'))} | {f(q.get('seed_sd'))} | {f(q['tau_between_seeds'])} | "
                     f"{f(q['reliability'])} | {q['seeds_for_goal'] or '-'} | {f(q['noise_ceiling_tau'])} | "
                     f"{flattening_epoch(table, s) or '-'} of {table.sizes['epoch']} |")
    lines += ["", "Rebuild or continue (cached and resumable; any number of processes may share it):", "",
              f"    {build_command(table, out)}", "",
              "Score a template run against it:", "", f"    workbench bench score --run RUN --table {out}", ""]
    return "\n".join(lines)


def fidelity(full, short, setting: str) -> dict:
    """Does a shorter budget (``short``: a table trained on its own schedule, other seeds) rank the
    strategies like the full budget (``full``)? Kendall tau between the two seed means over the
    strategies both hold, beside the full budget's own between-seed tau and noise ceiling (what
    'the same ranking, within noise' can mean)."""
    a = full["test_top1"].sel(setting=setting)
    b = short["test_top1"].sel(setting=setting)
    codes = [c for c in b.strategy.values.tolist() if c in set(a.strategy.values.tolist())]
    fa = a.sel(strategy=codes).values
    fb = b.sel(strategy=codes).values
    ok = (np.isfinite(fa).sum(1) >= 2) & (np.isfinite(fb).sum(1) >= 1)
    if ok.sum() < 3:
        return {"setting": setting, "strategies": int(ok.sum()), "tau_short_vs_full": None,
                "full_tau_between_seeds": None, "full_noise_ceiling_tau": None,
                "short_epochs": json.loads(short.attrs["config"])["epochs"],
                "full_epochs": json.loads(full.attrs["config"])["epochs"], "short_mean_top1": None,
                "full_mean_top1": None}
    ma, mb = np.nanmean(fa[ok], 1), np.nanmean(fb[ok], 1)
    q = truth_quality(full.sel(strategy=[c for c, o in zip(codes, ok) if o]), setting)
    return {"setting": setting, "strategies": int(ok.sum()), "tau_short_vs_full": round(kendall_tau(mb, ma), 4),
            "full_tau_between_seeds": q["tau_between_seeds"], "full_noise_ceiling_tau": q["noise_ceiling_tau"],
            "short_epochs": json.loads(short.attrs["config"])["epochs"],
            "full_epochs": json.loads(full.attrs["config"])["epochs"],
            "short_mean_top1": round(float(mb.mean()), 4), "full_mean_top1": round(float(ma.mean()), 4)}
