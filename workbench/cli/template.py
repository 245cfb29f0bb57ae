"""``workbench template`` (the template: train, sample, show, check, few-shot) and ``train`` (one
strategy stand-alone)."""

from __future__ import annotations

from pathlib import Path

from workbench.cli.common import (
    add_data_args,
    add_train_args,
    data_kw_from_args,
    parse_data_args,
    positive_int,
    template_fields_from_args,
    train_config_from_args,
)
from workbench.engine.config import TEMPLATE_TRAINING


def cmd_template_train(args) -> int:
    from workbench.studies.pipeline import train_template

    model, history = train_template(
        args.out, dataset=args.dataset, root=args.root, data_kw=data_kw_from_args(args),
        template=template_fields_from_args(args), train_config=train_config_from_args(args),
        resume=args.resume, overwrite=args.overwrite,
    )
    print(f"trained {len(history)} epochs; val top-1 {history.val_acc[-1]:.3f}; "
          f"expected temporal layers {model.expected_temporal_layers():.2f}")
    _print_marginals(model)
    print(f"run folder: {args.out}")
    return 0


def _print_marginals(model) -> None:
    probs = model.unit_probabilities()
    units = model.units
    print(f"{'layer':>5}  " + "".join(f"{u:>8}" for u in units) + "   most probable")
    for i in range(probs.shape[0]):
        row = probs[i].tolist()
        print(f"{i:>5}  " + "".join(f"{v:>8.3f}" for v in row) + f"   {units[max(range(len(row)), key=row.__getitem__)]}")


def cmd_template_sample(args) -> int:
    from workbench.analysis import pareto_front, top_k
    from workbench.strategy import parse_strategy
    from workbench.studies.pipeline import estimate_run

    given = [parse_strategy(s) for s in args.strategy]
    ds = estimate_run(
        args.run, n=args.n, seed=args.seed, include_presets=not args.no_presets, strategies=given,
        split=args.split, recalibrate_batches=args.recalibrate, batch_size=args.batch_size,
        clips=args.clips, crops=args.crops, progress=not args.no_progress, out=args.out,
    )
    best = top_k(ds, args.top)
    print(f"{'top1':>7}{'GMACs':>9}{'log p':>9}  source         strategy")
    for i in range(best.sizes["strategy"]):
        r = best.isel(strategy=i)
        label = str(r["name"].values) or str(r["code"].values)
        print(f"{float(r.top1):>7.3f}{float(r.gmacs):>9.4f}{float(r.log_prob):>9.2f}  {str(r.source.values):<14} {label}")
    front = pareto_front(ds)
    print(f"{int(front.sum())} strategies on the accuracy-vs-GMACs Pareto front")
    from workbench.studies.trust_record import trust_line

    print(trust_line(args.run))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_template_show(args) -> int:
    from workbench.template.network import load_template

    model, meta = load_template(args.run)
    print(f"{args.run}: epoch {meta['metadata']['epoch'] + 1}, backbone {model.backbone}, units {', '.join(model.units)}")
    _print_marginals(model)
    print(f"expected temporal layers: {model.expected_temporal_layers():.2f}; most probable: {model.most_probable().code}")
    return 0


def cmd_template_check(args) -> int:
    from workbench.studies.known_answer import CRITERIA, known_answer_study

    seeds = args.seeds or list(range(args.n_seeds))
    print(f"known-answer check: appearance and motion, seeds {seeds}, {args.jobs} job(s) at a time")
    data_kw = parse_data_args(args.data_arg)
    res = known_answer_study(seeds, args.out, jobs=args.jobs, alpha=args.alpha, threads=args.threads,
                             data_kw=data_kw)
    short = {c: c.replace("appearance_", "A:").replace("motion_", "M:") for c in CRITERIA}
    print(f"{'seed':>4}  " + "  ".join(f"{short[c]:>14}" for c in CRITERIA) + "   all")
    for row in res["per_seed"]:
        print(f"{row['seed']:>4}  " + "  ".join(f"{'yes' if row['criteria'][c] else 'NO':>14}" for c in CRITERIA)
              + f"   {'yes' if row['passed'] else 'NO'}")
    n = len(res["seeds"])
    for c, text in CRITERIA.items():
        print(f"  {res['passed'][c]:>2}/{n}  {text}")
    print(f"all criteria hold for {res['passed_all']} of {n} seeds; details in {Path(args.out) / 'known_answer.json'}")
    return 0 if res["passed_all"] == n else 1




def cmd_template_few_shot(args) -> int:
    from workbench.template.fewshot import train_few_shot

    m = train_few_shot(args.run, args.out, layer=args.layer, epochs=args.epochs, lr=args.lr, seed=args.seed,
                       progress=not args.no_progress)
    print(f"few-shot template: layer {m['layer']} split into {', '.join(m['parts'])}, "
          f"{m['epochs']} epochs each; manifest {Path(args.out) / 'fewshot.json'}")
    return 0




