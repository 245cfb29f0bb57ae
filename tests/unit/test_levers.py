"""The rank-study levers: conditioned Monte-Carlo masks, fine-tuning, temperature annealing,
sandwich sampling and few-shot templates."""

import math

import numpy as np
import pytest
import torch

from workbench.engine.estimate import EstimateConfig, estimate_strategies, finetune_strategy
from workbench.engine.loop import TrainConfig, tau_at, train
from workbench.strategy import Strategy
from workbench.template.fewshot import pin_layer, split_layer
from workbench.template.network import TemplateNetwork, concrete_drop, concrete_drop_given


@pytest.fixture(scope="module")
def data(clips16):
    return clips16


def _net():
    torch.manual_seed(0)
    return TemplateNetwork(num_classes=3, growth=4, bn_size=2)


def test_conditioned_drop_is_the_concrete_law_given_the_outcome():
    logit = torch.tensor([-1.0, 0.5, 2.0])
    n = 200_000
    g = torch.Generator().manual_seed(1)
    keep = torch.zeros(n, 3, dtype=torch.bool)
    keep[: n // 2] = True
    d = concrete_drop_given(logit, keep, (n, 3), tau=0.3, generator=g)
    assert bool((d[keep] < 0.5).all()) and bool((d[~keep] > 0.5).all())
    # unconditional draws restricted to the same outcome have the same law (compare quantiles)
    u = concrete_drop(logit, (n, 3), tau=0.3, generator=torch.Generator().manual_seed(2))
    for j in range(3):
        kept_u = u[:, j][u[:, j] < 0.5]
        kept_c = d[: n // 2, j]
        qs = torch.tensor([0.1, 0.5, 0.9])
        assert torch.allclose(torch.quantile(kept_u, qs), torch.quantile(kept_c, qs), atol=0.01)
        # and the outcome's frequency is 1 - p
        p = torch.sigmoid(logit[j]).item()
        assert (u[:, j] < 0.5).float().mean().item() == pytest.approx(1 - p, abs=0.005)


def test_conditioned_mode_needs_a_strategy_and_keeps_its_branches():
    net = _net()
    with pytest.raises(ValueError, match="needs a strategy"):
        net.set_mode("conditioned")
    s = Strategy("densenet-tiny", ("S", "ST", "S+ST", "skip") * 2, "2D")
    net.set_strategy(s).set_mode("conditioned")
    m = net._masks(64)
    for li, u in enumerate(s.units):
        for b, j in net.branch_index.items():
            kept = b in u.split("+")
            assert bool(((m[:, li, j] > 0.5) == kept).all()), (li, b)


def test_monte_carlo_and_finetune_predictors(data):
    net = _net().eval()
    s = [Strategy("densenet-tiny", ("S",) * 8, "2D"), Strategy("densenet-tiny", ("ST",) * 8, "2D")]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    mc = estimate_strategies(net, s, data, config=EstimateConfig(batch_size=8, mc_samples=3, progress=False))
    again = estimate_strategies(net, s, data, config=EstimateConfig(batch_size=8, mc_samples=3, progress=False))
    np.testing.assert_allclose(mc["loss"].values, again["loss"].values)  # seeded: reproducible
    hard = estimate_strategies(net, s, data, config=EstimateConfig(batch_size=8, progress=False))
    assert not np.allclose(mc["loss"].values, hard["loss"].values)  # soft multipliers change the output
    ft = estimate_strategies(net, s, data, train_set=data,
                             config=EstimateConfig(batch_size=8, finetune_steps=3, progress=False))
    assert ft.attrs["finetune_steps"] == 3 and not np.allclose(ft["loss"].values, hard["loss"].values)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the template is left untouched
    assert net.mode == "relaxed"
    with pytest.raises(ValueError, match="train_set"):
        estimate_strategies(net, s, data, config=EstimateConfig(finetune_steps=2, progress=False))
    with pytest.raises(ValueError, match="separate predictors"):
        EstimateConfig(mc_samples=2, finetune_steps=2)
    with pytest.raises(ValueError, match="batches"):
        finetune_strategy(net, s[0], [], steps=1)


def test_temperature_schedule():
    cfg = TrainConfig(epochs=10, warmup_epochs=4, tau_start=1.0)
    taus = [tau_at(cfg, 0.1, e) for e in range(10)]
    assert taus[4] == pytest.approx(1.0) and taus[9] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(taus[4:], taus[5:]))
    assert tau_at(TrainConfig(epochs=3), 0.2, 2) == 0.2
    with pytest.raises(ValueError, match="sandwich"):
        TrainConfig(sandwich=1.0)
    with pytest.raises(ValueError, match="tau_start"):
        TrainConfig(tau_start=0.0)


def test_sandwich_steps_train_weights_but_not_gates(data):
    # sandwich 0 vs ~1: with (almost) every gated step on a uniform strategy the gates barely move
    moved = []
    for share in (0.0, 0.999):
        net = _net()
        g0 = net.drop_probabilities().clone()
        w0 = net.net.fc.weight.detach().clone()
        train(net, data, None, TrainConfig(epochs=2, warmup_epochs=0, batch_size=8, sandwich=share, progress=False))
        moved.append(float((net.drop_probabilities() - g0).abs().max()))
        assert not torch.equal(net.net.fc.weight, w0)
        assert net.mode == "relaxed" and net._fixed is None
    assert moved[0] > 1e-3 and moved[1] == 0.0


def test_path_uniform_warmup_trains_one_drawn_strategy_per_step(data):
    # warmup_uniform 1: every warm-up step runs one uniformly drawn strategy and the template is
    # back in warm-up mode (every branch on) afterwards; 0: the full template, no strategy drawn
    with pytest.raises(ValueError, match="warmup_uniform"):
        TrainConfig(warmup_uniform=1.5)
    for share in (0.0, 0.5, 1.0):
        net = _net()
        drawn, modes = [], []
        set_strategy = net.set_strategy

        def spy(strategy, _f=set_strategy, drawn=drawn):
            if strategy is not None:
                drawn.append(strategy)
            return _f(strategy)

        net.set_strategy = spy
        forward = net.forward
        net.forward = lambda x, _f=forward, modes=modes, net=net: (modes.append(net.mode), _f(x))[1]
        g0 = net.drop_probabilities().clone()
        w0 = net.net.fc.weight.detach().clone()
        train(net, data, None, TrainConfig(epochs=4, warmup_epochs=4, batch_size=8, warmup_uniform=share,
                                           progress=False))
        steps = 4 * math.ceil(len(data) / 8)
        assert not torch.equal(net.net.fc.weight, w0)
        assert torch.equal(net.drop_probabilities(), g0)  # warm-up: the gates never train
        assert net._fixed is None and len(modes) == steps
        if share == 0.0:
            assert drawn == [] and set(modes) == {"warmup"}
        elif share == 1.0:
            assert len(drawn) == steps and modes == ["fixed"] * steps
            assert len({s.units for s in drawn}) > 1  # drawn, not one strategy repeated
        else:  # after a drawn strategy's step the template is back to every branch on, never relaxed
            assert set(modes) == {"warmup", "fixed"} and len(drawn) == modes.count("fixed")


def test_pinned_layer_stays_fixed_while_the_rest_trains(data):
    net = _net()
    layer = split_layer(net)
    assert 0 <= layer < net.num_layers
    handle = pin_layer(net, 2, "ST")
    probs = net.unit_probabilities()
    assert probs[2, list(net.units).index("ST")] > 0.9999
    g0 = net.gate_logits.detach().clone()
    train(net, data, None, TrainConfig(epochs=2, warmup_epochs=0, batch_size=8, progress=False))
    g1 = net.gate_logits.detach()
    assert torch.equal(g1[2], g0[2]) and not torch.equal(g1, g0)
    handle.remove()
    assert all(s.units[2] == "ST" for s in net.sample(20, torch.Generator().manual_seed(0)))
    assert math.isfinite(net.log_prob(Strategy("densenet-tiny", ("S",) * 8, "2D")))
    with pytest.raises(ValueError, match="unit"):
        pin_layer(net, 0, "T")
    with pytest.raises(ValueError, match="layer"):
        pin_layer(net, 8, "S")
