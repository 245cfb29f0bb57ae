"""Template-network speed on CPU: gate overhead, strategies estimated per minute, peak memory.

Prints one JSON object. The gated template (relaxed masks + regulariser) is timed against the
same network with every branch always on (warm-up mode), in interleaved rounds, medians
reported; the ratio is the gate overhead (goal <= 10%). Strategy estimation is timed with and
without BN recalibration on the tiny synthetic benchmark.

    python benchmarks/template.py [--batch 32] [--repeats 7] [--growth 16]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine.estimate import EstimateConfig, StrategyCostTable, estimate_strategies  # noqa: E402
from workbench.template.network import TemplateNetwork  # noqa: E402


def _step_fn(model: TemplateNetwork, mode: str, x, y, n_train: int):
    opt = torch.optim.AdamW(model.weight_parameters(), lr=1e-3)
    gopt = torch.optim.Adam(model.gate_parameters(), lr=0.05)

    def run():
        model.set_mode(mode)
        model.train()
        opt.zero_grad(set_to_none=True)
        gopt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if mode == "relaxed":
            loss = loss + model.regularizer(n_train)
        loss.backward()
        opt.step()
        if mode == "relaxed":
            gopt.step()

    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--growth", type=int, default=16)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--strategies", type=int, default=10)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    shape = (args.batch, 3, args.frames, args.size, args.size)
    x, y = torch.randn(shape), torch.randint(0, 8, (args.batch,))
    fns = {}
    for mode in ("warmup", "relaxed"):
        m = TemplateNetwork(num_classes=8, growth=args.growth, bn_size=2)
        fns[mode] = _step_fn(m, mode, x, y, 1000)
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {("ungated" if k == "warmup" else "gated"): args.batch / s for k, s in med.items()}
    result = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "input": list(shape),
        "growth": args.growth, "repeats": args.repeats,
        "train_clips_per_s": {k: round(v, 2) for k, v in rate.items()},
        "gate_overhead": round(rate["ungated"] / rate["gated"] - 1, 4),
    }
    # strategies per minute on the tiny synthetic benchmark's validation split
    from workbench.data.synthetic import make_synthetic

    val = make_synthetic("synthetic-mixed", "val", cache=True)
    train = make_synthetic("synthetic-mixed", "train", cache=True)
    sn = TemplateNetwork(num_classes=len(val.classes), growth=args.growth, bn_size=2)
    table = StrategyCostTable(sn, tuple(val[0][0].shape))
    strategies = sn.sample(args.strategies, torch.Generator().manual_seed(0))
    per_min = {}
    for recal in (0, 2):
        t0 = time.perf_counter()
        estimate_strategies(sn, strategies, val, train_set=train, cost_table=table,
                            config=EstimateConfig(batch_size=64, recalibrate_batches=recal, progress=False))
        per_min[f"recalibrate_{recal}"] = round(args.strategies / (time.perf_counter() - t0) * 60, 1)
    result["strategies_per_minute"] = per_min
    result["val_clips"] = len(val)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
