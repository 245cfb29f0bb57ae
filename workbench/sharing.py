"""Scoring many strategies at once, exactly: every shared prefix computed once.

Strategies of one template that agree on their first layers compute the same activations up to
there. :class:`PrefixScorer` arranges a set of strategies as a tree of prefixes (the stem at the
root, one unit per layer below it, a strategy at each leaf) and walks it depth-first for every
batch, so the stem and every shared prefix run once per batch and memory holds one path.
BatchNorm recalibration follows the same tree: a layer's recalibrated statistics depend only on
its prefix, so each node re-estimates its own layer's statistics once, on the calibration
batches as they arrive at that node, and every leaf below reuses them.

The numbers are those of scoring one strategy at a time (``TemplateSupernet.set_strategy``,
:func:`workbench.estimate.recalibrate_bn`, :func:`workbench.train.evaluate`): the same operations
on the same tensors (tested equal). Duplicate strategies share one leaf.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .strategy import Strategy
from .supernet import TemplateSupernet, branches_of
from .train import batch_metrics

__all__ = ["PrefixScorer", "prefix_tree_size"]


def _bns(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class _Node:
    __slots__ = ("unit", "children", "leaves", "stats", "transition_stats", "head_stats")

    def __init__(self, unit: str | None) -> None:
        self.unit = unit
        self.children: dict[str, _Node] = {}
        self.leaves: list[int] = []  # strategy indices ending here
        self.stats = self.transition_stats = self.head_stats = None


def prefix_tree_size(strategies: Sequence[Strategy]) -> dict:
    """Layer evaluations with prefix sharing against one strategy at a time (per batch)."""
    prefixes = {tuple(s.units[:d]) for s in strategies for d in range(1, len(s.units) + 1)}
    n_layers = sum(len(s.units) for s in strategies)
    distinct = len({tuple(s.units) for s in strategies})
    return {"strategies": len(strategies), "distinct": distinct, "layer_evals_shared": len(prefixes),
            "layer_evals_one_at_a_time": n_layers, "stems_shared": 1, "stems_one_at_a_time": len(strategies)}


class PrefixScorer:
    """Score strategies of a DenseNet template with prefix sharing (see the module's text)."""

    def __init__(self, supernet: TemplateSupernet) -> None:
        net = supernet.net
        if not hasattr(net, "layer_forward"):
            raise ValueError(f"prefix sharing walks DenseNet templates; {supernet.backbone!r} is scored one at a time")
        self.supernet, self.net = supernet, net
        self.layers = []  # (block, layer module, last in its block)
        for b, blk in enumerate(net.blocks):
            for i, layer in enumerate(blk):
                self.layers.append((b, layer, i == len(blk) - 1))

    # ---- BN statistics of one stage ------------------------------------------------------------
    @staticmethod
    def _save(module) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in _bns(module)]

    @staticmethod
    def _load(module, stats) -> None:
        for m, (mean, var, n) in zip(_bns(module), stats):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(n)

    @staticmethod
    def _calibrate(module, fn, inputs: list) -> tuple[list, list]:
        """``recalibrate_bn`` for one stage: reset its BNs, run ``fn`` on every input in train
        mode (cumulative averages), back to eval; returns (outputs, statistics)."""
        bns = _bns(module)
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        module.train()
        try:
            outs = [fn(x) for x in inputs]
        finally:
            for m, mom in zip(bns, saved):
                m.momentum = mom
            module.eval()
        return outs, PrefixScorer._save(module)

    # ---- the tree -------------------------------------------------------------------------------------
    def _tree(self, strategies: Sequence[Strategy]) -> _Node:
        root = _Node(None)
        for i, s in enumerate(strategies):
            node = root
            for u in s.units:
                node = node.children.setdefault(u, _Node(u))
            node.leaves.append(i)
        return root

    def _run_layer(self, depth: int, node: _Node, feats: list[torch.Tensor]) -> torch.Tensor:
        _, layer, _ = self.layers[depth]
        layer.gate_kept, layer.gate_mask = branches_of(node.unit), None
        return self.net.layer_forward(layer, feats)

    def _calibrate_tree(self, node: _Node, depth: int, states: list[tuple[int, list]]) -> None:
        """``states``: per calibration batch, (block, features so far) after ``depth`` layers."""
        for child in node.children.values():
            b, layer, last = self.layers[depth]
            new, child.stats = self._calibrate(layer, lambda st: self._run_layer(depth, child, st[1]), states)
            nxt = [(bb, [*f, y]) for (bb, f), y in zip(states, new)]
            if last:
                trans = self.net.transitions[b] if b < len(self.net.transitions) else nn.Identity()
                closed, child.transition_stats = self._calibrate(
                    trans, lambda st: self.net.close_block(st[0], st[1]), nxt)
                nxt = [(bb + 1, [x]) for (bb, _), x in zip(nxt, closed)]
            if depth + 1 == len(self.layers):
                _, child.head_stats = self._calibrate(self.net.norm, lambda st: self.net.head_map(st[1][0]), nxt)
            else:
                self._calibrate_tree(child, depth + 1, nxt)

    def _eval_tree(self, node: _Node, depth: int, block: int, feats: list, y, sums: list, recal: bool) -> None:
        for child in node.children.values():
            b, layer, last = self.layers[depth]
            if recal:
                self._load(layer, child.stats)
            f = [*feats, self._run_layer(depth, child, feats)]
            bb = block
            if last:
                if recal and b < len(self.net.transitions):
                    self._load(self.net.transitions[b], child.transition_stats)
                f, bb = [self.net.close_block(b, f)], block + 1
            if depth + 1 == len(self.layers):
                if recal:
                    self._load(self.net.norm, child.head_stats)
                h = self.net.head_map(f[0])
                out = self.net.fc(self.net.dropout(self.net.avgpool(h).flatten(1))).float()
                part = batch_metrics(out, y)
                for i in child.leaves:
                    sums[i] = part if sums[i] is None else sums[i] + part
            else:
                self._eval_tree(child, depth + 1, bb, f, y, sums, recal)

    @torch.no_grad()
    def score(self, strategies: Sequence[Strategy], batches, *, calibration: Sequence | None = None,
              device: str = "cpu", max_batches: int | None = None, progress=None) -> list[dict]:
        """``[{"loss", "top1", "top5", "n"}]`` per strategy, as :func:`workbench.train.evaluate`
        gives for each one in turn; ``calibration``: the BN-recalibration batches (None: the
        template's statistics). The template's BN statistics are restored afterwards."""
        sn, net = self.supernet, self.net
        strategies = [sn.on_scaffold(s) for s in strategies]
        for s in strategies:
            sn.set_strategy(s)  # validates against the space
        sn.set_strategy(None)
        root = self._tree(strategies)
        saved = {k: v.clone() for k, v in sn.state_dict().items()
                 if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        sums: list = [None] * len(strategies)
        total = 0
        recal = bool(calibration)
        was_training = sn.training
        try:
            sn.eval()
            if recal:
                xs = [sn.prepare_input(b[0].to(device)) for b in calibration]
                stems, stem_stats = self._calibrate(net.stem, net.stem_forward, xs)
                self._calibrate_tree(root, 0, [(0, [s]) for s in stems])
                self._load(net.stem, stem_stats)
            for i, batch in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                if batch is None:
                    continue
                if len(batch) > 2:
                    raise ValueError("prefix sharing scores clip batches (x, y), not multi-view video batches")
                x, y = batch[0].to(device), batch[1].to(device)
                stem = net.stem_forward(sn.prepare_input(x))
                self._eval_tree(root, 0, 0, [stem], y, sums, recal)
                total += y.numel()
                if progress is not None:
                    progress.update(1)
        finally:
            for _, layer, _ in self.layers:
                layer.gate_kept = layer.gate_mask = None
            sn.load_state_dict(saved, strict=False)
            sn.train(was_training)
        if total == 0:
            raise ValueError("evaluation loader yielded no examples")
        out = []
        for s in sums:
            loss_sum, c1, c5 = s.tolist()
            out.append({"loss": loss_sum / total, "top1": int(c1) / total, "top5": int(c5) / total, "n": total})
        return out
