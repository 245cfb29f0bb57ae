"""Literature comparison: the classic fusion designs and the probability space's strategies,
trained stand-alone on the same data with the same budget.

Rows: C3D, R3D, MC3, rMC3, R(2+1)D, P3D, ip-CSN, ir-CSN from the model zoo (tiny widths by
default, so a CPU can train them), plus the template's most probable strategy and, given its
estimates, the best sampled one. Every (row, seed) is cached in ``OUT/runs/`` (resumable; nothing
finished is recomputed). :func:`literature_comparison` returns an ``xarray.Dataset``;
:func:`comparison_table` and :func:`comparison_figure` present it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from workbench.plots.compare import comparison_figure
from workbench.runs import Run, cache_key

__all__ = ["LITERATURE", "literature_comparison", "comparison_table", "comparison_figure"]

LITERATURE = ("c3d", "r3d_18", "mc3_18", "rmc3_18", "r2plus1d_18", "p3d_resnet50", "ip_csn_50", "ir_csn_50")


def literature_comparison(out, template_run, *, models: Sequence[str] = LITERATURE, estimates=None, tiny: bool = True,
                          train_config=None, seeds: Sequence[int] = (0,), progress: bool = True,
                          streams: Sequence[str] = (), stream_backbone: str = "r3d_18", dry_run: bool = False,
                          parallel: int = 1):
    """Train ``models`` (zoo names) and the template's strategies on the template run's dataset,
    each for every seed with ``train_config`` (default: 20 epochs, batch 16, lr 6e-3).

    ``streams``: two-stream fusions (``late``, ``stcb``, ``pyramid``) of an RGB and a flow stream
    (``stream_backbone`` each), trained on the same clips with their exact optical flow, under
    the same budget (source ``two-stream``; synthetic datasets only).

    Before any training it prints what will run and about how long it takes on this machine (from
    one measured training step per model); ``dry_run=True`` returns that plan (a dict) and trains
    nothing. ``parallel``: the single-network trainings run that many at once, one thread each
    (:mod:`workbench.engine.parallel`); the two-stream ones one after another."""
    import torch
    import xarray as xr

    from workbench.analysis import save_study, strategies_from
    from workbench.engine.config import TrainConfig
    from workbench.engine.cost import count_cost
    from workbench.models import TINY, build_model, model_info
    from workbench.studies.pipeline import open_splits, read_run, train_strategy
    from workbench.template.network import load_template

    out = Path(out)
    cfg = train_config or TrainConfig(epochs=20, batch_size=16, lr=6e-3)
    spec = read_run(template_run)
    template, _ = load_template(template_run)
    val = open_splits(spec["dataset"], root=spec.get("root"), splits=("val",), **spec["data_kw"])["val"]
    shape = tuple(int(s) for s in val[0][0].shape)  # C T H W
    rows = []  # (label, source, strategy, model kwargs)
    for name in models:
        m = model_info(name)
        kw = {k: v for k, v in m.kwargs.items() if k != "num_classes"}
        if tiny:
            kw = {**TINY[m.strategy().layout.family], **kw}
        kw.update(m.clip_kwargs(shape[1], shape[2]))  # the clip geometry the model needs, if any
        rows.append((name, "literature", m.strategy(), kw))
    tkw = {k: v for k, v in template.config.model_kwargs().items() if k != "num_classes"}
    rows.append(("most probable", "probability space", template.most_probable(), tkw))
    if estimates is not None:
        src = [str(s) for s in estimates["source"].values]
        idx = [i for i, s in enumerate(src) if s == "sampled"]
        if idx:
            best = idx[int(np.argmax(estimates["top1"].values[idx]))]
            rows.append(("best sampled", "probability space", strategies_from(estimates)[best], tkw))
    data_key = cache_key({"dataset": spec["dataset"], "root": spec.get("root"), "data_kw": spec["data_kw"],
                     "budget": {k: v for k, v in cfg.to_dict().items() if k not in ("progress", "seed", "device")}})
    plan = _plan(out, rows, seeds, data_key, cfg, shape, template.num_classes, len(open_splits(
        spec["dataset"], root=spec.get("root"), splits=("train",), **spec["data_kw"])["train"]), streams)
    print(plan["text"], flush=True)
    if dry_run:
        return plan
    from tqdm.auto import tqdm

    acc = np.zeros((len(rows), len(seeds)))
    params, gmacs = [], []
    folders = []
    if parallel > 1:  # train the missing ones side by side; the loop below reads them back
        from workbench.engine.parallel import run_jobs
        from workbench.studies.pipeline import train_cached

        jobs = [(strategy.to_dict(), _folder(out, label, strategy, kw, data_key, seed), spec, kw,
                 replace(cfg, seed=seed, progress=False).to_dict())
                for label, _, strategy, kw in rows for seed in seeds]
        run_jobs(train_cached, [j for j in jobs if not Run(j[1]).is_finished()], parallel, progress=progress,
                 desc="comparison: trainings")
    # one overall bar (with its ETA) over every training, cached ones included; each training's own
    # bars name its model
    overall = tqdm(total=(len(rows) + len(streams or ())) * len(seeds), desc="comparison: trainings",
                   unit="training", disable=not progress)
    for i, (label, _, strategy, kw) in enumerate(rows):
        with torch.device("meta"):
            model = build_model(strategy, channels_last=False, num_classes=template.num_classes, **kw)
        r = count_cost(model, shape)
        params.append(r.params)
        gmacs.append(r.gmacs)
        row_folders = []
        for j, seed in enumerate(seeds):
            folder = _folder(out, label, strategy, kw, data_key, seed)
            res = Run(folder).reuse_or(lambda resume, s=strategy, kw=kw, seed=seed, folder=folder: train_strategy(
                s, folder, dataset=spec["dataset"], root=spec.get("root"), data_kw=spec["data_kw"], model_kw=kw,
                train_config=replace(cfg, seed=seed, progress=progress), resume=resume))
            acc[i, j] = res["test"]["top1"]
            row_folders.append(str(folder))
            overall.update()
        folders.append(row_folders)
    if streams:
        from workbench.engine.cost import count_stream_cost
        from workbench.streams import build_streams_model, run_streams

        acc_rows = [acc]
        c, t, h, w = shape
        for fusion in streams:
            mkw = {"backbone": stream_backbone, "tiny": tiny}
            net = build_streams_model(fusion, ("rgb", "flow"), template.num_classes, frames=t, size=w, **mkw)
            p, m = count_stream_cost(net, {"rgb": (c, t, h, w), "flow": (2, t, h, w)})
            params.append(p)
            gmacs.append(m / 1e9)
            row, row_folders = np.zeros((1, len(seeds))), []
            for j, seed in enumerate(seeds):
                folder = out / "runs" / f"two-stream-{fusion}-{cache_key(mkw)}-{data_key}-s{seed}"
                res = Run(folder).reuse_or(lambda resume, fusion=fusion, mkw=mkw, seed=seed, folder=folder: run_streams(
                    folder, dataset=spec["dataset"], fusion=fusion, modalities=("rgb", "flow"),
                    train_config=replace(cfg, seed=seed, progress=progress), model_kw=mkw,
                    data_kw=spec["data_kw"], resume=resume))
                row[0, j] = res["test"]["fused"]["top1"]
                row_folders.append(str(folder))
                overall.update()
            acc_rows.append(row)
            folders.append(row_folders)
            rows.append((f"two-stream {fusion}", "two-stream", None, mkw))
        acc = np.concatenate(acc_rows)
    overall.close()
    ds = xr.Dataset(
        {
            "test_top1": (("model", "seed"), acc), "mean_top1": ("model", acc.mean(1)),
            "params": ("model", np.asarray(params, np.int64)), "gmacs": ("model", np.asarray(gmacs)),
            "source": ("model", np.asarray([r[1] for r in rows], dtype=object)),
            "code": ("model", np.asarray([r[2].code if r[2] is not None else f"{r[3]['backbone']} rgb+flow"
                                          for r in rows], dtype=object)),
        },
        coords={"model": [r[0] for r in rows], "seed": list(seeds)},
        attrs={"dataset": spec["dataset"], "template_run": str(template_run), "tiny": int(tiny),
               "train_config": json.dumps(cfg.to_dict()), "folders": json.dumps(folders)},
    )
    save_study(ds, comparison_table(ds), out, "comparison")
    return ds


def _folder(out: Path, label: str, strategy, kw, data_key: str, seed: int) -> Path:
    return out / "runs" / f"{label.replace(' ', '-')}-{cache_key([strategy.to_dict(), kw])}-{data_key}-s{seed}"


def _plan(out: Path, rows, seeds, data_key: str, cfg, shape, num_classes: int, n_train: int, streams) -> dict:
    """What the comparison will train and about how long it takes (a measured step per model)."""
    import math

    from workbench.engine.loop import measure_step_seconds
    from workbench.models import build_model

    steps = math.ceil(n_train / cfg.batch_size) * cfg.epochs
    pending, cached, seconds = [], 0, 0.0
    for label, _, strategy, kw in rows:
        todo = [s for s in seeds if not Run(_folder(out, label, strategy, kw, data_key, s)).is_finished()]
        cached += len(seeds) - len(todo)
        if todo:
            model = build_model(strategy, num_classes=num_classes, **kw)
            each = measure_step_seconds(model, shape, num_classes, cfg) * steps * 1.15  # + evaluation
            pending.append({"model": label, "seeds": todo, "minutes_each": round(each / 60, 1)})
            seconds += each * len(todo)
    n = sum(len(p["seeds"]) for p in pending)
    text = (f"literature comparison: {n} training(s) to run, {cached} cached; about {seconds / 60:.0f} min on this "
            f"machine ({cfg.epochs} epochs x {math.ceil(n_train / cfg.batch_size)} steps each, from one measured "
            f"step per model)" + (f"; plus {len(streams)} two-stream network(s) per seed" if streams else "")
            if n else f"literature comparison: all {cached} training(s) cached; nothing to train")
    return {"trainings": n, "cached": cached, "seconds": round(seconds, 1), "minutes": round(seconds / 60, 1),
            "pending": pending, "text": text}


def comparison_table(ds) -> str:
    """Markdown: every model's cost and test top-1, the mean over seeds with their spread (SD and
    range; with one seed the header says there is no spread to show)."""
    cfg = json.loads(ds.attrs["train_config"])
    seeds = [int(s) for s in ds["seed"].values]
    several = len(seeds) > 1
    spread = "mean over seeds, SD and range across them" if several else "one seed: no seed spread to show"
    lines = [f"Trained stand-alone on `{ds.attrs['dataset']}`: {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
             f"{cfg['optimizer']} lr {cfg['lr']}; seeds {seeds}; test top-1 ({spread}).", "",
             "| model | source | params | GMACs | test top-1 |" + (" SD | range |" if several else ""),
             "|---|---|---|---|---|" + ("---|---|" if several else "")]
    acc = ds["test_top1"].values
    for i in np.argsort(-ds["mean_top1"].values, kind="stable"):
        row = (f"| {ds['model'].values[i]} | {ds['source'].values[i]} | {int(ds['params'].values[i]):,} | "
               f"{ds['gmacs'].values[i]:.4f} | {ds['mean_top1'].values[i]:.3f} |")
        if several:
            row += f" {acc[i].std(ddof=1):.3f} | {acc[i].min():.3f}-{acc[i].max():.3f} |"
        lines.append(row)
    return "\n".join(lines) + "\n"
