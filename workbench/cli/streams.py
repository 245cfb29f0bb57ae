"""``workbench streams``: two-stream and multi-modal fusion, Gradient-Blending."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workbench.cli.common import (
    add_data_args,
    add_train_args,
    data_kw_from_args,
    positive_int,
    train_config_from_args,
)


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
            "d_attention": args.d_attention, "d_final": args.d_final, "sketch_norm": args.sketch_norm}


def cmd_streams_train(args) -> int:
    """Train one stream-fusion network (two-stream RGB + flow, or multi-modal with G-Blend)."""
    from workbench.streams import run_streams

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
    data_kw = data_kw_from_args(args)
    if args.flow_bound != 20.0:
        data_kw["flow_bound"] = args.flow_bound
    r = run_streams(args.out, dataset=args.dataset, fusion=args.fusion, modalities=mods, root=args.root,
                    flow_root=args.flow_root,
                    train_config=train_config_from_args(args), weights=weights, blend=blend, super_epoch=args.super_epoch,
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
    from workbench.streams.study import gblend_figure, gblend_study, gblend_table

    ds = gblend_study(args.out, dataset=args.dataset, modalities=args.modalities, data_kw=data_kw_from_args(args),
                      model_kw={"backbone": args.backbone, "tiny": args.tiny, "audio_encoder": args.audio_encoder},
                      train_config=train_config_from_args(args), seeds=args.seeds, super_epoch=args.super_epoch,
                      window=tuple(args.window) if args.window else None, noise_floor=args.noise_floor,
                      smoothing=args.smoothing, score=args.score, progress=not args.no_progress)
    fig = gblend_figure(ds)
    for ext in ("pdf", "png"):
        fig.savefig(Path(args.out) / f"gblend.{ext}")
    print(gblend_table(ds))
    print(f"table, figure and gblend.nc in {args.out}")
    return 0


def cmd_streams_ablation(args) -> int:
    from workbench.streams.study import ablation_table, stream_ablation

    model_kw = {"backbone": args.backbone, "tiny": args.tiny}
    for k in ("snippets", "d_temporal", "d_attention", "d_final", "sketch_norm"):
        if getattr(args, k) is not None:  # unset: the study's own defaults
            model_kw[k] = getattr(args, k)
    ds = stream_ablation(args.out, dataset=args.dataset, data_kw=data_kw_from_args(args), model_kw=model_kw,
                         train_config=train_config_from_args(args), seeds=args.seeds, progress=not args.no_progress)
    print(ablation_table(ds))
    print(f"table and ablation.nc in {args.out}")
    return 0


def add_commands(sub) -> None:
    from workbench.streams.run import AUDIO_ENCODERS, STREAM_FUSIONS

    p = sub.add_parser("streams", help="fuse whole streams: two-stream RGB + flow (STCB, pyramid), G-Blend")
    ss = p.add_subparsers(dest="streams_command", required=True, metavar="STREAMS_COMMAND")

    def model_args(q):
        g = q.add_argument_group("streams")
        g.add_argument("--backbone", default="r3d_18", help="zoo name of each video stream (default r3d_18)")
        g.add_argument("--full-width", dest="tiny", action="store_false", help="the zoo's widths, not the tiny ones")
        g.add_argument("--audio-encoder", choices=AUDIO_ENCODERS, default="mlp",
                       help="spectral: band energies of the spectrum, which cannot memorise the clips' noise")

    q = ss.add_parser("train", help="train one stream-fusion network and score it on the test split")
    q.add_argument("--out", required=True, help="run folder")
    q.add_argument("--fusion", choices=STREAM_FUSIONS, default="pyramid",
                   help="late / stcb / pyramid: RGB + flow; gblend: multi-head multi-modal network")
    q.add_argument("--modalities", nargs="+", default=None,
                   help="rgb, flow, audio (default: rgb flow; gblend: rgb audio)")
    model_args(q)
    g = q.add_argument_group("pyramid switches")
    g.add_argument("--snippets", type=positive_int, default=2, help="flow snippets fused by STCB (1: off)")
    g.add_argument("--no-attention", action="store_true", help="average-pool the RGB map instead of attending")
    g.add_argument("--final", choices=("stcb", "concat"), default="stcb", help="final fusion")
    g.add_argument("--d-temporal", type=positive_int, default=1024)
    g.add_argument("--d-attention", type=positive_int, default=512)
    g.add_argument("--d-final", type=positive_int, default=2048)
    g.add_argument("--sketch-norm", choices=("batch", "l2"), default="batch",
                   help="after each STCB's signed square root: batch norm or unit-scaled L2")
    g = q.add_argument_group("gblend")
    g.add_argument("--blend", choices=("naive", "uniform", "online"), default="naive",
                   help="naive: the fused head alone; uniform: every head alike; online: G-Blend every super-epoch")
    g.add_argument("--weights", nargs="*", default=[], metavar="HEAD=W",
                   help="fixed loss weights per head (offline G-Blend: from `streams gblend-study`)")
    g.add_argument("--super-epoch", type=positive_int, default=2)
    add_data_args(q)
    q.add_argument("--flow-root", default=None, help="real datasets: the folder of precomputed flow frames")
    q.add_argument("--flow-bound", type=float, default=20.0, help="the bound those flow frames were written with")
    add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16)
    q.set_defaults(func=cmd_streams_train)

    q = ss.add_parser("gblend-study", help="single modalities vs naive joint vs offline / online G-Blend")
    q.add_argument("--out", required=True, help="study folder (gblend.nc, gblend.md, figure, runs/)")
    q.add_argument("--modalities", nargs="+", default=["rgb", "audio"])
    model_args(q)
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    q.add_argument("--super-epoch", type=positive_int, default=2)
    q.add_argument("--window", type=int, nargs=2, default=None, metavar=("N", "N_PLUS_n"),
                   help="offline G-Blend's epochs (default: epochs/4 and epochs/2)")
    q.add_argument("--noise-floor", action="store_true",
                   help="online: add the variance of each head's dO estimate (per-clip losses) to dO^2")
    q.add_argument("--smoothing", type=float, default=0.0,
                   help="online: weights = s * previous + (1 - s) * new estimate (default 0: none)")
    q.add_argument("--score", choices=("blend", "fused"), default="blend",
                   help="a G-Blend network's test score: its heads weighted by its final weights, or its fused head")
    add_data_args(q)
    add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16, run_folder=False)
    q.set_defaults(func=cmd_streams_gblend_study)

    q = ss.add_parser("ablation", help="the pyramid network's parts switched off one at a time, and single streams")
    q.add_argument("--out", required=True, help="study folder (ablation.nc, ablation.md, runs/)")
    model_args(q)
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    g = q.add_argument_group("the pyramid (default: the study's own)")
    g.add_argument("--snippets", type=positive_int, default=None, help="the pyramid's flow snippets (default 2)")
    g.add_argument("--d-temporal", type=positive_int, default=None)
    g.add_argument("--d-attention", type=positive_int, default=None)
    g.add_argument("--d-final", type=positive_int, default=None)
    g.add_argument("--sketch-norm", choices=("batch", "l2"), default=None,
                   help="after each STCB's signed square root: batch norm (default) or unit-scaled L2")
    add_data_args(q)
    add_train_args(q, epochs=10, warmup=None, lr=3e-3, batch_size=16, run_folder=False)
    q.set_defaults(func=cmd_streams_ablation)


