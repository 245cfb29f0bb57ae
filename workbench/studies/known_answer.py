"""Does the probability space find the known answer? A check on the synthetic benchmark.

On ``synthetic-appearance`` the class is the object's look (one frame suffices); on
``synthetic-motion`` it is the order of the frames (a frame-level network is at chance). A
template network trained on each, with the same settings and seed, should say so:

* appearance: P(S) is the highest unit probability among U = {S, ST, S+ST} in at least two
  thirds of the layers, and the S-only strategy estimates within 5 points of the best sampled;
* motion: the S-only strategy estimates at chance (one-sided binomial test, p >= ``alpha``),
  the best sampled strategy far above it, and the temporal mass P(ST) + P(S+ST) exceeds 0.5 in
  at least two layers;
* the expected number of layers that keep a temporal branch is at least 1.0 higher on motion,
  and on both the most probable strategy keeps >= 0.8 accuracy (the gates did not collapse).

:func:`run_known_answer` trains and scores one (kind, seed); :func:`check_known_answer` applies
the criteria to a pair; :func:`known_answer_study` runs seeds (in parallel processes) and
returns a table. ``workbench template check`` is the command line.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from workbench.engine.config import TEMPLATE_TRAINING
from workbench.runs import environment

__all__ = ["KNOWN_ANSWER", "run_known_answer", "check_known_answer", "known_answer_study", "CRITERIA"]


@dataclass(frozen=True)
class KnownAnswerSettings:
    """Template and training settings of the check: the schedule of ``workbench template train``
    (``TEMPLATE_TRAINING``), on tiny data (about 25 s per run on 2 cores)."""

    supernet: tuple = (("backbone", "densenet-tiny"), ("growth", 8), ("bn_size", 2), ("length_scale", 1.0),
                       ("scaffold", "spatial"), ("prior", "volume"), ("tau", 0.2), ("p_init", 0.1))
    epochs: int = TEMPLATE_TRAINING.epochs
    warmup_epochs: int = TEMPLATE_TRAINING.warmup_epochs
    batch_size: int = TEMPLATE_TRAINING.batch_size
    lr: float = TEMPLATE_TRAINING.lr
    gate_lr: float = TEMPLATE_TRAINING.gate_lr
    # about 800 training clips of each kind (N of the regulariser), 50 evaluation clips per class
    train_per_class: tuple = (("appearance", 130), ("motion", 200))
    val_per_class: int = 50
    samples: int = 30


KNOWN_ANSWER = KnownAnswerSettings()

CRITERIA = {
    "appearance_S_top": "appearance: P(S) highest among S, ST, S+ST in >= 2/3 of the layers",
    "appearance_S_close": "appearance: S-only estimate within 0.05 of the best sampled",
    "motion_S_chance": "motion: S-only estimate not above chance (binomial p >= alpha)",
    "motion_best_far": "motion: best sampled >= chance + 0.4",
    "motion_temporal_mass": "motion: P(ST) + P(S+ST) > 0.5 in >= 2 layers",
    "temporal_layers_gap": "expected temporal layers: motion - appearance >= 1.0",
    "no_collapse": "most probable strategy >= 0.8 on both",
}


def run_known_answer(kind: str, seed: int, out: str | Path, *, settings: KnownAnswerSettings = KNOWN_ANSWER,
                     data_kw: dict | None = None, progress: bool = False) -> dict:
    """Train the template on ``synthetic-<kind>`` with ``seed``, score S-only, the most probable
    and ``settings.samples`` sampled strategies; returns the numbers the criteria need.
    ``data_kw``: more arguments of the synthetic data (noise, distractors, ...), both kinds alike."""
    from scipy.stats import binomtest

    from workbench.engine.config import TrainConfig
    from workbench.strategy import Strategy
    from workbench.studies.pipeline import estimate_run, train_template

    if kind not in ("appearance", "motion"):
        raise ValueError(f"kind must be 'appearance' or 'motion', got {kind!r}")
    out = Path(out)
    t0 = time.perf_counter()
    data_kw = {"train_per_class": dict(settings.train_per_class)[kind], "val_per_class": settings.val_per_class,
               "seed": seed, **(data_kw or {})}
    cfg = TrainConfig(epochs=settings.epochs, warmup_epochs=settings.warmup_epochs, batch_size=settings.batch_size,
                      lr=settings.lr, gate_lr=settings.gate_lr, seed=seed, progress=progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, history = train_template(out, dataset=f"synthetic-{kind}", data_kw=data_kw,
                                        template=dict(settings.supernet), train_config=cfg)
    t1 = time.perf_counter()
    s_only = Strategy(model.backbone, ("S",) * model.num_layers, model.config.stem, name="S-only")
    ds = estimate_run(out, n=settings.samples, seed=seed, strategies=[s_only], progress=progress, recalibrate_batches=0,
                      out=out / "estimates.nc")
    t2 = time.perf_counter()
    src = [str(v) for v in ds["source"].values]
    top1 = [float(v) for v in ds["top1"].values]
    n_eval = int(ds["n_eval"].values[-1])
    probs = model.unit_probabilities()
    units = list(model.units)
    u3 = probs[:, [units.index(u) for u in ("S", "ST", "S+ST")]]
    tmass = probs[:, units.index("ST")] + probs[:, units.index("S+ST")]
    chance = 1.0 / model.num_classes
    s_acc = top1[-1]
    return {
        "kind": kind, "seed": seed, "layers": model.num_layers, "chance": chance,
        "val_top1": history.val_acc[-1], "warmup_val_top1": history.val_acc[settings.warmup_epochs - 1],
        "s_only": s_acc, "n_eval": n_eval,
        "s_only_p": float(binomtest(round(s_acc * n_eval), n_eval, chance, alternative="greater").pvalue),
        "best_sampled": max(t for t, s in zip(top1, src) if s == "sampled"),
        "most_probable": top1[src.index("most-probable")], "most_probable_code": model.most_probable().code,
        "expected_temporal_layers": model.expected_temporal_layers(),
        "s_top_layers": int((u3.argmax(1) == 0).sum()),
        "temporal_mass": [round(float(v), 4) for v in tmass],
        "unit_probability": {u: [round(float(v), 4) for v in probs[:, j]] for j, u in enumerate(units)},
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "train_seconds": t1 - t0, "estimate_seconds": t2 - t1, "data_kw": data_kw,
        "environment": environment(),
    }


def check_known_answer(appearance: dict, motion: dict, *, alpha: float = 0.01) -> dict[str, bool]:
    """The criteria (:data:`CRITERIA`) for one seed's pair of runs."""
    a, m = appearance, motion
    return {
        "appearance_S_top": a["s_top_layers"] >= math.ceil(2 * a["layers"] / 3),
        "appearance_S_close": a["s_only"] >= a["best_sampled"] - 0.05,
        "motion_S_chance": m["s_only_p"] >= alpha,
        "motion_best_far": m["best_sampled"] >= m["chance"] + 0.4,
        "motion_temporal_mass": sum(v > 0.5 for v in m["temporal_mass"]) >= 2,
        "temporal_layers_gap": m["expected_temporal_layers"] - a["expected_temporal_layers"] >= 1.0,
        "no_collapse": min(a["most_probable"], m["most_probable"]) >= 0.8,
    }


