"""The Gradient-Blending study: is naive joint training worse than the best single modality, and
does G-Blend recover it?

For each seed it trains, on the same data and budget:

* one single-modality network per modality (its own encoder and head);
* the naive joint network (encoders of all modalities, concatenated features, one fused head);
* offline G-Blend: the joint network with every head, retrained with fixed weights estimated
  from the single-modality runs and the naive joint run over ``window`` (epochs ``N, N + n``);
* online G-Blend: the joint network with every head, weights re-estimated every ``super_epoch``.

Each run is a ``workbench streams train`` folder under ``OUT/runs`` (cached: a finished run is not
trained again). The table scores each network on the test split by its main head: a single
modality's head; for the joint networks, with ``score="blend"`` (the default) the fused head for
naive training and ``sum_k w_k softmax_k`` over the heads for G-Blend with its final weights, with
``score="fused"`` the fused head of every joint network (G-Blend's weights are loss weights: they
say how well a head's gradient generalises, not how good its prediction is; an audio head can earn
a large weight while predicting worse than the fused head). Both are kept (``fused_top1``,
``blend_top1``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..runs import Run, environment

__all__ = ["ABLATION", "ABLATION_COMPARISONS", "ablation_comparisons", "gblend_study", "gblend_table", "gblend_figure",
           "online_stability", "stream_ablation", "ablation_table"]

from workbench.plots.streams import gblend_figure  # noqa: E402  (drawn in plots/, re-exported here)


def _settings_differ(spec: dict, kw: dict) -> list[str]:
    """What a study asks of a run folder that the run there was not trained with (a study's folder
    rerun with other settings must not read old results back as new ones)."""
    diffs = []
    for key in ("fusion", "blend", "super_epoch"):
        if key in kw and spec.get(key) != kw[key]:
            diffs.append(f"{key} {spec.get(key)!r} vs {kw[key]!r}")
    if "data_kw" in kw and spec.get("data_kw") != dict(kw["data_kw"] or {}):
        diffs.append(f"data {spec.get('data_kw')} vs {dict(kw['data_kw'] or {})}")
    have = spec.get("model_kw") or {}
    for k, v in (kw.get("model_kw") or {}).items():
        if have.get(k) != v:
            diffs.append(f"{k} {have.get(k)!r} vs {v!r}")
    online = ({"noise_floor": bool(kw.get("noise_floor")), "smoothing": float(kw.get("smoothing") or 0.0)}
              if kw.get("noise_floor") or kw.get("smoothing") else None)
    if spec.get("online") != online:
        diffs.append(f"online estimates {spec.get('online')} vs {online}")
    tc = kw.get("train_config")
    if tc is not None:
        want = {k: v for k, v in tc.to_dict().items() if k not in ("progress", "device")}
        got = {k: v for k, v in (spec.get("train_config") or {}).items() if k in want}
        if got != want:
            diffs.append("training " + ", ".join(f"{k} {got.get(k)!r} vs {v!r}" for k, v in want.items()
                                                  if got.get(k) != v))
    return diffs


def _run(folder: Path, **kw) -> dict:
    from .run import run_streams

    run = Run(folder)
    if run.has_spec():
        diffs = _settings_differ(run.spec(), kw)
        if diffs:
            raise ValueError(f"{folder} holds a run with other settings ({'; '.join(diffs)}): the study's --out "
                             "belongs to another configuration; pick another --out or remove that folder")
    res = run.reuse_or(lambda resume: run_streams(folder, resume=resume, **kw))
    return {**res, "history": run.history()}


def gblend_study(out, *, dataset: str = "synthetic-mixed", modalities: Sequence[str] = ("rgb", "audio"),
                 data_kw: Mapping | None = None, model_kw: Mapping | None = None, train_config=None,
                 seeds: Sequence[int] = (0,), super_epoch: int = 2, window: tuple[int, int] | None = None,
                 noise_floor: bool = False, smoothing: float = 0.0, score: str = "blend", progress: bool = True):
    """Run the study; returns an ``xarray.Dataset`` (run x seed) and writes ``gblend.nc`` and ``gblend.md``.
    ``noise_floor`` and ``smoothing``: online G-Blend's estimates (see
    :func:`~workbench.streams.train.train_multimodal`). ``score``: ``"blend"`` or ``"fused"``,
    what a G-Blend network is scored by (see the module's docstring)."""
    import xarray as xr

    from workbench.engine.config import TrainConfig

    from ..analysis import save_study
    from .gblend import offline_weights

    out = Path(out)
    cfg = train_config or TrainConfig(epochs=12, batch_size=16, lr=3e-3)
    mods = tuple(modalities)
    if len(mods) < 2:
        raise ValueError(f"a G-Blend study needs at least two modalities, got {list(mods)}")
    if score not in ("blend", "fused"):
        raise ValueError(f"score must be 'blend' or 'fused', got {score!r}")
    window = tuple(window) if window is not None else (cfg.epochs // 4, cfg.epochs // 2)
    if not 0 <= window[0] < window[1] <= cfg.epochs:
        raise ValueError(f"window must be (N, N + n) within 0..{cfg.epochs} epochs, got {window}")
    common = {"dataset": dataset, "fusion": "gblend", "data_kw": dict(data_kw or {}), "model_kw": dict(model_kw or {})}
    names = [f"{m} only" for m in mods] + ["naive joint", "G-Blend offline", "G-Blend online"]
    top1 = np.zeros((len(names), len(seeds)))
    fused = np.full((len(names), len(seeds)), np.nan)
    blended = np.full((len(names), len(seeds)), np.nan)
    weights = {n: [] for n in names}
    online_windows = []
    for j, seed in enumerate(seeds):
        c = replace(cfg, seed=seed, progress=progress)
        res = {}
        for m in mods:
            res[f"{m} only"] = _run(out / "runs" / f"{m}-s{seed}", modalities=(m,), train_config=c, **common)
        res["naive joint"] = _run(out / "runs" / f"naive-s{seed}", modalities=mods, weights={"fused": 1.0},
                                  train_config=c, **common)
        sources = {m: (res[f"{m} only"]["history"], m) for m in mods}
        sources["fused"] = (res["naive joint"]["history"], "fused")
        w_off = offline_weights(sources, window)
        res["G-Blend offline"] = _run(out / "runs" / f"offline-s{seed}", modalities=mods, weights=w_off,
                                      train_config=c, **common)
        res["G-Blend online"] = _run(out / "runs" / f"online-s{seed}", modalities=mods, blend="online",
                                     super_epoch=super_epoch, noise_floor=noise_floor, smoothing=smoothing,
                                     train_config=c, **common)
        online_windows.append([w["weights"] for w in res["G-Blend online"]["history"].get("blend_windows", [])])
        for i, n in enumerate(names):
            test = res[n]["test"]
            fused[i, j] = test["fused"]["top1"] if "fused" in test else np.nan
            blended[i, j] = test["blend"]["top1"] if "blend" in test else np.nan
            top1[i, j] = test[n.removesuffix(" only")]["top1"] if n.endswith(" only") else \
                test.get("blend", test["fused"])["top1"] if score == "blend" else fused[i, j]
            weights[n].append(res[n]["final_weights"])
    ds = xr.Dataset(
        {"test_top1": (("run", "seed"), top1), "mean_top1": ("run", top1.mean(1)),
         "fused_top1": (("run", "seed"), fused), "blend_top1": (("run", "seed"), blended)},
        coords={"run": names, "seed": list(seeds)},
        attrs={"dataset": dataset, "modalities": json.dumps(list(mods)), "data_kw": json.dumps(common["data_kw"]),
               "train_config": json.dumps(cfg.to_dict()), "window": json.dumps(list(window)),
               "super_epoch": super_epoch, "weights": json.dumps(weights),
               "online": json.dumps({"noise_floor": bool(noise_floor), "smoothing": float(smoothing)}),
               "score": score,
               "online_windows": json.dumps(online_windows),
               "environment": json.dumps(environment(cfg.device))},  # versions, threads, device
    )
    save_study(ds, gblend_table(ds), out, "gblend")
    return ds


def _env_text(ds) -> str:
    """`` torch X, N threads, device`` of a study (older studies did not record it)."""
    if "environment" not in ds.attrs:
        return " (thread count not recorded)"
    e = json.loads(ds.attrs["environment"])
    return f" torch {e.get('torch')}, {e.get('threads')} thread(s), {e.get('device')}."


def gblend_table(ds) -> str:
    """Markdown: test top-1 per run (mean and per seed), the loss weights, the paired comparisons
    with their 95% intervals, online G-Blend's weight stability, and the verdict."""
    cfg = json.loads(ds.attrs["train_config"])
    weights = json.loads(ds.attrs["weights"])
    seeds = [int(x) for x in ds["seed"].values]
    online = json.loads(ds.attrs.get("online", "{}"))
    online_text = (f" Online estimates: dO^2 {'plus its noise variance' if online.get('noise_floor') else 'alone'}"
                   f", smoothing {online.get('smoothing', 0.0):g}." if online else "")
    lines = [f"`{ds.attrs['dataset']}` with {', '.join(json.loads(ds.attrs['modalities']))}; data {ds.attrs['data_kw']}; "
             f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, {cfg['optimizer']} lr {cfg['lr']}; offline window "
             f"{ds.attrs['window']}, super-epoch {ds.attrs['super_epoch']}.{online_text} Seeds {seeds}." + _env_text(ds),
             "", "A joint network is scored by " + ("its fused head." if ds.attrs.get("score") == "fused" else
                                                    "its fused head (naive) or its heads weighted by the final "
                                                    "G-Blend weights (G-Blend)."), "",
             f"| run | test top-1 (mean) | per seed | fused head alone | heads weighted | loss weights (seed "
             f"{seeds[0]}, final) |",
             "|---|---|---|---|---|---|"]

    def mean_of(var: str, i: int) -> str:
        if var not in ds or not np.isfinite(ds[var].values[i]).any():
            return "-"
        return f"{np.nanmean(ds[var].values[i]):.3f}"

    for i, n in enumerate(ds["run"].values):
        w = weights[str(n)][0]
        lines.append(f"| {n} | {ds['mean_top1'].values[i]:.3f} | "
                     + ", ".join(f"{v:.3f}" for v in ds["test_top1"].values[i]) + f" | {mean_of('fused_top1', i)} | "
                     + f"{mean_of('blend_top1', i)} | " + ", ".join(f"{k} {v:.2f}" for k, v in w.items()) + " |")
    v = gblend_verdict(ds)
    head = (f"Best single modality: {v['best_single']} ({v['best_single_top1']:.3f}). Naive joint: {v['naive']:.3f}. "
            f"G-Blend offline {v['offline']:.3f}, online {v['online']:.3f}. ")
    if v["seeds"] < 2:
        (nd, _), (gd, _) = v["naive_minus_best"], v["gblend_minus_best"]
        lines += ["", head + f"One seed ({seeds[0]}): naive joint {nd:+.3f} and {v['best_gblend']} {gd:+.3f} against "
                  "the best single modality, differences without an interval: no verdict (run more seeds)."]
    else:
        dof = v["seeds"] - 1
        lines += ["", f"Paired differences in test top-1 over seeds {seeds} (same seed, same data): mean, one "
                  f"standard error, and the 95% t-interval ({dof} degree{'s' if dof > 1 else ''} of freedom).", "",
                  "| comparison | mean | ± s.e. | 95% interval | per seed | verdict |", "|---|---|---|---|---|---|"]
        for c in v["comparisons"]:
            lo, hi = c["interval"]
            lines.append(f"| {c['a']} − {c['b']} | {c['mean']:+.3f} | {c['se']:.3f} | [{lo:+.3f}, {hi:+.3f}] | "
                         + ", ".join(f"{x:+.3f}" for x in c["per_seed"]) + f" | {c['verdict'] or '-'} |")
    if 2 <= v["seeds"] < MIN_SEEDS:
        lines += ["", head + f"Two seeds: intervals on one degree of freedom, no verdict (a verdict needs "
                  f"{MIN_SEEDS} seeds)."]
    elif v["seeds"] >= MIN_SEEDS:
        lines += ["", head + f"At 95%: naive joint is {'below' if v['naive_below_best'] else 'not below'} the best "
                  f"single modality; offline G-Blend {_says(v, 'G-Blend offline')}; online G-Blend "
                  f"{_says(v, 'G-Blend online')}."]
    stab = online_stability(ds)
    if stab is not None and v["seeds"] > 1:
        lines += ["", f"Online G-Blend's weights over seeds {seeds}: mean change between consecutive super-epochs "
                  f"{stab['mean_jump']:.3f} (largest {stab['max_jump']:.3f}); spread over seeds of the final weights "
                  + ", ".join(f"{k} {m:.2f} ± {sd:.2f}" for k, (m, sd) in stab["final"].items()) + " (mean ± SD)."]
    return "\n".join(lines) + "\n"


def _says(v: dict, run: str) -> str:
    """``beats / is below / is not distinguishable from`` the best single modality and naive joint."""
    words = {"above": "beats", "below": "is below", "not distinguishable": "is not distinguishable from"}
    c = {(x["a"], x["b"]): x["verdict"] for x in v["comparisons"]}
    return (f"{words[c[(run, v['best_single'])]]} the best single modality and "
            f"{words[c[(run, 'naive joint')]]} naive joint training")


#: Seeds a verdict needs: with two, the t-interval rests on one degree of freedom, and two equal
#: differences (a coincidence at a few hundred test clips) give it zero width.
MIN_SEEDS = 3


def _paired(ds, a: str, b: str, var: str = "test_top1") -> dict:
    """Mean, standard error and 95% t-interval over seeds of ``var(a) - var(b)`` (same seed, same
    data); with one seed the standard error and interval are NaN (no interval to give). The
    verdict is None under :data:`MIN_SEEDS` seeds, otherwise ``above`` / ``below`` when the
    interval excludes zero, else ``not distinguishable``."""
    from scipy import stats

    runs = [str(r) for r in ds["run"].values]
    d = ds[var].values[runs.index(a)] - ds[var].values[runs.index(b)]
    n = len(d)
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * se) if n > 1 else float("nan")
    m = float(d.mean())
    verdict = None if n < MIN_SEEDS else "above" if m - half > 0 else "below" if m + half < 0 else "not distinguishable"
    return {"a": a, "b": b, "mean": m, "se": se, "interval": (m - half, m + half), "per_seed": d.tolist(),
            "verdict": verdict}


def online_stability(ds) -> dict | None:
    """Online G-Blend's weights: mean and largest absolute change of a head's weight between
    consecutive super-epochs (over heads, windows and seeds), and per head the mean and SD over
    seeds of the final weights; None if the study did not record the windows."""
    if "online_windows" not in ds.attrs:
        return None
    per_seed = [s for s in json.loads(ds.attrs["online_windows"]) if s]
    if not per_seed:
        return None
    jumps = [abs(b.get(k, 0.0) - a.get(k, 0.0)) for s in per_seed for a, b in zip(s, s[1:]) for k in set(a) | set(b)]
    final = json.loads(ds.attrs["weights"])["G-Blend online"]
    heads = list(final[0])
    return {"mean_jump": float(np.mean(jumps)) if jumps else 0.0, "max_jump": float(max(jumps, default=0.0)),
            "final": {k: (float(np.mean([w.get(k, 0.0) for w in final])),
                          float(np.std([w.get(k, 0.0) for w in final], ddof=1)) if len(final) > 1 else float("nan"))
                      for k in heads}}


def gblend_verdict(ds) -> dict:
    """The headline claims judged on paired differences over seeds (same seed, same data) at 95%
    (t-interval), each True, False, or None when there is one seed (no interval, no verdict):

    * ``naive_below_best``: naive joint training is below the best single modality (the
      interval of the difference lies under zero);
    * ``gblend_recovers``: the better G-Blend (by mean) is not below it (its interval reaches zero
      or lies above);
    * ``gblend_beats``: the better G-Blend is above it (its interval lies above zero), the paper's
      headline.

    ``comparisons`` holds each paired difference (:func:`_paired`): naive joint, offline and
    online G-Blend against the best single modality, and both G-Blends against naive joint."""
    runs = [str(r) for r in ds["run"].values]
    mean = dict(zip(runs, ds["mean_top1"].values.tolist()))
    singles = {r: v for r, v in mean.items() if r.endswith(" only")}
    best = max(singles, key=singles.get)
    g = max(("G-Blend offline", "G-Blend online"), key=mean.get)
    comps = [_paired(ds, "naive joint", best), _paired(ds, "G-Blend offline", best), _paired(ds, "G-Blend online", best),
             _paired(ds, "G-Blend offline", "naive joint"), _paired(ds, "G-Blend online", "naive joint")]
    naive, gb = comps[0], _paired(ds, g, best)
    seeds = int(ds.sizes["seed"])

    def verdict(ok: bool):
        return bool(ok) if seeds >= MIN_SEEDS else None

    return {"best_single": best, "best_single_top1": singles[best], "naive": mean["naive joint"],
            "offline": mean["G-Blend offline"], "online": mean["G-Blend online"], "best_gblend": g,
            "naive_minus_best": (naive["mean"], naive["se"]), "gblend_minus_best": (gb["mean"], gb["se"]),
            "seeds": seeds, "comparisons": comps,
            "naive_below_best": verdict(naive["verdict"] == "below"), "gblend_recovers": verdict(gb["verdict"] != "below"),
            "gblend_beats": verdict(gb["verdict"] == "above")}


#: The Spatiotemporal Pyramid Network ablation: (label, fusion, modalities, switches).
ABLATION = (
    ("RGB stream alone", "gblend", ("rgb",), {}),
    ("flow stream alone", "gblend", ("flow",), {}),
    ("late fusion", "late", ("rgb", "flow"), {}),
    ("STCB of pooled features", "stcb", ("rgb", "flow"), {}),
    ("pyramid", "pyramid", ("rgb", "flow"), {}),
    ("pyramid, one flow snippet", "pyramid", ("rgb", "flow"), {"snippets": 1}),
    ("pyramid, no attention", "pyramid", ("rgb", "flow"), {"attention": False}),
    ("pyramid, concat instead of final STCB", "pyramid", ("rgb", "flow"), {"final": "concat"}),
)


#: The row added when the pyramid's sketches are L2-normalised (``model_kw={"sketch_norm": "l2"}``):
#: the pyramid with the batch norm after each STCB it replaces.
BATCH_NORM_ROW = ("pyramid, batch norm after each STCB", "pyramid", ("rgb", "flow"), {"sketch_norm": "batch"})


def ablation_rows(model_kw: Mapping | None = None) -> tuple:
    """:data:`ABLATION`, and :data:`BATCH_NORM_ROW` when ``model_kw`` L2-normalises the sketches."""
    return ABLATION + ((BATCH_NORM_ROW,) if dict(model_kw or {}).get("sketch_norm") == "l2" else ())


def stream_ablation(out, *, dataset: str = "synthetic-mixed", data_kw: Mapping | None = None,
                    model_kw: Mapping | None = None, train_config=None, seeds: Sequence[int] = (0,),
                    progress: bool = True):
    """Each row of :data:`ABLATION` trained on the same data and budget; returns an
    ``xarray.Dataset`` (run x seed) and writes ``ablation.nc`` and ``ablation.md``."""
    import xarray as xr

    from workbench.engine.config import TrainConfig

    from ..analysis import save_study

    out = Path(out)
    cfg = train_config or TrainConfig(epochs=10, batch_size=16, lr=3e-3)
    rows = ablation_rows(model_kw)
    top1 = np.zeros((len(rows), len(seeds)))
    params = np.zeros(len(rows), np.int64)
    seconds = np.zeros((len(rows), len(seeds)))
    for j, seed in enumerate(seeds):
        c = replace(cfg, seed=seed, progress=progress)
        for i, (label, fusion, mods, switches) in enumerate(rows):
            slug = label.replace(" ", "-").replace(",", "")
            res = _run(out / "runs" / f"{slug}-s{seed}", dataset=dataset, fusion=fusion, modalities=mods,
                       train_config=c, data_kw=dict(data_kw or {}), model_kw={**dict(model_kw or {}), **switches})
            head = mods[0] if len(mods) == 1 else "fused"
            top1[i, j] = res["test"][head]["top1"]
            params[i] = res["params"]
            seconds[i, j] = res["seconds"]
    ds = xr.Dataset(
        {"test_top1": (("run", "seed"), top1), "mean_top1": ("run", top1.mean(1)), "params": ("run", params),
         "seconds": (("run", "seed"), seconds)},
        coords={"run": [a[0] for a in rows], "seed": list(seeds)},
        attrs={"dataset": dataset, "data_kw": json.dumps(dict(data_kw or {})),
               "model_kw": json.dumps(dict(model_kw or {})), "train_config": json.dumps(cfg.to_dict()),
               "environment": json.dumps(environment(cfg.device))},  # versions, threads, device
    )
    save_study(ds, ablation_table(ds), out, "ablation")
    return ds


def ablation_table(ds) -> str:
    cfg = json.loads(ds.attrs["train_config"])
    lines = [f"`{ds.attrs['dataset']}` (RGB + exact optical flow), data {ds.attrs['data_kw']}, streams "
             f"{ds.attrs['model_kw'] or '{}'} (default: tiny r3d_18); {cfg['epochs']} epochs, batch "
             f"{cfg['batch_size']}, {cfg['optimizer']} lr {cfg['lr']}; seeds {[int(s) for s in ds['seed'].values]}."
             + _env_text(ds), "",
             f"| network | params | test top-1 (mean) | per seed | train s (seed {int(ds['seed'].values[0])}) |",
             "|---|---|---|---|---|"]
    for i, n in enumerate(ds["run"].values):
        lines.append(f"| {n} | {int(ds['params'].values[i]):,} | {ds['mean_top1'].values[i]:.3f} | "
                     + ", ".join(f"{v:.3f}" for v in ds["test_top1"].values[i])
                     + f" | {ds['seconds'].values[i, 0]:.0f} |")
    comps = ablation_comparisons(ds)
    seeds = [int(s) for s in ds["seed"].values]
    if len(seeds) < 2:
        lines += ["", f"One seed ({seeds[0]}): differences without an interval, no verdict (run more seeds)."]
        return "\n".join(lines) + "\n"
    dof = len(seeds) - 1
    lines += ["", f"What each part adds, paired over seeds {seeds} (same seed, same data): mean difference in test "
              f"top-1, one standard error and the 95% t-interval ({dof} degree{'s' if dof > 1 else ''} of freedom).",
              "", "| comparison | what it measures | mean | ± s.e. | 95% interval | per seed | verdict |",
              "|---|---|---|---|---|---|---|"]
    for c in comps:
        lo, hi = c["interval"]
        lines.append(f"| {c['a']} − {c['b']} | {c['measures']} | {c['mean']:+.3f} | {c['se']:.3f} | "
                     f"[{lo:+.3f}, {hi:+.3f}] | " + ", ".join(f"{x:+.3f}" for x in c["per_seed"])
                     + f" | {c['verdict'] or '-'} |")
    if len(seeds) < MIN_SEEDS:
        lines += ["", f"Two seeds: intervals on one degree of freedom, no verdict (a verdict needs {MIN_SEEDS} seeds)."]
    return "\n".join(lines) + "\n"


#: The paired comparisons of the ablation: (a, b, what a - b measures).
ABLATION_COMPARISONS = (
    ("pyramid", "late fusion", "the pyramid against the classic two-stream network (the headline)"),
    ("pyramid", "STCB of pooled features", "the pyramid against one STCB of the pooled features"),
    ("pyramid", "pyramid, one flow snippet", "multi-snippet temporal fusion"),
    ("pyramid", "pyramid, no attention", "the spatiotemporal attention"),
    ("pyramid", "pyramid, concat instead of final STCB", "the final STCB"),
    ("STCB of pooled features", "late fusion", "bilinear against late fusion of pooled features"),
    ("pyramid", BATCH_NORM_ROW[0], "L2 normalisation instead of batch norm after the sketches"),
)


def ablation_comparisons(ds) -> list[dict]:
    """The paired differences of :data:`ABLATION_COMPARISONS`, and every two-stream network
    against the better stream alone (by mean), each with its 95% t-interval and verdict
    (:func:`_paired`)."""
    runs = [str(r) for r in ds["run"].values]
    out = [{**_paired(ds, a, b), "measures": m} for a, b, m in ABLATION_COMPARISONS if a in runs and b in runs]
    singles = [r for r in ("RGB stream alone", "flow stream alone") if r in runs]
    if singles:
        mean = dict(zip(runs, ds["mean_top1"].values.tolist()))
        best = max(singles, key=mean.get)
        for r in runs:
            if r not in singles:
                out.append({**_paired(ds, r, best), "measures": "fusion against the better stream alone"})
    return out
