"""FusionBench: a truth table of the fusion space, and any predictor scored against it in seconds.

``bench build`` trains a fixed list of strategies of the template backbone stand-alone, for
several data *settings* and seeds, and stores what every training gave (test and validation
top-1, the learning curve on a fixed validation subset, train loss, params, MACs) in one netCDF,
``fusionbench.nc`` (dims ``setting x strategy x seed x epoch``). ``bench score`` then scores a
template's estimates for exactly those strategies against the table: no training needed.

The fast path (:func:`train_item`) trains exactly what :func:`workbench.pipeline.train_strategy`
trains (same initial weights, batch order, schedule and engine step: tested equal), but

* the splits are rendered once per setting, stored as arrays and memory-mapped by every worker;
* batches are sliced from memory (no DataLoader, no per-clip Python);
* each epoch is scored on a fixed subset of ``curve_clips`` validation clips (the learning
  curve); the full validation and test splits once, at the end;
* no per-epoch checkpoint: an item takes about a minute and is the unit of resumption;
* one thread per worker process, several workers: small conv3d kernels do not use a second
  thread (52 ms per step with 2 threads, 54 ms with 1), so two one-thread trainings run in the
  time of one two-thread training.

Items are claimed with an OS lock (``items/<setting>/<key>-s<seed>.lock``), so any number of
processes (``--workers``, several ``bench build`` commands, ``torchrun``) share one build; a
killed worker's item is claimed again; every finished item is one JSON written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from workbench.runs import atomic_write_bytes, cache_key, environment
from workbench.strategy import Strategy

__all__ = ["SETTINGS", "DEVELOPMENT", "HELD_OUT", "BenchConfig", "bench_strategies", "build", "collect",
           "load_table", "train_item", "setting_data", "truth_quality", "score_estimates", "matching_setting",
           "score_run", "score_report", "readme", "fidelity", "status", "flattening_epoch", "build_command",
           "write_readme"]

# Each setting: a synthetic benchmark whose best strategy stays below ~0.95 test top-1 at the
# budget (appearance-only data lets every strategy reach ~1.0 and leaves nothing to rank), with a
# test split of >= 2,000 clips so that evaluation noise is small against training noise.
SETTINGS: dict[str, dict] = {
    "mixed": {"dataset": "synthetic-mixed",
              "data_kw": {"train_per_class": 100, "val_per_class": 50, "test_per_class": 250,
                          "noise": 0.08, "distractors": 1, "difficulty": 0.3}},
    "motion": {"dataset": "synthetic-motion",
               "data_kw": {"train_per_class": 200, "val_per_class": 100, "test_per_class": 500,
                           "noise": 0.1, "difficulty": 0.5, "camera_shake": 0.02}},
    "shake": {"dataset": "synthetic-mixed",
              "data_kw": {"train_per_class": 100, "val_per_class": 50, "test_per_class": 250,
                          "camera_shake": 0.04, "distractors": 2, "motion_classes": 4, "num_classes": 16}},
    "long": {"dataset": "synthetic-motion",
             "data_kw": {"frames": 16, "num_classes": 8, "train_per_class": 100, "val_per_class": 50,
                         "test_per_class": 250, "noise": 0.1, "difficulty": 0.5}},
}
#: the trust protocol's split (reports/trust/protocol.json): choices are made on development
#: settings only; held-out settings are only reported
DEVELOPMENT = ("mixed", "motion")
HELD_OUT = ("shake", "long")


@dataclass(frozen=True)
class BenchConfig:
    """The stand-alone budget and the table's shape (stored in the table)."""

    # 30, not 20: at 20 epochs one synthetic-motion training in four never leaves its plateau and the
    # seeds disagree; 30 halves the seed noise (reports/fusionbench/budget-e30/ANALYSIS.md)
    epochs: int = 30
    batch_size: int = 16
    lr: float = 6e-3
    optimizer: str = "adamw"
    seeds: tuple[int, ...] = (0, 1, 2)
    curve_clips: int = 200  # validation clips scored every epoch
    growth: int = 8  # the template backbone: densenet-tiny, paper unit set, spatial scaffold
    bn_size: int = 2
    uniform: int = 32  # strategies drawn uniformly over the space
    gate_draws: int = 32  # strategies drawn from a trained template's gates
    strategy_seed: int = 0
    threads: int = 1  # torch threads per worker
    # paired design: every layer initialised from a stream keyed by (seed, its name), so that the
    # strategies of one seed start their coinciding layers from the same weights (batches are
    # shared in any case: the order is a function of the seed)
    paired: bool = False

    def budget(self) -> dict:
        out = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer}
        if self.paired:
            out["paired"] = True
        return out

    def model_kw(self, num_classes: int) -> dict:
        from workbench.template.network import TemplateConfig

        return TemplateConfig(num_classes=num_classes, growth=self.growth, bn_size=self.bn_size).model_kwargs()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d


