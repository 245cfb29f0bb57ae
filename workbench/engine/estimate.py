"""Network-level estimates: score strategies with the template's shared weights.

Each strategy runs as a real sub-network of the template (dropped branches are not computed).
Items that carry a video index (real datasets in test mode: several clips and crops per video)
are scored per video, their softmax scores averaged (multi-clip evaluation). Under ``torchrun``
the strategies are shared out across processes and every process returns all rows, in order.
Optionally its BatchNorm statistics are recalibrated on a few training batches first (the
template's running statistics were collected with every branch mixed in; a sub-network sees
other activations). Two more levers: ``mc_samples`` averages the softmax over that many
Monte-Carlo masks of the strategy (the training distribution given the strategy's keep/drop
outcome, mode ``"conditioned"``) instead of one hard mask, and ``finetune_steps`` trains the
extracted sub-network for a few steps on training batches before scoring it. Results come back as an ``xarray.Dataset`` with one row per strategy (see
:func:`workbench.analysis.estimates_dataset`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from workbench.data.dataset import collate_drop_none
from workbench.engine import distributed as dist_
from workbench.engine.cost import count_cost
from workbench.engine.evaluate import evaluate
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork

__all__ = ["StrategyCostTable", "EstimateConfig", "estimate_strategies", "recalibrate_bn", "finetune_strategy"]


class StrategyCostTable:
    """Exact params and MACs of any strategy of a template, from a per-(layer, unit) table.

    A layer's cost depends only on its own unit (its input size is fixed by its position), so
    one count per unit gives every strategy's cost as a sum, without building it.
    """

    def __init__(self, supernet: TemplateNetwork, input_shape: tuple[int, int, int, int]):
        self.units = supernet.units
        self.input_shape = tuple(input_shape)
        L = supernet.num_layers
        self.params = torch.zeros(L, len(self.units), dtype=torch.int64)
        self.macs = torch.zeros(L, len(self.units), dtype=torch.int64)
        base_params = base_macs = None
        for j, u in enumerate(self.units):
            s = Strategy(supernet.backbone, (u,) * L, supernet.config.stem)
            with torch.device("meta"):
                model = supernet.extract(s, inherit_weights=False)
            report = count_cost(model, self.input_shape)
            for i, row in enumerate(report.layers[:L]):
                self.params[i, j] = row.params
                self.macs[i, j] = row.macs
            other = report.layers[L]
            base_params, base_macs = other.params, other.macs
        self.base_params, self.base_macs = int(base_params), int(base_macs)
        self._col = {u: j for j, u in enumerate(self.units)}

    def cost(self, strategy: Strategy) -> tuple[int, int]:
        """(params, MACs) of ``strategy``."""
        idx = torch.tensor([self._col[u] for u in strategy.units])
        rows = torch.arange(len(idx))
        return (
            self.base_params + int(self.params[rows, idx].sum()),
            self.base_macs + int(self.macs[rows, idx].sum()),
        )


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable, device: str = "cpu") -> int:
    """Reset every BatchNorm's running statistics and re-estimate them (cumulative average) on
    ``batches``; returns the number of batches used. The model is left in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum,) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    model.train()
    n = 0
    for batch in batches:
        model(batch[0].to(device))
        n += 1
    for m, (mom,) in zip(bns, saved):
        m.momentum = mom
    model.eval()
    if n == 0:
        raise ValueError("BN recalibration got no batches")
    return n


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.clone() for k, v in model.state_dict().items()
        if k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }


