"""`workbench data ...` subcommands: ``export`` and ``check`` (thin: the work is in export.py / check.py)."""

from __future__ import annotations

import json

from workbench.cli.common import positive_int
from workbench.data.index import FORMAT_NAMES as FORMAT_CHOICES


def cmd_export(args) -> int:
    from workbench.data.export import export_dataset

    res = export_dataset(
        args.format,
        args.out,
        dataset=args.dataset,
        clips_per_class=args.clips_per_class,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        fps=args.fps,
        force=args.force,
        flow=args.flow,
        flow_bound=args.flow_bound,
        flow_method=args.flow_method,
    )
    if args.json:
        d = res.to_dict()
        d["root"] = str(res.root)
        print(json.dumps(d, indent=2))
        return 0
    splits = ", ".join(f"{k} {v}" for k, v in res.splits.items())
    print(
        f"wrote {res.files} clips of {len(res.classes)} classes from {args.dataset} as {res.format} to {res.root}"
    )
    print(f"  splits: {splits}")
    if res.flow_root:
        print(f"  optical flow (bound {args.flow_bound:g} px): {res.flow_root}")
    print(f"  check it with: workbench data check --format {args.format} --root {res.root}")
    return 0


def cmd_flow(args) -> int:
    from workbench.data.flow import compute_flow_folders

    r = compute_flow_folders(args.format, args.root, args.out, method=args.method, bound=args.bound,
                             force=args.force, progress=not args.no_progress)
    print(f"flow ({args.method}, bound {args.bound:g} px) of {r['videos']} videos in {r['out']}: "
          f"{r['written']} computed, {r['skipped']} already there")
    return 0


def cmd_check(args) -> int:
    from workbench.data.check import check_dataset

    kw = {}
    if args.folds:
        kw["folds"] = tuple(args.folds)
    report = check_dataset(args.format, args.root, decode=args.decode, workers=args.workers, **kw)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text())
    return 0 if report.ok else 1


def add_commands(sub) -> None:
    p = sub.add_parser(
        "data", help="datasets: export the synthetic benchmark to real formats, check a dataset"
    )
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    q = dsub.add_parser(
        "export",
        help="write synthetic clips in a real dataset's layout (videos + annotation files)",
        description="Write clips of the synthetic benchmark laid out as a real dataset, so the real "
        "pipeline (indexing, decoding, sampling, transforms, check) runs end to end on generated data.",
    )
    q.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="target dataset format")
    q.add_argument(
        "--out", required=True, help="output folder (must be empty or absent unless --force)"
    )
    q.add_argument(
        "--dataset",
        default="synthetic-motion",
        help="synthetic dataset to export (default synthetic-motion)",
    )
    q.add_argument(
        "--clips-per-class", type=positive_int, default=4, help="clips per class (default 4)"
    )
    q.add_argument("--frames", type=positive_int, default=8, help="frames per clip (default 8)")
    q.add_argument("--size", type=positive_int, default=32, help="frame side in pixels (default 32)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument(
        "--fps",
        type=positive_int,
        default=None,
        help="frame rate written (default: the format's usual one)",
    )
    q.add_argument("--force", action="store_true", help="delete a non-empty --out first")
    q.add_argument("--flow", action="store_true",
                   help="also write each video's optical flow (OUT/flow/<Class>/<video>/flow_x_00001.jpg ...)")
    q.add_argument("--flow-bound", type=float, default=20.0, help="8-bit flow code bound in pixels (default 20)")
    q.add_argument("--flow-method", choices=("tvl1", "dis", "farneback"), default=None,
                   help="compute flow with OpenCV instead of the synthetic clips' exact flow")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_export)

    q = dsub.add_parser("flow", help="compute optical-flow frames for a real dataset that ships none (OpenCV)")
    q.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="dataset format")
    q.add_argument("--root", required=True, help="dataset root")
    q.add_argument("--out", required=True, help="flow root to write (OUT/<Class>/<video>/flow_x_00001.jpg ...)")
    q.add_argument("--method", choices=("tvl1", "dis", "farneback"), default="tvl1",
                   help="tvl1: what denseflow/mmaction compute (slow on CPU); dis: fast (default tvl1)")
    q.add_argument("--bound", type=float, default=20.0, help="8-bit code bound in pixels (default 20)")
    q.add_argument("--force", action="store_true", help="recompute folders that exist")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_flow)

    q = dsub.add_parser(
        "check",
        help="validate a dataset's layout, annotations and videos (non-zero exit on problems)",
        description="Index every split of a dataset, report missing files, unreadable videos, label "
        "mismatches and annotation errors; exit 1 when there is any problem.",
    )
    q.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="dataset format")
    q.add_argument("--root", required=True, help="dataset root folder")
    q.add_argument(
        "--decode",
        choices=("none", "first", "full"),
        default="first",
        help="how far to read each video: existence only, first frame (default), every frame",
    )
    q.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="parallel file checks (default min(4, CPUs))",
    )
    q.add_argument(
        "--fold",
        dest="folds",
        type=int,
        action="append",
        choices=(1, 2, 3),
        help="UCF101/HMDB51 split to check (repeatable; default all three)",
    )
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=cmd_check)


add_data_commands = add_commands  # the name this group had before the CLI became a package
