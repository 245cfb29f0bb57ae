"""Evaluation, one evaluator for every model: one batch's metrics, and a model scored over a loader
per clip, per video (items that carry a video index: several clips and crops per video, softmax
scores averaged) and per head (multi-head stream networks, with the blended prediction)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

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


def _heads(out) -> dict[str, torch.Tensor]:
    return dict(out) if isinstance(out, Mapping) else {"fused": out}


def _to(x, device: str):
    if isinstance(x, Mapping):
        return {k: v.to(device) for k, v in x.items()}
    return x.to(device)


def _per_video(views: list) -> dict:
    """Metrics of per-view softmax scores averaged per video: ``views`` is ``[(scores, labels, ids)]``."""
    scores = torch.cat([v[0] for v in views])
    labels = torch.cat([v[1] for v in views])
    vids = torch.cat([v[2] for v in views]).long()
    ids, mean = average_scores_per_video(scores, vids)
    inv = torch.searchsorted(ids, vids)
    video_label = torch.zeros(len(ids), dtype=torch.long).index_copy_(0, inv, labels)
    k = min(5, mean.shape[1])
    top = mean.topk(k, 1).indices
    loss = nn.functional.nll_loss(mean.clamp_min(1e-12).log(), video_label).item()
    return {"loss": loss, "top1": (top[:, 0] == video_label).float().mean().item(),
            "top5": (top == video_label[:, None]).any(1).float().mean().item(), "n": len(ids), "views": len(vids)}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: str = "cpu", *, max_batches: int | None = None,
             gather: bool = False, heads: bool = False, weights: Mapping[str, float] | None = None) -> dict:
    """Mean cross-entropy, top-1 and top-5 accuracy over ``loader`` (any iterable of batches).

    * Per clip: ``{"loss", "top1", "top5", "n"}``.
    * Per video: items that carry a video index (test mode of the real datasets: several clips
      and crops per video) are scored per video, softmax scores averaged over each video's views
      (``"views"`` counts them).
    * Per head: with ``heads=True`` (or a model whose output is ``{head: logits}``) the result is
      ``{head: metrics}``; a single output is the head ``"fused"``. ``weights`` adds the head
      ``"blend"``: the prediction ``sum_k w_k softmax(logits_k)`` that a blended loss trains (its
      loss is the NLL of that mixture).

    With ``gather=True`` under ``torchrun``, each process scores its shard and the totals are
    combined (every process returns the same numbers). The model's train/eval mode is left in eval.
    """
    model.eval()
    total = 0
    sums: dict[str, torch.Tensor] = {}  # per head: loss, top-1, top-5 summed on the device
    views: dict[str, list] = {}
    active = {k: float(w) for k, w in (weights or {}).items() if w}
    multi = heads or bool(active)
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        if batch is None:  # every item of the batch was unreadable
            continue
        x, y = _to(batch[0], device), batch[1].to(device)
        out = model(x)
        multi = multi or isinstance(out, Mapping)
        outs = _heads(out)
        if active:
            z = sum(active.values())
            mix = sum(w / z * outs[k].float().softmax(1) for k, w in active.items())
            outs["blend"] = mix.clamp_min(1e-12).log()  # log-probabilities: CE of them is the mixture's NLL
        for k, logits in outs.items():
            logits = logits.float()
            if len(batch) > 2:
                views.setdefault(k, []).append(
                    (logits.softmax(1).cpu(), y.cpu(), torch.as_tensor(batch[2]).cpu()))
                continue
            part = batch_metrics(logits, y)
            sums[k] = part if k not in sums else sums[k] + part
        if len(batch) <= 2:
            total += y.numel()
    gathering = gather and dist_.is_distributed()
    sum_names, view_names = sorted(sums), sorted(views)
    if gathering:  # every process takes part in every combine below, also one whose shard was empty
        parts = dist_.all_gather_objects((sum_names, view_names, multi))
        sum_names = sorted({n for p in parts for n in p[0]})
        view_names = sorted({n for p in parts for n in p[1]})
        multi = any(p[2] for p in parts)
    results = {}
    for k in sum_names:
        loss_sum, correct1, correct5 = sums[k].tolist() if k in sums else (0.0, 0, 0)
        n = total if k in sums else 0
        if gathering:
            loss_sum, correct1, correct5, n = dist_.all_reduce_sum([loss_sum, int(correct1), int(correct5), n])
        n = int(n)
        if n:
            results[k] = {"loss": loss_sum / n, "top1": int(correct1) / n, "top5": int(correct5) / n, "n": n}
    for k in view_names:
        vs = views.get(k, [])
        if gathering:
            vs = [v for part in dist_.all_gather_objects(vs) for v in part]
        if vs:
            results[k] = _per_video(vs)
    multi = multi or any(k != "fused" for k in results)
    if not results or (not multi and "fused" not in results):
        raise ValueError("evaluation loader yielded no examples")
    return results if multi else results["fused"]


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
