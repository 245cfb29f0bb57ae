"""Prefix-sharing evaluation gives exactly the numbers of scoring one strategy at a time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from workbench.engine.estimate import EstimateConfig, estimate_strategies
from workbench.engine.sharing import PrefixScorer, prefix_tree_size
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork


class _Clips(torch.utils.data.Dataset):
    def __init__(self, n, seed, classes=4):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, 4, 32, 32, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


@pytest.fixture(scope="module")
def template():
    torch.manual_seed(0)
    sn = TemplateNetwork(num_classes=4, growth=4, bn_size=2, unit_set="with-t")
    # give the BN statistics something to differ by: a few training-mode passes
    sn.set_mode("warmup").train()
    with torch.no_grad():
        for _ in range(3):
            sn(torch.randn(6, 3, 4, 32, 32))
    sn.eval()
    return sn


def _strategies(sn, n, seed):
    g = torch.Generator().manual_seed(seed)
    out = sn.sample(n, g)
    for _ in range(n):  # uniform draws too: skips, T units, little sharing
        idx = torch.randint(len(sn.units), (sn.num_layers,), generator=g).tolist()
        out.append(Strategy(sn.backbone, tuple(sn.units[i] for i in idx), sn.config.stem))
    return out + out[:3]  # duplicates share a leaf


@pytest.mark.parametrize("recal", [0, 2])
def test_shared_prefixes_equal_one_at_a_time(template, recal):
    val, train = _Clips(20, 1), _Clips(24, 2)
    strategies = _strategies(template, 12, recal)
    cfg = EstimateConfig(batch_size=8, recalibrate_batches=recal, progress=False)
    before = {k: v.clone() for k, v in template.state_dict().items()}
    one = estimate_strategies(template, strategies, val, train_set=train, config=replace(cfg, share_prefixes=False))
    shared = estimate_strategies(template, strategies, val, train_set=train, config=cfg)
    assert shared.attrs["shared_prefixes"] == 1 and one.attrs["shared_prefixes"] == 0
    for var in ("top1", "top5", "loss"):
        np.testing.assert_array_equal(shared[var].values, one[var].values, err_msg=var)
    # the template is left as it was: weights, BN statistics, mode
    after = template.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert template.mode == "warmup"


def test_tree_size_counts_the_shared_work():
    sn = TemplateNetwork(num_classes=4, growth=4, bn_size=2)
    a = Strategy(sn.backbone, ("S",) * 8, sn.config.stem)
    b = Strategy(sn.backbone, ("S",) * 7 + ("ST",), sn.config.stem)
    t = prefix_tree_size([a, b, a])
    assert t == {"strategies": 3, "distinct": 2, "layer_evals_shared": 9, "layer_evals_one_at_a_time": 24,
                 "stems_shared": 1, "stems_one_at_a_time": 3}


def test_resnet_template_is_scored_one_at_a_time():
    sn = TemplateNetwork(backbone="resnet26-template", num_classes=4, base_width=4)
    with pytest.raises(ValueError, match="one at a time"):
        PrefixScorer(sn)
    val = _Clips(6, 3)
    est = estimate_strategies(sn, sn.sample(3, torch.Generator().manual_seed(0)), val,
                              config=EstimateConfig(batch_size=4, progress=False))
    assert est.attrs["shared_prefixes"] == 0


def test_racing_keeps_full_numbers_for_the_survivors(template):
    from workbench.engine.sharing import race_top_k

    val, train = _Clips(40, 4), _Clips(16, 5)
    strategies = _strategies(template, 10, 7)[:20]
    calib = [(train.x[:8], train.y[:8])]
    full = PrefixScorer(template).score(strategies, torch.utils.data.DataLoader(val, batch_size=8),
                                        calibration=calib)
    r = race_top_k(template, strategies, val, k=3, calibration=calib, batch_size=8, z=1.0)
    assert r["clip_evals"] <= r["full_clip_evals"] == 20 * 40
    assert len(r["top"]) == 3
    for i in range(20):
        if r["n"][i] == 40:  # went the distance: exactly the full numbers
            assert r["top1"][i] == full[i]["top1"]
        assert r["low"][i] <= r["top1"][i] <= r["high"][i]
    # a strategy dropped early was outside the k best by its interval when it was dropped
    best = sorted(range(20), key=lambda i: -full[i]["top1"])[:3]
    assert r["n"][best[0]] == 40
    with pytest.raises(ValueError, match="k must be"):
        race_top_k(template, strategies, val, k=0)