def cmd_train(args) -> int:
    from workbench.strategy import parse_strategy
    from workbench.studies.pipeline import train_strategy

    strategy = parse_strategy(args.strategy, args.backbone or "densenet-tiny")
    model_kw = {"tiny": True} if args.tiny else {}
    _, history, test = train_strategy(
        strategy, args.out, dataset=args.dataset, root=args.root, data_kw=data_kw_from_args(args), model_kw=model_kw,
        inherit_from=args.inherit_from, train_config=train_config_from_args(args), resume=args.resume, overwrite=args.overwrite,
    )
    print(f"{strategy.label}: val top-1 {history.val_acc[-1]:.3f}, test top-1 {test['top1']:.3f} ({test['n']} clips)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("template", aliases=["supernet"],
                       help="the template network: train it, sample and score strategies ('supernet' works too)")
    ss = p.add_subparsers(dest="template_command", required=True, metavar="TEMPLATE_COMMAND")

    q = ss.add_parser("train", help="train the template network (warm-up, then gated)")
    q.add_argument("--out", required=True, help="run folder")
    add_data_args(q)
    g = q.add_argument_group("template")
    g.add_argument("--backbone", default="densenet-tiny",
                   help="densenet121, densenet-small, densenet-tiny, resnet50-template, resnet26-template, ...")
    g.add_argument("--unit-set", default="paper", help="paper = {S, ST, S+ST}; with-t adds T and its sums")
    g.add_argument("--growth", type=positive_int, default=8)
    g.add_argument("--bn-size", type=positive_int, default=2)
    g.add_argument("--base-width", type=positive_int, default=8, help="ResNet-bottleneck template width")
    g.add_argument("--temporal-reduction", type=int, default=1, choices=(1, 8))
    g.add_argument("--scaffold", choices=("spatial", "paper"), default=None,
                   help="spatial (default): 1x7x7 stem, 1x1x1 transitions, every temporal conv searched; "
                        "paper: the authors' 5x7x7 stem and temporal transitions")
    g.add_argument("--tau", type=float, default=0.2, help="concrete relaxation temperature")
    g.add_argument("--p-init", type=float, default=0.1, help="initial drop probability")
    g.add_argument("--k", type=float, default=None, help="length-scale k of the weight prior")
    g.add_argument("--regularizer", choices=("paper", "code"), default="paper")
    g.add_argument("--prior", choices=("volume", "none"), default="volume")
    g.add_argument("--gate-lr", type=float, default=0.05)
    g.add_argument("--tau-start", type=float, default=None,
                   help="anneal the temperature geometrically from this value to --tau over the gated epochs")
    g.add_argument("--sandwich", type=float, default=0.0,
                   help="share of gated steps that train one uniformly drawn strategy instead (0: none)")
    g.add_argument("--warmup-uniform", type=float, default=0.0,
                   help="share of warm-up steps that train one uniformly drawn strategy instead of every branch "
                        "(1: a path-uniform warm-up; 0: none); the warm-up's validation still scores every branch "
                        "at once, which such a warm-up does not train")
    add_train_args(q, epochs=TEMPLATE_TRAINING.epochs, warmup=TEMPLATE_TRAINING.warmup_epochs, lr=TEMPLATE_TRAINING.lr,
                   batch_size=TEMPLATE_TRAINING.batch_size)
    q.set_defaults(func=cmd_template_train)

    q = ss.add_parser("few-shot", help="split a trained template on one layer's unit and train the parts")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.add_argument("--out", required=True, help="folder for the parts and fewshot.json")
    q.add_argument("--layer", type=int, default=None, help="layer to split (default: highest unit entropy)")
    q.add_argument("--epochs", type=positive_int, default=4, help="gated epochs per part")
    q.add_argument("--lr", type=float, default=None, help="default: half the template's")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_template_few_shot)

    q = ss.add_parser("sample", help="sample strategies and score them with the shared weights")
    q.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="a template run folder (spell it --run-dir under torchrun, which claims --run)")
    q.add_argument("-n", type=positive_int, default=100, help="strategies to sample (>= 1)")
    q.add_argument("--out", default=None, help="netCDF file for the results")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--split", default="val")
    q.add_argument("--recalibrate", type=int, default=2,
                   help="BN recalibration batches per strategy (default 2: see reports/rank-study.md; 0: none)")
    q.add_argument("--batch-size", type=positive_int, default=64)
    q.add_argument("--clips", type=positive_int, default=1, help="clips per video, scores averaged (real datasets)")
    q.add_argument("--crops", type=positive_int, default=1, help="spatial crops per clip (real datasets)")
    q.add_argument("--strategy", action="append", default=[], help="also score this strategy (repeatable)")
    q.add_argument("--no-presets", action="store_true", help="do not score the literature presets")
    q.add_argument("--top", type=int, default=10, help="rows to print")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_template_sample)

    q = ss.add_parser("check", help="does the probability space find the known answer on synthetic data?")
    q.add_argument("--out", required=True, help="folder for the runs and known_answer.json")
    q.add_argument("--seeds", type=int, nargs="*", default=None, help="seeds (default: 0 .. n-seeds - 1)")
    q.add_argument("--n-seeds", type=int, default=3)
    q.add_argument("--jobs", type=int, default=1, help="runs at a time (the cores are shared out)")
    q.add_argument("--alpha", type=float, default=0.01, help="level of the S-only-at-chance test")
    q.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per job (default: the cores shared out among the jobs)")
    q.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a synthetic-data argument for both kinds (noise, distractors, ...), repeatable")
    q.set_defaults(func=cmd_template_check)

    q = ss.add_parser("show", help="print a trained template's layer-level marginals")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.set_defaults(func=cmd_template_show)

    q = sub.add_parser("train", help="train one strategy as a stand-alone network")
    q.add_argument("--strategy", required=True, help="preset name, code 'backbone:units' or JSON file")
    q.add_argument("--backbone", default=None, help="backbone for a preset (default densenet-tiny)")
    q.add_argument("--out", required=True, help="run folder")
    q.add_argument("--inherit-from", default=None, help="a template run: start from its weights")
    q.add_argument("--tiny", action="store_true", help="tiny widths (fresh networks)")
    add_data_args(q)
    add_train_args(q, epochs=10, warmup=None)
    q.set_defaults(func=cmd_train)


