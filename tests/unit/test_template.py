import math

import pytest
import torch
from torch.utils.data import TensorDataset

from workbench.engine.loop import TrainConfig, train
from workbench.strategy import Strategy
from workbench.template.network import TemplateConfig, TemplateNetwork, concrete_drop


def _x(b=2):
    return torch.randn(b, 3, 8, 32, 32)


def test_fixed_strategy_equals_extracted_network():
    sn = TemplateNetwork(num_classes=5).eval()
    x = _x()
    for units in [
        ("S", "ST", "S+ST", "skip", "S", "ST", "S+ST", "S"),
        ("S",) * 8,
        ("skip",) * 8,
    ]:
        s = Strategy("densenet-tiny", units)
        sn.set_strategy(s)
        with torch.no_grad():
            a = sn(x)
            b = sn.extract(s).eval()(x)
        assert torch.allclose(a, b, atol=1e-6), units
    with_t = TemplateNetwork(num_classes=3, unit_set="with-t").eval()
    s = Strategy("densenet-tiny", ("T", "S+T", "T+ST", "S+T+ST", "skip", "S", "ST", "S+ST"))
    with_t.set_strategy(s)
    with torch.no_grad():
        assert torch.allclose(with_t(x), with_t.extract(s).eval()(x), atol=1e-6)


def test_dropped_branches_are_not_computed():
    sn = TemplateNetwork(num_classes=3).eval()
    calls = []
    layer0 = sn.net.blocks[0][0]
    layer0.branch_st.register_forward_hook(lambda *a: calls.append("ST"))
    layer0.branch_s.register_forward_hook(lambda *a: calls.append("S"))
    sn.set_strategy(Strategy("densenet-tiny", ("S",) + ("S+ST",) * 7))
    with torch.no_grad():
        sn(_x(1))
    assert calls == ["S"]


def test_unit_probabilities_and_marginals():
    sn = TemplateNetwork(num_classes=3)
    with torch.no_grad():
        sn.gate_logits[:, 0] = math.log(0.2 / 0.8)  # p_S = 0.2
        sn.gate_logits[:, 1] = math.log(0.6 / 0.4)  # p_ST = 0.6
    probs = sn.unit_probabilities()
    assert sn.units == ("S", "ST", "S+ST", "skip")
    expect = torch.tensor([0.8 * 0.6, 0.2 * 0.4, 0.8 * 0.4, 0.2 * 0.6], dtype=torch.float64)
    assert torch.allclose(probs[0], expect, atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(8, dtype=torch.float64))
    use = sn.use_probabilities()
    assert torch.allclose(use[0], torch.tensor([1 - math.sqrt(0.2), 1 - math.sqrt(0.6)]), atol=1e-6)
    assert sn.expected_temporal_layers() == pytest.approx(8 * 0.4, abs=1e-5)
    assert sn.most_probable().units == ("S",) * 8
    s = Strategy("densenet-tiny", ("S",) * 4 + ("skip",) * 4)
    assert sn.log_prob(s) == pytest.approx(4 * math.log(0.48) + 4 * math.log(0.12), abs=1e-6)


def test_sampling_reproducible_and_follows_p():
    sn = TemplateNetwork(num_classes=3)
    with torch.no_grad():
        sn.gate_logits[:, 0] = math.log(0.3 / 0.7)
        sn.gate_logits[:, 1] = math.log(0.9 / 0.1)
    a = sn.sample(400, torch.Generator().manual_seed(1))
    b = sn.sample(400, torch.Generator().manual_seed(1))
    assert a == b
    units = [u for s in a for u in s.units]
    frac_st_kept = sum("ST" in u.split("+") for u in units) / len(units)
    assert abs(frac_st_kept - 0.1) < 0.03


def test_concrete_relaxation_tends_to_bernoulli():
    logit = torch.tensor(math.log(0.3 / 0.7))
    d = concrete_drop(logit, (20000,), tau=0.05, generator=torch.Generator().manual_seed(0))
    assert abs(d.mean().item() - 0.3) < 0.02
    assert ((d < 0.05) | (d > 0.95)).float().mean() > 0.9
    logit = torch.zeros((), requires_grad=True)
    concrete_drop(logit, (10,), tau=0.2).sum().backward()
    assert logit.grad is not None and logit.grad.abs() > 0


def test_regularizer_forms_and_volume_prior():
    sn = TemplateNetwork(num_classes=3, length_scale=2.0)
    n = 100
    p = torch.sigmoid(sn.gate_logits)
    sq = torch.stack([torch.stack([lay.branch_s.conv.weight.pow(2).sum(), lay.branch_st.conv.weight.pow(2).sum()])
                      for _, lay in sn.net.layer_modules()])
    sq_vol = sq * torch.tensor([1.0, 3.0])
    paper = (p * p.log()).sum() / n + (4.0 * (1 - p) * sq_vol).sum() / (2 * n)
    assert torch.allclose(sn.regularizer(n), paper)
    code = TemplateNetwork(num_classes=3, length_scale=2.0, regularizer="code", prior="none")
    code.load_state_dict(sn.state_dict())
    ent = p * p.log() + (1 - p) * (1 - p).log()
    assert torch.allclose(code.regularizer(n), (2.0 * (1 - p) * sq).sum() / n + ent.sum() / n)
    # gradient reaches the gate logits
    sn.regularizer(n).backward()
    assert sn.gate_logits.grad.abs().sum() > 0


