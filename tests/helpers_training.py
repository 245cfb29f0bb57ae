"""A small, honest fit / evaluate loop for tests that train: the known-answer tests.

The split is rendered once into memory as uint8 and normalised batch by batch, exactly as
``SyntheticVideo(output="float")`` does; training is plain mini-batch AdamW (or SGD with
momentum) with a cosine learning-rate decay, seeded so that a run is repeatable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from workbench.data.synthetic import to_float

__all__ = ["ClipTensors", "FitResult", "clip_tensors", "evaluate", "fit", "predict"]


@dataclass
class ClipTensors:
    """A whole split in memory: ``clips`` uint8 ``N T H W 3``, ``labels`` int64 ``N``."""

    clips: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float ``B 3 T H W`` clips, normalised, and their labels."""
        return to_float(self.clips[index]), self.labels[index]


def clip_tensors(dataset) -> ClipTensors:
    """Render a :class:`~workbench.data.synthetic.SyntheticVideo` split into memory."""
    return ClipTensors(torch.from_numpy(dataset.array()), torch.from_numpy(dataset.labels), dataset.num_classes)


@dataclass
class FitResult:
    epochs: int
    seconds: float
    history: list[dict] = field(default_factory=list)  # per epoch: loss, train accuracy, seconds


def fit(
    model: nn.Module,
    train: ClipTensors,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    optimizer: str = "adamw",
    seed: int = 0,
    warmup_steps: int = 0,
) -> FitResult:
    """Train ``model`` on ``train`` for ``epochs`` with a cosine-decayed learning rate."""
    if optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected 'adamw' or 'sgd'")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(train)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        return 0.5 * lr * (1 + math.cos(math.pi * step / total))

    loss_fn = nn.CrossEntropyLoss()
    result = FitResult(epochs, 0.0)
    step = 0
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one clip
                continue
            x, y = train.batch(idx)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        result.history.append(
            {"epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n, "seconds": time.perf_counter() - t0}
        )
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def predict(model: nn.Module, data: ClipTensors, batch_size: int = 200) -> torch.Tensor:
    """Predicted labels (eval mode)."""
    model.eval()
    preds = []
    for start in range(0, len(data), batch_size):
        x, _ = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        preds.append(model(x).argmax(1))
    return torch.cat(preds)


def evaluate(model: nn.Module, data: ClipTensors) -> tuple[int, int]:
    """(correct, total) of ``model`` on ``data``."""
    preds = predict(model, data)
    return int((preds == data.labels).sum()), len(data)
