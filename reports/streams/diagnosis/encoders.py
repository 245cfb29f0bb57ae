"""Why the fused head overfits: audio-only and naive joint (RGB + audio, fused head alone) runs for
each audio encoder at two training-set sizes, on the development seed 0 (the study's seeds are
others). Writes encoders.json: per run the train / held-out loss per epoch of its main head and
the test top-1. One torch thread (OMP_NUM_THREADS=1).

    python reports/streams/diagnosis/encoders.py --what audio joint
"""

import argparse
import json
from pathlib import Path

import torch

from workbench.engine.config import TrainConfig
from workbench.runs import Run, environment
from workbench.streams.run import run_streams

HERE = Path(__file__).parent

p = argparse.ArgumentParser()
p.add_argument("--seeds", type=int, nargs="+", default=[0])
p.add_argument("--what", nargs="+", choices=("audio", "joint"), default=["audio", "joint"])
p.add_argument("--encoders", nargs="+", default=["mlp", "spectral"])
p.add_argument("--clips", type=int, nargs="+", default=[30, 100])
a = p.parse_args()
torch.set_num_threads(1)
rows = []
for what in a.what:
    for seed in a.seeds:
        for enc in a.encoders:
            for n in a.clips:
                folder = HERE / "runs" / f"{what}-{enc}-n{n}-s{seed}"
                run = Run(folder)
                cfg = TrainConfig(epochs=10, batch_size=16, lr=3e-3, seed=seed, progress=False)
                mods, head = (("audio",), "audio") if what == "audio" else (("rgb", "audio"), "fused")
                kw = {"dataset": "synthetic-mixed", "fusion": "gblend", "modalities": mods, "weights": {head: 1.0},
                      "train_config": cfg, "model_kw": {"audio_encoder": enc},
                      "data_kw": {"train_per_class": n, "val_per_class": 40, "test_per_class": 100,
                                  "audio_informativeness": 0.5, "audio_noise": 1.0}}
                run.reuse_or(lambda resume, folder=folder, kw=kw: run_streams(folder, resume=resume, **kw))
                h, r = run.history(), run.result()
                rows.append({"run": what, "encoder": enc, "train_per_class": n, "seed": seed, "head": head,
                             "train_loss": [round(x, 3) for x in h["train_loss"][head]],
                             "val_loss": [round(x, 3) for x in h["val_loss"][head]],
                             "test_top1": r["test"][head]["top1"]})
                print(what, enc, n, seed, rows[-1]["train_loss"][-1], rows[-1]["val_loss"][-1], rows[-1]["test_top1"],
                      flush=True)
(HERE / "encoders.json").write_text(json.dumps({"environment": environment("cpu"), "runs": rows}, indent=1) + "\n")