def _one(job: tuple) -> dict:
    kind, seed, out, threads, data_kw = job
    import torch

    torch.set_num_threads(threads)
    return run_known_answer(kind, seed, out, data_kw=data_kw)


def known_answer_study(seeds, out: str | Path, *, jobs: int = 1, alpha: float = 0.01, threads: int | None = None,
                       data_kw: dict | None = None) -> dict:
    """Run both kinds for every seed (``jobs`` processes at a time, ``threads`` torch threads each;
    default: the cores shared out among the jobs); writes ``out/known_answer.json`` and returns
    it: per-seed numbers and criteria, and how many seeds pass each criterion and all of them.
    ``data_kw``: more synthetic-data arguments for both kinds."""
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    bad = sorted(set(data_kw or {}) & {"train_per_class", "val_per_class", "seed"})
    if bad:
        raise ValueError(f"data argument(s) {', '.join(bad)} are set by the check itself (its sizes and seeds)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    work = [(k, s, str(out / f"{k}-{s}"), threads, dict(data_kw or {})) for s in seeds for k in ("appearance", "motion")]
    if jobs > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            results = list(pool.map(_one, work))
    else:
        results = [_one(w) for w in work]
    by = {(r["kind"], r["seed"]): r for r in results}
    per_seed = []
    for s in seeds:
        crit = check_known_answer(by["appearance", s], by["motion", s], alpha=alpha)
        per_seed.append({"seed": s, "criteria": crit, "passed": all(crit.values()),
                         "appearance": by["appearance", s], "motion": by["motion", s]})
    summary = {
        "seeds": seeds, "alpha": alpha, "threads_per_job": threads, "jobs": jobs, "data_kw": dict(data_kw or {}),
        "settings": {k: (dict(v) if isinstance(v, tuple) else v)
                                                     for k, v in KNOWN_ANSWER.__dict__.items()},
        "passed_all": sum(p["passed"] for p in per_seed),
        "passed": {c: sum(p["criteria"][c] for p in per_seed) for c in CRITERIA},
        "criteria": CRITERIA, "per_seed": per_seed,
    }
    (out / "known_answer.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
