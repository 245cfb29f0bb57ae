"""One training step of FusionBench's stand-alone networks on one thread, by execution mode: eager
(today's path), channels_last_3d, and ``torch.compile``; the compile time is measured apart (the
first two steps of a freshly built network of that strategy).

Every mode trains the same strategies (presets and uniform draws of the table's list) at the
table's budget shape: batch 16, 8 x 32 x 32 clips, AdamW 6e-3. Prints JSON with per-strategy
milliseconds per step (median of interleaved rounds), each mode's median ratio against eager, the
compile seconds (the first one on a cold cache, then the median), and how many steps a training
must have for compile to pay for itself; writes it to ``--out`` (default
reports/fusionbench/step-modes.json). Run it on a quiet machine.

    python benchmarks/step_modes.py [--strategies 0 40 60] [--steps 60] [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: compile together with channels_last is left out: dynamo reuses the graph compiled for the
#: contiguous network (its guards pass), so its compile time cannot be told apart
MODES = ("eager", "channels_last", "compile")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategies", type=int, nargs="+", default=[0, 40, 60],
                   help="indices into FusionBench's strategy list")
    p.add_argument("--steps", type=int, default=60, help="timed steps per strategy and mode")
    p.add_argument("--rounds", type=int, default=6, help="the timed steps come in this many interleaved rounds")
    p.add_argument("--out", default="reports/fusionbench/step-modes.json")
    args = p.parse_args(argv)

    import os
    import tempfile

    # a cold compile cache: the first compilation pays everything; later strategies reuse kernels of
    # the same shapes, as they do in one worker process of `bench build`
    cache = tempfile.mkdtemp(prefix="inductor-cold-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # a one-thread worker compiles on its one thread
    import shutil

    import torch

    from workbench.models import build_model
    from workbench.runs import environment
    from workbench.studies import fusionbench as fb

    torch.set_num_threads(1)
    cfg = fb.BenchConfig()
    entries = fb.bench_strategies(cfg)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 3, 8, 32, 32, generator=g)
    y = torch.randint(0, 8, (cfg.batch_size,), generator=g)
    steps_per_training = cfg.epochs * (8 * 100 // cfg.batch_size)  # the mixed setting: 800 training clips
    if args.steps < args.rounds:
        raise SystemExit(f"--steps ({args.steps}) must be at least --rounds ({args.rounds})")
    per_round = args.steps // args.rounds
    rows = []
    for i in args.strategies:
        strategy = entries[i]["strategy"]
        row = {"index": i, "strategy": strategy.code}
        steps = {}
        torch._dynamo.reset()  # each strategy is traced and compiled anew (kernels may come from the disk cache)
        for mode in MODES:  # build every mode's network and pay its compilation
            torch.manual_seed(0)
            model = build_model(strategy, **cfg.model_kw(8))
            if "channels_last" in mode:
                model.set_channels_last(True)
            opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
            f = torch.compile(model) if mode.startswith("compile") else model

            def step(f=f, opt=opt):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(f(x), y).backward()
                opt.step()

            t0 = time.perf_counter()
            step(), step()
            row[mode] = {"first_two_steps_s": round(time.perf_counter() - t0, 2)}
            steps[mode] = step
        times = {mode: [] for mode in MODES}
        for _ in range(args.rounds):  # modes interleaved, so that a busy moment hits them all alike
            for mode in MODES:
                t0 = time.perf_counter()
                for _ in range(per_round):
                    steps[mode]()
                times[mode].append((time.perf_counter() - t0) / per_round * 1000)
        for mode in MODES:
            row[mode]["ms_per_step"] = round(statistics.median(times[mode]), 2)
            print(f"{strategy.code:32s} {mode:22s} {row[mode]['ms_per_step']:6.1f} ms/step, first two steps "
                  f"{row[mode]['first_two_steps_s']:5.1f} s", flush=True)
        rows.append(row)

    def ratio(mode):
        return statistics.median(r["eager"]["ms_per_step"] / r[mode]["ms_per_step"] for r in rows)

    for r in rows:  # compile time: the first two steps less two steps at the mode's own speed
        for mode in MODES:
            r[mode]["compile_s"] = round(max(0.0, r[mode]["first_two_steps_s"] - 2 * r[mode]["ms_per_step"] / 1000), 2) \
                if mode.startswith("compile") else 0.0
    summary = {}
    for mode in MODES[1:]:
        saved_ms = statistics.median(r["eager"]["ms_per_step"] - r[mode]["ms_per_step"] for r in rows)
        compile_s = statistics.median(r[mode]["compile_s"] for r in rows)
        summary[mode] = {
            "speedup_vs_eager_median": round(ratio(mode), 3),
            "compile_s_median": round(compile_s, 1),
            "compile_s_first_cold": rows[0][mode]["compile_s"],
            # steps after which the compile time is paid back (None: the mode saves nothing per step)
            "break_even_steps": (round(compile_s / (saved_ms / 1000)) if compile_s else 0) if saved_ms > 0 else None,
            "net_speedup_one_training": round(
                statistics.median(r["eager"]["ms_per_step"] * steps_per_training
                                  / (r[mode]["ms_per_step"] * steps_per_training + 1000 * r[mode]["compile_s"])
                                  for r in rows), 3),
        }
    result = {"command": "python benchmarks/step_modes.py " + " ".join(argv or sys.argv[1:]),
              "environment": environment("cpu"), "threads": 1, "batch_size": cfg.batch_size,
              "clip": [3, 8, 32, 32], "steps_per_training": steps_per_training, "timed_steps": per_round * args.rounds,
              "compile_threads": 1, "note": "steps per training: the mixed setting (800 clips); motion and shake "
              "have 1600, so twice as many steps, which halves the share of compile time",
              "strategies": rows, "summary": summary}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(cache, ignore_errors=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
