"""``python -m workbench.streams``: the stream-fusion studies with every knob they take.

``workbench streams gblend-study`` and ``workbench streams ablation`` run the same studies with
their defaults; this entry point adds the settings of reports/streams.md: the audio encoder
(``--audio-encoder spectral``), online G-Blend's noise floor and smoothing, the pyramid's snippet
count and sketch dimensions. Each study caches its runs under ``OUT/runs``: the same command
continues an unfinished study and retrains nothing that finished.

    python -m workbench.streams gblend-study --out reports/streams/gblend --seeds 6 7 8 9 10 ...
    python -m workbench.streams ablation --out reports/streams/ablation16 --frames 16 --snippets 4 ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench.cli.common import (
    add_data_args,
    add_train_args,
    data_kw_from_args,
    positive_int,
    train_config_from_args,
)

from .models import AUDIO_ENCODERS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.streams", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, epochs: int):
        q.add_argument("--out", required=True, help="study folder (table, netCDF, runs/)")
        q.add_argument("--seeds", type=int, nargs="+", default=[0])
        q.add_argument("--backbone", default="r3d_18", help="zoo name of each video stream (default r3d_18)")
        q.add_argument("--full-width", dest="tiny", action="store_false", help="the zoo's widths, not the tiny ones")
        add_data_args(q)
        add_train_args(q, epochs=epochs, warmup=None, lr=3e-3, batch_size=16, run_folder=False)

    q = sub.add_parser("gblend-study", help="single modalities vs naive joint vs offline / online G-Blend")
    common(q, 10)
    q.add_argument("--modalities", nargs="+", default=["rgb", "audio"])
    q.add_argument("--audio-encoder", choices=AUDIO_ENCODERS, default="mlp")
    q.add_argument("--super-epoch", type=positive_int, default=2)
    q.add_argument("--window", type=int, nargs=2, default=None, metavar=("N", "N_PLUS_n"),
                   help="offline G-Blend's epochs (default: epochs/4 and epochs/2)")
    q.add_argument("--noise-floor", action="store_true",
                   help="online: add the variance of each head's dO estimate (per-clip losses) to dO^2")
    q.add_argument("--smoothing", type=float, default=0.0,
                   help="online: weights = s * previous + (1 - s) * new estimate (default 0: none)")
    q.add_argument("--score", choices=("blend", "fused"), default="blend",
                   help="a G-Blend network's test score: its heads weighted by its final weights, or its fused head")

    q = sub.add_parser("ablation", help="the pyramid network's parts switched off one at a time, and single streams")
    common(q, 10)
    q.add_argument("--snippets", type=positive_int, default=None, help="the pyramid's flow snippets (default 2)")
    q.add_argument("--d-temporal", type=positive_int, default=None)
    q.add_argument("--d-attention", type=positive_int, default=None)
    q.add_argument("--d-final", type=positive_int, default=None)
    q.add_argument("--sketch-norm", choices=("batch", "l2"), default=None,
                   help="after each STCB's signed square root: batch norm (default) or unit-scaled L2")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    model_kw = {"backbone": args.backbone, "tiny": args.tiny}
    if args.command == "gblend-study":
        from .study import gblend_figure, gblend_study, gblend_table

        ds = gblend_study(args.out, dataset=args.dataset, modalities=args.modalities, data_kw=data_kw_from_args(args),
                          model_kw={**model_kw, "audio_encoder": args.audio_encoder},
                          train_config=train_config_from_args(args), seeds=args.seeds, super_epoch=args.super_epoch,
                          window=tuple(args.window) if args.window else None, noise_floor=args.noise_floor,
                          smoothing=args.smoothing, score=args.score, progress=not args.no_progress)
        fig = gblend_figure(ds)
        for ext in ("pdf", "png"):
            fig.savefig(Path(args.out) / f"gblend.{ext}")
        print(gblend_table(ds))
        return 0
    from .study import ablation_table, stream_ablation

    for k in ("snippets", "d_temporal", "d_attention", "d_final", "sketch_norm"):
        if getattr(args, k) is not None:
            model_kw[k] = getattr(args, k)
    ds = stream_ablation(args.out, dataset=args.dataset, data_kw=data_kw_from_args(args), model_kw=model_kw,
                         train_config=train_config_from_args(args), seeds=args.seeds, progress=not args.no_progress)
    print(ablation_table(ds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
