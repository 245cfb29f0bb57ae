"""Training of stream-fusion networks: fixed loss weights or online Gradient-Blending.

:func:`train_multimodal` trains a :class:`~workbench.streams.models.MultiModalNet` (heads per
modality plus a fused head) or a :class:`~workbench.streams.models.TwoStream` (one output, the
head ``"fused"``). Before training and after every epoch it measures each head's loss and top-1
on the held-out split and on a fixed subset of the training split of the same size (eval mode):
the numbers Gradient-Blending needs, kept in the history. Checkpoints are written atomically
after every epoch (safetensors + JSON) and a run resumes from its last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from workbench.engine.evaluate import evaluate
from workbench.engine.loop import Hooks, Loop, TrainConfig, to_device

from .gblend import gblend_weights, overfit_noise, smooth_weights
from .models import blended_loss

__all__ = ["BLENDS", "BlendHooks", "as_heads", "evaluate_heads", "train_multimodal"]

#: How the heads' loss weights are set: ``fixed`` (given, or the fused head alone) or ``online``
#: (G-Blend, re-estimated every super-epoch).
BLENDS = ("fixed", "online")


def as_heads(out) -> dict[str, torch.Tensor]:
    """A model's output as ``{head: logits}`` (a single tensor is the head ``"fused"``)."""
    return dict(out) if isinstance(out, Mapping) else {"fused": out}


def evaluate_heads(model: nn.Module, dataset: Dataset, *, batch_size: int = 64, device: str = "cpu",
                   weights: Mapping[str, float] | None = None) -> dict:
    """``{head: {"loss": mean CE, "top1": accuracy, ...}}`` over ``dataset``: the engine's
    :func:`~workbench.engine.evaluate.evaluate` per head (with ``weights``, also the blended
    prediction ``"blend"``); the model's train/eval mode is kept."""
    was = model.training
    try:
        return evaluate(model, DataLoader(dataset, batch_size=batch_size, shuffle=False), device, heads=True,
                        weights=weights)
    finally:
        model.train(was)


def _record(history: dict, epoch: int, train_eval: dict, val_eval: dict, weights: dict, seconds: float,
            skipped: int = 0) -> None:
    history["epoch"].append(epoch)
    history.setdefault("skipped", [0] * (len(history["epoch"]) - 1)).append(int(skipped))
    history["weights"].append(dict(weights))
    history["seconds"].append(seconds)
    for key, ev in (("train_loss", train_eval), ("val_loss", val_eval)):
        for k, v in ev.items():
            history[key].setdefault(k, []).append(v["loss"])
    for key, ev in (("train_acc", train_eval), ("val_acc", val_eval)):
        for k, v in ev.items():
            history[key].setdefault(k, []).append(v["top1"])


def _empty_history() -> dict:
    return {"epoch": [], "weights": [], "seconds": [], "train_loss": {}, "val_loss": {}, "train_acc": {},
            "val_acc": {}, "blend_windows": [], "skipped": []}


def _clip_scores(model: nn.Module, dataset: Dataset, *, batch_size: int, device: str) -> tuple[dict, dict]:
    """``({head: {"loss", "top1", "n"}}, {head: per-clip CE list})`` over ``dataset`` in eval mode
    (the train/eval mode is kept): the numbers :func:`evaluate_heads` gives, plus each clip's
    loss, which online G-Blend needs for the noise of its estimates."""
    was = model.training
    model.eval()
    losses: dict[str, list] = {}
    correct: dict[str, list] = {}
    try:
        with torch.no_grad():
            for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                x, y = to_device(x, device), y.to(device)
                for k, logits in as_heads(model(x)).items():
                    losses.setdefault(k, []).extend(
                        torch.nn.functional.cross_entropy(logits.float(), y, reduction="none").tolist())
                    correct.setdefault(k, []).extend((logits.argmax(1) == y).tolist())
    finally:
        model.train(was)
    summary = {k: {"loss": sum(v) / len(v), "top1": sum(correct[k]) / len(v), "n": len(v)} for k, v in losses.items()}
    return summary, losses