# ---- strategies ------------------------------------------------------------------------------
def bench_strategies(config: BenchConfig = BenchConfig(), *, template_run: str | Path | None = None) -> list[dict]:
    """The table's strategies: the literature presets that fit the template, ``uniform`` drawn
    uniformly over the space, ``gate_draws`` drawn from a trained template's gates (default: the
    shipped one); duplicates removed, in a fixed order. Each: ``{"strategy", "source", "name"}``."""
    import torch

    from workbench.template.network import TemplateNetwork, load_template

    if template_run is None:
        template_run = Path(__file__).resolve().parents[2] / "checkpoints" / "synthetic-mixed" / "template"
    template, _ = load_template(template_run)
    if (template.config.growth, template.config.bn_size, template.backbone) != (config.growth, config.bn_size,
                                                                                 "densenet-tiny"):
        raise ValueError(f"the gate-draw template {template_run} is not the bench's template backbone")
    space = TemplateNetwork(num_classes=2, growth=config.growth, bn_size=config.bn_size)
    out, seen = [], set()

    def add(s: Strategy, source: str, name: str | None = None) -> None:
        if s.key not in seen:
            seen.add(s.key)
            out.append({"strategy": s, "source": source, "name": name or s.code})

    for p in space.presets():
        add(Strategy(p.backbone, p.units, p.stem), "preset", p.name)
    g = torch.Generator().manual_seed(config.strategy_seed)
    n0 = len(out)
    while len(out) < n0 + config.uniform:
        idx = torch.randint(len(space.units), (space.num_layers,), generator=g).tolist()
        add(Strategy(space.backbone, tuple(space.units[i] for i in idx), space.config.stem), "uniform")
    n1 = len(out)
    tries = 0
    while len(out) < n1 + config.gate_draws and tries < 100:
        for s in template.sample(config.gate_draws, g):
            if len(out) < n1 + config.gate_draws:
                add(s, "gates")
        tries += 1
    return out


# ---- data ---------------------------------------------------------------------------------------
def setting_data(setting: str, cache_dir: str | Path | None = None, *, splits=("train", "val", "test")) -> dict:
    """``{split: (clips float32 N 3 T H W, labels int64 N)}`` of a setting, rendered once into
    ``cache_dir`` (``.npy``, memory-mapped on later calls) or in memory when ``cache_dir`` is None."""
    from workbench.studies.pipeline import open_splits

    spec = _setting(setting)
    out = {}
    for split in splits:
        path = None if cache_dir is None else Path(cache_dir) / f"{setting}-{cache_key(spec)[:10]}-{split}"
        if path is not None and (path.with_suffix(".x.npy").exists() and path.with_suffix(".y.npy").exists()):
            out[split] = (np.load(path.with_suffix(".x.npy"), mmap_mode="r"), np.load(path.with_suffix(".y.npy")))
            continue
        ds = open_splits(spec["dataset"], splits=(split,), **spec["data_kw"])[split]
        items = [ds[i] for i in range(len(ds))]
        x = np.stack([np.asarray(it[0], dtype=np.float32) for it in items])
        y = np.asarray([int(it[1]) for it in items], dtype=np.int64)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix, arr in ((".x.npy", x), (".y.npy", y)):
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, arr)
                os.replace(tmp, path.with_suffix(suffix))
            x = np.load(path.with_suffix(".x.npy"), mmap_mode="r")
        out[split] = (x, y)
    # the class count from the dataset's definition (cheap: nothing is rendered without cache)
    first = open_splits(spec["dataset"], splits=("train",), **{**spec["data_kw"], "cache": False})["train"]
    out["classes"] = len(first.classes)
    return out


def _setting(name: str) -> dict:
    if name not in SETTINGS:
        raise ValueError(f"unknown bench setting {name!r}; expected one of: {', '.join(SETTINGS)}")
    return SETTINGS[name]


# ---- one training -------------------------------------------------------------------------------
def _batches(x, y, idx_lists):
    import torch

    for idx in idx_lists:
        idx = np.asarray(idx)
        yield torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx])


