"""The ``workbench`` command (also ``python -m workbench``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__


def _size(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="a named model (see `workbench info`)")
    g.add_argument("--strategy", help="a preset name, a strategy code 'backbone:units' or a JSON file")
    p.add_argument("--backbone", default=None, help="backbone for a preset given with --strategy (default resnet18)")
    p.add_argument("--num-classes", type=_size, default=None, help="classifier size (model default if omitted)")
    p.add_argument("--tiny", action="store_true", help="the tiny configuration (tests, CPU demos)")


def _build(args):
    from .models import build_model, create_model

    kw = {}
    if args.num_classes:
        kw["num_classes"] = args.num_classes
    if args.model:
        return args.model, create_model(args.model, tiny=args.tiny, **kw)
    from .strategy import parse_strategy

    strategy = parse_strategy(args.strategy, args.backbone)
    if strategy.layout.family == "c3d":
        kw.setdefault("num_frames", args.frames)
        kw.setdefault("size", args.size)
    if strategy.stem == "fold":
        kw.setdefault("num_frames", args.frames)
    return strategy.label, build_model(strategy, tiny=args.tiny, **kw)


def _on_meta():
    """Build models on the meta device for counting: no memory, no initialisation cost."""
    import torch

    return torch.device("meta")


def cmd_cost(args) -> int:
    with _on_meta():
        return _cmd_cost(args)


def _cmd_cost(args) -> int:
    from .cost import count_cost
    from .models import model_info

    if args.model and model_info(args.model).backbone == "c3d":
        from .models import create_model

        kw = {"num_frames": args.frames, "size": args.size}
        if args.num_classes:
            kw["num_classes"] = args.num_classes
        name, model = args.model, create_model(args.model, tiny=args.tiny, **kw)
    elif args.model and model_info(args.model).preset == "r2d":
        from .models import create_model

        kw = {"num_frames": args.frames}
        if args.num_classes:
            kw["num_classes"] = args.num_classes
        name, model = args.model, create_model(args.model, tiny=args.tiny, **kw)
    else:
        name, model = _build(args)
    report = count_cost(model, (3, args.frames, args.size, args.size), name=name)
    if args.json:
        d = report.to_dict()
        if not args.layers:
            d.pop("layers")
        print(json.dumps(d, indent=2))
        return 0
    print(f"{name}: {report.params:,} params, {report.gmacs:.3f} GMACs at 3x{args.frames}x{args.size}x{args.size}")
    if args.layers:
        print(f"{'layer':<34}{'unit':<10}{'params':>14}{'GMACs':>10}")
        for row in report.layers:
            print(f"{row.name:<34}{row.unit:<10}{row.params:>14,}{row.gmacs:>10.3f}")
    return 0


def cmd_info(args) -> int:
    from .models import list_models, model_info
    from .strategy import list_backbones, list_presets, preset_description
    from .units import list_units

    info = {
        "version": __version__,
        "units": list_units(),
        "backbones": list_backbones(),
        "models": {n: model_info(n).description for n in list_models()},
        "presets": {n: preset_description(n) for n in list_presets()},
        "datasets": _datasets(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, val in info.items():
        if isinstance(val, dict):
            print(f"{key}:")
            for k, v in val.items():
                print(f"  {k:<22} {v}")
        elif isinstance(val, list):
            print(f"{key}: {', '.join(val)}")
        else:
            print(f"{key}: {val}")
    return 0


def _datasets() -> list[str]:
    try:
        from .data import list_datasets
    except ImportError:  # the data package arrives with its own dependencies
        return []
    return list_datasets()


def cmd_strategy(args) -> int:
    from .strategy import list_presets, parse_strategy

    if args.list:
        for name in list_presets(args.backbone):
            print(name)
        return 0
    if not args.spec:
        raise ValueError("give a strategy (preset name, code or JSON file) or --list")
    s = parse_strategy(args.spec, args.backbone)
    if args.json:
        print(s.to_json())
        return 0
    print(f"{s.label}  key={s.key}  stem={s.stem}")
    print(f"code: {s.code}")
    groups = s.layout.group_of()
    for i, (u, g) in enumerate(zip(s.units, groups)):
        print(f"  layer {i:>3}  group {g}  {u}")
    return 0


def cmd_zoo(args) -> int:
    with _on_meta():
        return _cmd_zoo(args)


def _cmd_zoo(args) -> int:
    """The model zoo's cost table."""
    from .cost import count_cost
    from .models import create_model, list_models, model_info

    rows = []
    names = args.models or list_models()
    for name in names:
        kw = {"num_frames": args.frames, "size": args.size} if model_info(name).backbone == "c3d" else {}
        if model_info(name).preset == "r2d":
            kw = {"num_frames": args.frames}
        model = create_model(name, tiny=args.tiny, **kw)
        r = count_cost(model, (3, args.frames, args.size, args.size), name=name)
        rows.append({"model": name, "params": r.params, "gmacs": round(r.gmacs, 3), "reference": model_info(name).reference})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"model zoo at 3x{args.frames}x{args.size}x{args.size} (GMACs = 1e9 multiply-adds, forward)")
    print(f"{'model':<24}{'params':>14}{'GMACs':>10}  reference")
    for r in rows:
        print(f"{r['model']:<24}{r['params']:>14,}{r['gmacs']:>10.3f}  {r['reference']}")
    return 0


