"""Do the template's estimates rank strategies the way stand-alone training does?

The rank study (``workbench study rank``):

1. picks ``K`` strategies of a trained template, spread over the range of its estimates (a pool
   is sampled from the learned distribution and scored; the picks sit at evenly spaced
   quantiles), plus the literature presets that fit the template; or takes a fixed list, so that
   several templates (levers) are judged on the same strategies;
2. trains each stand-alone, from scratch, with one budget, for each of ``seeds``; every result is
   cached in ``CACHE/<strategy key>-<budget key>-s<seed>/`` (``result.json``), an interrupted
   training resumes from its last epoch, and nothing finished is recomputed;
3. scores each strategy with every *predictor*: the shared-weight accuracy (template BN
   statistics, or recalibrated on a few batches), the log-probability under the gates, and
   their rank average;
4. reports Kendall tau and Spearman rho of each predictor against the stand-alone accuracy, with
   bootstrap confidence intervals over strategies, top-k precision, the stand-alone seed noise
   (tau between seeds: the ceiling any predictor can reach), and the paper's Table 2 analogue.

Everything lands in an xarray Dataset (``study.nc``), a markdown report and a figure. Under
``torchrun`` the stand-alone trainings are shared out across processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from workbench.runs import Run, cache_key
from workbench.strategy import Strategy

__all__ = ["StudyConfig", "select_strategies", "standalone_results", "rank_metrics", "run_rank_study",
           "read_trust", "read_health", "trust_line", "trust_short", "lever_table", "lever_report", "TRUST_FILE",
           "display_path", "top_k_precision"]

from workbench.studies.agreement import kendall_tau, rank_average, rank_metrics, top_k_precision  # noqa: E402
from workbench.studies.levers import lever_report, lever_table  # noqa: E402
from workbench.studies.trust_record import (  # noqa: E402
    TRUST_FILE,
    display_path,
    read_health,
    read_trust,
    trust_line,
    trust_short,
    write_trust,
)


@dataclass(frozen=True)
class StudyConfig:
    strategies: int = 24  # K, presets included
    pool: int = 200  # sampled candidates the K are picked from
    include_presets: bool = True
    seeds: tuple[int, ...] = (0,)  # stand-alone seeds
    # stand-alone budget: long enough that the networks converge and two seeds agree (on
    # synthetic-mixed, ST-only at 8 epochs / batch 32 was still climbing, 0.60 vs 0.75 between
    # seeds, and the stand-alone ranking of two seeds agreed at tau 0.10; at 20 epochs / batch 16
    # both seeds reach 0.99; on the harder truth-table settings 20 epochs still left one motion
    # training in four stuck, 30 halved the seed noise: reports/fusionbench/budget-e30/ANALYSIS.md)
    epochs: int = 30
    batch_size: int = 16
    lr: float = 6e-3
    optimizer: str = "adamw"
    recalibrate: tuple[int, ...] = (0, 2)  # BN recalibration batches: one predictor each
    mc_samples: tuple[int, ...] = ()  # Monte-Carlo masks per strategy (with the largest recalibration)
    finetune_steps: tuple[int, ...] = ()  # per-strategy fine-tuning steps before scoring
    eval_batch_size: int = 64
    bootstrap: int = 2000
    top_fraction: float = 0.25  # top-k precision with k = ceil(fraction * K)
    # the predictor whose tau becomes the run's trust figure (RUN/trust.json): the one the
    # workbench's estimates use by default (shared weights, 2 BN recalibration batches); None:
    # the shared-weight predictor with the most recalibration batches
    trust_predictor: str | None = "shared+recal2"
    seed: int = 0  # pool sampling and bootstrap

    def __post_init__(self) -> None:
        if self.strategies < 3:
            raise ValueError(f"a rank study needs at least 3 strategies, got {self.strategies}")
        if self.pool < self.strategies:
            raise ValueError(f"pool ({self.pool}) must be at least the number of strategies ({self.strategies})")
        if not self.seeds:
            raise ValueError("seeds must name at least one stand-alone seed")
        if any(n < 0 for n in self.recalibrate) or not self.recalibrate:
            raise ValueError(f"recalibrate must list BN recalibration batch counts >= 0 (0: none), got {self.recalibrate}")
        if any(n < 1 for n in (*self.mc_samples, *self.finetune_steps)):
            raise ValueError(f"mc_samples and finetune_steps must be >= 1, got {self.mc_samples}, {self.finetune_steps}")
        if self.epochs < 1 or self.bootstrap < 1:
            raise ValueError(f"epochs and bootstrap must be >= 1, got {self.epochs} and {self.bootstrap}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must lie in (0, 1], got {self.top_fraction}")

    def budget(self) -> dict:
        """What defines a stand-alone result besides strategy and seed (its cache key)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer}

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("seeds", "recalibrate", "mc_samples", "finetune_steps"):
            d[name] = list(d[name])
        return d