def _eval_batches(x, y, batch: int):
    return list(_batches(x, y, [range(i, min(i + batch, len(y))) for i in range(0, len(y), batch)]))


def train_item(strategy: Strategy, data: dict, config: BenchConfig, seed: int, *, device: str = "cpu",
               progress: bool = False) -> dict:
    """Train ``strategy`` stand-alone on a setting's arrays (:func:`setting_data`); returns the
    item's record. Same initial weights, batch order, schedule and step as
    :func:`workbench.pipeline.train_strategy` with the same :class:`~workbench.train.TrainConfig`."""
    import torch

    from workbench.engine import distributed as dist_
    from workbench.engine.cost import count_cost
    from workbench.engine.loop import Loop, TrainConfig, evaluate
    from workbench.models import build_model

    tc = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                     optimizer=config.optimizer, seed=seed, progress=False, device=device)
    k = int(data["classes"])
    model_kw = {"num_classes": k, **{a: b for a, b in config.model_kw(k).items() if a != "num_classes"}}
    torch.manual_seed(seed)
    model = build_model(strategy, **model_kw)
    if config.paired:
        from workbench.models.base import paired_init

        paired_init(model, seed)
    xtr, ytr = data["train"]
    xva, yva = data["val"]
    xte, yte = data["test"]
    curve_idx = np.sort(np.random.default_rng(12345).choice(len(yva), min(config.curve_clips, len(yva)),
                                                            replace=False))

    def batches(epoch: int):  # the order make_train_loader gives a dataset of these arrays
        sampler = dist_.ShardedBatchSampler(len(ytr), tc.batch_size, seed=tc.seed * 100_003 + epoch, shuffle=True,
                                            drop_last=False, rank=0, world_size=1)
        return _batches(xtr, ytr, sampler)

    def report(history, _model) -> None:
        print(f"  epoch {history.epoch[-1] + 1}/{tc.epochs}: loss {history.train_loss[-1]:.3f} "
              f"curve top-1 {history.val_acc[-1]:.3f}", flush=True)

    t0 = time.perf_counter()
    loop = Loop(model, None, None, tc, batches=batches, val_batches=_eval_batches(xva[curve_idx], yva[curve_idx], 64))
    history = loop.run(on_epoch=report if progress else None)
    rec = {"curve_top1": history.val_acc, "train_loss": history.train_loss, "train_top1": history.train_acc}
    val = evaluate(model, _eval_batches(xva, yva, 64), device)
    test = evaluate(model, _eval_batches(xte, yte, 64), device)
    cost = count_cost(model, tuple(int(s) for s in xtr.shape[1:]))
    rec.update(
        strategy=strategy.to_dict(), code=strategy.code, seed=seed, val_top1=val["top1"], test_top1=test["top1"],
        test_n=test["n"], val_n=val["n"], params=cost.params, macs=cost.macs,
        seconds=time.perf_counter() - t0, environment=environment(device), budget=config.budget(),
    )
    return rec


# ---- the build ---------------------------------------------------------------------------------------
@dataclass
class _Item:
    setting: str
    index: int
    entry: dict = field(repr=False)
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.entry['strategy'].key}-s{self.seed}"


def _items(settings, strategies, seeds) -> list[_Item]:
    # seed-major: after the first pass every strategy has a seed on every setting
    return [_Item(st, i, e, sd) for sd in seeds for i, e in enumerate(strategies) for st in settings]