def cmd_demo(args) -> int:
    """The main job on the embedded defaults. Today: the zoo's cost table, the literature presets on
    ResNet-18 with their cost, written to ``--out`` as JSON."""
    from pathlib import Path

    from .cost import count_cost
    from .models import build_model
    from .strategy import list_presets, preset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zoo_args = argparse.Namespace(models=[], frames=16, size=112, tiny=False, json=False)
    print("== model zoo ==")
    cmd_zoo(zoo_args)
    rows = []
    for name in list_presets("resnet18"):
        s = preset(name, "resnet18")
        kw = {"num_frames": 16} if s.stem == "fold" else {}
        with _on_meta():
            model = build_model(s, num_classes=400, **kw)
        r = count_cost(model, (3, 16, 112, 112), name=name)
        rows.append({"preset": name, "code": s.code, "params": r.params, "gmacs": round(r.gmacs, 3),
                     "per_layer_gmacs": [round(x.gmacs, 4) for x in r.layers]})
    print("\n== literature presets on ResNet-18, 3x16x112x112, 400 classes ==")
    print(f"{'preset':<14}{'code':<28}{'params':>14}{'GMACs':>10}")
    for r in rows:
        print(f"{r['preset']:<14}{r['code']:<28}{r['params']:>14,}{r['gmacs']:>10.3f}")
    dest = out / "presets_resnet18.json"
    dest.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Spatiotemporal fusion workbench for 3D CNNs.")
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser("info", help="list units, backbones, models, presets and datasets")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_info)

    q = sub.add_parser("cost", help="params and GMACs of a model or strategy, per layer and in total")
    _add_model_args(q)
    q.add_argument("--frames", type=_size, default=16, help="clip length T (default 16)")
    q.add_argument("--size", type=_size, default=112, help="crop size H = W (default 112)")
    q.add_argument("--layers", action="store_true", help="include the per-layer breakdown")
    q.add_argument("--json", action="store_true", help="print JSON with params (int) and gmacs (float)")
    q.set_defaults(func=cmd_cost)

    q = sub.add_parser("strategy", help="show a strategy layer by layer, or list presets")
    q.add_argument("spec", nargs="?", help="preset name, code 'backbone:units', JSON or JSON file")
    q.add_argument("--backbone", default=None, help="backbone for presets (default resnet18)")
    q.add_argument("--list", action="store_true", help="list the presets meaningful on --backbone")
    q.add_argument("--json", action="store_true", help="print the strategy as JSON")
    q.set_defaults(func=cmd_strategy)

    q = sub.add_parser("zoo", help="the model zoo's cost table")
    q.add_argument("models", nargs="*", help="model names (default: all)")
    q.add_argument("--frames", type=_size, default=16)
    q.add_argument("--size", type=_size, default=112)
    q.add_argument("--tiny", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_zoo)

    q = sub.add_parser("demo", help="the main job on the embedded defaults (writes to --out)")
    q.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    q.set_defaults(func=cmd_demo)

    from .data.cli import add_data_commands

    add_data_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:
        print(f"workbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and friends
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
