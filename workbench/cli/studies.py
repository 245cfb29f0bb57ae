"""``workbench study``, ``compare``, ``demo``: studies built on the engine."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.cli.common import (
    add_train_args,
    nonnegative_int,
    positive_int,
    train_config_from_args,
)


def cmd_demo(args) -> int:
    """The main job on the embedded synthetic benchmark (see :mod:`workbench.mainjob`)."""
    from workbench.studies.mainjob import MAIN_JOB, SMOKE, run_main_job

    settings = SMOKE if args.smoke else MAIN_JOB
    print(f"== main job: template network on {settings.dataset}, {settings.samples} sampled strategies -> {args.out}")
    r = run_main_job(args.out, settings=settings, progress=not args.no_progress)
    s = r["seconds"]
    print(f"trained in {s['training']:.0f} s, scored {settings.samples} strategies in {s['estimates']:.0f} s, "
          f"figures in {s['figures']:.0f} s")
    print(Path(r["report"]).read_text().split("## Layer-level")[0].strip())
    print(f"\nreport:    {r['report']}\nfigures:   {Path(args.out) / 'figures'}\nestimates: {r['estimates']}")
    print("\nexplore it: jupyter lab notebooks/   (.venv/bin/jupyter lab notebooks/ from a fresh set-up)")
    return 0


def cmd_compare(args) -> int:
    """Literature comparison: zoo designs and the template's strategies trained under one budget."""
    from workbench.analysis import load_netcdf
    from workbench.engine.config import TrainConfig
    from workbench.studies.compare import LITERATURE, comparison_figure, literature_comparison

    est = load_netcdf(args.estimates) if args.estimates else None
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device)
    ds = literature_comparison(args.out, args.run, models=args.models or LITERATURE, estimates=est,
                               tiny=not args.full_width, train_config=cfg, seeds=args.seeds,
                               progress=not args.no_progress, streams=args.streams, parallel=args.parallel)
    fig = comparison_figure(ds)
    for ext in ("pdf", "png"):
        fig.savefig(Path(args.out) / f"comparison.{ext}")
    print((Path(args.out) / "comparison.md").read_text())
    print(f"table, figure and comparison.nc in {args.out}")
    return 0




def _at_least_8(text: str) -> int:
    import argparse

    v = int(text)
    if v < 8:
        raise argparse.ArgumentTypeError(f"a trust figure needs at least 8 anchors, got {text}")
    return v


def _run_estimates(args):
    """The run's estimates: ``--estimates``, else the main job's beside the run, else computed
    (``-n`` sampled strategies and the presets) into ``OUT/estimates.nc``."""
    from workbench.analysis import load_netcdf
    from workbench.studies.pipeline import estimate_run

    if args.estimates:
        return load_netcdf(args.estimates)
    beside = Path(args.run).parent / "estimates.nc"
    if beside.is_file():
        return load_netcdf(beside)
    return estimate_run(args.run, n=args.n, progress=not args.no_progress, out=Path(args.out) / "estimates.nc")


def cmd_trust(args) -> int:
    """The run's trust figure from tool-chosen stand-alone anchors."""
    from workbench.studies.anchors import run_trust
    from workbench.studies.trust_record import trust_line

    run_trust(args.run, _run_estimates(args), args.out, k=args.anchors, train_config=train_config_from_args(args),
              seed=args.anchor_seed, parallel=args.parallel)
    print(trust_line(args.run))
    return 0


def cmd_recommend(args) -> int:
    """Verify a budget of strategies stand-alone, guided by the surrogate; print the best."""
    from workbench.studies.anchors import run_recommend

    r = run_recommend(args.run, _run_estimates(args), args.out, budget=args.budget,
                      train_config=train_config_from_args(args), kappa=args.kappa)
    test = r["standalone_test_top1"]
    print(f"best: {r['best']}\n  estimate {r['estimate']:.3f}; predicted stand-alone validation top-1 "
          f"{r['predicted_val_top1']:.3f} [95% {r['interval_95'][0]:.3f}, {r['interval_95'][1]:.3f}]; "
          + (f"trained: validation {r['standalone_val_top1']:.3f}, test {test:.3f}" if test is not None
             else "not trained (budget 0): the top estimate"))
    print(f"  verified {len(r['verified'])} strategies this call ({len(r['known_before'])} known before); "
          f"{Path(args.out) / 'recommendation.json'}")
    return 0


