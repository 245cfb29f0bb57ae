"""Evaluation: one batch's metrics, and a model scored over a loader (per clip, or per video
when items carry a video index: several clips and crops per video, softmax scores averaged)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from workbench.engine import distributed as dist_

__all__ = ["average_scores_per_video", "batch_metrics", "evaluate"]


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


def average_scores_per_video(scores, video_ids, num_videos: int | None = None):
    """Mean of the per-view ``scores`` (``N x C``) of each video; returns ``(ids, mean_scores)``.

    ``ids`` are the distinct video indices in increasing order, ``mean_scores`` their averaged
    rows. With ``num_videos``, the result has one row per video ``0..num_videos-1`` instead and
    videos without any view get NaN rows.
    """
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, torch.Tensor) else scores)
    v = (
        torch.as_tensor(
            np.asarray(video_ids) if not isinstance(video_ids, torch.Tensor) else video_ids
        )
        .long()
        .reshape(-1)
    )
    if s.dim() != 2 or s.shape[0] != v.shape[0]:
        raise ValueError(
            f"scores must be N x C with one video id per row, got {tuple(s.shape)} and {tuple(v.shape)} ids"
        )
    s = s.to(torch.float64) if not s.is_floating_point() else s
    if num_videos is None:
        ids, inv = torch.unique(v, sorted=True, return_inverse=True)
        out = torch.zeros(len(ids), s.shape[1], dtype=s.dtype).index_add_(0, inv, s)
        cnt = torch.zeros(len(ids), dtype=s.dtype).index_add_(
            0, inv, torch.ones_like(v, dtype=s.dtype)
        )
        return ids, out / cnt[:, None]
    if len(v) and (v.min() < 0 or v.max() >= num_videos):
        raise ValueError(
            f"video ids must lie in [0, {num_videos}), got {int(v.min())}..{int(v.max())}"
        )
    out = torch.zeros(num_videos, s.shape[1], dtype=s.dtype).index_add_(0, v, s)
    cnt = torch.zeros(num_videos, dtype=s.dtype).index_add_(0, v, torch.ones_like(v, dtype=s.dtype))
    return torch.arange(num_videos), out / cnt[:, None]
