"""One training loop for the template network (warm-up, then gated) and for stand-alone networks.

* SGD or AdamW, step or cosine schedule; the template's gate logits get their own optimizer
  (Adam, ``gate_lr``) and enter only after the warm-up.
* Per-epoch history of losses, accuracies, learning rate, time and every gate's drop probability.
* A checkpoint after every epoch (``DIR/last.safetensors`` + ``DIR/last.json``, written
  atomically): weights, optimizer state, RNG state and history. ``resume=True`` continues from
  it; the data order of each epoch is a function of (seed, epoch), so on CPU a resumed run ends
  with the same numbers as an uninterrupted one.
* Progress bars from ``tqdm.auto``: widgets in notebooks, text in a terminal.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from workbench.engine import distributed as dist_
from workbench.engine.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    checkpoint_exists,
    load_latest,
    load_state_checked,
    save_checkpoint,
)
from workbench.engine.evaluate import evaluate

__all__ = ["TrainConfig", "History", "train", "evaluate", "make_train_loader", "skipped_videos"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    warmup_epochs: int = 0  # template only: epochs with every branch on, before gating
    batch_size: int = 32
    optimizer: str = "adamw"  # sgd | adamw
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step | constant
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    gate_lr: float = 0.05
    n_train: int | None = None  # N of the regulariser; default: the training set's size
    seed: int = 0
    num_workers: int = 0
    device: str = "cpu"
    amp: bool = False
    grad_clip: float | None = None
    # template schedule levers (gated phase only):
    # anneal the relaxation temperature geometrically from tau_start to the template's tau
    tau_start: float | None = None
    # share of gated steps that train the weights of one uniformly drawn strategy (hard mask, no
    # gate update) instead of the relaxed masks: strategies the gates would rarely draw keep
    # trained weights ("sandwich" sampling)
    sandwich: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must lie in 0..epochs ({self.epochs}), got {self.warmup_epochs}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected 'sgd' or 'adamw'")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; expected 'cosine', 'step' or 'constant'")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.sandwich < 1.0:
            raise ValueError(f"sandwich must lie in [0, 1) (a share of the gated steps), got {self.sandwich}")
        if self.tau_start is not None and self.tau_start <= 0:
            raise ValueError(f"tau_start must be positive, got {self.tau_start}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones", ()))
        return cls(**d)


@dataclass
class History:
    """Per-epoch records. ``gates`` holds the drop probabilities, epoch x layer x branch."""

    epoch: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_reg: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    gates: list[list[list[float]]] = field(default_factory=list)
    # unreadable videos skipped in the epoch (training and validation sets; 0 for synthetic data)
    skipped: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        d = dict(d)
        d["skipped"] = list(d.get("skipped", [])) + [0] * (len(d.get("epoch", [])) - len(d.get("skipped", [])))
        return cls(**d)

    def __len__(self) -> int:
        return len(self.epoch)


def skipped_videos(dataset) -> list[str]:
    """The videos ``dataset`` skipped as unreadable so far (through subsets; none for synthetic data)."""
    while not hasattr(dataset, "skipped"):  # through subsets and RGB + flow pairs
        inner = getattr(dataset, "dataset", None) or getattr(dataset, "rgb", None)
        if inner is None or inner is dataset:
            break
        dataset = inner
    return list(getattr(dataset, "skipped", []) or [])


def _is_supernet(model: nn.Module) -> bool:
    return hasattr(model, "gate_logits") and hasattr(model, "regularizer")


def make_train_loader(dataset: Dataset, config: TrainConfig, epoch: int, *, shuffle: bool = True,
                      drop_last: bool = False) -> DataLoader:
    """A loader whose order depends only on (seed, epoch): resumable and reproducible. Under
    ``torchrun`` each process gets its slice of every global batch (``config.batch_size``)."""
    sampler = dist_.ShardedBatchSampler(
        len(dataset), config.batch_size, seed=config.seed * 100_003 + epoch, shuffle=shuffle,
        drop_last=drop_last, rank=dist_.rank(), world_size=dist_.world_size(),
    )
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=config.num_workers,
        pin_memory=config.device.startswith("cuda"), persistent_workers=False,
    )


def lr_at(config: TrainConfig, epoch: int) -> float:
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    return 0.5 * config.lr * (1 + math.cos(math.pi * epoch / config.epochs))


def _tau_at(config: TrainConfig, tau_end: float, epoch: int) -> float:
    """The relaxation temperature of ``epoch``: geometric from ``config.tau_start`` at the first
    gated epoch to ``tau_end`` at the last (constant ``tau_end`` without a start)."""
    if config.tau_start is None:
        return tau_end
    gated = config.epochs - config.warmup_epochs
    t = 0.0 if gated <= 1 else min(1.0, max(0.0, (epoch - config.warmup_epochs) / (gated - 1)))
    return config.tau_start * (tau_end / config.tau_start) ** t


def _uniform_strategy(model, generator: torch.Generator):
    """One strategy with every layer's unit drawn uniformly from the template's units."""
    from workbench.strategy import Strategy

    idx = torch.randint(len(model.units), (model.num_layers,), generator=generator)
    return Strategy(model.backbone, tuple(model.units[i] for i in idx.tolist()), model.config.stem)


def make_optimizers(model: nn.Module, config: TrainConfig):
    if _is_supernet(model):
        weights, gates = model.weight_parameters(), model.gate_parameters()
    else:
        weights, gates = list(model.parameters()), []
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(weights, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(weights, lr=config.lr, weight_decay=config.weight_decay)
    gate_opt = torch.optim.Adam(gates, lr=config.gate_lr) if gates else None
    return opt, gate_opt


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}/{pid}/{k}"] = v
            else:
                scalars[f"{pid}/{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_tensors(prefix: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if not key.startswith(prefix + "/"):
            continue
        _, pid, k = key.split("/", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _save(out_dir: Path, model, opt, gate_opt, history: History, epoch: int, config: TrainConfig,
          model_kwargs: dict, extra_meta: dict) -> None:
    tensors, opt_meta = optimizer_tensors("opt", opt)
    gate_meta = None
    if gate_opt is not None:
        t2, gate_meta = optimizer_tensors("gate_opt", gate_opt)
        tensors.update(t2)
    states = dist_.all_gather_objects(torch.get_rng_state())
    if not dist_.is_main():
        return
    tensors["rng/torch"] = states[0]
    for r, st in enumerate(states[1:], start=1):
        tensors[f"rng/torch/{r}"] = st
    meta = {
        "world_size": len(states),
        "epoch": epoch,
        "train_config": config.to_dict(),
        "history": history.to_dict(),
        "optimizer": opt_meta,
        "gate_optimizer": gate_meta,
        **extra_meta,
    }
    save_checkpoint(out_dir / "last", model, model_kwargs=model_kwargs, metadata=meta, extra_tensors=tensors)
    atomic_write_bytes(out_dir / "history.json", (json.dumps(history.to_dict()) + "\n").encode())


def amp_dtype(device: str) -> torch.dtype | None:
    """The autocast dtype of ``--amp`` on ``device``: bfloat16 where the GPU supports it (no loss
    scaling, so no host synchronisation in the step), float16 with a GradScaler otherwise; None
    on CPU (AMP is a GPU feature here)."""
    if not str(device).startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class TrainStep:
    """One optimisation step of the engine: forward (autocast when ``config.amp`` on a GPU),
    loss (+ the template's regulariser once its gates train), backward, clipping, optimiser
    steps. Returns a float64 device tensor ``[loss * b, regulariser * b, correct]`` without
    synchronising with the host, so a GPU step never waits for the CPU. ``loss_fn(output, y)``
    replaces the cross-entropy (multi-head stream networks; ``correct`` is then 0).

    ``uniform``: a strategy to train this step alone (sandwich steps of the template); its gates
    are not stepped and no regulariser is added. ``weight`` rescales the loss (DDP shares).
    """

    def __init__(self, model: nn.Module, opt, gate_opt, config: TrainConfig, device: str, *,
                 net: nn.Module | None = None, n_train: int = 1, loss_fn: Callable | None = None) -> None:
        self.model, self.net = model, net if net is not None else model
        self.loss_fn = loss_fn  # (output, y) -> loss; default: cross-entropy of the logits
        self.opt, self.gate_opt, self.config = opt, gate_opt, config
        self.n_train = n_train
        self.supernet = _is_supernet(model)
        self.dtype = amp_dtype(device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, gated: bool = False, uniform=None,
                 weight: float = 1.0) -> torch.Tensor:
        model, opt, gate_opt, scaler = self.model, self.opt, self.gate_opt, self.scaler
        opt.zero_grad(set_to_none=True)
        if gate_opt is not None:
            gate_opt.zero_grad(set_to_none=True)
        if uniform is not None:
            model.set_strategy(uniform)
        with torch.autocast(device_type="cuda", dtype=self.dtype or torch.float16, enabled=self.dtype is not None):
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits.float(), y) if self.loss_fn is None else self.loss_fn(logits, y)
        total = loss if weight == 1.0 else loss * weight
        reg = None
        if uniform is not None:
            model.set_strategy(None)
            model.set_mode("relaxed")
        elif gated:
            reg = model.regularizer(self.n_train)
            total = total + reg
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(opt)
        else:
            total.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
        step_gates = gated and uniform is None
        if scaler is not None:
            scaler.step(opt)
            if step_gates:
                scaler.step(gate_opt)
            scaler.update()
        else:
            opt.step()
            if step_gates:
                gate_opt.step()
        b = y.numel()
        out = torch.stack([
            loss.detach().double() * b,
            reg.detach().double() * b if reg is not None else loss.new_zeros((), dtype=torch.float64),
            (logits.detach().argmax(1) == y).sum().double() if self.loss_fn is None
            else loss.new_zeros((), dtype=torch.float64),  # several heads: no one accuracy
        ])
        return out


def place_for_training(model: nn.Module, config: TrainConfig, device: str) -> nn.Module:
    """``model`` on ``device`` in the memory format its training uses there: channels_last_3d under
    AMP on a GPU (measured on an H200, reports/gpu: autocast conv3d on NCDHW tensors runs at 0.43x
    of fp32, on channels_last_3d at 1.24x with bf16; AMP without it would be a slow-down)."""
    model.to(device)
    if config.amp and amp_dtype(device) is not None and getattr(model, "channels_last", True) is False \
            and hasattr(model, "set_channels_last"):
        model.set_channels_last(True)
    return model


def measure_step_seconds(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, config: TrainConfig,
                         *, repeats: int = 2) -> float:
    """Seconds of one training step of ``model`` at ``config``'s batch size on random clips of
    ``input_shape`` (C T H W): the median of ``repeats`` steps after one warm-up step. The model's
    weights are put back afterwards, so a dry run changes nothing."""
    import copy
    import statistics

    saved = copy.deepcopy(model.state_dict())
    place_for_training(model, config, config.device)  # as train() would run it
    opt, gate_opt = make_optimizers(model, config)
    step = TrainStep(model, opt, gate_opt, config, config.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((config.batch_size, *input_shape), generator=g).to(config.device)
    y = torch.randint(0, num_classes, (config.batch_size,), generator=g).to(config.device)
    was = model.training
    model.train()
    try:
        step(x, y)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step(x, y).tolist()  # reading the sums waits for the step
            times.append(time.perf_counter() - t0)
    finally:
        model.load_state_dict(saved)
        model.train(was)
    return statistics.median(times)


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    model_kwargs: dict | None = None,
    extra_meta: dict | None = None,
    on_epoch: Callable[[History, nn.Module], None] | None = None,
    stop_after: int | None = None,
    label: str | None = None,
) -> History:
    """Train ``model``; returns its :class:`History`.

    A template network (:class:`~workbench.supernet.TemplateSupernet`) trains its first
    ``warmup_epochs`` with every branch on, then with relaxed gates and the regulariser.
    ``on_epoch(history, model)`` runs after each epoch (live plots). ``stop_after`` ends the run
    after that many epochs of this call (to test resumption). ``model_kwargs`` are stored in
    the checkpoint so the model can be rebuilt from it. ``label`` names the model in the progress
    bars (default: the template's backbone, or the model's class).
    """
    from tqdm.auto import tqdm

    if len(train_set) == 0:
        raise ValueError("training set is empty")
    dist_.init_from_env(config.device)
    distributed = dist_.is_distributed()
    world, main = dist_.world_size(), dist_.is_main()
    device = dist_.device_for_rank(config.device)
    model.to(device)
    place_for_training(model, config, device)
    supernet = _is_supernet(model)
    net = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        # the template's gate logits sit unused during warm-up: let DDP find unused parameters
        net = DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None,
            find_unused_parameters=supernet,
        )
    opt, gate_opt = make_optimizers(model, config)
    history = History()
    start = 0
    run_dir = Path(out_dir) if out_dir is not None else None
    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs out_dir, the run folder holding last.safetensors")
        if not checkpoint_exists(run_dir / "last") and not checkpoint_exists(run_dir / "prev"):
            raise CheckpointError(f"nothing to resume: {run_dir} holds no checkpoint")
        state, meta, extra = load_latest(run_dir / "last")
        load_state_checked(model, state, run_dir / "last")
        m = meta["metadata"]
        saved_cfg = TrainConfig.from_dict(m["train_config"])
        if replace(saved_cfg, progress=config.progress, device=config.device, num_workers=config.num_workers) != config:
            raise ValueError(
                "resume: the training configuration differs from the checkpoint's "
                f"({saved_cfg} vs {config}); resume with the saved configuration"
            )
        load_optimizer_tensors("opt", opt, extra, m["optimizer"])
        if gate_opt is not None and m.get("gate_optimizer"):
            load_optimizer_tensors("gate_opt", gate_opt, extra, m["gate_optimizer"])
        rng_key = "rng/torch" if dist_.rank() == 0 else f"rng/torch/{dist_.rank()}"
        if rng_key in extra:
            torch.set_rng_state(extra[rng_key])
        else:  # resumed on more processes than were saved: a fresh, rank-specific stream
            torch.manual_seed(config.seed + 7919 * dist_.rank() + m["epoch"])
        history = History.from_dict(m["history"])
        start = m["epoch"] + 1
    else:
        # each process draws its own masks (one per example); rank 0 reproduces a single process
        torch.manual_seed(config.seed + 7919 * dist_.rank())
    n_train = config.n_train or len(train_set)
    val_loader = None
    if val_set is not None:
        val_part = val_set
        if distributed:  # each process scores a shard; evaluate(gather=True) combines them
            val_part = torch.utils.data.Subset(val_set, dist_.shard(range(len(val_set))))
        val_loader = DataLoader(val_part, batch_size=max(1, config.batch_size // world), shuffle=False,
                                num_workers=config.num_workers)
    step_fn = TrainStep(model, opt, gate_opt, config, device, net=net, n_train=n_train)
    done_here = 0
    for epoch in range(start, config.epochs):
        if stop_after is not None and done_here >= stop_after:
            break
        t0 = time.perf_counter()
        skipped_before = len(skipped_videos(train_set)) + (len(skipped_videos(val_set)) if val_set is not None else 0)
        gated = supernet and epoch >= config.warmup_epochs
        phase = ("gated" if gated else "warmup") if supernet else "train"
        if supernet:
            model.set_mode("relaxed" if gated else "warmup")
            model.tau = _tau_at(config, model.config.tau, epoch)
        lr = lr_at(config, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        loader = make_train_loader(train_set, config, epoch)
        sandwich_rng = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 17)
        # running sums stay on the device: one host synchronisation per epoch, not per step
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, regulariser, correct
        seen = 0
        show = config.progress and main
        what = label or (f"template {model.backbone}" if supernet else type(model).__name__)
        bar = tqdm(loader, desc=f"{what}: epoch {epoch + 1}/{config.epochs} [{phase}]", leave=False,
                   disable=not show)
        for step, batch in enumerate(bar):
            x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            uniform = gated and config.sandwich > 0 and float(torch.rand((), generator=sandwich_rng)) < config.sandwich
            weight = 1.0
            if distributed:  # DDP averages over processes: weigh each by its share of the batch
                weight = y.numel() * world / loader.batch_sampler.global_size(step)
            strategy = _uniform_strategy(model, sandwich_rng) if uniform else None
            sums += step_fn(x, y, gated=gated, uniform=strategy, weight=weight)
            seen += y.numel()
            if show and (device == "cpu" or step % 25 == 0):
                s = sums.tolist()
                bar.set_postfix(loss=f"{s[0] / seen:.3f}", acc=f"{s[2] / seen:.3f}")
        bar.close()
        loss_sum, reg_sum, correct = sums.tolist()
        loss_sum, reg_sum, correct, seen = dist_.all_reduce_sum([loss_sum, reg_sum, int(correct), seen])
        history.epoch.append(epoch)
        history.phase.append(phase)
        history.lr.append(lr)
        history.train_loss.append(loss_sum / seen)
        history.train_reg.append(reg_sum / seen)
        history.train_acc.append(correct / seen)
        if val_loader is not None:
            if supernet:  # validate the template as it trains: expected masks, deterministic
                model.set_mode("expected" if gated else "warmup")
            r = evaluate(model, val_loader, device, gather=True)
            history.val_loss.append(r["loss"])
            history.val_acc.append(r["top1"])
        else:
            history.val_loss.append(float("nan"))
            history.val_acc.append(float("nan"))
        if supernet:
            history.gates.append(model.drop_probabilities().tolist())
            model.set_mode("relaxed")
        history.seconds.append(time.perf_counter() - t0)
        skipped_now = len(skipped_videos(train_set)) + (len(skipped_videos(val_set)) if val_set is not None else 0)
        (new_skips,) = dist_.all_reduce_sum([skipped_now - skipped_before])
        history.skipped.append(int(new_skips))
        if new_skips and main:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: skipped {int(new_skips)} unreadable video(s) "
                       f"({sum(history.skipped)} in this run so far); each is named in the warnings")
        if run_dir is not None:
            _save(run_dir, model, opt, gate_opt, history, epoch, config, model_kwargs or {}, extra_meta or {})
            dist_.barrier()
        if on_epoch is not None and main:
            on_epoch(history, model)
        done_here += 1
    return history
