"""Levers compared: one table (and its report) of several rank studies of the same strategies,
each predictor's Kendall tau with its interval, against a baseline study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["lever_report", "lever_table"]


def lever_table(studies, *, baseline: str | None = None):
    """One row per (study, predictor) of several rank studies run on the *same* strategies (one
    per template lever, e.g. ``{"baseline": dir, "sandwich 0.25": dir}``): tau and rho with
    intervals, top-k precision, and the extra cost: seconds per scored strategy, and the
    template training time beyond ``baseline``'s (default: the first study)."""
    import xarray as xr

    from workbench.analysis import load_netcdf

    if not studies:
        raise ValueError("lever_table needs at least one study folder")
    loaded = {}
    for label, folder in studies.items():
        path = Path(folder) / "study.nc"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: expected the --out folder of `workbench study rank`")
        loaded[label] = load_netcdf(path)
    baseline = baseline or next(iter(loaded))
    ref = loaded[baseline]
    for label, ds in loaded.items():
        if list(ds["code"].values) != list(ref["code"].values):
            raise ValueError(f"study {label!r} judged other strategies than {baseline!r}: levers must be compared on "
                             "the same strategies (run the others with --fixed BASELINE/strategies.json)")
    base_seconds = ref.attrs["template_seconds"]
    cols: dict[str, list] = {k: [] for k in ("lever", "predictor", "tau", "tau_lo", "tau_hi", "rho", "rho_lo",
                                            "rho_hi", "top_k_precision", "seconds_per_strategy",
                                            "extra_template_seconds")}
    for label, ds in loaded.items():
        for i, pred in enumerate(ds["predictor"].values):
            cols["lever"].append(label)
            cols["predictor"].append(str(pred))
            for k in ("tau", "tau_lo", "tau_hi", "rho", "rho_lo", "rho_hi", "top_k_precision", "seconds_per_strategy"):
                cols[k].append(float(ds[k].values[i]))
            extra = ds.attrs["template_seconds"] - base_seconds
            if str(pred).startswith("few-shot"):
                extra += ds.attrs.get("few_shot_seconds", 0.0)
            cols["extra_template_seconds"].append(float(extra))
    n = len(cols["lever"])
    return xr.Dataset(
        {k: ("row", np.asarray(v, dtype=object if k in ("lever", "predictor") else float)) for k, v in cols.items()},
        coords={"row": np.arange(n)},
        attrs={"baseline": baseline, "strategies": int(ref.sizes["strategy"]), "seeds": int(ref.sizes["seed"]),
               "seed_tau": float(ref.attrs.get("seed_tau", np.nan)), "dataset": ref.attrs["dataset"],
               "studies": json.dumps({k: str(v) for k, v in studies.items()})},
    )


def lever_report(table) -> str:
    """The lever table as markdown, best tau first."""
    order = np.argsort(-table["tau"].values, kind="stable")
    lines = [
        f"Levers on `{table.attrs['dataset']}`, {table.attrs['strategies']} strategies x {table.attrs['seeds']} "
        f"stand-alone seed(s); baseline template `{table.attrs['baseline']}`. Stand-alone seed noise: Kendall tau "
        f"between seeds {table.attrs['seed_tau']:.2f}.",
        "",
        "| template lever | predictor | Kendall tau [95% CI] | Spearman rho [95% CI] | top-k precision "
        "| seconds / strategy | extra template seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in order:
        t = {k: table[k].values[i] for k in table.data_vars}
        lines.append(f"| {t['lever']} | {t['predictor']} | {t['tau']:.2f} [{t['tau_lo']:.2f}, {t['tau_hi']:.2f}] | "
                     f"{t['rho']:.2f} [{t['rho_lo']:.2f}, {t['rho_hi']:.2f}] | {t['top_k_precision']:.2f} | "
                     f"{t['seconds_per_strategy']:.2f} | {t['extra_template_seconds']:+.0f} |")
    return "\n".join(lines) + "\n"