# ---- 1. pick strategies --------------------------------------------------------------------------
def select_strategies(template, pool_estimates, k: int, *, include_presets: bool = True) -> list[Strategy]:
    """``k`` strategies: the presets that fit (when asked), then sampled strategies at evenly
    spaced quantiles of the pool's estimated accuracy (distinct strategies only)."""
    from workbench.analysis import strategies_from

    chosen: list[Strategy] = []
    seen: set[tuple] = set()
    if include_presets:
        for s in template.presets():
            if len(chosen) < k and s.units not in seen:
                chosen.append(s)
                seen.add(s.units)
    pool = strategies_from(pool_estimates)
    acc = pool_estimates["top1"].values
    unique: list[int] = []  # pool rows by estimate, each strategy once, presets left out
    for i in np.argsort(acc, kind="stable"):
        if pool[i].units not in seen:
            seen.add(pool[i].units)
            unique.append(i)
    need = k - len(chosen)
    if need > len(unique):
        raise ValueError(f"the pool holds only {len(unique)} distinct new strategies, {need} needed: raise pool")
    picks = np.unique(np.round(np.linspace(0, len(unique) - 1, need)).astype(int))
    for p in picks:
        s = pool[unique[p]]
        chosen.append(Strategy(s.backbone, s.units, s.stem, name=s.name))
    return chosen


# ---- 2. stand-alone trainings --------------------------------------------------------------------
def standalone_results(strategies: Sequence[Strategy], template_run, cache: str | Path, config: StudyConfig,
                       *, template=None, progress: bool = True, parallel: int = 1) -> dict[tuple[str, int], dict]:
    """Train every (strategy, seed) stand-alone from scratch, on the template run's dataset and
    architecture, unless its result is cached; returns ``{(strategy key, seed): result}``.
    ``template``: the run's loaded template, when the caller has it already. ``parallel``: trainings
    at once, each in a one-thread process (:mod:`workbench.engine.parallel`); under torchrun the
    processes share the trainings out instead."""
    from workbench.engine import distributed as dist_
    from workbench.engine.config import TrainConfig
    from workbench.engine.parallel import run_jobs
    from workbench.studies.pipeline import read_run, train_cached
    from workbench.template.network import load_template

    spec = read_run(template_run)
    if template is None:
        template, _ = load_template(template_run)
    model_kw = template.config.model_kwargs()
    cache = Path(cache)
    budget = config.budget()
    data_key = cache_key({"dataset": spec["dataset"], "root": spec.get("root"), "data_kw": spec["data_kw"],
                     "model": model_kw, **budget})
    jobs = [(s, seed) for s in strategies for seed in config.seeds]
    r, world = dist_.task_rank()
    mine = [j for i, j in enumerate(jobs) if i % world == r]
    # one overall bar (with its ETA) over this process's trainings; one at a time, each training's
    # own bars name it; several at once, their own bars stay quiet
    todo = [(s.to_dict(), cache / f"{s.key}-{data_key}-s{seed}", spec, model_kw,
             TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, optimizer=config.optimizer,
                         seed=seed, progress=progress and parallel == 1).to_dict())
            for s, seed in mine]
    run_jobs(train_cached, todo, parallel if world == 1 else 1, progress=progress, desc="stand-alone trainings")
    dist_.barrier()
    out = {}
    for s, seed in jobs:
        folder = cache / f"{s.key}-{data_key}-s{seed}"
        res, run = Run(folder).result(), Run(folder).spec()
        if Strategy.from_dict(res["strategy"]).units != s.units:
            raise ValueError(f"cache entry {folder} holds another strategy; remove it")
        out[s.key, seed] = {"test_top1": res["test"]["top1"], "val_top1": res["val_top1"],
                            "test_n": res["test"]["n"], "epochs": res["epochs"], "folder": str(folder),
                            "train_config": run["train_config"]}
    return out