class BlendHooks(Hooks):
    """Stream networks in the engine's loop: the blended loss ``sum_k w_k CE_k`` of the heads;
    before training and after every epoch each head's loss and top-1 on the held-out split and on
    a fixed subset of the training split of the same size (``probe``), the numbers G-Blend needs;
    with ``blend="online"`` the weights re-estimated every ``super_epoch`` epochs. The history is
    a dict of per-head series (epoch 0: before training)."""

    val_loader = False
    data_parallel = False

    def __init__(self, heads: list[str], weights: dict[str, float], *, blend: str, super_epoch: int,
                 min_overfit: float, probe: Dataset, val_set: Dataset, batch_size: int,
                 noise_floor: bool = False, smoothing: float = 0.0) -> None:
        self.heads, self.weights, self.blend = heads, weights, blend
        self.super_epoch, self.min_overfit = super_epoch, min_overfit
        self.noise_floor, self.smoothing = noise_floor, smoothing
        self.probe, self.val_set, self.batch_size = probe, val_set, batch_size
        # per-clip losses of the epochs an online window starts or ends at: {epoch: (probe, val)}
        self.clips: dict[int, tuple[dict, dict]] = {}
        self.estimated = False  # whether the weights are an estimate yet (not the uniform start)
        # the engine's step with the blended loss; it reads the weights as they are at each step
        self.loss_fn = lambda out, y: blended_loss(as_heads(out), y, self.weights)

    def new_history(self) -> dict:
        return _empty_history()

    def history_from(self, d: dict) -> dict:
        return d

    def history_dict(self, history: dict) -> dict:
        return history

    def _scores(self, loop: Loop, epoch: int) -> tuple[dict, dict]:
        """Each head's loss and top-1 on the training probe and the held-out split after ``epoch``
        epochs; with online blending and its noise floor, the per-clip losses are kept for the
        window (only those at window ends)."""
        if not (self.blend == "online" and self.noise_floor):
            return (evaluate_heads(loop.model, self.probe, batch_size=self.batch_size, device=loop.device),
                    evaluate_heads(loop.model, self.val_set, batch_size=self.batch_size, device=loop.device))
        (tr, tr_clips), (va, va_clips) = (
            _clip_scores(loop.model, ds, batch_size=self.batch_size, device=loop.device) for ds in (self.probe, self.val_set))
        if epoch % self.super_epoch == 0:
            self.clips = {e: c for e, c in self.clips.items() if e >= epoch - self.super_epoch}
            self.clips[epoch] = (tr_clips, va_clips)
        return tr, va

    def start(self, loop: Loop) -> None:
        if not loop.history["epoch"]:
            t0 = time.perf_counter()
            _record(loop.history, 0, *self._scores(loop, 0), self.weights, time.perf_counter() - t0)

    def evaluate(self, loop: Loop, epoch: int):
        return self._scores(loop, epoch + 1)

    def record(self, loop: Loop, epoch: int, phase: str, lr: float, totals: tuple, result, seconds: float,
               skipped: int) -> None:
        _record(loop.history, epoch + 1, *result, self.weights, seconds, skipped)

    def after_epoch(self, loop: Loop, epoch: int) -> None:
        from tqdm.auto import tqdm

        history, heads, config = loop.history, self.heads, loop.config
        if self.blend == "online" and (epoch + 1) % self.super_epoch == 0 and epoch + 1 < config.epochs:
            e0, e1 = epoch + 1 - self.super_epoch, epoch + 1
            i0 = history["epoch"].index(e0)
            noise = None
            if self.noise_floor and e0 in self.clips and e1 in self.clips:
                (t0, v0), (t1, v1) = self.clips[e0], self.clips[e1]
                noise = {k: overfit_noise((t0[k], t1[k]), (v0[k], v1[k])) for k in heads}
            estimate = gblend_weights(
                {k: (history["train_loss"][k][i0], history["train_loss"][k][-1]) for k in heads},
                {k: (history["val_loss"][k][i0], history["val_loss"][k][-1]) for k in heads},
                min_overfit=self.min_overfit, noise=noise)
            self.weights = smooth_weights(self.weights if self.estimated else None, estimate, self.smoothing)
            self.estimated = True
            history["blend_windows"].append({"epochs": [e0, e1], "estimate": estimate, "weights": self.weights,
                                             **({"noise": noise} if noise is not None else {})})
        if config.progress:
            va = {k: v[-1] for k, v in history["val_loss"].items()}
            top1 = {k: v[-1] for k, v in history["val_acc"].items()}
            main = "fused" if "fused" in va else heads[0]
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: val {main} loss {va[main]:.3f} "
                       f"top-1 {top1[main]:.3f}  weights " + " ".join(f"{k} {v:.2f}" for k, v in self.weights.items()))

    def state(self) -> dict:
        out = {"weights": self.weights, "blend": self.blend, "estimated": self.estimated}
        if self.clips:  # the per-clip losses a resumed run's current window starts from
            out["clip_losses"] = {str(e): c for e, c in self.clips.items()}
        return out

    def load_state(self, meta: dict) -> None:
        self.weights = meta["weights"]
        self.estimated = bool(meta.get("estimated", bool(meta["history"].get("blend_windows"))))
        self.clips = {int(e): tuple(c) for e, c in meta.get("clip_losses", {}).items()}

    def epochs_done(self, meta: dict) -> int:
        return int(meta.get("epochs_done", meta["epoch"]))  # older checkpoints counted epochs done in "epoch"

    def finish(self, loop: Loop) -> dict:
        loop.history["final_weights"] = dict(self.weights)
        return loop.history


