"""Data pipeline throughput in clips/s; prints JSON.

Measured, at the standard clip shape 16x112x112 and at the tiny CPU shape 8x32x32:

- ``synthetic``: generating clips of the synthetic benchmark (uint8);
- ``mp4``: H.264 MP4 decode + training-mode sampling + transform (resize, random crop, flip,
  normalise) through ``VideoDataset``; sources are 320x240 48-frame videos (UCF101-like) for
  16x112x112 and 32x32 16-frame videos for 8x32x32;
- ``jpeg``: the same from JPEG frame folders (Something-Something V1 style);
- ``mp4_loader``: ``mp4`` through ``make_loader`` with ``--workers`` worker processes.

Each figure is the median over ``--repeats`` runs of ``--clips`` clips, in one process
(``torch`` on ``--threads`` threads), after one warm-up run.

    python benchmarks/data.py                 # all of it (about a minute on 2 cores)
    python benchmarks/data.py --quick         # fewer clips and repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.data.dataset import make_dataset, make_loader  # noqa: E402
from workbench.data.export import write_frames, write_video  # noqa: E402

SHAPES = {
    "16x112x112": dict(frames=16, size=112, src=(240, 320), src_frames=48, short_side=128),
    "8x32x32": dict(frames=8, size=32, src=(32, 32), src_frames=16, short_side=32),
}


def _median_rate(fn, clips: int, repeats: int) -> dict:
    fn(max(1, clips // 4))  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(clips)
        rates.append(clips / (time.perf_counter() - t))
    return {"clips_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}


def _source_clips(n: int, frames: int, hw: tuple[int, int]) -> list[np.ndarray]:
    from workbench.data.synthetic import make_synthetic

    h, w = hw
    side = min(h, w)
    ds = make_synthetic(
        "synthetic-motion",
        split="train",
        output="uint8",
        frames=frames,
        size=side,
        train_per_class=-(-n // 4),
    )
    out = []
    for i in range(n):
        c = ds.clip_array(i)
        if (h, w) != (side, side):
            c = np.pad(c, ((0, 0), (0, h - side), (0, w - side), (0, 0)), mode="reflect")
        out.append(c)
    return out


def _write_folder(root: Path, clips: list[np.ndarray], kind: str) -> None:
    for i, c in enumerate(clips):
        cls = root / f"c{i % 2}"
        if kind == "mp4":
            write_video(cls / f"v{i:03d}.mp4", c, codec="libx264", fps=25)
        else:
            write_frames(cls / f"v{i:03d}", c)


def bench_synthetic(shape: dict, clips: int, repeats: int) -> dict:
    from workbench.data.synthetic import make_synthetic

    ds = make_synthetic(
        "synthetic-motion",
        split="train",
        output="uint8",
        frames=shape["frames"],
        size=shape["size"],
        train_per_class=10**6,
    )
    state = {"i": 0}

    def run(n):
        for _ in range(n):
            ds.clip_array(state["i"])
            state["i"] += 1

    return _median_rate(run, clips, repeats)


def bench_dataset(root: Path, shape: dict, clips: int, repeats: int) -> dict:
    ds = make_dataset(
        "folder",
        root,
        "train",
        frames=shape["frames"],
        stride=1,
        size=shape["size"],
        short_side=shape["short_side"],
    )
    state = {"i": 0}

    def run(n):
        for _ in range(n):
            x, _ = ds[state["i"] % len(ds)]
            state["i"] += 1
        assert x.shape == (3, shape["frames"], shape["size"], shape["size"])

    return _median_rate(run, clips, repeats)


def bench_loader(root: Path, shape: dict, clips: int, repeats: int, workers: int) -> dict:
    ds = make_dataset(
        "folder",
        root,
        "train",
        frames=shape["frames"],
        stride=1,
        size=shape["size"],
        short_side=shape["short_side"],
    )
    loader = make_loader(ds, batch_size=8, train=True, workers=workers)

    def run(n):
        seen = 0
        while seen < n:
            for x, _ in loader:
                seen += x.shape[0]
                if seen >= n:
                    break

    return _median_rate(run, clips, repeats)


def bench_template_step(repeats: int, batch: int = 32, threads: int = 2) -> dict:
    """Training-step clips/s of the tiny template network (8x32x32, gated), on ``threads``
    threads: the consumer that loading must outpace."""
    from workbench.template.network import TemplateNetwork

    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = TemplateNetwork(num_classes=8, growth=16, bn_size=2).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x, y = torch.randn(batch, 3, 8, 32, 32), torch.randint(0, 8, (batch,))

        def step(_clips):
            opt.zero_grad(set_to_none=True)
            (torch.nn.functional.cross_entropy(model(x), y) + model.regularizer(1000)).backward()
            opt.step()

        r = _median_rate(lambda n: [step(None) for _ in range(max(1, n // batch))], batch * 2, repeats)
    finally:
        torch.set_num_threads(prev)
    r["batch"], r["threads"] = batch, threads
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=64, help="clips per run (default 64)")
    p.add_argument(
        "--repeats", type=int, default=5, help="runs per figure; the median is reported (default 5)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in this process (default 1, as in a DataLoader worker)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers for mp4_loader (default 2)"
    )
    p.add_argument(
        "--videos", type=int, default=16, help="distinct source videos per shape (default 16)"
    )
    p.add_argument("--quick", action="store_true", help="16 clips, 3 repeats")
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.repeats = 16, 3
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    results = {}
    with tempfile.TemporaryDirectory(prefix="workbench-bench-data-") as tmp:
        for name, shape in SHAPES.items():
            row = {}
            try:
                row["synthetic"] = bench_synthetic(shape, args.clips, args.repeats)
            except ImportError:
                row["synthetic"] = None
            src = _source_clips(args.videos, shape["src_frames"], shape["src"])
            for kind in ("mp4", "jpeg"):
                root = Path(tmp) / name / kind
                _write_folder(root, src, kind)
                row[kind] = bench_dataset(root, shape, args.clips, args.repeats)
            row["mp4_loader"] = bench_loader(
                Path(tmp) / name / "mp4", shape, args.clips, args.repeats, args.workers
            )
            row["mp4_loader"]["workers"] = args.workers
            row["source"] = f"{shape['src_frames']}x{shape['src'][0]}x{shape['src'][1]}"
            results[name] = row
    step = bench_template_step(args.repeats)
    tiny = results["8x32x32"]
    loading = {k: tiny[k]["clips_per_s"] for k in ("synthetic", "mp4", "jpeg", "mp4_loader") if tiny.get(k)}
    import av

    out = {
        "benchmark": "data pipeline clips/s (median of repeats)",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "clips_per_run": args.clips,
        "repeats": args.repeats,
        "results": results,
        "tiny_template_train_clips_per_s": step,
        # goal: every loader at least 3x the training-step rate at the tiny size
        "loading_over_training_8x32x32": {k: round(v / step["clips_per_s"], 2) for k, v in loading.items()},
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