# ---- the study -----------------------------------------------------------------------------------
def run_rank_study(template_run, out, *, config: StudyConfig = StudyConfig(), strategies: Sequence[Strategy] | None = None,
                   cache: str | Path | None = None, few_shot: str | Path | None = None, progress: bool = True,
                   parallel: int = 1):
    """The whole study; returns the ``xarray.Dataset`` also written to ``out/study.nc`` (with
    ``out/report.md``, ``out/estimate_vs_standalone.png/.pdf``, ``out/strategies.json``).
    ``few_shot``: the folder of :func:`workbench.fewshot.train_few_shot` for this template; adds
    the few-shot predictor. ``parallel``: stand-alone trainings at once (one thread each)."""
    import torch
    import xarray as xr

    from workbench.analysis import save_study
    from workbench.engine import distributed as dist_
    from workbench.engine.estimate import EstimateConfig, estimate_strategies
    from workbench.studies.pipeline import open_splits, read_run
    from workbench.template.network import load_template

    dist_.init_from_env()
    t_start = time.perf_counter()
    out = Path(out)
    cache = Path(cache) if cache is not None else out / "standalone"
    spec = read_run(template_run)
    if spec.get("kind") != "supernet":
        raise ValueError(f"{template_run} is not a template run (kind {spec.get('kind')!r}); expected the "
                         "--out folder of `workbench template train`")
    template, _ = load_template(template_run)
    _check_trust_predictor(config, few_shot)  # before hours of training, not after
    splits = open_splits(spec["dataset"], root=spec.get("root"), splits=("train", "val"), **spec["data_kw"])
    est_cfg = dict(batch_size=config.eval_batch_size, progress=progress and dist_.is_main())

    # 1. the strategies
    t0 = time.perf_counter()
    if strategies is None:
        pool = template.sample(config.pool, torch.Generator().manual_seed(config.seed))
        pool_ds = estimate_strategies(template, pool, splits["val"], config=EstimateConfig(**est_cfg))
        strategies = select_strategies(template, pool_ds, config.strategies, include_presets=config.include_presets)
    else:
        strategies = [template.on_scaffold(s) for s in strategies]
    select_seconds = time.perf_counter() - t0
    if dist_.is_main():
        out.mkdir(parents=True, exist_ok=True)
        (out / "strategies.json").write_text(json.dumps([s.to_dict() for s in strategies], indent=1) + "\n")

    # 2. stand-alone
    t0 = time.perf_counter()
    results = standalone_results(strategies, template_run, cache, config, template=template,
                                 progress=progress and dist_.is_main(), parallel=parallel)
    standalone_seconds = time.perf_counter() - t0
    acc = np.array([[results[s.key, sd]["test_top1"] for sd in config.seeds] for s in strategies])

    # 3. predictors
    few_shot_seconds = 0.0
    predictors: dict[str, np.ndarray] = {}
    costs: dict[str, float] = {}
    est = None
    top_recal = max(config.recalibrate)
    runs = [("shared" if nb == 0 else f"shared+recal{nb}", template, dict(recalibrate_batches=nb))
            for nb in config.recalibrate]
    runs += [(f"mc{m}" + (f"+recal{top_recal}" if top_recal else ""), template,
              dict(recalibrate_batches=top_recal, mc_samples=m)) for m in config.mc_samples]
    runs += [(f"finetune{n}", template, dict(finetune_steps=n)) for n in config.finetune_steps]
    for name, model, kw in runs:
        t0 = time.perf_counter()
        ds = estimate_strategies(model, strategies, splits["val"], train_set=splits["train"],
                                 config=EstimateConfig(**kw, **est_cfg))
        predictors[name] = ds["top1"].values.astype(float)
        costs[name] = (time.perf_counter() - t0) / len(strategies)
        est = ds if est is None else est
    best_shared = [n for n in predictors if n.startswith("shared")][-1]
    if few_shot is not None:
        from workbench.template.fewshot import load_few_shot

        fs = load_few_shot(few_shot)
        t0 = time.perf_counter()
        col = np.full(len(strategies), np.nan)
        for u, part in fs.parts.items():
            idx = [i for i, s in enumerate(strategies) if s.units[fs.layer] == u]
            if idx:
                ds = estimate_strategies(part, [strategies[i] for i in idx], splits["val"], train_set=splits["train"],
                                         config=EstimateConfig(recalibrate_batches=top_recal, **est_cfg))
                col[idx] = ds["top1"].values
        name = f"few-shot(layer {fs.layer})" + (f"+recal{top_recal}" if top_recal else "")
        few_shot_seconds = float(sum(fs.manifest.get("seconds", {}).values()))
        predictors[name] = col
        costs[name] = (time.perf_counter() - t0) / len(strategies)
    predictors["log_prob"] = np.array([template.log_prob(s) for s in strategies])
    costs["log_prob"] = 0.0
    predictors[f"rank_avg({best_shared}, log_prob)"] = rank_average(predictors[best_shared], predictors["log_prob"])
    costs[f"rank_avg({best_shared}, log_prob)"] = costs[best_shared]

    # 4. metrics
    truth = acc.mean(1)
    names = list(predictors)
    metrics = {n: rank_metrics(predictors[n], truth, bootstrap=config.bootstrap, top_fraction=config.top_fraction,
                               seed=config.seed) for n in names}
    seed_tau = float("nan")
    if acc.shape[1] >= 2:
        seed_tau = float(np.nanmean([kendall_tau(acc[:, i], acc[:, j]) for i in range(acc.shape[1])
                                     for j in range(i + 1, acc.shape[1])]))

    layers = est["layer"].values
    ds = xr.Dataset(
        {
            "standalone_top1": (("strategy", "seed"), acc),
            "standalone_mean": ("strategy", truth),
            "prediction": (("predictor", "strategy"), np.stack([predictors[n] for n in names])),
            "tau": ("predictor", [metrics[n]["tau"] for n in names]),
            "tau_lo": ("predictor", [metrics[n]["tau_ci"][0] for n in names]),
            "tau_hi": ("predictor", [metrics[n]["tau_ci"][1] for n in names]),
            "rho": ("predictor", [metrics[n]["rho"] for n in names]),
            "rho_lo": ("predictor", [metrics[n]["rho_ci"][0] for n in names]),
            "rho_hi": ("predictor", [metrics[n]["rho_ci"][1] for n in names]),
            "top_k_precision": ("predictor", [metrics[n]["top_k_precision"] for n in names]),
            "seconds_per_strategy": ("predictor", [costs[n] for n in names]),
            "gmacs": ("strategy", est["gmacs"].values),
            "params": ("strategy", est["params"].values),
            "code": ("strategy", np.asarray([s.code for s in strategies], dtype=object)),
            "name": ("strategy", np.asarray([s.name or "" for s in strategies], dtype=object)),
            "strategy_json": ("strategy", np.asarray([s.to_json() for s in strategies], dtype=object)),
            "units": (("strategy", "layer"), np.asarray([list(s.units) for s in strategies], dtype=object)),
        },
        coords={"strategy": np.arange(len(strategies)), "seed": list(config.seeds), "predictor": names,
                "layer": layers},
        attrs={
            "template_run": str(template_run), "dataset": spec["dataset"],
            "config": json.dumps(config.to_dict()), "top_k": metrics[names[0]]["top_k"],
            "seed_tau": seed_tau, "select_seconds": select_seconds, "standalone_seconds": standalone_seconds,
            "total_seconds": time.perf_counter() - t_start,
            "template_seconds": _template_seconds(template_run), "few_shot_seconds": few_shot_seconds,
            "standalone_folders": json.dumps([[results[s.key, sd]["folder"] for sd in config.seeds]
                                              for s in strategies]),
        },
    )
    if dist_.is_main():
        save_study(ds, study_report(ds), out, "study", report_name="report")
        from workbench.plots import estimate_vs_standalone, save_figure

        fig = estimate_vs_standalone(ds, config.trust_predictor if config.trust_predictor in names else best_shared)
        save_figure(fig, out / "estimate_vs_standalone", formats=("png", "pdf"))
        headline = config.trust_predictor or best_shared
        if headline not in names and config.trust_predictor == StudyConfig.trust_predictor:
            headline = best_shared  # a study without the default predictor: its best shared one
        if headline not in names:
            raise ValueError(f"trust_predictor {headline!r} is not among this study's predictors: {names}")
        write_trust(template_run, ds, headline, out)
    return ds


