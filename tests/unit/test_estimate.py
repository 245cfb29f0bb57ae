import numpy as np
import pytest
import torch

from workbench.analysis import (
    estimates_dataset,
    history_dataset,
    load_netcdf,
    marginals,
    pareto_front,
    save_netcdf,
    strategies_from,
    top_k,
    unit_probabilities_from_p,
)
from workbench.engine.cost import count_cost
from workbench.engine.estimate import (
    EstimateConfig,
    StrategyCostTable,
    estimate_strategies,
    recalibrate_bn,
)
from workbench.engine.loop import evaluate
from workbench.strategy import Strategy
from workbench.template.network import TemplateNetwork


@pytest.fixture(scope="module")
def data(clips12):
    return clips12


def _net():
    torch.manual_seed(0)
    return TemplateNetwork(num_classes=3, growth=4, bn_size=2)


def test_cost_table_is_exact():
    sn = _net()
    table = StrategyCostTable(sn, (3, 4, 32, 32))
    for s in sn.sample(3, torch.Generator().manual_seed(0)) + [Strategy("densenet-tiny", ("skip", "S") * 4)]:
        params, macs = table.cost(s)
        r = count_cost(sn.extract(s), (3, 4, 32, 32))
        assert (params, macs) == (r.params, r.macs)


def test_estimates_match_direct_evaluation_and_round_trip(data, tmp_path):
    sn = _net()
    strategies = sn.sample(2, torch.Generator().manual_seed(1)) + sn.presets()[:2]
    ds = estimate_strategies(sn, strategies, data, config=EstimateConfig(batch_size=4, progress=False),
                             sources=["sampled", "sampled", "preset", "preset"])
    assert ds.sizes["strategy"] == 4 and ds["units"].shape == (4, 8)
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    for i, s in enumerate(strategies):
        direct = evaluate(sn.extract(s), loader)
        assert ds["top1"].values[i] == pytest.approx(direct["top1"])
        assert ds["loss"].values[i] == pytest.approx(direct["loss"], rel=1e-5)
        assert ds["log_prob"].values[i] == pytest.approx(sn.log_prob(s))
    path = save_netcdf(ds, tmp_path / "est.nc")
    back = load_netcdf(path)
    assert strategies_from(back) == strategies
    assert [s.name for s in strategies_from(back)] == [s.name for s in strategies]
    assert list(back["source"].values) == ["sampled", "sampled", "preset", "preset"]
    assert sn.mode == "relaxed"  # the template is left as it was


