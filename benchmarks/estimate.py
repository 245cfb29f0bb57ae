"""Strategies scored per minute: one at a time against prefix sharing (exact) and racing (top-k).

Same template (the shipped synthetic-mixed template unless ``--run``), same validation split,
2 BN-recalibration batches (the estimates' default). For 50, 200 and 1,000 strategies drawn from
the gates (distinct) and drawn uniformly over the space:

* ``one_at_a_time``: ``estimate_strategies(..., share_prefixes=False)``, the path every strategy
  took before (timed on the first ``--baseline-n`` strategies of each set: its cost is linear);
* ``shared``: the prefix tree (same numbers: checked here on the baseline strategies);
* ``speedup`` = shared strategies per minute / one-at-a-time's;
* ``duplicates``: how many distinct strategies N raw gate draws hold (credited separately);
* ``racing``: successive halving for the top 10 (``race_top_k``): clip evaluations spent and the
  overlap of its top 10 with full scoring's.

Prints JSON, writes ``--out`` (default reports/estimate-bench.json). Run on a quiet machine.

    python benchmarks/estimate.py [--sizes 50 200 1000] [--baseline-n 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="template run (default: the shipped synthetic-mixed template)")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    p.add_argument("--baseline-n", type=int, default=50)
    p.add_argument("--recalibrate", type=int, default=2)
    p.add_argument("--race-k", type=int, default=10)
    p.add_argument("--members", type=int, default=8, help="strategies per batched forward (per-member masks)")
    p.add_argument("--out", default="reports/estimate-bench.json")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from workbench.engine.estimate import EstimateConfig, StrategyCostTable, estimate_strategies
    from workbench.engine.sharing import prefix_tree_size, race_top_k
    from workbench.strategy import Strategy
    from workbench.studies.pipeline import open_splits, read_run
    from workbench.template.network import load_template

    run = args.run or str(Path(__file__).resolve().parents[1] / "checkpoints" / "synthetic-mixed" / "template")
    sn, _ = load_template(run)
    spec = read_run(run)
    splits = open_splits(spec["dataset"], root=spec.get("root"), splits=("train", "val"), **spec["data_kw"])
    val, train = splits["val"], splits["train"]
    table = StrategyCostTable(sn, tuple(val[0][0].shape))
    cfg = EstimateConfig(recalibrate_batches=args.recalibrate, progress=False)
    nmax = max(args.sizes)
    g = torch.Generator().manual_seed(0)
    # gate draws: raw (with repeats) and distinct
    raw = sn.sample(nmax, g)
    distinct, seen = [], set()
    while len(distinct) < nmax:
        for s in (raw if not distinct else sn.sample(nmax, g)):
            if s.key not in seen and len(distinct) < nmax:
                seen.add(s.key)
                distinct.append(s)
    gu = torch.Generator().manual_seed(1)
    uniform = []
    for _ in range(nmax):
        idx = torch.randint(len(sn.units), (sn.num_layers,), generator=gu).tolist()
        uniform.append(Strategy(sn.backbone, tuple(sn.units[i] for i in idx), sn.config.stem))
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "run": os.path.relpath(run), "val_clips": len(val), "recalibrate_batches": args.recalibrate,
              "command": " ".join(["benchmarks/estimate.py", *(argv if argv is not None else sys.argv[1:])]),
              "duplicates": {str(n): {"raw_gate_draws": n, "distinct": len({s.key for s in raw[:n]})}
                             for n in args.sizes},
              "sets": {}}

    def timed(strategies, share):
        t0 = time.perf_counter()
        ds = estimate_strategies(sn, strategies, val, train_set=train, cost_table=table,
                                 config=replace(cfg, share_prefixes=share))
        return time.perf_counter() - t0, ds

    for name, pool in (("gates", distinct), ("uniform", uniform)):
        base = pool[:args.baseline_n]
        t_one, one = timed(base, False)
        t_sh, sh = timed(base, True)
        exact = bool(np.array_equal(one["top1"].values, sh["top1"].values)
                     and np.array_equal(one["loss"].values, sh["loss"].values))
        rate_one = len(base) / t_one * 60
        rows = {}
        for n in args.sizes:
            strategies = pool[:n]
            t, ds = timed(strategies, True)
            rate = n / t * 60
            tree = prefix_tree_size(strategies)
            row = {"strategies": n, "seconds": round(t, 2), "per_minute": round(rate, 1),
                   "speedup": round(rate / rate_one, 2),
                   "layer_evals_per_strategy": round(tree["layer_evals_shared"] / n, 2)}
            if n >= 2 * args.race_k:
                t0 = time.perf_counter()
                r = race_top_k(sn, strategies, val, k=args.race_k,
                               calibration=_calib(train, cfg) if args.recalibrate else None)
                t_r = time.perf_counter() - t0
                full_top = set(np.argsort(-ds["top1"].values, kind="stable")[:args.race_k].tolist())
                # ties at the k-th place: any strategy tied with full scoring's k-th counts as agreeing
                kth = np.sort(ds["top1"].values)[::-1][args.race_k - 1]
                tied = set(np.flatnonzero(ds["top1"].values >= kth).tolist())
                row["racing"] = {"seconds": round(t_r, 2), "per_minute": round(n / t_r * 60, 1),
                                 "speedup": round(n / t_r * 60 / rate_one, 2),
                                 "clip_evals_fraction": round(r["clip_evals"] / r["full_clip_evals"], 3),
                                 f"top{args.race_k}_agreement": len(set(r["top"]) & tied) / args.race_k,
                                 f"top{args.race_k}_exact_set_agreement": len(set(r["top"]) & full_top) / args.race_k}
            rows[str(n)] = row
        result["sets"][name] = {"one_at_a_time_per_minute": round(rate_one, 1), "baseline_strategies": len(base),
                                "shared_equals_one_at_a_time": exact, "sizes": rows}
    result["batched_members"] = _batched_members(sn, distinct[:args.members], val)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    _figure(result, out.with_suffix(""))
    print(json.dumps(result, indent=2))
    return 0


def _figure(result: dict, stem: Path) -> None:
    """Scoring time against the number of strategies: one at a time (linear) and shared."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots import paper_style

    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        for (name, s), color in zip(result["sets"].items(), ("C0", "C1")):
            ns = sorted(int(n) for n in s["sizes"])
            ax.plot(ns, [s["sizes"][str(n)]["seconds"] for n in ns], "o-", color=color, label=f"{name}, shared prefixes")
            ax.plot(ns, [n / s["one_at_a_time_per_minute"] * 60 for n in ns], "--", color=color,
                    label=f"{name}, one at a time")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("strategies scored")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=6, frameon=False)
        ax.set_title(f"{result['val_clips']} validation clips, {result['recalibrate_batches']} BN batches", fontsize=7)
        fig.tight_layout()
        for ext in ("png", "pdf"):
            fig.savefig(f"{stem}.{ext}", dpi=200)
        plt.close(fig)