def cmd_study_rank(args) -> int:
    from workbench.strategy import Strategy
    from workbench.studies.rank import StudyConfig, run_rank_study

    cfg = StudyConfig(
        strategies=args.strategies, pool=args.pool, include_presets=not args.no_presets, seeds=tuple(args.seeds),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, recalibrate=tuple(args.recalibrate),
        mc_samples=tuple(args.mc), finetune_steps=tuple(args.finetune), bootstrap=args.bootstrap, seed=args.seed,
        trust_predictor=args.trust_predictor,
    )
    fixed = None
    if args.fixed:
        try:
            fixed = [Strategy.from_dict(d) for d in json.loads(Path(args.fixed).read_text())]
        except (OSError, json.JSONDecodeError, TypeError, KeyError) as e:
            raise ValueError(f"--fixed {args.fixed}: expected a strategies.json written by a study ({e})") from None
    ds = run_rank_study(args.run, args.out, config=cfg, strategies=fixed, cache=args.cache,
                        few_shot=args.few_shot, progress=not args.no_progress, parallel=args.parallel)
    print(f"{'predictor':<34}{'tau':>6}{'95% CI':>16}{'rho':>7}{'top-k':>7}")
    for i, n in enumerate(ds["predictor"].values):
        print(f"{str(n):<34}{ds.tau.values[i]:>6.2f}   [{ds.tau_lo.values[i]:>5.2f}, {ds.tau_hi.values[i]:>5.2f}]"
              f"{ds.rho.values[i]:>7.2f}{ds.top_k_precision.values[i]:>7.2f}")
    print(f"{ds.sizes['strategy']} strategies x {ds.sizes['seed']} seed(s) trained stand-alone; "
          f"report: {Path(args.out) / 'report.md'}")
    return 0




def cmd_study_levers(args) -> int:
    from workbench.analysis import save_study
    from workbench.plots import lever_forest, save_figure
    from workbench.studies.levers import lever_report, lever_table

    studies = {}
    for item in args.study:
        label, sep, folder = item.rpartition("=")
        if not sep or not label or not folder:
            raise ValueError(f"--study {item!r}: expected LABEL=STUDY_FOLDER")
        studies[label] = folder
    table = lever_table(studies, baseline=args.baseline)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = lever_report(table)
    save_study(table, text, out, "levers")
    save_figure(lever_forest(table, width="double", top=20), out / "levers", formats=("png", "pdf", "svg"))
    print(text)
    return 0




