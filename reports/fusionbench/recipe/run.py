"""Run from the repository root. Which training recipe removes the truth table's failures to learn? Re-train known failing and
known good (strategy, seed) pairs of the table under recipe variants; one JSON line per run."""
import json, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from workbench.engine import distributed as dist_
from workbench.engine.loop import Loop, TrainConfig, evaluate
from workbench.models import build_model
from workbench.strategy import Strategy
from workbench.studies.fusionbench import BenchConfig, _batches, _eval_batches, setting_data

PAIRS = [("motion", "0bs00b0b", 1), ("motion", "333333ss", 1), ("motion", "bbbb3bbb", 0), ("motion", "0s03b00s", 0),
         ("motion", "ssssss33", 1), ("mixed", "0s03b00s", 0), ("motion", "ss333333", 0), ("motion", "bbbbbbbb", 1),
         ("motion", "33333333", 0)]
VARIANTS = {"lr3e-3": dict(lr=3e-3), "clip1": dict(grad_clip=1.0), "e30": dict(epochs=30)}
UNIT = {"s": "S", "3": "ST", "b": "S+ST", "0": "skip"}
bc = BenchConfig()
data = {s: setting_data(s, "reports/fusionbench/cache") for s in ("motion", "mixed")}
out = open(sys.argv[1], "a")
for vname, over in VARIANTS.items():
    for setting, code, seed in PAIRS:
        d = data[setting]
        units = tuple(UNIT[c] for c in code)
        s = Strategy("densenet-tiny", units, "2D")
        kw = dict(epochs=bc.epochs, batch_size=bc.batch_size, lr=bc.lr, optimizer=bc.optimizer, seed=seed,
                  progress=False)
        kw.update(over)
        tc = TrainConfig(**kw)
        k = int(d["classes"])
        torch.manual_seed(seed)
        model = build_model(s, num_classes=k, **{a: b for a, b in bc.model_kw(k).items() if a != "num_classes"})
        xtr, ytr = d["train"]; xte, yte = d["test"]
        def batches(epoch):
            return _batches(xtr, ytr, dist_.ShardedBatchSampler(len(ytr), tc.batch_size, seed=tc.seed * 100_003 + epoch,
                                                                 shuffle=True, drop_last=False, rank=0, world_size=1))
        t0 = time.time()
        h = Loop(model, None, None, tc, batches=batches).run()
        test = evaluate(model, _eval_batches(xte, yte, 64), "cpu")["top1"]
        out.write(json.dumps({"variant": vname, "setting": setting, "code": code, "seed": seed, "test_top1": test,
                              "train_top1": h.train_acc[-1], "seconds": time.time() - t0}) + "\n")
        out.flush()