def _check_trust_predictor(config: StudyConfig, few_shot) -> None:
    """A ``trust_predictor`` that is not the default must be one this study will compute."""
    name = config.trust_predictor
    if name is None or name == StudyConfig.trust_predictor:
        return
    top = max(config.recalibrate)
    known = ["shared" if nb == 0 else f"shared+recal{nb}" for nb in config.recalibrate]
    known += [f"mc{m}" + (f"+recal{top}" if top else "") for m in config.mc_samples]
    known += [f"finetune{n}" for n in config.finetune_steps] + ["log_prob"]
    ok = name in known or name.startswith("rank_avg(") or (few_shot is not None and name.startswith("few-shot"))
    if not ok:
        raise ValueError(f"trust_predictor {name!r} is not among this study's predictors; expected one of "
                         f"{', '.join(known)} (or a few-shot / rank_avg predictor)")


def _template_seconds(run) -> float:
    path = Path(run) / "history.json"
    return float(sum(json.loads(path.read_text())["seconds"])) if path.is_file() else float("nan")




def study_report(ds) -> str:
    """The study as markdown: predictor table, Table 2 analogue, what was run."""
    cfg = json.loads(ds.attrs["config"])
    K, S = ds.sizes["strategy"], ds.sizes["seed"]
    lines = [
        f"# Rank study: {ds.attrs['dataset']}",
        "",
        f"Template run `{ds.attrs['template_run']}`; {K} strategies trained stand-alone from scratch "
        f"({cfg['epochs']} epochs, {cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}; "
        f"seeds {cfg['seeds']}), stand-alone accuracy = mean test top-1 over seeds. "
        f"Confidence intervals: 95% percentile bootstrap over strategies ({cfg['bootstrap']} resamples). "
        f"Top-k precision with k = {ds.attrs['top_k']}.",
        "",
        "| predictor | Kendall tau [95% CI] | Spearman rho [95% CI] | top-k precision | extra seconds / strategy |",
        "|---|---|---|---|---|",
    ]
    for i, n in enumerate(ds["predictor"].values):
        lines.append(
            f"| {n} | {ds.tau.values[i]:.2f} [{ds.tau_lo.values[i]:.2f}, {ds.tau_hi.values[i]:.2f}] | "
            f"{ds.rho.values[i]:.2f} [{ds.rho_lo.values[i]:.2f}, {ds.rho_hi.values[i]:.2f}] | "
            f"{ds.top_k_precision.values[i]:.2f} | {ds.seconds_per_strategy.values[i]:.2f} |"
        )
    if S >= 2:
        spread = float(np.mean(np.ptp(ds.standalone_top1.values, axis=1)))
        lines += ["", f"Stand-alone seed noise: Kendall tau between seeds {ds.attrs['seed_tau']:.2f}; "
                      f"mean spread between seeds {spread:.3f} (the ceiling any predictor can reach)."]
    # Table 2 analogue
    names = list(ds["name"].values)
    codes = list(ds["code"].values)
    lines += ["", "## Stand-alone accuracy of the uniform strategies and the best estimated (Table 2 analogue)", "",
              "| strategy | stand-alone top-1 | estimate (shared weights) |", "|---|---|---|"]
    pred0 = ds.prediction.isel(predictor=0).values
    for label in ("s", "st", "s+st"):
        if label in names:
            j = names.index(label)
            lines.append(f"| {label.upper()} | {ds.standalone_mean.values[j]:.3f} | {pred0[j]:.3f} |")
    j = int(np.argmax(pred0))
    lines.append(f"| best estimated ({names[j] or codes[j]}) | {ds.standalone_mean.values[j]:.3f} | {pred0[j]:.3f} |")
    j = int(np.argmax(ds.standalone_mean.values))
    lines.append(f"| best stand-alone ({names[j] or codes[j]}) | {ds.standalone_mean.values[j]:.3f} | {pred0[j]:.3f} |")
    lines += ["", f"Time: selection {ds.attrs['select_seconds']:.0f} s, stand-alone trainings "
                  f"{ds.attrs['standalone_seconds']:.0f} s, total {ds.attrs['total_seconds']:.0f} s.", ""]
    return "\n".join(lines)