@contextlib.contextmanager
def _claim(path: Path):
    """An exclusive, non-blocking OS lock on ``path``; yields False when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _manifest(out: Path, config: BenchConfig, settings, strategies) -> dict:
    return {"config": config.to_dict(), "settings": {s: SETTINGS[s] for s in settings},
            "strategies": [{"code": e["strategy"].code, "key": e["strategy"].key, "source": e["source"],
                            "name": e["name"], "strategy": e["strategy"].to_dict()} for e in strategies]}


def build(out: str | Path, *, settings=None, config: BenchConfig = BenchConfig(), workers: int = 1,
          limit: int | None = None, deadline_s: float | None = None, progress: bool = True,
          first_strategies: int | None = None) -> dict:
    """Train every (setting, strategy, seed) item not yet in ``out/items``; returns counts.

    ``workers`` one-thread processes share the items; ``limit`` stops after that many items of
    this call; ``deadline_s`` stops claiming new items after that many seconds; ``first_strategies``
    keeps the first N of the list (a smaller table, such as a shorter budget's: the list is fixed
    for a folder). Safe to run from several processes at once and to kill at any moment."""
    out = Path(out)
    settings = list(settings or SETTINGS)
    for s in settings:
        _setting(s)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if first_strategies is not None and first_strategies < 3:
        raise ValueError(f"first_strategies must be >= 3, got {first_strategies}")
    strategies = bench_strategies(config)[:first_strategies]
    manifest = _manifest(out, config, settings, strategies)
    mpath = out / "manifest.json"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".manifest.lock", "a+") as lock:  # builds started together merge, none is lost
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge_manifest(out, mpath, manifest, config)
    # render every setting's splits once, before the workers start
    for s in settings:
        setting_data(s, out / "cache")
    t0 = time.perf_counter()
    if workers == 1:
        done = _work(out, settings, config, strategies, limit, deadline_s, progress)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        per = None if limit is None else math.ceil(limit / workers)
        with ctx.Pool(workers) as pool:
            parts = pool.starmap(_work_entry, [(str(out), settings, config, per, deadline_s, progress,
                                                first_strategies)] * workers)
        done = sum(parts)
    total = len(_items(settings, strategies, config.seeds))
    have = sum((out / "items" / it.setting / f"{it.name}.json").exists()
               for it in _items(settings, strategies, config.seeds))
    return {"trained": done, "finished": have, "total": total, "seconds": round(time.perf_counter() - t0, 1)}


def _merge_manifest(out: Path, mpath: Path, manifest: dict, config: BenchConfig) -> None:
    """Write ``manifest`` into ``out``, merged with the one there (settings and seeds may be added
    to a table; nothing else may change). The caller holds the folder's manifest lock."""
    if mpath.exists():
        old = json.loads(mpath.read_text())
        free = ("seeds", "threads")  # seeds may be added; threads change speed, not what is trained
        defaults = BenchConfig().to_dict()  # a field added later reads as its default in an older table
        fixed = {k: old["config"].get(k, defaults[k]) for k in manifest["config"] if k not in free}
        if fixed != {k: v for k, v in manifest["config"].items() if k not in free} \
                or old["strategies"] != manifest["strategies"]:
            raise ValueError(f"{out} holds a table built with another configuration or strategy list; "
                             "pick another --out")
        for name, spec in old["settings"].items():
            if name in manifest["settings"] and manifest["settings"][name] != spec:
                raise ValueError(f"setting {name!r} of {out} was built with other data ({spec}); pick another --out")
        manifest["settings"] = {**old["settings"], **manifest["settings"]}
        manifest["config"]["seeds"] = sorted(set(old["config"]["seeds"]) | set(config.seeds))
    atomic_write_bytes(mpath, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


def _work_entry(out, settings, config, limit, deadline_s, progress, first_strategies=None) -> int:
    return _work(Path(out), settings, config, bench_strategies(config)[:first_strategies], limit, deadline_s,
                 progress)


def _work(out: Path, settings, config: BenchConfig, strategies, limit, deadline_s, progress) -> int:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _work_items(out, settings, config, strategies, limit, deadline_s, progress)
    finally:
        torch.set_num_threads(threads)  # the caller's process gets its thread count back


def _work_items(out: Path, settings, config: BenchConfig, strategies, limit, deadline_s, progress) -> int:
    t0 = time.perf_counter()
    data = {}
    done = 0
    for it in _items(settings, strategies, config.seeds):
        if limit is not None and done >= limit:
            break
        if deadline_s is not None and time.perf_counter() - t0 > deadline_s:
            break
        path = out / "items" / it.setting / f"{it.name}.json"
        if path.exists():
            continue
        with _claim(path.with_suffix(".lock")) as mine:
            if not mine or path.exists():
                continue
            if it.setting not in data:
                data[it.setting] = setting_data(it.setting, out / "cache")
            s = it.entry["strategy"]
            rec = train_item(s, data[it.setting], config, it.seed)
            rec.update(setting=it.setting, source=it.entry["source"], name=it.entry["name"], key=s.key)
            atomic_write_bytes(path, (json.dumps(rec, sort_keys=True) + "\n").encode())
            done += 1
            if progress:
                print(f"[{os.getpid()}] {it.setting} {s.code} seed {it.seed}: test {rec['test_top1']:.3f} "
                      f"({rec['seconds']:.0f} s)", flush=True)
    return done


# ---- the table ------------------------------------------------------------------------------------------
def collect(out: str | Path, *, write: bool = True):
    """Gather ``out/items`` into an xarray Dataset (``setting x strategy x seed x epoch``; missing
    items are NaN) and write ``out/fusionbench.nc``."""
    import xarray as xr

    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    cfg = manifest["config"]
    settings = sorted(manifest["settings"], key=lambda s: list(SETTINGS).index(s) if s in SETTINGS else 99)
    strategies = manifest["strategies"]
    seeds, epochs = cfg["seeds"], cfg["epochs"]
    shape = (len(settings), len(strategies), len(seeds))
    f = {k: np.full(shape, np.nan) for k in ("test_top1", "val_top1", "seconds")}
    curves = {k: np.full((*shape, epochs), np.nan) for k in ("curve_top1", "train_loss")}
    params = np.full(shape[:2], np.nan)
    macs = np.full(shape[:2], np.nan)
    envs = set()
    for a, st in enumerate(settings):
        for b, e in enumerate(strategies):
            for c, sd in enumerate(seeds):
                p = out / "items" / st / f"{e['key']}-s{sd}.json"
                if not p.exists():
                    continue
                try:
                    r = json.loads(p.read_text())
                except json.JSONDecodeError as err:
                    raise ValueError(f"corrupt bench item {p}: {err}; delete it to retrain") from None
                for k in f:
                    f[k][a, b, c] = r[k]
                for k in curves:
                    curves[k][a, b, c, :len(r[k])] = r[k]
                params[a, b], macs[a, b] = r["params"], r["macs"]
                env = r.get("environment", {})
                envs.add(f"torch {env.get('torch')}, {env.get('threads')} thread(s), {env.get('device')}")
    ds = xr.Dataset(
        {**{k: (("setting", "strategy", "seed"), v) for k, v in f.items()},
         **{k: (("setting", "strategy", "seed", "epoch"), v) for k, v in curves.items()},
         "params": (("setting", "strategy"), params), "macs": (("setting", "strategy"), macs)},
        coords={"setting": settings, "strategy": [e["code"] for e in strategies], "seed": seeds,
                "epoch": np.arange(1, epochs + 1), "source": ("strategy", [e["source"] for e in strategies]),
                "name": ("strategy", [e["name"] for e in strategies]),
                "key": ("strategy", [e["key"] for e in strategies])},
        attrs={"config": json.dumps(cfg), "settings": json.dumps(manifest["settings"]),
               "environments": "; ".join(sorted(envs))},
    )
    if write:
        tmp = out / "fusionbench.nc.tmp"
        ds.to_netcdf(tmp)
        os.replace(tmp, out / "fusionbench.nc")
    return ds


def status(out: str | Path) -> dict:
    """How far a build has come: finished trainings per setting and seed, against the manifest."""
    out = Path(out)
    mpath = out / "manifest.json"
    if not mpath.is_file():
        raise FileNotFoundError(f"{out} holds no bench table (no manifest.json); start one with `workbench bench build`")
    manifest = json.loads(mpath.read_text())
    keys = [e["key"] for e in manifest["strategies"]]
    seeds = manifest["config"]["seeds"]
    table = {}
    for setting in manifest["settings"]:
        table[setting] = {str(sd): sum((out / "items" / setting / f"{k}-s{sd}.json").is_file() for k in keys)
                          for sd in seeds}
    done = sum(v for per in table.values() for v in per.values())
    return {"strategies": len(keys), "seeds": seeds, "settings": table, "finished": done,
            "total": len(keys) * len(seeds) * len(table)}


def load_table(path: str | Path):
    """The table (``fusionbench.nc`` or its folder) as an xarray Dataset."""
    import xarray as xr

    p = Path(path)
    if p.is_dir():
        p = p / "fusionbench.nc"
    if not p.exists():
        raise FileNotFoundError(f"no bench table at {p}; build one with `workbench bench build`")
    with xr.open_dataset(p) as ds:
        return ds.load()


# the scoring half lives in its own module; its names are part of this module's API
from workbench.studies.fusionbench_score import (  # noqa: E402
    build_command,
    fidelity,
    flattening_epoch,
    matching_setting,
    readme,
    score_estimates,
    score_report,
    score_run,
    truth_quality,
)


def write_readme(out: str | Path) -> Path:
    """Collect ``out``'s items, then write its README.md and the learning-curve figure (curves.png)."""
    from workbench.plots.paper import save_figure
    from workbench.plots.trust import bench_curves

    out = Path(out)
    collect(out)
    table = load_table(out)
    (out / "README.md").write_text(readme(table, out))
    fig = bench_curves(table)
    save_figure(fig, out / "curves", formats=("png",), dpi=200)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out / "README.md"
