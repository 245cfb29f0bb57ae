"""Run-level workflows behind the CLI and the notebooks: train the template network, estimate
strategies, train a strategy stand-alone. A *run folder* holds everything one of them produced:

``run.json``          what was run: dataset, its arguments, configs, versions
``last.safetensors``  the latest checkpoint (+ ``last.json``); training resumes from it
``history.json/.nc``  per-epoch history (the ``.nc`` with gate trajectories as xarray)
``marginals.nc``      per-layer unit probabilities and gates (template runs)
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from workbench import __version__
from workbench.analysis import gates, history_dataset, marginals, save_netcdf
from workbench.data import SYNTHETIC_DATASETS, build_dataset, check_data_args
from workbench.engine import distributed as dist_
from workbench.engine.config import TEMPLATE_TRAINING
from workbench.engine.loop import History, TrainConfig, skipped_videos, train
from workbench.runs import Run, environment, write_json
from workbench.strategy import Strategy
from workbench.template.network import TemplateConfig, TemplateNetwork, load_template

__all__ = ["TEMPLATE_TRAINING", "open_splits", "train_template", "estimate_run", "train_strategy", "train_cached",
           "read_run", "warn_if_collapsed"]


def open_splits(dataset: str, *, root: str | None = None, splits: Sequence[str] = ("train", "val"), **data_kw):
    """The requested splits of ``dataset`` as a dict (synthetic ones need no root)."""
    out = {}
    for split in splits:
        kw = dict(data_kw)
        if dataset in SYNTHETIC_DATASETS:
            kw.setdefault("cache", True)  # render each split once; epochs then cost no generation
            out[split] = build_dataset(dataset, split=split, **kw)
        else:
            out[split] = build_dataset(dataset, root=root, split=split, **kw)
    return out


def _num_classes(ds) -> int:
    classes = getattr(ds, "classes", None)
    if classes is None:
        raise ValueError(f"dataset {type(ds).__name__} does not say its classes")
    return len(classes)


def _check_classes(have: int, k: int, dataset: str) -> None:
    """The template's class count must be the dataset's."""
    if have != k:
        raise ValueError(f"the template has {have} classes, dataset {dataset!r} has {k}")


def read_run(run: str | Path) -> dict:
    """``run.json`` of a run folder (:meth:`workbench.runs.Run.spec`)."""
    return Run(run).spec()


def train_template(
    out: str | Path,
    *,
    dataset: str = "synthetic-mixed",
    root: str | None = None,
    data_kw: dict | None = None,
    template: dict | TemplateConfig | None = None,
    # the template schedule of every command (15 warm-up + 15 gated epochs at batch 16; reports/trust.md)
    train_config: TrainConfig = TEMPLATE_TRAINING,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch=None,
    supernet: dict | TemplateConfig | None = None,
) -> tuple[TemplateNetwork, History]:
    """Train the template network on ``dataset``; everything lands in the run folder ``out``
    (a folder that holds a run needs ``resume`` or ``overwrite``: :meth:`Run.begin`).
    ``template``: its :class:`~workbench.template.network.TemplateConfig` or fields of it
    (``supernet`` is the previous release's name of this argument)."""
    if supernet is not None:
        if template is not None:
            raise ValueError("give the template's settings once: template= (supernet= is its old name)")
        template = supernet
    out = Path(out)
    run = Run(out)
    data_kw = dict(data_kw or {})
    check_data_args(dataset, root, data_kw, splits=("train", "val"))
    dist_.init_from_env(train_config.device)
    if dist_.is_main():
        run.precheck("supernet", resume=resume, overwrite=overwrite)
    splits = open_splits(dataset, root=root, **data_kw)
    k = _num_classes(splits["train"])
    if isinstance(template, TemplateConfig):
        cfg = template
    else:
        cfg = TemplateConfig(**{"num_classes": k, **(template or {})})
    _check_classes(cfg.num_classes, k, dataset)
    spec = {
        "kind": "supernet",
        "dataset": dataset, "root": root, "data_kw": data_kw,
        "supernet_config": cfg.to_dict(), "train_config": train_config.to_dict(),
        "classes": list(splits["train"].classes),
        "versions": {"workbench": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "environment": environment(train_config.device),
    }
    with run.start(spec, resume=resume, overwrite=overwrite, same=("kind", "dataset", "data_kw", "supernet_config"),
                   main=dist_.is_main()) as resumed:
        return _train_template(out, cfg, splits, train_config, resumed, on_epoch)


def _train_template(out: Path, cfg: TemplateConfig, splits: dict, train_config: TrainConfig, resume: bool,
                    on_epoch) -> tuple[TemplateNetwork, History]:
    torch.manual_seed(train_config.seed)
    model = TemplateNetwork(cfg)

    def after_epoch(history, m):
        save_netcdf(history_dataset(history, backbone=cfg.backbone, branches=cfg.branches, units=cfg.units),
                    out / "history.nc")
        if on_epoch is not None:
            on_epoch(history, m)

    history = train(
        model, splits["train"], splits.get("val"), train_config, out_dir=out, resume=resume,
        extra_meta={"supernet_config": cfg.to_dict()}, on_epoch=after_epoch,
    )
    if dist_.is_main():
        save_netcdf(_marginals_dataset(model), out / "marginals.nc")
        if not warn_if_collapsed(model, history):
            check_health(out, model, history)
    dist_.barrier()
    return model, history


def check_health(run: Path, model: TemplateNetwork, history: History) -> list[dict]:
    """The template's problems (:mod:`workbench.template.health`): each one warned about, all of
    them written to ``RUN/health.json`` (an empty list: none found)."""
    import warnings

    from workbench.template.health import problem_lines, template_problems

    problems = template_problems(model.unit_probabilities()[:, -1].tolist(), history.val_acc, model.num_classes)
    for line in problem_lines(problems):
        warnings.warn(f"template {run}: {line}", RuntimeWarning, stacklevel=2)
    write_json(Path(run) / "health.json", {"template": problems})
    return problems


def warn_if_collapsed(model: TemplateNetwork, history: History | None = None, threshold: float = 0.5,
                      max_drop: float = 0.1) -> bool:
    """Warn when the gates collapsed: most layers are most likely skipped *and* (when the history
    is given) the validation accuracy fell by more than ``max_drop`` from the end of the warm-up.
    Skipping layers that the data does not need is pruning, not collapse; losing accuracy is.
    Typically the length-scale k is too large for the training-set size (the penalty is k^2/N)."""
    import warnings

    p_skip = model.unit_probabilities()[:, -1]
    skipped = bool((p_skip > threshold).float().mean() >= 0.5)
    fell = None
    if history is not None and history.val_acc:
        warm = [a for a, ph in zip(history.val_acc, history.phase) if ph == "warmup"]
        if warm and history.phase[-1] == "gated":
            fell = warm[-1] - history.val_acc[-1]
    collapsed = skipped and (fell is None or fell > max_drop)
    if collapsed:
        acc = "" if fell is None else f" and validation accuracy fell by {fell:.2f} after the warm-up"
        warnings.warn(
            f"the template's gates collapsed: P(skip) > {threshold} in {int((p_skip > threshold).sum())} of "
            f"{len(p_skip)} layers{acc} (length-scale k = {model.config.length_scale}). Lower k (the weight "
            "penalty scales with k^2/N) or train longer before gating.",
            RuntimeWarning, stacklevel=2,
        )
    return collapsed


def _marginals_dataset(model: TemplateNetwork):
    ds = gates(model)
    ds["unit_probability"] = marginals(model)
    ds.attrs["expected_temporal_layers"] = model.expected_temporal_layers()
    ds.attrs["most_probable"] = model.most_probable().code
    return ds


def estimate_run(
    run: str | Path,
    *,
    n: int = 100,
    seed: int = 0,
    include_presets: bool = True,
    strategies: Sequence[Strategy] | None = None,
    split: str = "val",
    recalibrate_batches: int = 2,
    batch_size: int = 64,
    clips: int = 1,
    crops: int = 1,
    progress: bool = True,
    out: str | Path | None = None,
):
    """Sample ``n`` strategies from a trained template (plus the presets that fit it, plus any
    given ``strategies``) and score each with the shared weights on ``split``.

    ``clips`` x ``crops`` > 1: multi-view evaluation on a real dataset (``clips`` uniformly spaced
    clips and ``crops`` crops per video, softmax scores averaged per video)."""
    from workbench.engine.estimate import EstimateConfig, estimate_strategies

    dist_.init_from_env()
    spec = read_run(run)
    if clips < 1 or crops < 1:
        raise ValueError(f"clips and crops must be >= 1, got {clips} and {crops}")
    multi = clips > 1 or crops > 1
    if multi and spec["dataset"] in SYNTHETIC_DATASETS:
        raise ValueError(
            f"multi-clip evaluation needs a real dataset: a {spec['dataset']} item is a whole video "
            "already (use clips=1, crops=1)"
        )
    model, _ = load_template(run)
    splits = {}
    if recalibrate_batches:
        splits.update(open_splits(spec["dataset"], root=spec.get("root"), splits=("train",), **spec["data_kw"]))
    eval_kw = dict(spec["data_kw"])
    if multi:
        eval_kw.update(mode="test", num_clips=clips, num_crops=crops)
    splits[split] = open_splits(spec["dataset"], root=spec.get("root"), splits=(split,), **eval_kw)[split]
    rows: list[Strategy] = []
    sources: list[str] = []
    if n:
        sampled = model.sample(n, torch.Generator().manual_seed(seed))
        rows += sampled
        sources += ["sampled"] * len(sampled)
    if include_presets:
        ps = model.presets()
        rows += ps
        sources += ["preset"] * len(ps)
    mp = model.most_probable()
    rows.append(mp)
    sources.append("most-probable")
    for s in strategies or []:
        rows.append(model.on_scaffold(s))
        sources.append("given")
    cfg = EstimateConfig(batch_size=batch_size, recalibrate_batches=recalibrate_batches, progress=progress)
    ds = estimate_strategies(model, rows, splits[split], config=cfg, train_set=splits.get("train"), sources=sources)
    ds.attrs.update({"run": str(run), "split": split, "seed": seed, "n_sampled": n, "dataset": spec["dataset"],
                     "clips": clips, "crops": crops})
    from workbench.template.health import estimate_problems, problem_lines

    squeezed = estimate_problems(ds["top1"].values.tolist())
    for line in problem_lines(squeezed):
        warnings.warn(f"estimates of {run}: {line}", RuntimeWarning, stacklevel=2)
    ds.attrs["problems"] = "; ".join(p["problem"] for p in squeezed) or "none"
    if out is not None and dist_.is_main():
        save_netcdf(ds, out)
    return ds


def train_strategy(
    strategy: Strategy,
    out: str | Path,
    *,
    dataset: str = "synthetic-mixed",
    root: str | None = None,
    data_kw: dict | None = None,
    model_kw: dict | None = None,
    inherit_from: str | Path | None = None,
    train_config: TrainConfig = TrainConfig(epochs=10, batch_size=32),
    resume: bool = False,
    overwrite: bool = False,
    on_epoch=None,
) -> tuple[torch.nn.Module, History, dict]:
    """Train ``strategy`` as a stand-alone network. With ``inherit_from`` (a template run), it
    is extracted from the template with its weights; otherwise built fresh by the model zoo."""
    from workbench.models import build_model

    out = Path(out)
    run = Run(out)
    data_kw = dict(data_kw or {})
    check_data_args(dataset, root, data_kw, splits=("train", "val", "test"))
    dist_.init_from_env(train_config.device)
    if dist_.is_main():
        run.precheck("standalone", resume=resume, overwrite=overwrite)
    splits = open_splits(dataset, root=root, splits=("train", "val", "test"), **data_kw)
    k = _num_classes(splits["train"])
    torch.manual_seed(train_config.seed)
    if inherit_from is not None:
        template, _ = load_template(inherit_from)
        _check_classes(template.num_classes, k, dataset)
        strategy = template.on_scaffold(strategy)
        model = template.extract(strategy)
        model_kwargs = template.config.model_kwargs()
    else:
        model_kwargs = {"num_classes": k, **(model_kw or {})}
        model = build_model(strategy, **model_kwargs)
    spec = {
        "kind": "standalone", "strategy": strategy.to_dict(), "dataset": dataset, "root": root,
        "data_kw": data_kw, "model_kwargs": model_kwargs,
        "inherit_from": str(inherit_from) if inherit_from else None,
        "train_config": train_config.to_dict(),
        "versions": {"workbench": __version__, "torch": torch.__version__},
        "environment": environment(train_config.device),
    }
    same = ("kind", "strategy", "dataset", "root", "data_kw", "model_kwargs", "inherit_from")
    with run.start(spec, resume=resume, overwrite=overwrite, same=same, main=dist_.is_main()) as resumed:
        return _train_standalone(run, strategy, model, model_kwargs, splits, train_config, resumed, on_epoch)


def _train_standalone(run: Run, strategy: Strategy, model, model_kwargs: dict, splits: dict,
                      train_config: TrainConfig, resume: bool, on_epoch):
    from workbench.engine.loop import evaluate

    out = run.path
    history = train(model, splits["train"], splits["val"], train_config, out_dir=out, resume=resume,
                    label=strategy.name or strategy.code,
                    model_kwargs=model_kwargs, on_epoch=on_epoch)
    from workbench.data.dataset import collate_drop_none

    test_set = splits["test"]
    if dist_.is_distributed():
        test_set = torch.utils.data.Subset(test_set, dist_.shard(range(len(test_set))))
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=train_config.batch_size,
                                              collate_fn=collate_drop_none)
    test = evaluate(model, test_loader, dist_.device_for_rank(train_config.device), gather=True)
    if dist_.is_main():
        skipped = {split: skipped_videos(ds) for split, ds in splits.items()}
        run.write_result({"strategy": strategy.to_dict(), "test": test, "val_top1": history.val_acc[-1],
                          "epochs": len(history), "environment": environment(train_config.device),
                          "skipped_videos": {"count": sum(len(v) for v in skipped.values()),
                                             "per_epoch": history.skipped, **skipped}})
    return model, history, test


#: the previous release's name, kept for one release
train_supernet = train_template


def train_cached(job) -> dict:
    """One stand-alone training into its own folder, reused when finished and resumed when
    interrupted; ``job`` = (strategy dict, folder, run spec with dataset / root / data_kw, model
    kwargs, TrainConfig dict). Module level and picklable, so that worker processes can run it
    (:func:`workbench.engine.parallel.run_jobs`). Returns the folder's result."""
    from workbench.engine import distributed as dist_
    from workbench.runs import Run
    from workbench.strategy import Strategy

    strategy, folder, spec, model_kw, tc = job
    tc = TrainConfig.from_dict(tc)
    with dist_.local():  # one training per process, no data parallelism
        return Run(folder).reuse_or(lambda resume: train_strategy(
            Strategy.from_dict(strategy), folder, dataset=spec["dataset"], root=spec.get("root"),
            data_kw=spec["data_kw"], model_kw=model_kw, train_config=tc, resume=resume))
