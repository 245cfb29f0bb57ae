"""Stand-alone trainings per hour on this machine: the rank study's path against FusionBench's.

Every path trains the same strategies at the study budget (30 epochs, batch 16, AdamW 6e-3,
cosine) on the same data (FusionBench's ``mixed`` setting), with every core busy, cold: data
rendering, process start-up and evaluation included.

* ``today``: what ``workbench study rank`` does per (strategy, seed): ``pipeline.train_strategy``
  in one process with the default thread count (a DataLoader over the rendered split, the full
  validation split scored every epoch, a checkpoint every epoch, the test split at the end);
* ``fast``: ``workbench bench build``'s path: ``--workers`` one-thread processes, the splits
  rendered once and memory-mapped, batches sliced from memory, a 200-clip learning-curve subset
  each epoch, validation and test at the end;
* ``parallel``: the study path side by side (``study rank / trust / compare --parallel``):
  ``pipeline.train_strategy`` as today, in ``--workers`` one-thread processes.

Prints JSON and writes it to ``--out`` (default reports/fusionbench/standalone-bench.json), with
``speedup`` = fast trainings per hour / today's and ``speedup_parallel_study_path`` = parallel's /
today's. Run it on a quiet machine.

    python benchmarks/standalone.py [--today 2] [--fast 4] [--parallel 4] [--workers 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--today", type=int, default=2, help="trainings on today's path")
    p.add_argument("--fast", type=int, default=4, help="trainings on the fast path")
    p.add_argument("--parallel", type=int, default=4, help="trainings on the study path, --workers at once")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--setting", default="mixed")
    p.add_argument("--out", default="reports/fusionbench/standalone-bench.json")
    args = p.parse_args(argv)

    import torch

    from workbench import fusionbench as fb
    from workbench.engine.loop import TrainConfig
    from workbench.studies.pipeline import train_strategy

    cfg = replace(fb.BenchConfig(), epochs=args.epochs, seeds=(0,))
    entries = fb.bench_strategies(cfg)
    # the same strategies on both paths: presets first, then uniform draws
    strategies = [e["strategy"] for e in entries][: max(args.today, args.fast, args.parallel)]
    spec = fb.SETTINGS[args.setting]
    tmp = Path(tempfile.mkdtemp(prefix="standalone-bench-"))
    result = {"torch": torch.__version__, "threads_default": torch.get_num_threads(), "cpus": os.cpu_count(),
              "setting": args.setting, "budget": cfg.budget(), "command": " ".join(["benchmarks/standalone.py",
                                                                                   *(argv or sys.argv[1:])])}
    try:
        # today's path: one after the other, default threads
        t0 = time.perf_counter()
        today_acc = []
        for i, s in enumerate(strategies[: args.today]):
            data_kw = spec["data_kw"]
            tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer=cfg.optimizer,
                             seed=0, progress=False)
            model_kw = {a: b for a, b in cfg.model_kw(2).items() if a != "num_classes"}
            _, hist, test = train_strategy(s, tmp / f"today-{i}", dataset=spec["dataset"], data_kw=data_kw,
                                           model_kw=model_kw, train_config=tc)
            today_acc.append(test["top1"])
        today_s = time.perf_counter() - t0
        # the fast path: worker processes, cold cache
        bench_cfg = replace(cfg, uniform=0, gate_draws=0)
        t0 = time.perf_counter()
        fast_acc = _fast(tmp / "fast", strategies[: args.fast], args.setting, bench_cfg, args.workers)
        fast_s = time.perf_counter() - t0
        # the study path side by side (`study rank --parallel`, `trust --parallel`): train_strategy
        # in one-thread worker processes, each with its own data loading, validation and checkpoints
        from workbench.engine.parallel import run_jobs
        from workbench.studies.pipeline import train_cached

        t0 = time.perf_counter()
        jobs = [(s.to_dict(), tmp / f"parallel-{i}", spec, model_kw, tc.to_dict())
                for i, s in enumerate(strategies[: args.parallel])]
        par_acc = [r["test"]["top1"] for r in run_jobs(train_cached, jobs, args.workers)]
        par_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    today_rate = args.today / today_s * 3600
    fast_rate = args.fast / fast_s * 3600
    result.update(
        today={"trainings": args.today, "seconds": round(today_s, 1), "per_hour": round(today_rate, 1),
               "test_top1": today_acc},
        fast={"trainings": args.fast, "workers": args.workers, "seconds": round(fast_s, 1),
              "per_hour": round(fast_rate, 1), "test_top1": fast_acc},
        parallel={"trainings": args.parallel, "workers": args.workers, "seconds": round(par_s, 1),
                  "per_hour": round(args.parallel / par_s * 3600, 1), "test_top1": par_acc},
        speedup=round(fast_rate / today_rate, 2),
        speedup_parallel_study_path=round(args.parallel / par_s * 3600 / today_rate, 2),
        same_strategies_same_numbers=[round(a - b, 6) for a, b in zip(today_acc, fast_acc)],
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _fast(out: Path, strategies, setting: str, cfg, workers: int) -> list[float]:
    """Train ``strategies`` (seed 0) with ``workers`` one-thread processes sharing rendered data."""
    import multiprocessing as mp

    from workbench import fusionbench as fb

    fb.setting_data(setting, out / "cache")  # rendered once, cold
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        res = pool.starmap(_one, [(str(out), setting, s.to_dict(), cfg) for s in strategies])
    return res


def _one(out: str, setting: str, strategy: dict, cfg) -> float:
    import torch

    from workbench import fusionbench as fb
    from workbench.strategy import Strategy

    torch.set_num_threads(1)
    data = fb.setting_data(setting, Path(out) / "cache")
    return fb.train_item(Strategy.from_dict(strategy), data, cfg, 0)["test_top1"]


if __name__ == "__main__":
    raise SystemExit(main())
