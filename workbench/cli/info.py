"""``workbench info``, ``cost``, ``strategy``, ``zoo``: the space and the model zoo."""

from __future__ import annotations

import json

from workbench import __version__
from workbench.cli.common import (
    add_model_args,
    build_from_args,
    on_meta,
    positive_int,
)


def cmd_cost(args) -> int:
    with on_meta():
        return _cmd_cost(args)


def _cmd_cost(args) -> int:
    from workbench.engine.cost import count_cost
    from workbench.models import model_info

    if args.model and model_info(args.model).clip_kwargs(args.frames, args.size):
        from workbench.models import create_model

        kw = model_info(args.model).clip_kwargs(args.frames, args.size)
        if args.num_classes:
            kw["num_classes"] = args.num_classes
        name, model = args.model, create_model(args.model, tiny=args.tiny, **kw)
    else:
        name, model = build_from_args(args)
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
    from workbench.models import list_models, model_info
    from workbench.models.units import list_units
    from workbench.strategy import list_backbones, list_presets, preset_description

    info = {
        "version": __version__,
        "units": list_units(),
        "backbones": list_backbones(),
        "models": {n: model_info(n).description for n in list_models()},
        "presets": {n: preset_description(n) for n in list_presets()},
        "datasets": _datasets(),
        "modalities": ["rgb", "flow (synthetic: exact; real: --flow-root)", "audio (synthetic)"],
        "stream fusions": {
            "late": "RGB + flow streams, logits averaged",
            "stcb": "RGB + flow, compact bilinear fusion of the pooled features",
            "pyramid": "Spatiotemporal Pyramid Network: multi-snippet STCB, motion attention, final STCB",
            "gblend": "one head per modality + fused head, Gradient-Blending loss weights",
        },
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
        from workbench.data import list_datasets
    except ImportError:  # the data package arrives with its own dependencies
        return []
    return list_datasets()


def cmd_strategy(args) -> int:
    from workbench.strategy import list_presets, parse_strategy

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
    with on_meta():
        return _cmd_zoo(args)


def _cmd_zoo(args) -> int:
    """The model zoo's cost table."""
    from workbench.engine.cost import count_cost
    from workbench.models import create_model, list_models, model_info

    rows = []
    names = args.models or list_models()
    for name in names:
        kw = model_info(name).clip_kwargs(args.frames, args.size)
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




def add_commands(sub) -> None:
    q = sub.add_parser("info", help="list units, backbones, models, presets and datasets")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_info)

    q = sub.add_parser("cost", help="params and GMACs of a model or strategy, per layer and in total")
    add_model_args(q)
    q.add_argument("--frames", type=positive_int, default=16, help="clip length T (default 16)")
    q.add_argument("--size", type=positive_int, default=112, help="crop size H = W (default 112)")
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
    q.add_argument("--frames", type=positive_int, default=16)
    q.add_argument("--size", type=positive_int, default=112)
    q.add_argument("--tiny", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_zoo)
