"""Evaluation: one batch's metrics, and a model scored over a loader (per clip, or per video
when items carry a video index: several clips and crops per video, softmax scores averaged)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from workbench.engine import distributed as dist_

__all__ = ["batch_metrics", "evaluate"]


def batch_metrics(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[summed cross-entropy, top-1 hits, top-5 hits]`` of one batch's float logits, as a
    float64 tensor on their device (summed over batches and read once, at the end)."""
    k = min(5, out.shape[1])
    top = out.topk(k, 1).indices
    return torch.stack([
        nn.functional.cross_entropy(out, y, reduction="sum").double(),
        (top[:, 0] == y).sum().double(),
        (top == y[:, None]).any(1).sum().double(),
    ])


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: str = "cpu", *, max_batches: int | None = None,
             gather: bool = False) -> dict:
    """Mean cross-entropy, top-1 and top-5 accuracy over ``loader``.

    Items that carry a video index (test mode of the real datasets: several clips and crops per
    video) are scored per video: softmax scores averaged over each video's views. With
    ``gather=True`` under ``torchrun``, each process scores its shard and the totals are combined
    (every process returns the same numbers)."""
    model.eval()
    total = 0
    sums = None  # loss, top-1, top-5 summed on the device: one host synchronisation at the end
    views: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        if batch is None:  # every item of the batch was unreadable
            continue
        x, y = batch[0].to(device), batch[1].to(device)
        out = model(x).float()
        if len(batch) > 2:
            views.append((out.softmax(1).cpu(), y.cpu(), torch.as_tensor(batch[2]).cpu()))
            continue
        part = batch_metrics(out, y)
        sums = part if sums is None else sums + part
        total += y.numel()
    loss_sum, correct1, correct5 = sums.tolist() if sums is not None else (0.0, 0, 0)
    correct1, correct5 = int(correct1), int(correct5)
    if gather and dist_.is_distributed():
        loss_sum, correct1, correct5, total = dist_.all_reduce_sum([loss_sum, correct1, correct5, total])
        views = [v for part in dist_.all_gather_objects(views) for v in part]
    if views:
        scores = torch.cat([v[0] for v in views])
        labels = torch.cat([v[1] for v in views])
        vids = torch.cat([v[2] for v in views]).long()
        ids, inv = torch.unique(vids, sorted=True, return_inverse=True)
        mean = torch.zeros(len(ids), scores.shape[1]).index_add_(0, inv, scores)
        mean = mean / torch.zeros(len(ids)).index_add_(0, inv, torch.ones(len(vids)))[:, None]
        video_label = torch.zeros(len(ids), dtype=torch.long).index_copy_(0, inv, labels)
        k = min(5, mean.shape[1])
        top = mean.topk(k, 1).indices
        n = len(ids)
        loss = nn.functional.nll_loss(mean.clamp_min(1e-12).log(), video_label).item()
        return {"loss": loss, "top1": (top[:, 0] == video_label).float().mean().item(),
                "top5": (top == video_label[:, None]).any(1).float().mean().item(), "n": n, "views": len(vids)}
    if total == 0:
        raise ValueError("evaluation loader yielded no examples")
    total = int(total)
    return {"loss": loss_sum / total, "top1": correct1 / total, "top5": correct5 / total, "n": total}