def _batched_members(sn, strategies, val) -> dict:
    """Several strategies in one forward: the batch repeated once per member, every branch
    computed and multiplied by the member's 0/1 keep mask (template BN statistics, as masks cannot
    batch per-member recalibration), against one strategy at a time and the prefix tree."""
    import time

    import numpy as np
    import torch

    from workbench.engine.loop import evaluate
    from workbench.engine.sharing import PrefixScorer
    from workbench.template.network import branches_of

    loader = torch.utils.data.DataLoader(val, batch_size=64)
    batches = list(loader)
    m = len(strategies)
    layers = [layer for _, layer in sn.net.layer_modules()]
    keep = torch.tensor([[[b in branches_of(u) for b in sn.branches] for u in s.units] for s in strategies],
                        dtype=torch.float32)  # M x L x B

    @torch.no_grad()
    def batched():
        sn.eval()
        hits = torch.zeros(m)
        for x, y in batches:
            xb = x.repeat(m, 1, 1, 1, 1)
            mask = keep.repeat_interleave(len(y), 0)  # (M*b) x L x B
            for li, layer in enumerate(layers):
                layer.gate_kept = None
                layer.gate_mask = {br: mask[:, li, j].view(-1, 1, 1, 1, 1) for j, br in enumerate(sn.branches)}
            try:
                out = sn.net(xb)
            finally:
                for layer in layers:
                    layer.gate_mask = None
            hits += (out.argmax(1) == y.repeat(m)).view(m, -1).sum(1).float()
        return (hits / len(val)).tolist()

    def one():
        res = []
        with sn.running():
            for s in strategies:
                sn.set_strategy(s)
                res.append(evaluate(sn, batches)["top1"])
        return res

    times = {}
    outs = {}
    for name, fn in (("one_at_a_time", one), ("batched", batched),
                     ("shared_prefixes", lambda: [r["top1"] for r in PrefixScorer(sn).score(strategies, batches)])):
        t0 = time.perf_counter()
        outs[name] = fn()
        times[name] = time.perf_counter() - t0
    return {"members": m, "seconds": {k: round(v, 2) for k, v in times.items()},
            "batched_speedup": round(times["one_at_a_time"] / times["batched"], 2),
            "shared_speedup": round(times["one_at_a_time"] / times["shared_prefixes"], 2),
            "batched_same_top1": bool(np.allclose(outs["batched"], outs["one_at_a_time"])),
            "note": "template BN statistics (no recalibration); CPU, this machine"}


def _calib(train, cfg):
    import torch

    g = torch.Generator().manual_seed(cfg.calibration_seed)
    cl = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, shuffle=True, generator=g)
    out = []
    for i, b in enumerate(cl):
        if i >= cfg.recalibrate_batches:
            break
        out.append(b)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