@dataclass(frozen=True)
class EstimateConfig:
    batch_size: int = 64
    recalibrate_batches: int = 0  # 0: use the template's BN statistics
    calibration_seed: int = 0
    max_eval_batches: int | None = None
    device: str = "cpu"
    input_shape: tuple[int, int, int, int] | None = None  # for the cost columns (C T H W)
    mc_samples: int = 0  # > 0: average the softmax over this many conditioned Monte-Carlo masks
    finetune_steps: int = 0  # > 0: fine-tune the extracted strategy this many steps before scoring
    finetune_lr: float = 1e-3
    progress: bool = True
    # evaluate the strategies as a tree of shared prefixes (exact: the same numbers as one at a
    # time; DenseNet templates, shared-weight scoring without Monte-Carlo masks or fine-tuning)
    share_prefixes: bool = True

    def __post_init__(self) -> None:
        for name in ("recalibrate_batches", "mc_samples", "finetune_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mc_samples and self.finetune_steps:
            raise ValueError("mc_samples and finetune_steps are separate predictors: set one of them")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class _MonteCarlo(nn.Module):
    """The template in ``conditioned`` mode, its softmax averaged over ``n`` mask draws; returns
    log-probabilities (so cross-entropy on them is the NLL of the averaged prediction)."""

    def __init__(self, supernet: TemplateNetwork, n: int):
        super().__init__()
        self.supernet, self.n = supernet, n

    def forward(self, x):
        p = sum(self.supernet(x).float().softmax(1) for _ in range(self.n)) / self.n
        return p.clamp_min(1e-12).log()


def finetune_strategy(supernet: TemplateNetwork, strategy: Strategy, batches: Sequence, *, steps: int,
                      lr: float = 1e-3, device: str = "cpu") -> nn.Module:
    """``strategy`` extracted with the template's weights and trained ``steps`` steps (AdamW,
    cycling over ``batches``); BatchNorm statistics follow along. Returns the model in eval mode."""
    if not batches:
        raise ValueError("fine-tuning needs training batches")
    model = supernet.extract(strategy, inherit_weights=True).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for i in range(steps):
        x, y = batches[i % len(batches)][:2]
        loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def estimate_strategies(
    supernet: TemplateNetwork,
    strategies: Sequence[Strategy],
    eval_set,
    *,
    config: EstimateConfig = EstimateConfig(),
    train_set=None,
    sources: Sequence[str] | None = None,
    cost_table: StrategyCostTable | None = None,
):
    """Score ``strategies`` with the shared weights; returns an ``xarray.Dataset``.

    ``sources`` labels each row (``"sampled"``, ``"preset"``, ...). With
    ``config.recalibrate_batches > 0`` each strategy's BN statistics are re-estimated on that
    many batches of ``train_set`` (the same batches for every strategy), then restored.
    """
    from tqdm.auto import tqdm

    from workbench.analysis import estimates_dataset

    if not strategies:
        raise ValueError("no strategies to estimate")
    if (config.recalibrate_batches or config.finetune_steps) and train_set is None:
        raise ValueError("BN recalibration and fine-tuning need train_set (a few of its batches are used)")
    device = config.device
    supernet.to(device)
    loader = DataLoader(eval_set, batch_size=config.batch_size, shuffle=False, collate_fn=collate_drop_none)
    calib = []
    n_calib = max(config.recalibrate_batches, min(config.finetune_steps, 64))
    if n_calib:
        g = torch.Generator().manual_seed(config.calibration_seed)
        cl = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=g)
        for i, b in enumerate(cl):
            if i >= n_calib:
                break
            calib.append(b)
    if cost_table is None:
        shape = config.input_shape
        if shape is None:
            x0 = eval_set[0][0]
            shape = tuple(int(s) for s in x0.shape)
        cost_table = StrategyCostTable(supernet, shape)
    saved_bn = _bn_state(supernet)
    mine = dist_.shard(strategies)  # under torchrun each process scores its share of the rows
    rows = []
    shared = (config.share_prefixes and not config.mc_samples and not config.finetune_steps
              and hasattr(supernet.net, "layer_forward") and _clip_items(eval_set))
    with supernet.running():  # the template's mode and strategy are put back at the end
        try:
            if shared:
                rows = _score_shared(supernet, strategies, mine, loader, calib, cost_table, config)
            for i in tqdm(mine if not shared else [], desc="strategies",
                          disable=shared or not (config.progress and dist_.is_main())):
                s = strategies[i]
                t0 = time.perf_counter()
                if config.finetune_steps:
                    tuned = finetune_strategy(supernet, s, calib, steps=config.finetune_steps, lr=config.finetune_lr,
                                              device=device)
                    r = evaluate(tuned, loader, device, max_batches=config.max_eval_batches)
                else:
                    supernet.set_strategy(s)
                    if config.recalibrate_batches:
                        recalibrate_bn(supernet, calib[:config.recalibrate_batches], device)
                    model = supernet
                    if config.mc_samples:
                        supernet.set_mode("conditioned")
                        model = _MonteCarlo(supernet, config.mc_samples)
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(config.calibration_seed + i)
                        r = evaluate(model, loader, device, max_batches=config.max_eval_batches)
                    if config.recalibrate_batches:
                        supernet.load_state_dict(saved_bn, strict=False)
                params, macs = cost_table.cost(s)
                rows.append((i, {
                    "strategy": s, "top1": r["top1"], "top5": r["top5"], "loss": r["loss"],
                    "params": params, "gmacs": macs / 1e9, "log_prob": supernet.log_prob(s),
                    "seconds": time.perf_counter() - t0, "n_eval": r["n"],
                }))
        finally:
            supernet.load_state_dict(saved_bn, strict=False)
    rows = [row for _, row in sorted(r for part in dist_.all_gather_objects(rows) for r in part)]
    return estimates_dataset(
        rows, sources=sources, attrs={
            "recalibrate_batches": config.recalibrate_batches,
            "mc_samples": config.mc_samples,
            "finetune_steps": config.finetune_steps,
            "input_shape": list(cost_table.input_shape),
            "backbone": supernet.backbone,
            "unit_set": supernet.config.unit_set,
            "shared_prefixes": int(shared),  # 1: 'seconds' is the set's time shared out evenly
            "batch_size": config.batch_size,  # with calibration_seed: what re-scoring a row needs
            "calibration_seed": config.calibration_seed,
            "max_eval_batches": -1 if config.max_eval_batches is None else config.max_eval_batches,
        },
    )