def add_commands(sub) -> None:
    study = sub.add_parser("study", help="how far to trust the estimates: rank agreement with stand-alone training")
    ss = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")
    q = ss.add_parser("rank", help="train K strategies stand-alone and rank-correlate them with the estimates")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.add_argument("--out", required=True, help="study folder (study.nc, report.md, figure)")
    q.add_argument("--strategies", type=positive_int, default=24, help="K, presets included")
    q.add_argument("--pool", type=positive_int, default=200, help="sampled candidates the K are picked from")
    q.add_argument("--fixed", default=None, help="strategies.json of an earlier study: judge the same strategies")
    q.add_argument("--no-presets", action="store_true")
    q.add_argument("--seeds", type=int, nargs="+", default=[0], help="stand-alone seeds")
    q.add_argument("--epochs", type=positive_int, default=30, help="stand-alone epochs (the truth table's budget)")
    q.add_argument("--batch-size", type=positive_int, default=16)
    q.add_argument("--lr", type=float, default=6e-3)
    q.add_argument("--recalibrate", type=int, nargs="+", default=[0, 2], help="BN recalibration batches to compare")
    q.add_argument("--mc", type=positive_int, nargs="*", default=[],
                   help="also score with this many Monte-Carlo masks per strategy (one predictor each)")
    q.add_argument("--finetune", type=positive_int, nargs="*", default=[],
                   help="also score after this many fine-tuning steps per strategy (one predictor each)")
    q.add_argument("--few-shot", default=None,
                   help="folder of `workbench template few-shot` for this run: adds the few-shot predictor")
    q.add_argument("--bootstrap", type=positive_int, default=2000)
    q.add_argument("--trust-predictor", default="shared+recal2",
                   help="predictor whose tau becomes the run's trust figure (default: the estimates' default, "
                        "shared weights with 2 BN recalibration batches)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--cache", default=None, help="stand-alone results cache (default OUT/standalone)")
    q.add_argument("--parallel", type=positive_int, default=1,
                   help="stand-alone trainings at once, each in a one-thread process (default 1; on a CPU, "
                        "the number of cores)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_study_rank)

    q = ss.add_parser("levers", help="one table and figure from several rank studies on the same strategies")
    q.add_argument("--study", action="append", required=True, metavar="LABEL=DIR",
                   help="a study folder and its lever label, repeatable (the first is the baseline)")
    q.add_argument("--baseline", default=None, help="label of the baseline study (default: the first)")
    q.add_argument("--out", required=True, help="folder for levers.md, levers.nc and the figure")
    q.set_defaults(func=cmd_study_levers)

    q = sub.add_parser("compare", help="literature comparison: zoo designs and template strategies, one budget")
    q.add_argument("--run", required=True, help="a template run folder (its dataset is used)")
    q.add_argument("--estimates", default=None, help="its estimates.nc: adds the best sampled strategy")
    q.add_argument("--out", required=True, help="folder for comparison.{nc,md,pdf,png} and the cached runs")
    q.add_argument("--models", nargs="*", default=None, help="zoo names (default: the literature set)")
    q.add_argument("--full-width", action="store_true", help="the zoo's full widths instead of the tiny ones")
    q.add_argument("--streams", nargs="*", default=[], choices=("late", "stcb", "pyramid"),
                   help="also two-stream RGB + flow networks with these fusions (synthetic data: exact flow)")
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    q.add_argument("--epochs", type=positive_int, default=20)
    q.add_argument("--batch-size", type=positive_int, default=16)
    q.add_argument("--lr", type=float, default=6e-3)
    q.add_argument("--device", default="cpu")
    q.add_argument("--parallel", type=positive_int, default=1,
                   help="single-network trainings at once, each in a one-thread process (default 1; on a CPU, "
                        "the number of cores)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_compare)

    for name, helptext in (("trust", "the run's trust figure from stand-alone anchors the tool chooses (8 or more)"),
                           ("recommend", "verify a budget of strategies stand-alone and return the best with evidence")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
        q.add_argument("--out", required=True, help="folder for the stand-alone trainings (cached, resumable)")
        q.add_argument("--estimates", default=None,
                       help="the run's estimates (.nc; default: the main job's beside the run, else computed)")
        q.add_argument("-n", type=positive_int, default=200, help="strategies to sample when estimates are computed")
        if name == "trust":
            q.add_argument("--anchors", type=_at_least_8, default=8, help="stand-alone anchors (>= 8)")
            q.add_argument("--anchor-seed", type=int, default=0, help="which anchors the tool draws in each stratum")
            q.add_argument("--parallel", type=positive_int, default=1,
                           help="anchor trainings at once, each in a one-thread process (default 1; on a CPU, "
                                "the number of cores)")
        else:
            q.add_argument("--budget", type=nonnegative_int, required=True, help="stand-alone trainings to spend (>= 0)")
            q.add_argument("--kappa", type=float, default=1.0, help="weight of the surrogate's uncertainty")
        add_train_args(q, epochs=30, warmup=None, lr=6e-3, batch_size=16, run_folder=False)
        q.set_defaults(func=cmd_trust if name == "trust" else cmd_recommend)

    q = sub.add_parser("demo", help="the main job: train, sample, score, plot, report on synthetic-mixed")
    q.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    q.add_argument("--smoke", action="store_true", help="a tiny, seconds-long version (tests)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_demo)
