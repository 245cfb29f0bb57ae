"""The trust study: template seeds scored against FusionBench, summarised over seeds.

Each template run scored with ``workbench bench score --json`` gives, per subset of strategies
(all, presets, uniform draws, gate draws), Kendall tau, Spearman rho, top-5 precision and regret
against the table's seed-mean truth. :func:`seed_summary` puts several template seeds of one
configuration side by side with their mean and spread (never one template alone), and
:func:`trust_report` writes the markdown table of every configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["decision_report", "load_scores", "seed_summary", "table_truth", "trust_report"]

SUBSETS = ("all", "preset", "uniform", "gates")


def load_scores(paths: Sequence[str | Path]) -> list[dict]:
    """The ``bench score --json`` results of several template runs."""
    out = []
    for p in paths:
        try:
            out.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{p} is not a bench score (workbench bench score --json): {e}") from None
    return out


def seed_summary(scores: Sequence[dict], metric: str = "tau") -> dict:
    """``{subset: {"per_seed": [...], "mean", "sd", "min", "strategies"}}`` over template seeds."""
    out = {}
    for subset in SUBSETS:
        vals = [s[subset][metric] for s in scores if subset in s and s[subset].get(metric) is not None]
        vals = [v for v in vals if not (isinstance(v, float) and math.isnan(v))]
        if not vals:
            continue
        out[subset] = {"per_seed": vals, "mean": float(np.mean(vals)),
                       "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
                       "min": float(np.min(vals)),
                       "strategies": int(max(s[subset]["strategies"] for s in scores if subset in s))}
    return out


def trust_report(configs: Mapping[str, Sequence[dict]], *, title: str = "Trust: template seeds against FusionBench",
                 note: str = "") -> str:
    """Markdown: one row per (configuration, subset), tau per template seed, mean +- SD, the
    worst seed, and the table's noise ceiling for that subset."""
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| configuration | setting | subset | strategies | tau per template seed | mean +- SD | worst | "
              "rho mean | top-5 mean | noise ceiling |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, scores in configs.items():
        if not scores:
            continue
        tau, rho, top = seed_summary(scores, "tau"), seed_summary(scores, "rho"), seed_summary(scores, "top5_precision")
        setting = scores[0].get("setting", "?")
        for subset, t in tau.items():
            ceil = [s[subset].get("noise_ceiling_tau") for s in scores if subset in s]
            ceil = ceil[0] if ceil and ceil[0] is not None else float("nan")
            sd = "" if math.isnan(t["sd"]) else f" +- {t['sd']:.2f}"
            lines.append(
                f"| {label} | {setting} | {subset} | {t['strategies']} | "
                + ", ".join(f"{v:+.2f}" for v in t["per_seed"])
                + f" | {t['mean']:+.2f}{sd} | {t['min']:+.2f} | {rho[subset]['mean']:+.2f} | "
                f"{top[subset]['mean']:.2f} | {'-' if math.isnan(ceil) else f'{ceil:.2f}'} |")
    return "\n".join(lines) + "\n"


def table_truth(table, setting: str) -> dict[str, np.ndarray]:
    """``{strategy code: test top-1 per seed}`` of one setting of a FusionBench table (NaN: not trained)."""
    acc = table["test_top1"].sel(setting=setting)
    return {c: np.asarray(acc.sel(strategy=c).values, float) for c in acc.strategy.values.tolist()}


def decision_report(table, configs: Mapping[str, Sequence[dict]], *, budgets: Sequence[int] = (0, 2, 4, 8, 16),
                    repeats: int = 20, anchors: int = 8, title: str = "From estimates to a decision",
                    note: str = "") -> str:
    """Markdown: per configuration (several template seeds, each a ``bench score --json`` result
    with its estimates), the regret of ``recommend`` against the budget of verifications, in seed
    SDs of the table (mean over template seeds +- SD, ``repeats`` simulated runs each: every
    "training" draws one seed of the table), and the coverage of the 90% interval fitted on
    ``anchors`` tool-chosen anchors."""
    from workbench.studies.recommend import interval_coverage, simulate_recommend

    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| configuration | setting | template seeds | regret scored on | "
              + " | ".join(f"regret B={b}" for b in budgets)
              + f" | 90% interval coverage ({anchors} anchors) | its half-width |",
              "|---|---|---|---|" + "---|" * len(budgets) + "---|---|"]
    for label, scores in configs.items():
        if not scores:
            continue
        setting = scores[0]["setting"]
        truth = table_truth(table, setting)
        sims = [simulate_recommend(truth, sc["estimates"], budgets, repeats=repeats) for sc in scores]
        covs = [interval_coverage(truth, sc["estimates"], anchors, repeats=repeats) for sc in scores]
        cells = []
        for b in budgets:
            vals = [sim["budgets"][int(b)]["mean"] for sim in sims]
            sd = f" +- {np.std(vals, ddof=1):.2f}" if len(vals) > 1 else ""
            cells.append(f"{np.mean(vals):.2f}{sd}")
        cov = [c["coverage"] for c in covs]
        scored = "a held-back seed" if all(sim["held_back"] for sim in sims) else \
            "the seeds it drew from (optimistic)"
        lines.append(f"| {label} | {setting} | {len(scores)} | {scored} | " + " | ".join(cells)
                     + f" | {np.mean(cov):.2f} ({min(cov):.2f}-{max(cov):.2f}) | "
                     f"{np.mean([c['mean_half_width'] for c in covs]):.3f} |")
    return "\n".join(lines) + "\n"
