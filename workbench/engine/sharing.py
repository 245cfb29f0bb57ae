"""Scoring many strategies at once, exactly: every shared prefix computed once.

Strategies of one template that agree on their first layers compute the same activations up to
there. :class:`PrefixScorer` arranges a set of strategies as a tree of prefixes (the stem at the
root, one unit per layer below it, a strategy at each leaf) and walks it depth-first for every
batch, so the stem and every shared prefix run once per batch and memory holds one path.
BatchNorm recalibration follows the same tree: a layer's recalibrated statistics depend only on
its prefix, so each node re-estimates its own layer's statistics once, on the calibration
batches as they arrive at that node, and every leaf below reuses them.

The numbers are those of scoring one strategy at a time (``TemplateNetwork.set_strategy``,
:func:`workbench.estimate.recalibrate_bn`, :func:`workbench.train.evaluate`): the same operations
on the same tensors (tested equal). Duplicate strategies share one leaf.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from workbench.engine.evaluate import batch_metrics
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork, branches_of

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

    def __init__(self, supernet: TemplateNetwork) -> None:
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
            new, child.stats = self._calibrate(layer, lambda st, c=child: self._run_layer(depth, c, st[1]), states)
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

    def _bn_buffers(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.supernet.state_dict().items()
                if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}

    @torch.no_grad()
    def prepare(self, strategies: Sequence[Strategy], calibration: Sequence | None = None,
                device: str = "cpu") -> _Tree:
        """The prefix tree of ``strategies``, each node's BN statistics re-estimated on the
        ``calibration`` batches (None: the template's own statistics are used)."""
        sn, net = self.supernet, self.net
        strategies = [sn.on_scaffold(s) for s in strategies]
        with sn.running():
            for s in strategies:
                sn.set_strategy(s)  # validates against the space
        tree = _Tree(self._tree(strategies), len(strategies))
        if calibration:
            saved, was_training = self._bn_buffers(), sn.training
            try:
                sn.eval()
                xs = [sn.prepare_input(b[0].to(device)) for b in calibration]
                stems, tree.stem_stats = self._calibrate(net.stem, net.stem_forward, xs)
                self._calibrate_tree(tree.root, 0, [(0, [x]) for x in stems])
            finally:
                for _, layer, _ in self.layers:
                    layer.gate_kept = layer.gate_mask = None
                sn.load_state_dict(saved, strict=False)
                sn.train(was_training)
        return tree

    @torch.no_grad()
    def evaluate(self, tree: _Tree, batches, *, subset: Sequence[int] | None = None, device: str = "cpu",
                 max_batches: int | None = None, progress=None) -> list[dict | None]:
        """Score the tree's strategies (or those of ``subset``; the others give None) on ``batches``;
        only the branches leading to a strategy asked for are walked."""
        sn, net = self.supernet, self.net
        wanted = set(range(tree.n)) if subset is None else set(subset)
        root = _active(tree.root, wanted)
        recal = tree.stem_stats is not None
        saved, was_training = self._bn_buffers(), sn.training
        sums: list = [None] * tree.n
        total = 0
        try:
            sn.eval()
            if recal:
                self._load(net.stem, tree.stem_stats)
            for i, batch in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                if batch is None:
                    continue
                if len(batch) > 2:
                    raise ValueError("prefix sharing scores clip batches (x, y), not multi-view video batches")
                x, y = batch[0].to(device), batch[1].to(device)
                if root is not None:
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
        out: list[dict | None] = []
        for i, part in enumerate(sums):
            if i not in wanted:
                out.append(None)
                continue
            loss_sum, c1, c5 = part.tolist()
            out.append({"loss": loss_sum / total, "top1": int(c1) / total, "top5": int(c5) / total, "n": total})
        return out

    def score(self, strategies: Sequence[Strategy], batches, *, calibration: Sequence | None = None,
              device: str = "cpu", max_batches: int | None = None, progress=None) -> list[dict]:
        """``[{"loss", "top1", "top5", "n"}]`` per strategy, as :func:`workbench.train.evaluate`
        gives for each one in turn; ``calibration``: the BN-recalibration batches (None: the
        template's statistics). The template's BN statistics are restored afterwards."""
        tree = self.prepare(strategies, calibration, device)
        return self.evaluate(tree, batches, device=device, max_batches=max_batches, progress=progress)


class _Tree:
    def __init__(self, root: _Node, n: int) -> None:
        self.root, self.n = root, n
        self.stem_stats = None


def _active(node: _Node, wanted: set[int]) -> _Node | None:
    """A view of the tree holding only the paths to the ``wanted`` leaves (statistics shared)."""
    kids = {u: c for u, c in ((u, _active(c, wanted)) for u, c in node.children.items()) if c is not None}
    leaves = [i for i in node.leaves if i in wanted]
    if not kids and not leaves:
        return None
    view = _Node(node.unit)
    view.children, view.leaves = kids, leaves
    view.stats, view.transition_stats, view.head_stats = node.stats, node.transition_stats, node.head_stats
    return view


def race_top_k(supernet: TemplateNetwork, strategies: Sequence[Strategy], eval_set, *, k: int = 10,
               calibration: Sequence | None = None, batch_size: int = 64, first_batches: int = 1, z: float = 2.0,
               device: str = "cpu") -> dict:
    """Successive halving for a top-``k`` question (approximate, opt-in): every strategy is
    scored on the first ``first_batches`` validation batches, those whose upper confidence bound
    (top-1 +- ``z`` binomial standard errors) falls below the ``k``-th best lower bound are dropped,
    and the rest go on to twice as many batches, until ``k`` remain or the data is used up. Every
    strategy is scored on the same clips, in the validation split's order.

    Returns ``top1`` (on the clips each strategy saw), ``n`` (those clips), ``low``/``high`` (its
    interval), ``top`` (the ``k`` indices ranked best) and ``clip_evals`` (strategy x clip
    evaluations spent, against ``len(strategies) * len(eval_set)`` for full scoring)."""

    from workbench.data.dataset import collate_drop_none

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    supernet.to(device)
    loader = torch.utils.data.DataLoader(eval_set, batch_size=batch_size, shuffle=False, collate_fn=collate_drop_none)
    batches = [b for b in loader if b is not None]
    if not batches:
        raise ValueError("racing needs validation clips; the evaluation set yielded none")
    # duplicates race once (a strategy drawn twice must not take two of the k places)
    order = list(dict.fromkeys(s.key for s in strategies))
    first = {}
    for i, s in enumerate(strategies):
        first.setdefault(s.key, i)
    distinct = [strategies[first[key]] for key in order]
    r = _race(supernet, distinct, batches, k=k, calibration=calibration, first_batches=first_batches, z=z,
              device=device)
    pos = {key: j for j, key in enumerate(order)}
    out = {name: [r[name][pos[s.key]] for s in strategies] for name in ("top1", "n", "low", "high")}
    out["top"] = [first[order[j]] for j in r["top"]]
    out["clip_evals"] = r["clip_evals"]
    out["full_clip_evals"] = len(strategies) * sum(len(b[1]) for b in batches)
    return out


def _race(supernet, strategies, batches, *, k, calibration, first_batches, z, device) -> dict:
    import math

    scorer = PrefixScorer(supernet)
    tree = scorer.prepare(strategies, calibration, device)  # calibrated once, for every round
    n_s = len(strategies)
    hits = [0.0] * n_s
    seen = [0] * n_s
    alive = list(range(n_s))
    pos, chunk, spent = 0, max(1, first_batches), 0
    while alive and pos < len(batches):
        part = batches[pos:pos + chunk]
        pos += len(part)
        res = scorer.evaluate(tree, part, subset=alive, device=device)
        for i in alive:
            r = res[i]
            hits[i] += r["top1"] * r["n"]
            seen[i] += r["n"]
            spent += r["n"]
        if len(alive) <= k:
            continue  # the k left are scored on all the data
        p = {i: hits[i] / seen[i] for i in alive}
        se = {i: math.sqrt(max(p[i] * (1 - p[i]), 0.25 / seen[i]) / seen[i]) for i in alive}
        kth_low = sorted((p[i] - z * se[i] for i in alive), reverse=True)[k - 1]
        alive = [i for i in alive if p[i] + z * se[i] >= kth_low]
        chunk *= 2
    top1 = [hits[i] / seen[i] if seen[i] else float("nan") for i in range(n_s)]
    half = [z * math.sqrt(max(t * (1 - t), 0.25 / n) / n) if n else float("nan") for t, n in zip(top1, seen)]
    # rank: strategies that went the distance first (their numbers are full-data), then the rest
    order = sorted(range(n_s), key=lambda i: (-seen[i], -top1[i]))
    return {"top1": top1, "n": seen, "low": [t - h for t, h in zip(top1, half)],
            "high": [t + h for t, h in zip(top1, half)], "top": order[:k], "clip_evals": spent}