def _clip_items(dataset) -> bool:
    """True when items are (clip, label): multi-view test items (clip, label, video) are scored
    per video, one strategy at a time."""
    try:
        item = dataset[0]
    except Exception:  # an unreadable first item: let the one-at-a-time path report it
        return False
    return item is not None and len(item) == 2


def _score_shared(supernet, strategies, mine, loader, calib, cost_table, config) -> list:
    """The rows of ``mine`` scored as one prefix tree (:class:`workbench.sharing.PrefixScorer`)."""
    from tqdm.auto import tqdm

    from workbench.engine import distributed as dist_
    from workbench.engine.sharing import PrefixScorer

    if not mine:
        return []
    if config.recalibrate_batches and not calib:
        raise ValueError("BN recalibration got no batches")  # as the one-at-a-time path says
    t0 = time.perf_counter()
    n_batches = len(loader) if config.max_eval_batches is None else min(len(loader), config.max_eval_batches)
    with tqdm(total=n_batches, desc=f"{len(mine)} strategies, shared prefixes",
              disable=not (config.progress and dist_.is_main())) as bar:
        results = PrefixScorer(supernet).score(
            [strategies[i] for i in mine], loader, calibration=calib[:config.recalibrate_batches] or None,
            device=config.device, max_batches=config.max_eval_batches, progress=bar)
    each = (time.perf_counter() - t0) / len(mine)
    rows = []
    for i, r in zip(mine, results):
        s = strategies[i]
        params, macs = cost_table.cost(s)
        rows.append((i, {
            "strategy": s, "top1": r["top1"], "top5": r["top5"], "loss": r["loss"],
            "params": params, "gmacs": macs / 1e9, "log_prob": supernet.log_prob(s),
            "seconds": each, "n_eval": r["n"],
        }))
    return rows
