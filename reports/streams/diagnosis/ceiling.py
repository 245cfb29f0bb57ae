"""How much a second modality could add: each seed's RGB-alone network combined, by Bayes' rule,
with the audio's exact likelihood (the tone is the class's with probability p, otherwise any
class's: P(tone | class) = p + (1 - p) / K if they match, (1 - p) / K if not). The tone is read
from the waveform by its energy at the K class frequencies. Test top-1 of that ideal combination
beside RGB alone, per seed of a G-Blend study folder.

    python reports/streams/diagnosis/ceiling.py reports/streams/gblend
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from workbench.engine.checkpoint import load_latest, load_state_checked
from workbench.runs import environment
from workbench.streams.run import build_streams_model, open_streams

torch.set_num_threads(1)
study = Path(sys.argv[1])
rows = []
for folder in sorted(study.glob("runs/rgb-s*")):
    spec = json.loads((folder / "run.json").read_text())
    data_kw = spec["data_kw"]
    p = float(data_kw.get("audio_informativeness", 1.0))
    test = open_streams(spec["dataset"], ("rgb", "audio"), splits=("test",), **data_kw)["test"]
    k = test.num_classes
    model = build_streams_model("gblend", ("rgb",), k, frames=8, size=32, **spec["model_kw"])
    state, _, _ = load_latest(folder / "last")
    load_state_checked(model, state, folder)
    model.eval()
    x = [test[i] for i in range(len(test))]
    y = np.array([b for _, b in x])
    with torch.no_grad():
        logp = torch.cat([torch.log_softmax(model({"rgb": torch.stack([a["rgb"] for a, _ in x[i:i + 64]])})["rgb"], 1)
                          for i in range(0, len(x), 64)]).numpy()
    length = x[0][0]["audio"].shape[-1]
    n = np.arange(length)
    basis = [(np.sin(2 * math.pi * (2.0 + 1.5 * c) * n / length), np.cos(2 * math.pi * (2.0 + 1.5 * c) * n / length))
             for c in range(k)]  # the synthetic generator's tone of class c: 2 + 1.5 c cycles per clip
    wave = np.stack([a["audio"][0].numpy() for a, _ in x])
    tone = np.argmax(np.stack([(wave @ s) ** 2 + (wave @ c) ** 2 for s, c in basis], 1), 1)
    loglik = np.full((len(x), k), math.log((1 - p) / k))
    loglik[np.arange(len(x)), tone] = math.log(p + (1 - p) / k)
    seed = int(folder.name.split("-s")[-1])
    rows.append({"seed": seed, "rgb": float((logp.argmax(1) == y).mean()),
                 "rgb_with_ideal_audio": float(((logp + loglik).argmax(1) == y).mean()),
                 "ideal_audio_alone": float((loglik.argmax(1) == y).mean())})
    print(rows[-1], flush=True)
(study / "ceiling.json").write_text(json.dumps({"environment": environment("cpu"), "runs": rows}, indent=1) + "\n")
