"""Why the multi-snippet pyramid trails: pyramid variants on the development seed 0 at the
committed 8-frame setting (30 / 20 / 40 clips per class), with their training curves.

Writes pyramid.json: per variant the train / held-out loss and top-1 per epoch and the test top-1.
One torch thread (OMP_NUM_THREADS=1).

    python reports/streams/diagnosis/pyramid.py --variants default one-snippet dims
"""

import argparse
import json
from pathlib import Path

import torch

from workbench.engine.config import TrainConfig
from workbench.runs import Run, environment
from workbench.streams.run import run_streams

HERE = Path(__file__).parent
#: name -> (model switches, epochs)
VARIANTS = {
    "default": ({}, 10),
    "one-snippet": ({"snippets": 1}, 10),
    # the sketch dimensions of a third-party re-implementation (reports/../shared/PAPERS.md)
    "dims": ({"d_temporal": 1024, "d_attention": 2048, "d_final": 4096}, 10),
    "concat": ({"final": "concat"}, 10),
    "budget": ({}, 20),
    "l2": ({"sketch_norm": "l2"}, 10),
    "l2-one-snippet": ({"sketch_norm": "l2", "snippets": 1}, 10),
}

p = argparse.ArgumentParser()
p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default", "one-snippet", "dims"])
p.add_argument("--seed", type=int, default=0)
p.add_argument("--frames", type=int, default=8)
a = p.parse_args()
torch.set_num_threads(1)
out = HERE / "pyramid.json"
rows = json.loads(out.read_text())["runs"] if out.is_file() else []
done = {(r["variant"], r["seed"], r["frames"]) for r in rows}
for name in a.variants:
    if (name, a.seed, a.frames) in done:
        continue
    switches, epochs = VARIANTS[name]
    folder = HERE / "runs" / f"pyramid-{name}-f{a.frames}-s{a.seed}"
    run = Run(folder)
    kw = {"dataset": "synthetic-mixed", "fusion": "pyramid", "modalities": ("rgb", "flow"),
          "train_config": TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, seed=a.seed, progress=False),
          "model_kw": switches, "data_kw": {"frames": a.frames, "train_per_class": 30, "val_per_class": 20,
                                            "test_per_class": 40}}
    run.reuse_or(lambda resume, folder=folder, kw=kw: run_streams(folder, resume=resume, **kw))
    h, r = run.history(), run.result()
    rows.append({"variant": name, "switches": switches, "epochs": epochs, "seed": a.seed, "frames": a.frames,
                 **{k: [round(x, 3) for x in h[k]["fused"]] for k in ("train_loss", "val_loss", "train_acc", "val_acc")},
                 "test_top1": r["test"]["fused"]["top1"], "seconds": round(r["seconds"])})
    print(name, rows[-1]["train_loss"][-1], rows[-1]["val_loss"][-1], rows[-1]["test_top1"], flush=True)
    out.write_text(json.dumps({"environment": environment("cpu"), "runs": rows}, indent=1) + "\n")