def test_recalibration_changes_stats_and_is_undone(data):
    sn = _net()
    before = {k: v.clone() for k, v in sn.state_dict().items() if "running" in k}
    s = sn.sample(1, torch.Generator().manual_seed(2))
    a = estimate_strategies(sn, s, data, train_set=data,
                            config=EstimateConfig(batch_size=4, recalibrate_batches=2, progress=False))
    b = estimate_strategies(sn, s, data, config=EstimateConfig(batch_size=4, progress=False))
    after = {k: v for k, v in sn.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert a.attrs["recalibrate_batches"] == 2
    assert a["loss"].values[0] != b["loss"].values[0]
    m = sn.extract(s[0])
    assert recalibrate_bn(m, [(data.tensors[0][:4],)]) == 1
    assert not m.training
    with pytest.raises(ValueError, match="need train_set"):
        estimate_strategies(sn, s, data, config=EstimateConfig(recalibrate_batches=1, progress=False))


def test_unit_probabilities_from_p_and_marginals():
    p = np.array([[0.2, 0.6]])
    got = unit_probabilities_from_p(p, ("S", "ST"), ("S", "ST", "S+ST", "skip"))
    assert np.allclose(got, [[0.8 * 0.6, 0.2 * 0.4, 0.8 * 0.4, 0.2 * 0.6]])
    sn = _net()
    m = marginals(sn)
    assert m.dims == ("layer", "unit") and list(m.unit.values) == ["S", "ST", "S+ST", "skip"]
    assert np.allclose(m.sum("unit"), 1.0)
    assert list(m.group.values) == [2, 2, 3, 3, 4, 4, 5, 5]


def test_pareto_and_top_k():
    rows = [
        {"strategy": Strategy("densenet-tiny", (u,) * 8), "top1": a, "gmacs": c}
        for u, a, c in [("S", 0.5, 1.0), ("ST", 0.7, 2.0), ("S+ST", 0.6, 3.0), ("skip", 0.2, 0.5)]
    ]
    ds = estimates_dataset(rows)
    assert pareto_front(ds).tolist() == [True, True, False, True]
    assert list(top_k(ds, 2)["top1"].values) == [0.7, 0.6]


def test_history_dataset_schema():
    h = {"epoch": [0, 1], "phase": ["warmup", "gated"], "lr": [1, 1], "train_loss": [1, 0.9], "train_reg": [0, 1],
         "train_acc": [0.1, 0.2], "val_loss": [1, 1], "val_acc": [0.1, 0.3], "seconds": [1, 1],
         "gates": [[[0.1, 0.1]] * 8, [[0.2, 0.5]] * 8]}
    ds = history_dataset(h, backbone="densenet-tiny", branches=("S", "ST"), units=("S", "ST", "S+ST", "skip"))
    assert ds["drop_p"].dims == ("epoch", "layer", "branch")
    assert ds["unit_probability"].sel(epoch=1, layer=0, unit="S").item() == pytest.approx(0.8 * 0.5)
    with pytest.raises(ValueError, match="needs backbone and branches"):
        history_dataset(h)


class _Views(torch.utils.data.Dataset):
    """Three videos, two views each: items (clip, label, video index), as real test-mode sets."""

    def __init__(self):
        g = torch.Generator().manual_seed(5)
        self.x = torch.randn(6, 3, 4, 32, 32, generator=g)
        self.y = torch.tensor([0, 0, 1, 1, 2, 2])
        self.v = torch.tensor([0, 0, 1, 1, 2, 2])

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return self.x[i], int(self.y[i]), int(self.v[i])


def test_multi_view_estimates_average_scores_per_video():
    sn = _net().eval()
    s = sn.sample(1, torch.Generator().manual_seed(2))[0]
    views = _Views()
    ds = estimate_strategies(sn, [s], views, config=EstimateConfig(batch_size=4, progress=False))
    assert int(ds["n_eval"].values[0]) == 3  # videos, not clips
    sn.set_strategy(s)
    with torch.no_grad():
        prob = sn(views.x).softmax(1)
    sn.set_strategy(None)
    video = (prob[0::2] + prob[1::2]) / 2
    expected = (video.argmax(1) == torch.tensor([0, 1, 2])).float().mean().item()
    assert ds["top1"].values[0] == pytest.approx(expected)
    nll = -video[torch.arange(3), torch.tensor([0, 1, 2])].log().mean().item()
    assert ds["loss"].values[0] == pytest.approx(nll, rel=1e-4)


def test_multi_clip_needs_a_real_dataset(tmp_path):
    from workbench.studies.pipeline import estimate_run

    (tmp_path / "run.json").write_text('{"dataset": "synthetic-motion", "data_kw": {}}')
    with pytest.raises(ValueError, match="multi-clip evaluation needs a real dataset"):
        estimate_run(tmp_path, n=1, clips=2)


def test_every_estimate_carries_its_evaluation_noise_interval():
    import numpy as np

    from workbench.analysis import unique_strategies, wilson_interval

    low, high = wilson_interval([0.0, 0.5, 1.0], [100, 100, 100])
    assert np.all(low <= np.array([0.0, 0.5, 1.0]) + 1e-12) and np.all(high >= np.array([0.0, 0.5, 1.0]) - 1e-12)
    assert 0.39 < low[1] < 0.41 and 0.59 < high[1] < 0.61  # p = 0.5 on 100 clips: about +- 0.098
    assert high[0] > 0 and low[2] < 1  # never a zero-width interval at the ends
    import xarray as xr

    ds = xr.Dataset({"key": ("strategy", ["a", "b", "a", "c", "a"]),
                     "source": ("strategy", ["sampled", "sampled", "sampled", "preset", "sampled"])})
    assert unique_strategies(ds) == [(0, 3), (1, 1)]
    assert unique_strategies(ds, None) == [(0, 3), (1, 1), (3, 1)]
