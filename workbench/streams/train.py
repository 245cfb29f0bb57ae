"""Training of stream-fusion networks: fixed loss weights or online Gradient-Blending.

:func:`train_multimodal` trains a :class:`~workbench.streams.models.MultiModalNet` (heads per
modality plus a fused head) or a :class:`~workbench.streams.models.TwoStream` (one output, the
head ``"fused"``). Before training and after every epoch it measures each head's loss and top-1
on the held-out split and on a fixed subset of the training split of the same size (eval mode):
the numbers Gradient-Blending needs, kept in the history. Checkpoints are written atomically
after every epoch (safetensors + JSON) and a run resumes from its last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from workbench.engine.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    checkpoint_exists,
    load_latest,
    load_state_checked,
    save_checkpoint,
)
from workbench.engine.loop import (
    TrainConfig,
    TrainStep,
    load_optimizer_tensors,
    lr_at,
    make_optimizers,
    make_train_loader,
    optimizer_tensors,
)

from .gblend import gblend_weights
from .models import blended_loss

__all__ = ["BLENDS", "as_heads", "evaluate_heads", "train_multimodal"]

#: How the heads' loss weights are set: ``fixed`` (given, or the fused head alone) or ``online``
#: (G-Blend, re-estimated every super-epoch).
BLENDS = ("fixed", "online")


def as_heads(out) -> dict[str, torch.Tensor]:
    """A model's output as ``{head: logits}`` (a single tensor is the head ``"fused"``)."""
    return dict(out) if isinstance(out, Mapping) else {"fused": out}


def _to(batch, device: str):
    if isinstance(batch, Mapping):
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return batch.to(device, non_blocking=True)


@torch.no_grad()
def evaluate_heads(model: nn.Module, dataset: Dataset, *, batch_size: int = 64, device: str = "cpu",
                   weights: Mapping[str, float] | None = None) -> dict:
    """``{head: {"loss": mean CE, "top1": accuracy}}`` over ``dataset`` (eval mode).

    With ``weights``, also ``"blend"``: the prediction ``sum_k w_k softmax(logits_k)`` of the heads
    that the blended loss trains (its loss is the NLL of that mixture)."""
    was = model.training
    model.eval()
    loss: dict[str, float] = {}
    hits: dict[str, int] = {}
    n = 0
    active = {k: float(w) for k, w in (weights or {}).items() if w}
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        y = y.to(device)
        heads = as_heads(model(_to(x, device)))
        if active:
            z = sum(active.values())
            mix = sum(w / z * heads[k].float().softmax(1) for k, w in active.items())
            heads["blend"] = mix.clamp_min(1e-12).log()  # log-probabilities: CE of them is the mixture's NLL
        for k, logits in heads.items():
            logits = logits.float()
            loss[k] = loss.get(k, 0.0) + nn.functional.cross_entropy(logits, y, reduction="sum").item()
            hits[k] = hits.get(k, 0) + int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    if n == 0:
        raise ValueError("evaluation set is empty")
    return {k: {"loss": loss[k] / n, "top1": hits[k] / n} for k in loss}


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