def test_bad_config():
    with pytest.raises(ValueError, match="needs a densenet or resnet template backbone"):
        TemplateConfig(backbone="resnet18")
    with pytest.raises(ValueError, match="unknown unit set"):
        TemplateConfig(unit_set="all")
    with pytest.raises(ValueError, match=r"p_init must lie in \(0, 1\)"):
        TemplateConfig(p_init=1.0)
    sn = TemplateNetwork(num_classes=3)
    with pytest.raises(ValueError, match="layer 0: unit 'T' is not in this template's unit set 'paper'"):
        sn.set_strategy(Strategy("densenet-tiny", ("T",) + ("S",) * 7))
    with pytest.raises(ValueError, match="mode 'fixed' needs a strategy"):
        sn.set_mode("fixed")


def test_training_resumes_to_identical_numbers(tmp_path):
    torch.manual_seed(0)
    ds = TensorDataset(torch.randn(16, 3, 4, 32, 32), torch.randint(0, 3, (16,)))
    cfg = TrainConfig(epochs=3, warmup_epochs=1, batch_size=8, progress=False)

    def fresh():
        torch.manual_seed(0)
        return TemplateNetwork(num_classes=3, growth=4, bn_size=2)

    whole = fresh()
    h1 = train(whole, ds, ds, cfg, out_dir=tmp_path / "a")
    part = fresh()
    train(part, ds, ds, cfg, out_dir=tmp_path / "b", stop_after=2)
    torch.manual_seed(99)  # a new process: different global RNG until the checkpoint restores it
    resumed = TemplateNetwork(num_classes=3, growth=4, bn_size=2)
    h2 = train(resumed, ds, ds, cfg, out_dir=tmp_path / "b", resume=True)
    assert h1.train_loss == h2.train_loss and h1.val_acc == h2.val_acc
    assert h1.gates == h2.gates and len(h2.gates) == 3 and h2.phase == ["warmup", "gated", "gated"]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    # the gates move only in the gated phase
    assert torch.allclose(torch.tensor(h1.gates[0]), torch.full((8, 2), 0.1), atol=1e-6)
    assert h1.gates[2] != h1.gates[0]


def test_resnet_bottleneck_template():
    sn = TemplateNetwork(backbone="resnet26-template", num_classes=4, base_width=8).eval()
    assert sn.units == ("S", "ST", "S+ST", "skip") and sn.gate_logits.shape == (8, 2)
    x = _x()
    s = Strategy("resnet26-template", ("S", "ST", "S+ST", "skip") * 2)
    sn.set_strategy(s)
    with torch.no_grad():
        a = sn(x)
        b = sn.extract(s).eval()(x)
    assert torch.allclose(a, b, atol=1e-6)
    sn.set_mode("relaxed").train()
    out = sn(x)
    (out.sum() + sn.regularizer(100)).backward()
    assert sn.gate_logits.grad.abs().sum() > 0
    assert [p.name for p in sn.presets()][:3] == ["s", "st", "s+st"]
    with pytest.raises(ValueError, match="unit set 'paper'"):
        TemplateConfig(backbone="resnet26-template", unit_set="with-t")


def test_gate_context_is_cleared_after_forward():
    sn = TemplateNetwork(num_classes=3)
    sn(_x(1))
    assert all(layer.gate_mask is None and layer.gate_kept is None for _, layer in sn.net.layer_modules())


@pytest.mark.parametrize("backbone", ["densenet-tiny", "resnet26-template"])
def test_spatial_scaffold_makes_s_only_blind_to_frame_order(backbone):
    """On the 'spatial' scaffold every temporal conv is a searched branch: the S-only strategy
    is a frame-level network, exactly invariant to shuffling the frames; the 'paper' scaffold's
    5x7x7 stem and temporal transitions are not (the S-only strategy still sees time there)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    perm = torch.randperm(8)
    L = TemplateNetwork(backbone=backbone, num_classes=4).num_layers
    for scaffold, invariant in [("spatial", True), ("paper", False)]:
        if backbone != "densenet-tiny" and scaffold == "paper":
            continue
        sn = TemplateNetwork(backbone=backbone, num_classes=4, scaffold=scaffold).eval()
        for m in sn.modules():  # non-trivial BN statistics
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.weight.data.uniform_(0.5, 1.5)
        sn.set_strategy(Strategy(backbone, ("S",) * L))
        with torch.no_grad():
            same = torch.allclose(sn(x), sn(x[:, :, perm]), atol=1e-5)
        assert same is invariant, scaffold
        sn.set_strategy(Strategy(backbone, ("ST",) * L))
        with torch.no_grad():
            assert not torch.allclose(sn(x), sn(x[:, :, perm]), atol=1e-5)
    with pytest.raises(ValueError, match="scaffold"):
        TemplateConfig(scaffold="3d")


def test_running_a_strategy_is_a_block_that_puts_the_template_back():
    sn = TemplateNetwork(num_classes=5).eval()
    s = Strategy("densenet-tiny", ("S", "ST", "S+ST", "skip", "S", "ST", "S+ST", "S"))
    sn.set_mode("expected")
    x = _x()
    with torch.no_grad():
        with sn.running(s) as m:
            assert m.strategy.units == s.units
            a = m(x)
        assert sn.mode == "expected"
        with pytest.raises(RuntimeError, match="inside"):
            with sn.running(s, mode="conditioned"):
                assert sn.mode == "conditioned"
                raise RuntimeError("inside")
        assert sn.mode == "expected"
        assert torch.allclose(a, sn.extract(s).eval()(x), atol=1e-6)
