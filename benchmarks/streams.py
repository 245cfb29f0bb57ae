"""Stream fusion speed and memory; prints JSON.

``stcb``: compact bilinear fusion of two ``--dim``-vectors into ``d`` = 1024 .. 8192 dimensions
followed by a ``--classes``-way linear classifier, against the explicit outer product (``dim^2``
features) and the same classifier: forward + backward time per batch (median over ``--repeats``)
and peak memory. Each configuration runs in its own child process, so the peak resident memory
it adds over that process's baseline (inputs built, nothing run) is its own.

``flow``: seconds per frame pair of OpenCV's TV-L1, DIS and Farneback (``workbench data flow``)
at 320x240, the UCF101 frame size, on a shifted random texture (median of the pairs).

``two_stream``: training steps per second (forward, backward, AdamW step) of the tiny RGB stream
alone and of the two-stream networks (late, STCB, pyramid) at the tiny clip shape, with the ratio
to the one-stream rate measured in the same process.

    python benchmarks/streams.py            # about two minutes on 2 cores
    python benchmarks/streams.py --quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _fusion_child(kind: str, dim: int, d: int, batch: int, classes: int, repeats: int, threads: int, q) -> None:
    torch.set_num_threads(threads)
    from workbench.streams import CompactBilinear

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, dim, generator=g, requires_grad=True)
    y = torch.randn(batch, dim, generator=g, requires_grad=True)
    target = torch.randint(0, classes, (batch,), generator=g)
    base = _rss_mib()
    if kind == "stcb":
        fuse = CompactBilinear((dim, dim), d, signed_sqrt=True)
        head = torch.nn.Linear(d, classes)

        def step():
            return head(fuse(x, y))
    else:
        head = torch.nn.Linear(dim * dim, classes)

        def step():
            return head(torch.einsum("bi,bj->bij", x, y).reshape(batch, dim * dim))
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(step(), target)
        loss.backward()
        head.zero_grad(set_to_none=True)
        x.grad = y.grad = None
        if i:  # the first is a warm-up
            times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in head.parameters())
    q.put({"ms": round(1e3 * statistics.median(times), 2), "peak_mib_over_baseline": round(_rss_mib() - base, 1),
           "features": d if kind == "stcb" else dim * dim, "classifier_params": params})


def _in_child(*args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_fusion_child, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def bench_stcb(dims: list[int], dim: int, batch: int, classes: int, repeats: int, threads: int) -> dict:
    outer = _in_child("outer", dim, 0, batch, classes, repeats, threads)
    rows = []
    for d in dims:
        r = _in_child("stcb", dim, d, batch, classes, repeats, threads)
        r.update(d=d, time_ratio_outer_over_stcb=round(outer["ms"] / r["ms"], 2),
                 memory_ratio_outer_over_stcb=round(outer["peak_mib_over_baseline"] /
                                                    max(r["peak_mib_over_baseline"], 0.1), 1))
        rows.append(r)
    return {"input_dim": dim, "batch": batch, "classes": classes, "outer_product": outer, "stcb": rows}


def bench_two_stream(batch: int, repeats: int, steps: int) -> dict:
    from workbench.streams import build_streams_model, video_stream

    torch.manual_seed(0)
    rgb = torch.randn(batch, 3, 8, 32, 32)
    flow = torch.randn(batch, 2, 8, 32, 32)
    y = torch.randint(0, 8, (batch,))
    nets = {"rgb stream alone": None}
    for fusion in ("late", "stcb", "pyramid"):
        nets[fusion] = build_streams_model(fusion, ("rgb", "flow"), 8, frames=8, size=32)
    one = video_stream("r3d_18", modality="rgb", tiny=True, num_classes=8)

    def rate(name):
        net = one if nets[name] is None else nets[name]
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        inp = rgb if nets[name] is None else {"rgb": rgb, "flow": flow}
        runs = []
        for r in range(repeats + 1):
            t = time.perf_counter()
            for _ in range(steps):
                loss = torch.nn.functional.cross_entropy(net(inp), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if r:
                runs.append(steps / (time.perf_counter() - t))
        return statistics.median(runs), sum(p.numel() for p in net.parameters())

    out = {}
    for name in nets:
        steps_s, params = rate(name)
        out[name] = {"steps_per_s": round(steps_s, 2), "clips_per_s": round(steps_s * batch, 1), "params": params}
    base = out["rgb stream alone"]["steps_per_s"]
    for name in out:
        out[name]["ratio_to_one_stream"] = round(out[name]["steps_per_s"] / base, 2)
    return {"clip": "8x32x32", "batch": batch, "backbone": "r3d_18 (tiny)", "networks": out}


def bench_flow(pairs: int) -> dict:
    from workbench.data.flow import FLOW_METHODS, compute_flow

    g = np.random.default_rng(0)
    base = (g.random((60, 80)) * 255).astype(np.uint8)
    big = np.kron(base, np.ones((4, 4), np.uint8))  # 240 x 320
    frames = np.stack([np.roll(big, (k, 2 * k), axis=(0, 1)) for k in range(pairs + 1)])
    out = {}
    for method in FLOW_METHODS:
        times = []
        for k in range(pairs):
            t = time.perf_counter()
            compute_flow(frames[k:k + 2], method)
            times.append(time.perf_counter() - t)
        out[method] = {"s_per_frame": round(statistics.median(times), 4)}
    for method in FLOW_METHODS:
        out[method]["ratio_to_tvl1"] = round(out["tvl1"]["s_per_frame"] / out[method]["s_per_frame"], 1)
    return {"frame": "320x240", "pairs": pairs, "methods": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dim", type=int, default=512, help="dimension of each fused vector")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=101)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", choices=("stcb", "flow", "two_stream"), default=None, help="one part only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    result = {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                          "python": platform.python_version()}}
    if args.only in (None, "stcb"):
        result["stcb"] = bench_stcb([1024, 2048, 4096, 8192], args.dim, args.batch, args.classes, repeats, args.threads)
    if args.only in (None, "flow"):
        result["flow"] = bench_flow(2 if args.quick else 4)
    if args.only in (None, "two_stream"):
        result["two_stream"] = bench_two_stream(16, 3 if args.quick else 5, 2 if args.quick else 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
