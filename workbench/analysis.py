"""Labelled records of the probability space: marginals, trajectories and strategy estimates.

Everything here is ``xarray`` (saved as netCDF through h5netcdf) and needs no torch: plots and
widgets consume these objects. Functions that read a live template take it duck-typed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .strategy import Strategy, backbone_layout, branches_of

__all__ = [
    "unit_probabilities_from_p",
    "marginals",
    "gates",
    "history_dataset",
    "estimates_dataset",
    "strategies_from",
    "pareto_front",
    "layer_importance",
    "top_k",
    "save_netcdf",
    "save_study",
    "best_so_far",
    "load_netcdf",
]

_BRANCH_ORDER = ("S", "T", "ST")


def _unit_branches(unit: str) -> set[str]:
    return set(branches_of(unit))


def unit_probabilities_from_p(p: np.ndarray, branches: Sequence[str], units: Sequence[str]) -> np.ndarray:
    """Per-unit probabilities ``... x L x U`` from drop probabilities ``... x L x B`` of independent
    gates: a unit's probability is the product of keep (1-p) over its branches and drop (p) over
    the others."""
    p = np.asarray(p, dtype=np.float64)
    out = np.ones(p.shape[:-1] + (len(units),))
    for j, u in enumerate(units):
        kept = _unit_branches(u)
        for b_i, b in enumerate(branches):
            out[..., j] *= (1 - p[..., b_i]) if b in kept else p[..., b_i]
    return out


def _layer_coords(backbone: str, n: int) -> dict:
    groups = backbone_layout(backbone).group_of()
    return {"layer": np.arange(n), "group": ("layer", np.asarray(groups[:n]))}


def marginals(supernet) -> xr.DataArray:
    """The probability of each unit at each layer (``layer x unit``) of a trained template."""
    p = supernet.drop_probabilities().numpy()
    probs = unit_probabilities_from_p(p, supernet.branches, supernet.units)
    return xr.DataArray(
        probs, dims=("layer", "unit"),
        coords={**_layer_coords(supernet.backbone, p.shape[0]), "unit": list(supernet.units)},
        name="unit_probability",
        attrs={"description": "P(unit) at each layer implied by independent branch gates",
               "backbone": supernet.backbone},
    )


def gates(supernet) -> xr.Dataset:
    """Per-gate drop probability p and the paper's use probability 1 - sqrt(p) (Eq. 7)."""
    p = supernet.drop_probabilities().numpy().astype(np.float64)
    coords = {**_layer_coords(supernet.backbone, p.shape[0]), "branch": list(supernet.branches)}
    return xr.Dataset(
        {
            "drop_p": (("layer", "branch"), p, {"description": "learned drop probability"}),
            "use_p": (("layer", "branch"), 1 - np.sqrt(p), {"description": "1 - sqrt(p), the paper's Eq. 7"}),
        },
        coords=coords,
        attrs={"backbone": supernet.backbone},
    )


def history_dataset(history, *, backbone: str | None = None, branches: Sequence[str] | None = None,
                    units: Sequence[str] | None = None) -> xr.Dataset:
    """Per-epoch history (losses, accuracies, lr, time) with, for a template, the gate trajectories
    ``epoch x layer x branch`` and per-unit probabilities ``epoch x layer x unit``."""
    h = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    epoch = np.asarray(h["epoch"])
    data = {}
    for key in ("lr", "train_loss", "train_reg", "train_acc", "val_loss", "val_acc", "seconds"):
        data[key] = ("epoch", np.asarray(h[key], dtype=np.float64))
    data["phase"] = ("epoch", np.asarray(h["phase"], dtype=object))
    skipped = list(h.get("skipped") or [])
    data["skipped_videos"] = ("epoch", np.asarray(skipped + [0] * (len(epoch) - len(skipped)), dtype=np.int64))
    coords: dict = {"epoch": epoch}
    if h.get("gates"):
        g = np.asarray(h["gates"], dtype=np.float64)
        if branches is None or backbone is None:
            raise ValueError("a template history needs backbone and branches to label its gates")
        coords.update(_layer_coords(backbone, g.shape[1]))
        coords["branch"] = list(branches)
        data["drop_p"] = (("epoch", "layer", "branch"), g)
        if units is not None:
            coords["unit"] = list(units)
            data["unit_probability"] = (("epoch", "layer", "unit"), unit_probabilities_from_p(g, branches, units))
    return xr.Dataset(data, coords=coords, attrs={"backbone": backbone or ""})