def train_multimodal(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainConfig,
    *,
    weights: Mapping[str, float] | None = None,
    blend: str = "fixed",
    super_epoch: int = 2,
    min_overfit: float = 1e-2,
    noise_floor: bool = False,
    smoothing: float = 0.0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    model_kwargs: dict | None = None,
    on_epoch: Callable[[dict, nn.Module], None] | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train ``model`` with the blended loss ``sum_k w_k CE_k``; returns the history (a dict).

    ``weights``: per head (default: the fused head alone, i.e. naive joint training, or the one
    head of a single-modality model). ``blend="online"``: start from uniform weights over all heads
    and re-estimate them with G-Blend every ``super_epoch`` epochs from the last ``super_epoch``
    epochs of the heads' train and held-out losses. ``noise_floor``: add to each head's ``dO^2``
    the variance of its ``dO`` estimate, from per-clip losses at the window's ends
    (:func:`~workbench.streams.gblend.overfit_noise`); ``smoothing``: each new estimate is blended
    with the weights in use, ``smoothing * old + (1 - smoothing) * new`` (the first estimate
    replaces the uniform start). ``stop_after`` ends this call after that many epochs (to test
    resumption).
    """

    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of: {', '.join(BLENDS)}")
    if blend == "online" and (not isinstance(super_epoch, int) or super_epoch < 1):
        raise ValueError(f"super_epoch must be a positive number of epochs, got {super_epoch!r}")
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"training and held-out sets must not be empty (got {len(train_set)} and {len(val_set)})")
    device = config.device
    model.to(device)
    probe = Subset(train_set, torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed))
                   [: len(val_set)].tolist())
    first_x, _ = train_set[0]
    with torch.no_grad():
        model.eval()
        heads = list(as_heads(model(to_device({k: v[None] for k, v in first_x.items()}, device)
                                    if isinstance(first_x, Mapping) else first_x[None].to(device))))
        model.train()
    if weights is None:
        weights = {k: 1.0 / len(heads) for k in heads} if blend == "online" else \
            {"fused" if "fused" in heads else heads[0]: 1.0}
    weights = {k: float(v) for k, v in weights.items()}
    unknown = [k for k in weights if k not in heads]
    if unknown:
        raise ValueError(f"loss weights name head(s) {', '.join(unknown)} that the model does not have "
                         f"(heads: {', '.join(heads)})")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    hooks = BlendHooks(heads, weights, blend=blend, super_epoch=super_epoch, min_overfit=min_overfit, probe=probe,
                       val_set=val_set, batch_size=config.batch_size * 2, noise_floor=noise_floor,
                       smoothing=smoothing)
    loop = Loop(model, train_set, val_set, config, hooks, out_dir=out_dir, model_kwargs=model_kwargs)
    return loop.run(resume=resume, on_epoch=on_epoch, stop_after=stop_after)
