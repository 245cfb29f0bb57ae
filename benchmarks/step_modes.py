"""One training step of FusionBench's stand-alone networks on one thread, by execution mode: eager
(today's path), channels_last_3d, and ``torch.compile``; the compile time is measured apart (the
first two steps of a freshly built network of that strategy).

Every mode trains the same strategies (presets and uniform draws of the table's list) at the
table's budget shape: batch 16, 8 x 32 x 32 clips, AdamW 6e-3. Prints JSON with per-strategy
milliseconds per step (median of interleaved rounds), each mode's median ratio against eager, the
compile seconds (the first one on a cold cache, then the median), and how many steps a training
must have for compile to pay for itself; writes it to ``--out`` (default
reports/fusionbench/step-modes.json). Run it on a quiet machine.

    python benchmarks/step_modes.py [--strategies 0 40 60] [--steps 40]
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
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-cold-"))
    import torch

    from workbench.models import build_model
    from workbench.studies import fusionbench as fb
    from workbench.runs import environment

    torch.set_num_threads(1)
    cfg = fb.BenchConfig()
    entries = fb.bench_strategies(cfg)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 3, 8, 32, 32, generator=g)
    y = torch.randint(0, 8, (cfg.batch_size,), generator=g)
    steps_per_training = cfg.epochs * (8 * 100 // cfg.batch_size)  # the mixed setting: 800 training clips
    rows = []
    for i in args.strategies:
        strategy = entries[i]["strategy"]
        row = {"index": i, "strategy": strategy.code}
        steps = {}
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
                for _ in range(args.steps // args.rounds):
                    steps[mode]()
                times[mode].append((time.perf_counter() - t0) / (args.steps // args.rounds) * 1000)
        for mode in MODES:
            row[mode]["ms_per_step"] = round(statistics.median(times[mode]), 2)
            print(f"{strategy.code:32s} {mode:22s} {row[mode]['ms_per_step']:6.1f} ms/step, first two steps "
                  f"{row[mode]['first_two_steps_s']:5.1f} s", flush=True)
        rows.append(row)

    def ratio(mode):
        return statistics.median(r["eager"]["ms_per_step"] / r[mode]["ms_per_step"] for r in rows)

    summary = {}
    for mode in MODES[1:]:
        saved_ms = statistics.median(r["eager"]["ms_per_step"] - r[mode]["ms_per_step"] for r in rows)
        compile_s = statistics.median(r[mode]["first_two_steps_s"] for r in rows) if mode.startswith("compile") else 0.0
        cold_s = rows[0][mode]["first_two_steps_s"] if mode.startswith("compile") else 0.0
        summary[mode] = {
            "speedup_vs_eager_median": round(ratio(mode), 3),
            "compile_s_median": round(compile_s, 1),
            "compile_s_first_cold": round(cold_s, 1),
            # steps after which the compile time is paid back (inf: the mode is not faster)
            "break_even_steps": (round(compile_s / (saved_ms / 1000)) if saved_ms > 0 else float("inf"))
            if compile_s else 0,
            "net_speedup_one_training": round(
                statistics.median(r["eager"]["ms_per_step"] * steps_per_training / 1000
                                  / (r[mode]["ms_per_step"] * steps_per_training / 1000
                                     + (r[mode]["first_two_steps_s"] if mode.startswith("compile") else 0.0))
                                  for r in rows), 3),
        }
    result = {"command": "python benchmarks/step_modes.py " + " ".join(argv or sys.argv[1:]),
              "environment": environment("cpu"), "threads": 1, "batch_size": cfg.batch_size,
              "clip": [3, 8, 32, 32], "steps_per_training": steps_per_training, "timed_steps": args.steps,
              "strategies": rows, "summary": summary}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
