"""Few-shot templates: split a trained template on one layer's unit choice and train the parts.

One template shares every weight among all strategies; strategies that the gates rarely draw
are scored with weights trained mostly for others. A few-shot template (after few-shot NAS)
splits the space on one layer: one copy of the trained template per unit of that layer, the
layer pinned to that unit (its gates fixed, never updated), each copy trained on for a few more
gated epochs. A strategy is then scored by the part that matches its unit at the split layer.

:func:`train_few_shot` writes one ordinary template run folder per part (``OUT/part-<unit>``)
and a manifest ``OUT/fewshot.json``; :func:`load_few_shot` reads them back, and the rank study
(``workbench study rank --few-shot OUT``) scores strategies with them.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import torch

from workbench.engine import distributed as dist_
from workbench.runs import Run
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork, branches_of

__all__ = ["split_layer", "pin_layer", "train_few_shot", "load_few_shot", "FewShot", "MANIFEST"]

MANIFEST = "fewshot.json"
_PIN = 12.0  # |logit| of a pinned gate: p = 6e-6 or 1 - 6e-6


def split_layer(model: TemplateNetwork) -> int:
    """The layer whose unit choice the gates are least sure of (highest entropy)."""
    p = model.unit_probabilities().clamp_min(1e-12)
    return int((-(p * p.log()).sum(1)).argmax())


def pin_layer(model: TemplateNetwork, layer: int, unit: str):
    """Fix ``layer`` of ``model`` to ``unit``: its gate logits are set to keep exactly that unit's
    branches and their gradient is zeroed from now on. Returns the hook handle."""
    if not 0 <= layer < model.num_layers:
        raise ValueError(f"layer must lie in 0..{model.num_layers - 1}, got {layer}")
    if unit not in model.units:
        raise ValueError(f"unit {unit!r} is not in the template's units: {', '.join(model.units)}")
    kept = set(branches_of(unit))
    with torch.no_grad():
        for b, j in model.branch_index.items():
            model.gate_logits[layer, j] = -_PIN if b in kept else _PIN
    mask = torch.ones_like(model.gate_logits)
    mask[layer] = 0

    return model.gate_logits.register_hook(lambda g: g * mask.to(g.device))


def train_few_shot(template_run, out, *, layer: int | None = None, units=None, epochs: int = 4,
                   lr: float | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Split the template of ``template_run`` on ``layer`` (default: :func:`split_layer`) and
    train one part per unit (default: every unit of the space) for ``epochs`` gated epochs, at
    ``lr`` (default: half the template's). Returns the manifest (also ``OUT/fewshot.json``);
    parts already finished are not retrained."""
    from workbench.engine.loop import TrainConfig, train
    from workbench.studies.pipeline import open_splits, read_run, write_json
    from workbench.template.network import load_template

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    out = Path(out)
    spec = read_run(template_run)
    if spec.get("kind") != "supernet":
        raise ValueError(f"{template_run} is not a template run (kind {spec.get('kind')!r})")
    template, _ = load_template(template_run)
    layer = split_layer(template) if layer is None else int(layer)
    units = tuple(units or template.units)
    base_cfg = TrainConfig.from_dict(spec["train_config"])
    cfg = TrainConfig(epochs=epochs, warmup_epochs=0, batch_size=base_cfg.batch_size, optimizer=base_cfg.optimizer,
                      lr=lr if lr is not None else base_cfg.lr / 2, weight_decay=base_cfg.weight_decay,
                      gate_lr=base_cfg.gate_lr, seed=seed, progress=progress)
    splits = open_splits(spec["dataset"], root=spec.get("root"), **spec["data_kw"])
    parts, seconds = {}, {}
    if (out / MANIFEST).is_file():  # parts trained by an earlier, interrupted call keep their time
        seconds = dict(json.loads((out / MANIFEST).read_text()).get("seconds", {}))
    for u in units:
        folder = out / f"part-{u}"
        parts[u] = folder.name
        done = folder / "history.json"
        if done.is_file() and len(json.loads(done.read_text())["epoch"]) >= epochs:
            continue
        t0 = time.perf_counter()
        model, _ = load_template(template_run)
        handle = pin_layer(model, layer, u)
        if dist_.is_main():
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / "run.json", {**spec, "train_config": cfg.to_dict(),
                                              "few_shot": {"template_run": str(template_run), "layer": layer,
                                                           "unit": u}})
        with Run(folder).lock() if dist_.is_main() else contextlib.nullcontext():
            train(model, splits["train"], splits.get("val"), cfg, out_dir=folder,
                  resume=Run(folder).has_checkpoint(), extra_meta={"supernet_config": template.config.to_dict()})
        handle.remove()
        seconds[u] = seconds.get(u, 0.0) + time.perf_counter() - t0  # a resumed part adds to its earlier time
    manifest = {"template_run": str(template_run), "layer": layer, "parts": parts, "epochs": epochs,
                "train_config": cfg.to_dict(), "seconds": seconds}
    if dist_.is_main():
        write_json(out / MANIFEST, manifest)
    return manifest


class FewShot:
    """The parts of a few-shot template; :meth:`part_for` picks the one that scores a strategy."""

    def __init__(self, folder):
        from workbench.template.network import load_template

        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: expected the --out folder of a few-shot training")
        self.manifest = json.loads(path.read_text())
        self.layer = int(self.manifest["layer"])
        self.parts = {u: load_template(folder / name)[0] for u, name in self.manifest["parts"].items()}

    def part_for(self, strategy: Strategy) -> TemplateNetwork:
        u = strategy.units[self.layer]
        if u not in self.parts:
            raise ValueError(f"no part for unit {u!r} at layer {self.layer}; parts: {', '.join(self.parts)}")
        return self.parts[u]

    def log_prob(self, strategy: Strategy) -> float:
        return self.part_for(strategy).log_prob(strategy)


def load_few_shot(folder) -> FewShot:
    return FewShot(folder)