def _skipped(*datasets) -> int:
    from workbench.engine.loop import skipped_videos

    return sum(len(skipped_videos(d)) for d in datasets if d is not None)


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
    epochs of the heads' train and held-out losses. ``stop_after`` ends this call after that many
    epochs (to test resumption).
    """
    from tqdm.auto import tqdm

    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of: {', '.join(BLENDS)}")
    if blend == "online" and (not isinstance(super_epoch, int) or super_epoch < 1):
        raise ValueError(f"super_epoch must be a positive number of epochs, got {super_epoch!r}")
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"training and held-out sets must not be empty (got {len(train_set)} and {len(val_set)})")
    device = config.device
    model.to(device)
    torch.manual_seed(config.seed)
    probe = Subset(train_set, torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed))
                   [: len(val_set)].tolist())
    first_x, _ = train_set[0]
    with torch.no_grad():
        model.eval()
        heads = list(as_heads(model(_to({k: v[None] for k, v in first_x.items()}, device)
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
    opt, _ = make_optimizers(model, config)
    # the engine's step with the blended loss; it reads ``weights`` as they are at each step
    step_fn = TrainStep(model, opt, None, config, device,
                        loss_fn=lambda out, y: blended_loss(as_heads(out), y, weights))
    out = Path(out_dir) if out_dir is not None else None
    history = _empty_history()
    start = 0
    if resume:
        if out is None or not (checkpoint_exists(out / "last") or checkpoint_exists(out / "prev")):
            raise CheckpointError(f"nothing to resume: {out_dir} holds no checkpoint")
        state, meta, extra = load_latest(out / "last")
        load_state_checked(model, state, out / "last")
        load_optimizer_tensors("opt", opt, extra, meta["metadata"]["optimizer"])
        torch.set_rng_state(extra["rng/torch"])
        history = meta["metadata"]["history"]
        weights = meta["metadata"]["weights"]
        start = int(meta["metadata"]["epoch"])
    if not history["epoch"]:
        t0 = time.perf_counter()
        _record(history, 0, evaluate_heads(model, probe, batch_size=config.batch_size * 2, device=device),
                evaluate_heads(model, val_set, batch_size=config.batch_size * 2, device=device), weights,
                time.perf_counter() - t0)
    done = 0
    for epoch in range(start, config.epochs):
        if stop_after is not None and done >= stop_after:
            break
        t0 = time.perf_counter()
        skipped_before = _skipped(train_set, val_set)
        for g in opt.param_groups:
            g["lr"] = lr_at(config, epoch)
        model.train()
        loader = make_train_loader(train_set, config, epoch)
        bar = tqdm(loader, desc=f"{type(model).__name__}: epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not config.progress)
        sums, seen = None, 0
        for i, (x, y) in enumerate(bar):
            part = step_fn(_to(x, device), y.to(device, non_blocking=True))
            sums = part if sums is None else sums + part
            seen += len(y)
            if config.progress and (device == "cpu" or i % 25 == 0):
                bar.set_postfix(loss=f"{sums[0].item() / seen:.3f}")
        tr = evaluate_heads(model, probe, batch_size=config.batch_size * 2, device=device)
        va = evaluate_heads(model, val_set, batch_size=config.batch_size * 2, device=device)
        new_skips = _skipped(train_set, val_set) - skipped_before
        _record(history, epoch + 1, tr, va, weights, time.perf_counter() - t0, new_skips)
        if new_skips:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: skipped {new_skips} unreadable video(s) "
                       f"({sum(history['skipped'])} in this run so far); each is named in the warnings")
        if blend == "online" and (epoch + 1) % super_epoch == 0 and epoch + 1 < config.epochs:
            i0 = history["epoch"].index(epoch + 1 - super_epoch)
            weights = gblend_weights(
                {k: (history["train_loss"][k][i0], history["train_loss"][k][-1]) for k in heads},
                {k: (history["val_loss"][k][i0], history["val_loss"][k][-1]) for k in heads},
                min_overfit=min_overfit)
            history["blend_windows"].append({"epochs": [epoch + 1 - super_epoch, epoch + 1], "weights": weights})
        if config.progress:
            main = "fused" if "fused" in va else heads[0]
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: val {main} loss {va[main]['loss']:.3f} "
                       f"top-1 {va[main]['top1']:.3f}  weights " + " ".join(f"{k} {v:.2f}" for k, v in weights.items()))
        if out is not None:
            tensors, opt_meta = optimizer_tensors("opt", opt)
            tensors["rng/torch"] = torch.get_rng_state()
            save_checkpoint(out / "last", model, model_kwargs=model_kwargs,
                            metadata={"epoch": epoch + 1, "history": history, "weights": weights,
                                      "optimizer": opt_meta, "train_config": config.to_dict(), "blend": blend},
                            extra_tensors=tensors)
            atomic_write_bytes(out / "history.json", (json.dumps(history) + "\n").encode())
        if on_epoch is not None:
            on_epoch(history, model)
        done += 1
    history["final_weights"] = dict(weights)
    return history
