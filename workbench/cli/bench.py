"""``workbench bench``: build the stand-alone truth table and score template runs against it."""

from __future__ import annotations

import json

from workbench.cli.common import positive_int


def add_commands(sub) -> None:

    bench = sub.add_parser("bench", help="FusionBench: a stand-alone truth table; score any template against it")
    bs = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    q = bs.add_parser("build", help="train the table's strategies stand-alone (cached, resumable, shareable)")
    q.add_argument("--out", default="reports/fusionbench", help="table folder (default reports/fusionbench)")
    q.add_argument("--setting", action="append", default=None,
                   help="a setting to build, repeatable (default: all of them)")
    q.add_argument("--workers", type=positive_int, default=1, help="one-thread worker processes (default 1)")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    q.add_argument("--epochs", type=positive_int, default=30,
                   help="stand-alone epochs (30: at 20, one motion training in four fails to learn)")
    q.add_argument("--paired", action="store_true",
                   help="paired design: coinciding layers of one seed's strategies start from the same weights")
    q.add_argument("--limit", type=positive_int, default=None, help="stop after this many trainings")
    q.add_argument("--first", type=positive_int, default=None,
                   help="only the first N strategies of the list (a smaller table, e.g. a shorter budget's)")
    q.add_argument("--deadline", type=float, default=None, help="claim no new training after this many seconds")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_bench_build)
    q = bs.add_parser("status", help="how far a build has come, per setting and seed")
    q.add_argument("--out", default="reports/fusionbench", help="table folder (default reports/fusionbench)")
    q.set_defaults(func=cmd_bench_status)
    q = bs.add_parser("score", help="score a template run's estimates against the table")
    q.add_argument("--run", required=True, help="a template run folder")
    q.add_argument("--table", default="reports/fusionbench", help="the table folder or its fusionbench.nc")
    q.add_argument("--setting", default=None, help="the table setting (default: the one matching the run's data)")
    q.add_argument("--recalibrate", type=int, default=2, help="BN recalibration batches (default 2)")
    q.add_argument("--top-k", type=positive_int, default=5)
    q.add_argument("--bootstrap", type=positive_int, default=2000)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_bench_score)


def cmd_bench_build(args) -> int:
    from dataclasses import replace

    from workbench.studies.fusionbench import BenchConfig, build, write_readme

    cfg = replace(BenchConfig(), seeds=tuple(args.seeds), epochs=args.epochs, paired=args.paired)
    r = build(args.out, settings=args.setting, config=cfg, workers=args.workers, limit=args.limit,
              deadline_s=args.deadline, progress=not args.no_progress, first_strategies=args.first)
    write_readme(args.out)
    print(f"{r['finished']} of {r['total']} trainings in {args.out} ({r['trained']} trained now, {r['seconds']} s)")
    return 0


def cmd_bench_score(args) -> int:
    from workbench.studies.fusionbench import score_report, score_run

    r = score_run(args.run, args.table, setting=args.setting, recalibrate=args.recalibrate, top_k=args.top_k,
                  bootstrap=args.bootstrap)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(score_report(r))
    return 0


def cmd_bench_status(args) -> int:
    from workbench.studies.fusionbench import status

    r = status(args.out)
    print(f"{r['finished']} of {r['total']} trainings ({r['strategies']} strategies x {len(r['seeds'])} seeds x "
          f"{len(r['settings'])} settings) in {args.out}")
    for setting, per in r["settings"].items():
        print(f"  {setting:8s} " + "  ".join(f"seed {sd}: {n}/{r['strategies']}" for sd, n in per.items()))
    return 0
