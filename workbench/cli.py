"""The ``workbench`` command (also ``python -m workbench``).

One module for now because every command group shares the argument helpers (data, training,
model flags) and ``validate_args``, which checks them all before any work starts; the split into
one module per command group, with options derived from the config dataclasses, is the next
step of the package layout and must keep every flag of the README and ``reports/*/commands.sh``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

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
    """The main job on the embedded synthetic benchmark (see :mod:`workbench.mainjob`)."""
    from .mainjob import MAIN_JOB, SMOKE, run_main_job

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
    from .analysis import load_netcdf
    from .compare import LITERATURE, comparison_figure, literature_comparison
    from .train import TrainConfig

    est = load_netcdf(args.estimates) if args.estimates else None
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device)
    ds = literature_comparison(args.out, args.run, models=args.models or LITERATURE, estimates=est,
                               tiny=not args.full_width, train_config=cfg, seeds=args.seeds,
                               progress=not args.no_progress, streams=args.streams)
    fig = comparison_figure(ds)
    for ext in ("pdf", "png"):
        fig.savefig(Path(args.out) / f"comparison.{ext}")
    print((Path(args.out) / "comparison.md").read_text())
    print(f"table, figure and comparison.nc in {args.out}")
    return 0


def _weights(items: Sequence[str]) -> dict | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--weights expects HEAD=NUMBER items (e.g. rgb=0.6 audio=0.1 fused=0.3), got {item!r}")
    return out


def _streams_model_kw(args) -> dict:
    return {"backbone": args.backbone, "tiny": args.tiny, "audio_encoder": args.audio_encoder, "snippets": args.snippets,
            "attention": not args.no_attention, "final": args.final, "d_temporal": args.d_temporal,
            "d_attention": args.d_attention, "d_final": args.d_final}


def cmd_streams_train(args) -> int:
    """Train one stream-fusion network (two-stream RGB + flow, or multi-modal with G-Blend)."""
    from .streams import run_streams

    blend, weights = "fixed", _weights(args.weights)
    if args.fusion == "gblend":
        if args.blend == "online":
            blend = "online"
        elif args.blend == "uniform":
            weights = weights or "uniform"
        elif args.blend == "naive" and len(args.modalities or ("rgb", "audio")) > 1:
            weights = weights or {"fused": 1.0}
    elif args.blend != "naive" or args.weights:
        raise ValueError(f"--blend and --weights apply to --fusion gblend, not {args.fusion!r}")
    mods = tuple(args.modalities) if args.modalities else None
    if weights == "uniform":
        heads = [*(mods or ("rgb", "audio"))]
        heads = [*heads, "fused"] if len(heads) > 1 else heads
        weights = {h: 1.0 / len(heads) for h in heads}
    data_kw = _data_kw(args)
    if args.flow_bound != 20.0:
        data_kw["flow_bound"] = args.flow_bound
    r = run_streams(args.out, dataset=args.dataset, fusion=args.fusion, modalities=mods, root=args.root,
                    flow_root=args.flow_root,
                    train_config=_train_config(args), weights=weights, blend=blend, super_epoch=args.super_epoch,
                    model_kw=_streams_model_kw(args), data_kw=data_kw, resume=args.resume,
                    overwrite=args.overwrite)
    res = r["result"]
    print(f"{args.fusion} on {args.dataset} ({', '.join(res['modalities'])}): {res['params']:,} parameters, "
          f"{res['seconds']:.0f} s")
    for head, v in res["test"].items():
        print(f"  test top-1 {head:>6}: {v['top1']:.3f}  (loss {v['loss']:.3f})")
    if len(res["final_weights"]) > 1:
        print("  final loss weights: " + ", ".join(f"{k} {v:.2f}" for k, v in res["final_weights"].items()))
    print(f"run folder: {args.out} (result.json, results.nc, history.json)")
    return 0


def cmd_streams_gblend_study(args) -> int:
    from .streams.study import gblend_figure, gblend_study, gblend_table

    ds = gblend_study(args.out, dataset=args.dataset, modalities=args.modalities, data_kw=_data_kw(args),
                      model_kw={"backbone": args.backbone, "tiny": args.tiny, "audio_encoder": args.audio_encoder},
                      train_config=_train_config(args), seeds=args.seeds, super_epoch=args.super_epoch,
                      window=tuple(args.window) if args.window else None, progress=not args.no_progress)
    fig = gblend_figure(ds)
    for ext in ("pdf", "png"):
        fig.savefig(Path(args.out) / f"gblend.{ext}")
    print(gblend_table(ds))
    print(f"table, figure and gblend.nc in {args.out}")
    return 0


def cmd_streams_ablation(args) -> int:
    from .streams.study import ablation_table, stream_ablation

    ds = stream_ablation(args.out, dataset=args.dataset, data_kw=_data_kw(args),
                         model_kw={"backbone": args.backbone, "tiny": args.tiny}, train_config=_train_config(args),
                         seeds=args.seeds, progress=not args.no_progress)
    print(ablation_table(ds))
    print(f"table and ablation.nc in {args.out}")
    return 0


def _add_streams_commands(sub) -> None:
    from .streams.run import STREAM_FUSIONS

    p = sub.add_parser("streams", help="fuse whole streams: two-stream RGB + flow (STCB, pyramid), G-Blend")
    ss = p.add_subparsers(dest="streams_command", required=True, metavar="STREAMS_COMMAND")

    def model_args(q):
        g = q.add_argument_group("streams")
        g.add_argument("--backbone", default="r3d_18", help="zoo name of each video stream (default r3d_18)")
        g.add_argument("--full-width", dest="tiny", action="store_false", help="the zoo's widths, not the tiny ones")
        g.add_argument("--audio-encoder", choices=("mlp", "cnn"), default="mlp")

    q = ss.add_parser("train", help="train one stream-fusion network and score it on the test split")
    q.add_argument("--out", required=True, help="run folder")
    q.add_argument("--fusion", choices=STREAM_FUSIONS, default="pyramid",
                   help="late / stcb / pyramid: RGB + flow; gblend: multi-head multi-modal network")
    q.add_argument("--modalities", nargs="+", default=None,
                   help="rgb, flow, audio (default: rgb flow; gblend: rgb audio)")
    model_args(q)
    g = q.add_argument_group("pyramid switches")
    g.add_argument("--snippets", type=_size, default=2, help="flow snippets fused by STCB (1: off)")
    g.add_argument("--no-attention", action="store_true", help="average-pool the RGB map instead of attending")
    g.add_argument("--final", choices=("stcb", "concat"), default="stcb", help="final fusion")
    g.add_argument("--d-temporal", type=_size, default=1024)
    g.add_argument("--d-attention", type=_size, default=512)
    g.add_argument("--d-final", type=_size, default=2048)
    g = q.add_argument_group("gblend")
    g.add_argument("--blend", choices=("naive", "uniform", "online"), default="naive",
                   help="naive: the fused head alone; uniform: every head alike; online: G-Blend every super-epoch")
    g.add_argument("--weights", nargs="*", default=[], metavar="HEAD=W",
                   help="fixed loss weights per head (offline G-Blend: from `streams gblend-study`)")
    g.add_argument("--super-epoch", type=_size, default=2)
    _add_data_args(q)
    q.add_argument("--flow-root", default=None, help="real datasets: the folder of precomputed flow frames")
    q.add_argument("--flow-bound", type=float, default=20.0, help="the bound those flow frames were written with")
    _add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16)
    q.set_defaults(func=cmd_streams_train)

    q = ss.add_parser("gblend-study", help="single modalities vs naive joint vs offline / online G-Blend")
    q.add_argument("--out", required=True, help="study folder (gblend.nc, gblend.md, figure, runs/)")
    q.add_argument("--modalities", nargs="+", default=["rgb", "audio"])
    model_args(q)
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    q.add_argument("--super-epoch", type=_size, default=2)
    q.add_argument("--window", type=int, nargs=2, default=None, metavar=("N", "N_PLUS_n"),
                   help="offline G-Blend's epochs (default: epochs/4 and epochs/2)")
    _add_data_args(q)
    _add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16, run_folder=False)
    q.set_defaults(func=cmd_streams_gblend_study)

    q = ss.add_parser("ablation", help="the pyramid network's parts switched off one at a time, and single streams")
    q.add_argument("--out", required=True, help="study folder (ablation.nc, ablation.md, runs/)")
    model_args(q)
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    _add_data_args(q)
    _add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16, run_folder=False)
    q.set_defaults(func=cmd_streams_ablation)


def _add_data_args(q: argparse.ArgumentParser, default: str = "synthetic-mixed") -> None:
    g = q.add_argument_group("data")
    g.add_argument("--dataset", default=default, help=f"dataset name (default {default}; see `workbench info`)")
    g.add_argument("--root", default=None, help="dataset root folder (real datasets)")
    g.add_argument("--frames", type=_size, default=None, help="clip length (synthetic default 8)")
    g.add_argument("--size", type=_size, default=None, help="frame size (synthetic default 32)")
    g.add_argument("--clips-per-class", type=_size, default=None, help="synthetic: training clips per class")
    g.add_argument("--data-seed", type=int, default=None, help="synthetic: generator seed")
    g.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="any other dataset argument (JSON value), repeatable")


def _data_kw(args) -> dict:
    kw = {}
    if args.frames:
        kw["frames"] = args.frames
    if args.size:
        kw["size"] = args.size
    if args.clips_per_class:
        kw["train_per_class"] = args.clips_per_class
    if args.data_seed is not None:
        kw["seed"] = args.data_seed
    for item in args.data_arg:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--data-arg expects KEY=VALUE, got {item!r}")
        try:
            kw[key] = json.loads(value)
        except json.JSONDecodeError:
            kw[key] = value
    return kw


def _add_train_args(q: argparse.ArgumentParser, epochs: int, warmup: int | None, lr: float = 3e-3,
                    batch_size: int = 32, run_folder: bool = True) -> None:
    g = q.add_argument_group("training")
    g.add_argument("--epochs", type=_size, default=epochs)
    if warmup is not None:
        g.add_argument("--warmup", type=int, default=warmup, help="epochs without gates before gating")
    g.add_argument("--batch-size", type=_size, default=batch_size)
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default="adamw")
    g.add_argument("--lr", type=float, default=lr)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--schedule", choices=("cosine", "step", "constant"), default="cosine")
    g.add_argument("--milestones", type=int, nargs="*", default=[])
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    g.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    if run_folder:  # studies cache and resume each of their runs by themselves
        g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        g.add_argument("--overwrite", action="store_true", help="replace the run that --out holds (its files only)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def _train_config(args, gate_lr: float | None = None):
    from .train import TrainConfig

    kw = dict(
        epochs=args.epochs, warmup_epochs=getattr(args, "warmup", 0), batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, schedule=args.schedule,
        milestones=tuple(args.milestones), seed=args.seed, num_workers=args.workers, device=args.device,
        amp=args.amp, progress=not args.no_progress,
    )
    if gate_lr is not None:
        kw["gate_lr"] = gate_lr
    for name in ("tau_start", "sandwich"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    return TrainConfig(**kw)


def cmd_supernet_train(args) -> int:
    from .pipeline import train_supernet

    sn = {
        "backbone": args.backbone, "unit_set": args.unit_set, "growth": args.growth, "bn_size": args.bn_size,
        "base_width": args.base_width,
        "tau": args.tau, "p_init": args.p_init, "regularizer": args.regularizer, "length_scale": args.k,
        "prior": args.prior, "temporal_reduction": args.temporal_reduction, "scaffold": args.scaffold,
    }
    sn = {k: v for k, v in sn.items() if v is not None}
    model, history = train_supernet(
        args.out, dataset=args.dataset, root=args.root, data_kw=_data_kw(args), supernet=sn,
        train_config=_train_config(args, args.gate_lr), resume=args.resume, overwrite=args.overwrite,
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


def cmd_supernet_sample(args) -> int:
    from .analysis import pareto_front, top_k
    from .pipeline import estimate_run
    from .strategy import parse_strategy

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
    from .study import trust_line

    print(trust_line(args.run))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_supernet_show(args) -> int:
    from .supernet import load_supernet

    model, meta = load_supernet(args.run)
    print(f"{args.run}: epoch {meta['metadata']['epoch'] + 1}, backbone {model.backbone}, units {', '.join(model.units)}")
    _print_marginals(model)
    print(f"expected temporal layers: {model.expected_temporal_layers():.2f}; most probable: {model.most_probable().code}")
    return 0


def cmd_supernet_check(args) -> int:
    from .known_answer import CRITERIA, known_answer_study

    seeds = args.seeds or list(range(args.n_seeds))
    print(f"known-answer check: appearance and motion, seeds {seeds}, {args.jobs} job(s) at a time")
    res = known_answer_study(seeds, args.out, jobs=args.jobs, alpha=args.alpha)
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


def cmd_study_rank(args) -> int:
    from .strategy import Strategy
    from .study import StudyConfig, run_rank_study

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
                        few_shot=args.few_shot, progress=not args.no_progress)
    print(f"{'predictor':<34}{'tau':>6}{'95% CI':>16}{'rho':>7}{'top-k':>7}")
    for i, n in enumerate(ds["predictor"].values):
        print(f"{str(n):<34}{ds.tau.values[i]:>6.2f}   [{ds.tau_lo.values[i]:>5.2f}, {ds.tau_hi.values[i]:>5.2f}]"
              f"{ds.rho.values[i]:>7.2f}{ds.top_k_precision.values[i]:>7.2f}")
    print(f"{ds.sizes['strategy']} strategies x {ds.sizes['seed']} seed(s) trained stand-alone; "
          f"report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_supernet_few_shot(args) -> int:
    from .fewshot import train_few_shot

    m = train_few_shot(args.run, args.out, layer=args.layer, epochs=args.epochs, lr=args.lr, seed=args.seed,
                       progress=not args.no_progress)
    print(f"few-shot template: layer {m['layer']} split into {', '.join(m['parts'])}, "
          f"{m['epochs']} epochs each; manifest {Path(args.out) / 'fewshot.json'}")
    return 0


def cmd_study_levers(args) -> int:
    from .analysis import save_netcdf
    from .plots import lever_forest, save_figure
    from .study import lever_report, lever_table

    studies = {}
    for item in args.study:
        label, sep, folder = item.rpartition("=")
        if not sep or not label or not folder:
            raise ValueError(f"--study {item!r}: expected LABEL=STUDY_FOLDER")
        studies[label] = folder
    table = lever_table(studies, baseline=args.baseline)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_netcdf(table, out / "levers.nc")
    text = lever_report(table)
    (out / "levers.md").write_text(text)
    save_figure(lever_forest(table, width="double", top=20), out / "levers", formats=("png", "pdf", "svg"))
    print(text)
    return 0


def cmd_train(args) -> int:
    from .pipeline import train_strategy
    from .strategy import parse_strategy

    strategy = parse_strategy(args.strategy, args.backbone or "densenet-tiny")
    model_kw = {"tiny": True} if args.tiny else {}
    _, history, test = train_strategy(
        strategy, args.out, dataset=args.dataset, root=args.root, data_kw=_data_kw(args), model_kw=model_kw,
        inherit_from=args.inherit_from, train_config=_train_config(args), resume=args.resume, overwrite=args.overwrite,
    )
    print(f"{strategy.label}: val top-1 {history.val_acc[-1]:.3f}, test top-1 {test['top1']:.3f} ({test['n']} clips)")
    return 0


def _add_supernet_commands(sub) -> None:
    p = sub.add_parser("supernet", help="the template network: train it, sample and score strategies")
    ss = p.add_subparsers(dest="supernet_command", required=True, metavar="SUPERNET_COMMAND")

    q = ss.add_parser("train", help="train the template network (warm-up, then gated)")
    q.add_argument("--out", required=True, help="run folder")
    _add_data_args(q)
    g = q.add_argument_group("template")
    g.add_argument("--backbone", default="densenet-tiny",
                   help="densenet121, densenet-small, densenet-tiny, resnet50-template, resnet26-template, ...")
    g.add_argument("--unit-set", default="paper", help="paper = {S, ST, S+ST}; with-t adds T and its sums")
    g.add_argument("--growth", type=_size, default=8)
    g.add_argument("--bn-size", type=_size, default=2)
    g.add_argument("--base-width", type=_size, default=8, help="ResNet-bottleneck template width")
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
    _add_train_args(q, epochs=15, warmup=5, lr=6e-3, batch_size=16)
    q.set_defaults(func=cmd_supernet_train)

    q = ss.add_parser("few-shot", help="split a trained template on one layer's unit and train the parts")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.add_argument("--out", required=True, help="folder for the parts and fewshot.json")
    q.add_argument("--layer", type=int, default=None, help="layer to split (default: highest unit entropy)")
    q.add_argument("--epochs", type=_size, default=4, help="gated epochs per part")
    q.add_argument("--lr", type=float, default=None, help="default: half the template's")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_supernet_few_shot)

    q = ss.add_parser("sample", help="sample strategies and score them with the shared weights")
    q.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="a template run folder (spell it --run-dir under torchrun, which claims --run)")
    q.add_argument("-n", type=_size, default=100, help="strategies to sample (>= 1)")
    q.add_argument("--out", default=None, help="netCDF file for the results")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--split", default="val")
    q.add_argument("--recalibrate", type=int, default=2,
                   help="BN recalibration batches per strategy (default 2: see reports/rank-study.md; 0: none)")
    q.add_argument("--batch-size", type=_size, default=64)
    q.add_argument("--clips", type=_size, default=1, help="clips per video, scores averaged (real datasets)")
    q.add_argument("--crops", type=_size, default=1, help="spatial crops per clip (real datasets)")
    q.add_argument("--strategy", action="append", default=[], help="also score this strategy (repeatable)")
    q.add_argument("--no-presets", action="store_true", help="do not score the literature presets")
    q.add_argument("--top", type=int, default=10, help="rows to print")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_supernet_sample)

    q = ss.add_parser("check", help="does the probability space find the known answer on synthetic data?")
    q.add_argument("--out", required=True, help="folder for the runs and known_answer.json")
    q.add_argument("--seeds", type=int, nargs="*", default=None, help="seeds (default: 0 .. n-seeds - 1)")
    q.add_argument("--n-seeds", type=int, default=3)
    q.add_argument("--jobs", type=int, default=1, help="runs at a time (the cores are shared out)")
    q.add_argument("--alpha", type=float, default=0.01, help="level of the S-only-at-chance test")
    q.set_defaults(func=cmd_supernet_check)

    q = ss.add_parser("show", help="print a trained template's layer-level marginals")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.set_defaults(func=cmd_supernet_show)

    q = sub.add_parser("train", help="train one strategy as a stand-alone network")
    q.add_argument("--strategy", required=True, help="preset name, code 'backbone:units' or JSON file")
    q.add_argument("--backbone", default=None, help="backbone for a preset (default densenet-tiny)")
    q.add_argument("--out", required=True, help="run folder")
    q.add_argument("--inherit-from", default=None, help="a template run: start from its weights")
    q.add_argument("--tiny", action="store_true", help="tiny widths (fresh networks)")
    _add_data_args(q)
    _add_train_args(q, epochs=10, warmup=None)
    q.set_defaults(func=cmd_train)


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

    _add_supernet_commands(sub)
    _add_streams_commands(sub)

    study = sub.add_parser("study", help="how far to trust the estimates: rank agreement with stand-alone training")
    ss = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")
    q = ss.add_parser("rank", help="train K strategies stand-alone and rank-correlate them with the estimates")
    q.add_argument("--run", "--run-dir", dest="run", required=True, help="a template run folder")
    q.add_argument("--out", required=True, help="study folder (study.nc, report.md, figure)")
    q.add_argument("--strategies", type=_size, default=24, help="K, presets included")
    q.add_argument("--pool", type=_size, default=200, help="sampled candidates the K are picked from")
    q.add_argument("--fixed", default=None, help="strategies.json of an earlier study: judge the same strategies")
    q.add_argument("--no-presets", action="store_true")
    q.add_argument("--seeds", type=int, nargs="+", default=[0], help="stand-alone seeds")
    q.add_argument("--epochs", type=_size, default=20, help="stand-alone epochs")
    q.add_argument("--batch-size", type=_size, default=16)
    q.add_argument("--lr", type=float, default=6e-3)
    q.add_argument("--recalibrate", type=int, nargs="+", default=[0, 2], help="BN recalibration batches to compare")
    q.add_argument("--mc", type=_size, nargs="*", default=[],
                   help="also score with this many Monte-Carlo masks per strategy (one predictor each)")
    q.add_argument("--finetune", type=_size, nargs="*", default=[],
                   help="also score after this many fine-tuning steps per strategy (one predictor each)")
    q.add_argument("--few-shot", default=None,
                   help="folder of `workbench supernet few-shot` for this run: adds the few-shot predictor")
    q.add_argument("--bootstrap", type=_size, default=2000)
    q.add_argument("--trust-predictor", default="shared+recal2",
                   help="predictor whose tau becomes the run's trust figure (default: the estimates' default, "
                        "shared weights with 2 BN recalibration batches)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--cache", default=None, help="stand-alone results cache (default OUT/standalone)")
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
    q.add_argument("--epochs", type=_size, default=20)
    q.add_argument("--batch-size", type=_size, default=16)
    q.add_argument("--lr", type=float, default=6e-3)
    q.add_argument("--device", default="cpu")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_compare)

    q = sub.add_parser("demo", help="the main job: train, sample, score, plot, report on synthetic-mixed")
    q.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    q.add_argument("--smoke", action="store_true", help="a tiny, seconds-long version (tests)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_demo)

    from .data.cli import add_data_commands
    from .fusionbench_cli import add_bench_commands

    add_data_commands(sub)
    add_bench_commands(sub)
    return p


#: which splits each data-reading command reads (checked to hold clips before work starts)
_SPLITS_READ = {"train": ("train", "val", "test"), "streams train": ("train", "val", "test"),
                "supernet train": ("train", "val")}


def _command_name(args) -> str:
    sub = next((v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)), None)
    return " ".join(x for x in (args.command, sub) if x)


def validate_args(args) -> None:
    """Every argument checked before any work starts: one ``ValueError`` line that names the flag
    as typed (conflicting or meaningless flags are errors; harmless ones a one-line warning)."""
    import warnings

    name = _command_name(args)
    if getattr(args, "dataset", None) is not None and hasattr(args, "data_arg") and name != "data export":
        from .data import check_data_args

        check_data_args(args.dataset, args.root, _data_kw(args), splits=_SPLITS_READ.get(name, ("train", "val")))
    if hasattr(args, "schedule"):
        if args.milestones and args.schedule != "step":
            raise ValueError(f"--milestones apply to --schedule step, not --schedule {args.schedule}")
        device = str(args.device)
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
                raise ValueError(f"--device {device}: {why} (torch {torch.__version__}); use --device cpu "
                                 "or install a CUDA build of torch (README)")
        elif device != "cpu" and not device.startswith(("mps", "xpu")):
            raise ValueError(f"--device {device!r} is not a device; expected cpu, cuda, cuda:N")
        if args.amp and not device.startswith("cuda"):
            warnings.warn(f"--amp has no effect on --device {device} (mixed precision runs on CUDA); ignored",
                          UserWarning, stacklevel=2)
    if name == "train":
        if args.inherit_from is not None and (args.backbone is not None or args.tiny):
            given = "--backbone" if args.backbone is not None else "--tiny"
            raise ValueError(f"{given} does not apply with --inherit-from: the template decides the architecture")
        if args.backbone is not None and ":" in args.strategy and not args.strategy.endswith(".json"):
            coded = args.strategy.split(":", 1)[0].split("[", 1)[0]
            if coded != args.backbone:
                raise ValueError(f"--backbone {args.backbone} contradicts the strategy code {args.strategy!r} "
                                 f"(backbone {coded}); drop --backbone")
    out = getattr(args, "out", None)
    if out is not None and hasattr(args, "resume"):
        from .runs import Run

        kind = {"train": "standalone", "supernet train": "supernet", "streams train": "streams"}.get(name)
        Run(out).precheck(kind, resume=args.resume, overwrite=args.overwrite)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    import errno
    import os
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun only the first process reports
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    prog = f"workbench {_command_name(args)}"

    def warn_line(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {_one_line(message)}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = warn_line
    try:
        validate_args(args)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, IsADirectoryError,
            PermissionError) as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and friends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
        if e.errno == errno.ENOSPC:
            again = " with --resume (its last complete checkpoint is kept)" if hasattr(args, "resume") else ""
            print(f"{prog}: error: no space left on the device{where}: free space and run the command "
                  f"again{again}", file=sys.stderr)
        else:
            print(f"{prog}: error: {e.strerror or _one_line(e)}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous
        dist = sys.modules.get("torch.distributed")  # never imported just to be closed
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