def estimates_dataset(rows: Sequence[dict], *, sources: Sequence[str] | None = None, attrs: dict | None = None) -> xr.Dataset:
    """One row per strategy: top1, top5, loss, params, gmacs, log_prob, seconds, and what is needed
    to rebuild the strategy exactly (``strategy_json``; ``units`` per layer for analysis)."""
    if not rows:
        raise ValueError("no rows")
    strategies: list[Strategy] = [r["strategy"] for r in rows]
    n_layers = {s.num_layers for s in strategies}
    if len(n_layers) != 1:
        raise ValueError("all strategies of one estimate table must share a backbone")
    L = n_layers.pop()
    if sources is None:
        sources = [r.get("source", "given") for r in rows]
    if len(sources) != len(rows):
        raise ValueError(f"sources has {len(sources)} labels for {len(rows)} strategies")
    data = {}
    for key in ("top1", "top5", "loss", "gmacs", "log_prob", "seconds"):
        if key in rows[0]:
            data[key] = ("strategy", np.asarray([r[key] for r in rows], dtype=np.float64))
    for key in ("params", "n_eval"):
        if key in rows[0]:
            data[key] = ("strategy", np.asarray([r[key] for r in rows], dtype=np.int64))
    data["key"] = ("strategy", np.asarray([s.key for s in strategies], dtype=object))
    data["code"] = ("strategy", np.asarray([s.code for s in strategies], dtype=object))
    data["name"] = ("strategy", np.asarray([s.name or "" for s in strategies], dtype=object))
    data["source"] = ("strategy", np.asarray(list(sources), dtype=object))
    data["strategy_json"] = ("strategy", np.asarray([s.to_json() for s in strategies], dtype=object))
    data["units"] = (("strategy", "layer"), np.asarray([list(s.units) for s in strategies], dtype=object))
    backbone = strategies[0].backbone
    coords = {"strategy": np.arange(len(rows)), **_layer_coords(backbone, L)}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({k: (json.dumps(v) if isinstance(v, (list, dict, tuple)) else v)
                     for k, v in (attrs or {}).items() if v is not None})
    if "top1" in ds and "n_eval" in ds:
        low, high = wilson_interval(ds["top1"].values, ds["n_eval"].values)
        ds["top1_low"], ds["top1_high"] = ("strategy", low), ("strategy", high)
        ds.attrs["top1_interval"] = ("95% Wilson interval over the n_eval validation clips: evaluation noise only, "
                                     "not the gap between shared weights and stand-alone training")
    return ds


