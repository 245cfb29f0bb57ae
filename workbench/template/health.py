"""Is this template fit to rank strategies? Checks that say so during and after training.

A template can fail without an error: its accuracy stays near chance, its gates drop whole layers,
or its estimates land in a band too narrow to rank anything (one template seed of the rank study
stayed near 0.50 validation top-1 until epoch 9, ended with layers 1-4 mostly skipped, and its
estimates sat in 0.50-0.66). :func:`template_problems` and :func:`estimate_problems` name such
problems, each with its remedy; the pipeline warns with them and writes them to
``RUN/health.json``, which the trust record and the designer show.

Every rule is a plain threshold, stated in :data:`RULES` (no torch needed to read them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["RULES", "template_problems", "estimate_problems", "problem_lines"]

RULES = {
    # a layer counts as skipped when all of its branches are most likely dropped
    "skip_probability": 0.5,
    # warn when at least this share of the layers is skipped
    "skipped_layers_share": 0.25,
    # 'near chance': final validation top-1 below chance + this share of the way to 1
    "near_chance_share": 0.15,
    # 'stalled': validation top-1 within this of its first value for the first half of the epochs
    "stall_band": 0.03,
    # 'squeezed': every estimate within a band narrower than this (top-1 points)
    "squeezed_range": 0.2,
}

REMEDY = ("train another template seed (--seed), a longer warm-up (--warmup), or a smaller length-scale "
          "(--k): the weight penalty grows with k^2/N")


def template_problems(p_skip: Sequence[float], val_acc: Sequence[float], num_classes: int) -> list[dict]:
    """Problems of a trained (or training) template from its per-layer skip probabilities and its
    validation accuracy per epoch; ``[]`` when none."""
    out = []
    layers = len(p_skip)
    skipped = [i for i, p in enumerate(p_skip) if p > RULES["skip_probability"]]
    if layers and len(skipped) >= max(1, math.ceil(RULES["skipped_layers_share"] * layers)):
        out.append({"problem": "skipped-layers", "layers": skipped,
                    "text": f"{len(skipped)} of {layers} layers are most likely skipped (layers "
                            f"{', '.join(str(i + 1) for i in skipped)}): strategies that use them are scored with "
                            "weights that trained little"})
    acc = [a for a in val_acc if a == a]  # NaN: epochs without validation
    if acc:
        chance = 1.0 / max(1, num_classes)
        floor = chance + RULES["near_chance_share"] * (1 - chance)
        if acc[-1] < floor:
            out.append({"problem": "near-chance", "val_top1": acc[-1],
                        "text": f"validation top-1 ended at {acc[-1]:.3f}, near chance ({chance:.3f} for "
                                f"{num_classes} classes)"})
        half = acc[: max(2, len(acc) // 2)]
        if len(acc) >= 4 and max(abs(a - acc[0]) for a in half) <= RULES["stall_band"]:
            out.append({"problem": "stalled", "epochs": len(half),
                        "text": f"validation top-1 stayed within {RULES['stall_band']} of {acc[0]:.3f} for the first "
                                f"{len(half)} epochs"})
    for p in out:
        p["remedy"] = REMEDY
    return out


def estimate_problems(top1: Sequence[float]) -> list[dict]:
    """Problems of a set of estimates: all of them in a narrow band (nothing to rank by)."""
    vals = [v for v in top1 if v == v]
    if len(vals) < 3:
        return []
    lo, hi = min(vals), max(vals)
    if hi - lo < RULES["squeezed_range"]:
        return [{"problem": "squeezed", "range": [lo, hi],
                 "text": f"all {len(vals)} estimates lie in [{lo:.3f}, {hi:.3f}]: the template barely tells these "
                         "strategies apart, so their order is mostly noise",
                 "remedy": "add strategies that differ more (presets, uniform draws), or " + REMEDY}]
    return []


def problem_lines(problems: Sequence[dict]) -> list[str]:
    """One line per problem: what is wrong and what to do."""
    return [f"{p['text']}; {p['remedy']}" for p in problems]
