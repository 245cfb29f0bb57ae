"""One optimisation step and what it needs: the optimisers (the template's gate logits get their
own), their state as tensors for checkpoints, mixed precision on a GPU, the memory format a
model trains in, and a measured step time for dry runs."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from workbench.engine.config import TrainConfig

__all__ = ["TrainStep", "amp_dtype", "is_template", "load_optimizer_tensors", "make_optimizers",
           "measure_step_seconds", "optimizer_tensors", "place_for_training"]


def is_template(model: nn.Module) -> bool:
    """Whether ``model`` is a gated template network (it has gate logits and a regulariser)."""
    return hasattr(model, "gate_logits") and hasattr(model, "regularizer")


def make_optimizers(model: nn.Module, config: TrainConfig):
    """``(optimizer, gate optimizer)``: SGD or AdamW over the weights; Adam (``gate_lr``) over a
    template's gate logits, None for other models."""
    if is_template(model):
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
    """An optimiser's state split for a checkpoint: ``({"PREFIX/param/key": tensor}, JSON meta)``."""
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
    """Restore ``opt`` from what :func:`optimizer_tensors` wrote."""
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

    ``uniform``: a strategy to train this step alone (sandwich and path-uniform warm-up steps of
    the template); its gates
    are not stepped and no regulariser is added. ``weight`` rescales the loss (DDP shares).
    """

    def __init__(self, model: nn.Module, opt, gate_opt, config: TrainConfig, device: str, *,
                 net: nn.Module | None = None, n_train: int = 1, loss_fn: Callable | None = None) -> None:
        self.model, self.net = model, net if net is not None else model
        self.loss_fn = loss_fn  # (output, y) -> loss; default: cross-entropy of the logits
        self.opt, self.gate_opt, self.config = opt, gate_opt, config
        self.n_train = n_train
        self.supernet = is_template(model)
        self.dtype = amp_dtype(device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, gated: bool = False, uniform=None,
                 weight: float = 1.0) -> torch.Tensor:
        model, opt, gate_opt, scaler = self.model, self.opt, self.gate_opt, self.scaler
        opt.zero_grad(set_to_none=True)
        if gate_opt is not None:
            gate_opt.zero_grad(set_to_none=True)
        if uniform is not None:
            mode = model.mode  # warmup or relaxed: put back after this strategy's forward pass
            model.set_strategy(uniform)
        with torch.autocast(device_type="cuda", dtype=self.dtype or torch.float16, enabled=self.dtype is not None):
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits.float(), y) if self.loss_fn is None else self.loss_fn(logits, y)
        total = loss if weight == 1.0 else loss * weight
        reg = None
        if uniform is not None:
            model.set_strategy(None)
            model.set_mode(mode)
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