def wilson_interval(p, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of accuracies ``p`` measured on ``n`` clips (95% by default)."""
    p = np.asarray(p, dtype=np.float64)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def unique_strategies(ds: xr.Dataset, source: str | None = "sampled") -> list[tuple[int, int]]:
    """``[(row, times drawn)]``: each distinct strategy once (its first row), in row order;
    ``source`` keeps only rows of that source (None: all rows)."""
    keys = [str(k) for k in ds["key"].values]
    src = [str(x) for x in ds["source"].values] if "source" in ds else ["sampled"] * len(keys)
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for i, (k, s) in enumerate(zip(keys, src)):
        if source is not None and s != source:
            continue
        first.setdefault(k, i)
        count[k] = count.get(k, 0) + 1
    return [(i, count[k]) for k, i in first.items()]


def strategies_from(ds: xr.Dataset) -> list[Strategy]:
    """Rebuild every row's strategy exactly (name included)."""
    return [Strategy.from_json(str(s)) for s in ds["strategy_json"].values]


def pareto_front(ds: xr.Dataset, x: str = "gmacs", y: str = "top1") -> np.ndarray:
    """Boolean mask of rows on the front: no other row has lower-or-equal ``x`` and higher ``y``
    (or equal ``y`` and lower ``x``)."""
    xs, ys = ds[x].values.astype(float), ds[y].values.astype(float)
    order = np.lexsort((-ys, xs))  # by cost, then best accuracy first
    mask = np.zeros(len(xs), dtype=bool)
    best = -np.inf
    for i in order:
        if ys[i] > best:
            mask[i] = True
            best = ys[i]
    return mask


def layer_importance(ds: xr.Dataset, *, by: str = "top1", min_count: int = 3) -> xr.Dataset:
    """How much the estimate moves with each layer's choice, from scored strategies: ``effect``
    (layer x unit) is the mean ``by`` of the strategies with that unit at that layer minus the mean
    of all (NaN where fewer than ``min_count`` strategies have it), ``count`` how many, and
    ``importance`` (layer) the range of the effects, largest = the layer whose choice matters most."""
    units = np.asarray(ds["units"].values)
    acc = np.asarray(ds[by].values, float)
    names = sorted({str(u) for u in units.ravel()}, key=lambda u: (u == "skip", len(u.split("+")), u))
    L = units.shape[1]
    effect = np.full((L, len(names)), np.nan)
    count = np.zeros((L, len(names)), np.int64)
    mean = acc.mean()
    for li in range(L):
        for j, u in enumerate(names):
            sel = units[:, li] == u
            count[li, j] = int(sel.sum())
            if count[li, j] >= min_count:
                effect[li, j] = acc[sel].mean() - mean
    with np.errstate(all="ignore"):
        rng = np.where(np.isfinite(effect).sum(1) >= 2, np.nanmax(effect, 1) - np.nanmin(effect, 1), np.nan)
    coords = {"layer": ds["layer"].values, "unit": names}
    if "group" in ds.coords:
        coords["group"] = ("layer", ds["group"].values)
    return xr.Dataset({"effect": (("layer", "unit"), effect), "count": (("layer", "unit"), count),
                       "importance": ("layer", rng)}, coords=coords, attrs={"by": by, "strategies": len(acc)})


def top_k(ds: xr.Dataset, k: int = 10, by: str = "top1") -> xr.Dataset:
    k = min(k, ds.sizes["strategy"])
    idx = np.argsort(-ds[by].values, kind="stable")[:k]
    return ds.isel(strategy=idx)


def save_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to netCDF (h5netcdf) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".nc", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_study(ds: xr.Dataset, report: str, folder: str | os.PathLike, name: str, *,
               report_name: str | None = None) -> Path:
    """A study's two files side by side, each written atomically: ``FOLDER/NAME.nc`` (its data)
    and ``FOLDER/NAME.md`` (its report, Markdown; ``REPORT_NAME.md`` when given). Returns the
    ``.nc`` path."""
    from workbench.runs import write_text

    path = save_netcdf(ds, Path(folder) / f"{name}.nc")
    write_text(path.parent / f"{report_name or name}.md", report)
    return path


def load_netcdf(path: str | os.PathLike) -> xr.Dataset:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist (expected a netCDF file written by the workbench)")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable netCDF file: {e}") from None


def best_so_far(estimates):
    """A DataFrame: the best estimated top-1 after 1, 2, ..., n sampled strategies, in sampling order (every
    draw counts, duplicates too): columns ``n``, ``row`` (the Dataset row), ``top1``, ``best``."""
    import pandas as pd

    if "top1" not in estimates or "source" not in estimates:
        raise ValueError("best_so_far needs an estimates Dataset with top1 and source "
                         "(workbench.analysis.estimates_dataset)")
    idx = np.flatnonzero(np.asarray([str(s) for s in estimates["source"].values]) == "sampled")
    if not idx.size:
        raise ValueError("the estimates hold no sampled strategies (source 'sampled'); sample some first "
                         "(`workbench template sample`)")
    top1 = estimates["top1"].values.astype(float)[idx]
    return pd.DataFrame({"n": np.arange(1, idx.size + 1), "row": idx, "top1": top1,
                         "best": np.fmax.accumulate(top1)})
