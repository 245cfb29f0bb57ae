"""Stream-fusion networks, Gradient-Blending weights and the multi-modal training loop."""

import json
import math

import pytest
import torch

from workbench.engine.config import TrainConfig
from workbench.streams import (
    AudioEncoder,
    MultiModalNet,
    blended_loss,
    build_streams_model,
    gblend_weights,
    offline_weights,
    ogr_terms,
    run_streams,
    train_multimodal,
)


def _batch(b=2, t=8, s=32, flow_t=None, flow_s=None):
    g = torch.Generator().manual_seed(0)
    return {"rgb": torch.randn(b, 3, t, s, s, generator=g),
            "flow": torch.randn(b, 2, flow_t or t, flow_s or s, flow_s or s, generator=g)}


@pytest.mark.parametrize("fusion,kw", [
    ("late", {}), ("stcb", {}), ("pyramid", {}), ("pyramid", {"snippets": 1}), ("pyramid", {"snippets": 4}),
    ("pyramid", {"attention": False}), ("pyramid", {"final": "concat"}),
])
def test_two_stream_fusions_and_switches(fusion, kw):
    torch.manual_seed(0)
    m = build_streams_model(fusion, ("rgb", "flow"), 5, frames=8, size=32, d_temporal=64, d_attention=32,
                            d_final=128, **kw)
    out = m(_batch())
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert m.flow.in_channels == 2
    assert all(p.grad is not None for n, p in m.named_parameters() if n.startswith(("rgb.layer1", "flow.layer1")))
    if fusion == "pyramid":
        assert hasattr(m, "temporal") == (kw.get("snippets", 2) > 1)
        assert hasattr(m, "attend") == kw.get("attention", True)


def test_l2_sketch_norm_has_no_running_statistics():
    """``sketch_norm="l2"``: the sketches are L2-normalised to unit mean square entries instead of
    batch-normalised, so eval mode gives what train mode gives (no running statistics to lag)."""
    from workbench.streams.study import ABLATION, BATCH_NORM_ROW, ablation_rows

    torch.manual_seed(0)
    kw = dict(frames=8, size=32, d_temporal=64, d_attention=32, d_final=128)
    m = build_streams_model("pyramid", ("rgb", "flow"), 5, sketch_norm="l2", **kw)
    bn = build_streams_model("pyramid", ("rgb", "flow"), 5, **kw)
    assert isinstance(bn.norm, torch.nn.BatchNorm1d) and isinstance(bn.temporal_norm, torch.nn.BatchNorm1d)
    assert not any(isinstance(x, torch.nn.BatchNorm1d) for x in (m.norm, m.temporal_norm))
    b = _batch()
    z = m.norm(m.fuse(torch.rand(2, m.fuse.input_dims[0]), torch.rand(2, 64), torch.rand(2, m.fuse.input_dims[2])))
    assert torch.allclose(z.pow(2).mean(1), torch.ones(2), atol=1e-4)
    x = torch.randn(4, 64) * 5 + 3  # sketches far from the running statistics' start (mean 0, variance 1)
    for net, same in ((m, True), (bn, False)):
        with torch.no_grad():
            a = net.temporal_norm.train()(x)
            e = net.temporal_norm.eval()(x)
        assert torch.allclose(a, e) == same
    assert m.train()(b).shape == (2, 5)
    with pytest.raises(ValueError, match="sketch_norm"):
        build_streams_model("pyramid", ("rgb", "flow"), 5, sketch_norm="layer", **kw)
    assert ablation_rows() == ABLATION and ablation_rows({"sketch_norm": "l2"}) == (*ABLATION, BATCH_NORM_ROW)


def test_motion_steers_the_attention():
    torch.manual_seed(0)
    m = build_streams_model("pyramid", ("rgb", "flow"), 4, frames=8, size=32, d_temporal=64, d_attention=64,
                            d_final=64).eval()
    b = _batch()
    with torch.no_grad():
        rgb_map = m.rgb.forward_map(b["rgb"]).mean(2)
        w1 = m.attention_map(rgb_map, m.flow_vector(b["flow"]))
        w2 = m.attention_map(rgb_map, m.flow_vector(b["flow"] * -3 + 1))
    assert torch.allclose(w1.flatten(1).sum(1), torch.ones(2))
    assert (w1 - w2).abs().max() > 1e-4  # same appearance, other motion: other weights


def test_stream_errors():
    m = build_streams_model("stcb", ("rgb", "flow"), 3, frames=8, size=32, d_final=64)
    with pytest.raises(ValueError, match="8 frames and flow 4"):
        m(_batch(flow_t=4))
    with pytest.raises(ValueError, match="resize them alike"):
        m(_batch(flow_s=16))
    with pytest.raises(ValueError, match="no flow"):
        m({"rgb": torch.randn(2, 3, 8, 32, 32)})
    with pytest.raises(ValueError, match="expects a dict"):
        m(torch.randn(2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="batch size"):
        m({"rgb": torch.randn(2, 3, 8, 32, 32), "flow": torch.randn(3, 2, 8, 32, 32)})
    with pytest.raises(ValueError, match="fuses an RGB and a flow stream"):
        build_streams_model("pyramid", ("rgb", "audio"), 3, frames=8, size=32)
    with pytest.raises(ValueError, match="divide"):
        build_streams_model("pyramid", ("rgb", "flow"), 3, frames=8, size=32, snippets=3)
    with pytest.raises(ValueError, match="unknown stream fusion"):
        build_streams_model("early", ("rgb", "flow"), 3, frames=8, size=32)


def test_multimodal_heads_and_blended_loss():
    torch.manual_seed(0)
    m = build_streams_model("gblend", ("rgb", "audio"), 4, frames=8, size=32, audio_length=64)
    assert isinstance(m, MultiModalNet) and m.head_names == ("rgb", "audio", "fused")
    batch = {"rgb": torch.randn(3, 3, 8, 32, 32), "audio": torch.randn(3, 1, 64)}
    out = m(batch)
    y = torch.tensor([0, 1, 2])
    ce = {k: torch.nn.functional.cross_entropy(v, y) for k, v in out.items()}
    loss = blended_loss(out, y, {"rgb": 0.2, "audio": 0.3, "fused": 0.5})
    assert torch.allclose(loss, 0.2 * ce["rgb"] + 0.3 * ce["audio"] + 0.5 * ce["fused"])
    with pytest.raises(ValueError, match="does not have"):
        blended_loss(out, y, {"flow": 1.0})
    with pytest.raises(ValueError, match="every loss weight is zero"):
        blended_loss(out, y, {"rgb": 0.0})
    with pytest.raises(ValueError, match="no audio"):
        m({"rgb": batch["rgb"]})
    with pytest.raises(ValueError, match="B 1 64"):
        m({"rgb": batch["rgb"], "audio": torch.randn(3, 64)})
    single = build_streams_model("gblend", ("audio",), 4, frames=8, size=32, audio_length=64)
    assert single.head_names == ("audio",)
    assert AudioEncoder(64, "cnn").forward_features(torch.randn(2, 1, 64)).shape[0] == 2


def test_ogr_and_weights_by_hand():
    # head a: held-out 2.0 -> 1.5 (dG 0.5), overfitting 0.1 -> 0.3 (dO 0.2): 0.5 / 0.04 = 12.5
    # head b: held-out 2.0 -> 1.9 (dG 0.1), overfitting 0.0 -> 0.1 (dO 0.1): 0.1 / 0.01 = 10
    # head c: held-out 2.0 -> 2.2 (it got worse): weight 0
    train = {"a": (1.9, 1.2), "b": (2.0, 1.8), "c": (1.0, 0.1)}
    val = {"a": (2.0, 1.5), "b": (2.0, 1.9), "c": (2.0, 2.2)}
    t = ogr_terms(train["a"], val["a"])
    assert t["dG"] == pytest.approx(0.5) and t["dO"] == pytest.approx(0.2) and t["OGR"] == pytest.approx(0.4)
    w = gblend_weights(train, val)
    assert w["a"] == pytest.approx(12.5 / 22.5) and w["b"] == pytest.approx(10 / 22.5) and w["c"] == 0.0
    assert sum(w.values()) == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="uniform"):
        assert gblend_weights({"a": (1, 1)}, {"a": (1, 1.2)}) == {"a": 1.0}
    with pytest.raises(ValueError, match="finite"):
        gblend_weights({"a": (1, math.nan)}, {"a": (1, 1)})
    hist = lambda tr, va: {"epoch": [0, 1, 2], "train_loss": {"h": tr}, "val_loss": {"h": va}}  # noqa: E731
    off = offline_weights({"a": (hist([0, 1.9, 1.2], [0, 2.0, 1.5]), "h"),
                           "b": (hist([0, 2.0, 1.8], [0, 2.0, 1.9]), "h")}, (1, 2))
    assert off["a"] == pytest.approx(12.5 / 22.5)
    with pytest.raises(ValueError, match="no epoch 5"):
        offline_weights({"a": (hist([0, 1, 1], [0, 1, 1]), "h")}, (1, 5))


def _tiny_data():
    from workbench.streams import open_streams

    return open_streams("synthetic-mixed", ("rgb", "audio"), train_per_class=6, val_per_class=3, test_per_class=3,
                        audio_length=64)


def test_online_blend_and_resume(tmp_path):
    splits = _tiny_data()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, progress=False)

    def model():
        return build_streams_model("gblend", ("rgb", "audio"), splits["train"].num_classes, frames=8, size=32,
                                   audio_length=64, seed=0)

    full = train_multimodal(model(), splits["train"], splits["val"], cfg, blend="online", super_epoch=2,
                            out_dir=tmp_path / "a")
    assert full["epoch"] == [0, 1, 2, 3, 4]
    assert full["weights"][0] == pytest.approx({"rgb": 1 / 3, "audio": 1 / 3, "fused": 1 / 3})
    assert len(full["blend_windows"]) == 1 and full["blend_windows"][0]["epochs"] == [0, 2]
    assert full["weights"][3] == full["blend_windows"][0]["weights"] != full["weights"][2]
    m2 = model()
    train_multimodal(m2, splits["train"], splits["val"], cfg, blend="online", super_epoch=2, out_dir=tmp_path / "b",
                     stop_after=3)
    resumed = train_multimodal(model(), splits["train"], splits["val"], cfg, blend="online", super_epoch=2,
                               out_dir=tmp_path / "b", resume=True)
    for key in ("val_loss", "train_loss"):
        for h in full[key]:
            assert resumed[key][h] == pytest.approx(full[key][h], rel=1e-4, abs=1e-5)
    assert json.loads((tmp_path / "b" / "history.json").read_text())["epoch"] == [0, 1, 2, 3, 4]


def test_run_streams_writes_its_folder(tmp_path):
    r = run_streams(tmp_path / "run", fusion="late", train_config=TrainConfig(epochs=1, batch_size=8, progress=False),
                    data_kw={"train_per_class": 3, "val_per_class": 2, "test_per_class": 2})
    assert set(r["result"]["test"]) == {"fused"}
    from workbench.analysis import load_netcdf

    ds = load_netcdf(tmp_path / "run" / "results.nc")
    assert ds["val_loss"].dims == ("epoch", "head") and list(ds["epoch"].values) == [0, 1]
    with pytest.raises(ValueError, match="already holds a finished streams run: pass --resume"):
        run_streams(tmp_path / "run", fusion="late", train_config=TrainConfig(epochs=1, batch_size=8, progress=False),
                    data_kw={"train_per_class": 3, "val_per_class": 2, "test_per_class": 2})
    with pytest.raises(ValueError, match="its fusion differs"):
        run_streams(tmp_path / "run", fusion="stcb", resume=True,
                    train_config=TrainConfig(epochs=1, batch_size=8, progress=False),
                    data_kw={"train_per_class": 3, "val_per_class": 2, "test_per_class": 2})
    with pytest.raises(ValueError, match="pass flow_root"):
        run_streams(tmp_path / "x", dataset="ucf101", root=tmp_path)
    with pytest.raises(ValueError, match="real datasets give rgb and flow"):
        run_streams(tmp_path / "x", dataset="ucf101", fusion="gblend", root=tmp_path)


def test_gblend_verdict_on_paired_seeds():
    import numpy as np
    import xarray as xr

    from workbench.streams.study import gblend_table, gblend_verdict, online_stability

    runs = ["rgb only", "audio only", "naive joint", "G-Blend offline", "G-Blend online"]

    def ds(rows):
        a = np.array(rows, dtype=float)
        return xr.Dataset({"test_top1": (("run", "seed"), a), "mean_top1": ("run", a.mean(1)),
                           "fused_top1": (("run", "seed"), a)}, coords={"run": runs, "seed": [0, 1, 2]},
                          attrs={"dataset": "d", "modalities": '["rgb", "audio"]', "data_kw": "{}", "window": "[2, 5]",
                                 "super_epoch": 2, "train_config": json.dumps(TrainConfig().to_dict()),
                                 "weights": json.dumps({r: [{"fused": 1.0}] * 3 for r in runs})})

    good = ds([[0.70, 0.70, 0.66], [0.3] * 3, [0.46, 0.44, 0.48], [0.69, 0.72, 0.64], [0.6] * 3])
    v = gblend_verdict(good)
    assert v["best_single"] == "rgb only" and v["naive_below_best"] and v["gblend_recovers"]
    text = gblend_table(good)
    assert "offline G-Blend is not distinguishable from the best single modality and beats naive joint" in text
    assert v["gblend_beats"] is False and "online G-Blend is below the best single modality" in text
    # each paired difference with its 95% t-interval (2 degrees of freedom: t = 4.303)
    c = {(x["a"], x["b"]): x for x in v["comparisons"]}
    d = np.array([0.69, 0.72, 0.64]) - np.array([0.70, 0.70, 0.66])
    half = 4.303 * d.std(ddof=1) / np.sqrt(3)
    assert c[("G-Blend offline", "rgb only")]["interval"] == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-3)
    assert "| G-Blend offline − rgb only | -0.003 |" in text and "2 degrees of freedom" in text
    bad = ds([[0.70, 0.70, 0.66], [0.3] * 3, [0.71, 0.69, 0.67], [0.50, 0.52, 0.48], [0.4] * 3])
    v = gblend_verdict(bad)
    assert not v["naive_below_best"] and not v["gblend_recovers"]
    better = ds([[0.70, 0.70, 0.66], [0.3] * 3, [0.46, 0.44, 0.48], [0.78, 0.79, 0.75], [0.6] * 3])
    assert gblend_verdict(better)["gblend_beats"] and "offline G-Blend beats the best single modality" in gblend_table(better)
    # a difference of +0.02 on every seed but one: a mean above zero whose interval still holds zero
    noisy = ds([[0.70, 0.70, 0.66], [0.3] * 3, [0.46, 0.44, 0.48], [0.72, 0.72, 0.62], [0.6] * 3])
    assert gblend_verdict(noisy)["gblend_beats"] is False
    # one seed: no interval, so no verdict (never "± 0.000 ... within two standard errors")
    one = good.isel(seed=[1])
    v = gblend_verdict(one)
    assert v["naive_below_best"] is None and v["gblend_recovers"] is None and v["gblend_beats"] is None
    text = gblend_table(one)
    assert "One seed (1)" in text and "no verdict" in text and "±" not in text and "seed 1, final" in text
    # online weight stability: jumps between super-epochs and the spread of the final weights over seeds
    good.attrs["online_windows"] = json.dumps([[{"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}]] * 3)
    good.attrs["weights"] = json.dumps({**json.loads(good.attrs["weights"]),
                                        "G-Blend online": [{"a": 0.9, "b": 0.1}, {"a": 0.7, "b": 0.3}, {"a": 0.8, "b": 0.2}]})
    st = online_stability(good)
    assert st["mean_jump"] == pytest.approx(0.4) and st["final"]["a"] == pytest.approx((0.8, 0.1))
    assert "mean change between consecutive super-epochs 0.400" in gblend_table(good)


def test_streams_train_command(tmp_path, capsys):
    from workbench.cli import main

    tiny = ["--epochs", "1", "--clips-per-class", "2", "--data-arg", "val_per_class=2", "--data-arg",
            "test_per_class=2", "--no-progress"]
    assert main(["streams", "train", "--out", str(tmp_path / "a"), "--fusion", "gblend", "--blend", "uniform",
                 "--modalities", "rgb", "flow", "audio", "--data-arg", "audio_length=32", *tiny]) == 0
    out = capsys.readouterr().out
    assert "test top-1  blend" in out and "final loss weights: rgb 0.25, flow 0.25, audio 0.25, fused 0.25" in out
    assert main(["streams", "train", "--out", str(tmp_path / "b"), "--fusion", "late", "--weights", "rgb=1", *tiny]) == 2
    assert "apply to --fusion gblend" in capsys.readouterr().err
    assert main(["streams", "train", "--out", str(tmp_path / "c"), "--fusion", "gblend", "--weights", "rgb=x", *tiny]) == 2


def test_ablation_table_names_the_seeds_it_holds():
    import numpy as np
    import xarray as xr

    from workbench.streams.study import ABLATION, ablation_comparisons, ablation_table

    runs = [a[0] for a in ABLATION]
    acc = np.full((len(runs), 2), 0.5)
    ds = xr.Dataset({"test_top1": (("run", "seed"), acc), "mean_top1": ("run", acc.mean(1)),
                     "params": ("run", np.arange(len(runs)) + 10), "seconds": (("run", "seed"), acc * 100)},
                    coords={"run": runs, "seed": [2, 3]},
                    attrs={"dataset": "d", "data_kw": "{}", "model_kw": "{}",
                           "train_config": json.dumps(TrainConfig().to_dict())})
    text = ablation_table(ds)
    assert "seeds [2, 3]" in text and "train s (seed 2)" in text and "seed 0" not in text
    # every part's paired difference with its interval: here none differs from zero
    assert "| pyramid − pyramid, one flow snippet | multi-snippet temporal fusion | +0.000 |" in text
    assert "1 degree of freedom" in text and "| above |" not in text
    ds["test_top1"].values[runs.index("pyramid")] = [0.6, 0.62]  # pyramid above late fusion on both seeds
    ds["mean_top1"].values[:] = ds["test_top1"].values.mean(1)
    c = {(x["a"], x["b"]): x for x in ablation_comparisons(ds)}
    assert c[("pyramid", "late fusion")]["mean"] == pytest.approx(0.11)
    # two seeds: t(0.975, 1) = 12.71 times the standard error 0.01
    assert c[("pyramid", "late fusion")]["interval"] == pytest.approx((0.11 - 0.1271, 0.11 + 0.1271), abs=1e-3)
    # two seeds: an interval on one degree of freedom, but no verdict (two equal differences would give it zero width)
    assert c[("pyramid", "late fusion")]["verdict"] is None and "no verdict (a verdict needs 3 seeds)" in ablation_table(ds)
    assert ("late fusion", "RGB stream alone") in c and c[("pyramid", "RGB stream alone")]["mean"] > 0
    assert "One seed (3)" in ablation_table(ds.isel(seed=[1]))
    assert "thread count not recorded" in text
    ds.attrs["environment"] = json.dumps({"torch": "2.13.0+cpu", "threads": 2, "device": "cpu"})
    assert "torch 2.13.0+cpu, 2 thread(s), cpu." in ablation_table(ds)


def test_spectral_audio_encoder_hears_tones_not_phase():
    """The band-spectrum encoder: few weights, blind to a tone's phase (so it cannot tell two
    clips of one tone apart by it), and it tells two tones apart."""
    torch.manual_seed(0)
    enc = AudioEncoder(256, "spectral").eval()
    mlp = AudioEncoder(256, "mlp")
    assert sum(p.numel() for p in enc.parameters()) < sum(p.numel() for p in mlp.parameters()) / 50
    n = torch.arange(256.0)

    def tone(cycles, phase):
        return torch.sin(2 * math.pi * cycles * n / 256 + phase)[None, None]

    bands = enc.net[0]
    assert 16 <= bands.bands <= 32 and torch.allclose(bands.pool.sum(1), torch.ones(bands.bands))
    assert torch.allclose(bands(tone(5.0, 0.0)), bands(tone(5.0, 1.3)), atol=1e-4)
    assert (bands(tone(5.0, 0.0)) - bands(tone(8.0, 0.0))).abs().max() > 1.0
    # the raw-sample MLP sees the phase: the same tone at another phase is another input
    assert (mlp.net[1](tone(5.0, 0.0).flatten(1)) - mlp.net[1](tone(5.0, 1.3).flatten(1))).abs().max() > 0.1
    assert enc.forward_features(torch.randn(3, 1, 256)).shape == (3, enc.feature_dim)
    with pytest.raises(ValueError, match="expected one of: mlp, cnn, spectral"):
        AudioEncoder(256, "wav2vec")


def test_gblend_noise_floor_and_smoothing_by_hand():
    from workbench.streams.gblend import overfit_noise, smooth_weights

    # a: dG 0.5, dO 0.2 -> 0.5 / 0.04 = 12.5; b: dG 0.1, dO 0.005 (within noise) -> 0.1 / 1e-4 = 1000
    train = {"a": (1.9, 1.2), "b": (2.0, 1.895)}
    val = {"a": (2.0, 1.5), "b": (2.0, 1.9)}
    w = gblend_weights(train, val)
    assert w["b"] > 0.98  # the floor alone lets the head with no measurable overfitting take everything
    # with each dO's noise variance (0.01 for both) added: 12.5 * 0.04 / 0.05 = 10 and 0.1 / 0.010025
    wn = gblend_weights(train, val, noise={"a": 0.01, "b": 0.01})
    assert wn["a"] == pytest.approx(10 / (10 + 0.1 / 0.010025)) and 0.4 < wn["b"] < 0.6
    with pytest.raises(ValueError, match="noise"):
        gblend_weights(train, val, noise={"c": 0.1})
    # the variance of dO from per-clip losses: var(v1 - v0) / n_val + var(t1 - t0) / n_train
    t0, t1 = [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]  # differences 0, -1, -2: variance 1
    v0, v1 = [2.0, 2.0], [2.0, 3.0]  # differences 0, 1: variance 0.5
    assert overfit_noise((t0, t1), (v0, v1)) == pytest.approx(1 / 3 + 0.5 / 2)
    with pytest.raises(ValueError, match="per-clip"):
        overfit_noise(([1.0], [1.0]), (v0, v1))
    # smoothing: half the old weights and half the new, renormalised; none for the first estimate
    assert smooth_weights({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}, 0.5) == pytest.approx({"a": 0.5, "b": 0.5})
    assert smooth_weights(None, {"a": 0.2, "b": 0.8}, 0.5) == {"a": 0.2, "b": 0.8}
    with pytest.raises(ValueError, match="smoothing"):
        smooth_weights(None, {"a": 1.0}, 1.0)


def test_online_noise_floor_and_smoothing_resume(tmp_path):
    """Online G-Blend with its noise floor and smoothing: the noise comes from per-clip losses at the
    window's ends, the weights are half old and half new after the first window, and a run
    stopped inside a window resumes to the same weights (the window's first per-clip losses are
    in the checkpoint)."""
    from workbench.streams.gblend import smooth_weights

    splits = _tiny_data()
    cfg = TrainConfig(epochs=5, batch_size=16, lr=3e-3, progress=False)

    def model():
        return build_streams_model("gblend", ("rgb", "audio"), splits["train"].num_classes, frames=8, size=32,
                                   audio_length=64, audio_encoder="spectral", seed=0)

    kw = dict(blend="online", super_epoch=2, noise_floor=True, smoothing=0.5)
    full = train_multimodal(model(), splits["train"], splits["val"], cfg, out_dir=tmp_path / "a", **kw)
    w1, w2 = full["blend_windows"]
    assert [w1["epochs"], w2["epochs"]] == [[0, 2], [2, 4]]
    assert set(w1["noise"]) == {"rgb", "audio", "fused"} and all(v > 0 for v in w1["noise"].values())
    assert w1["weights"] == w1["estimate"]  # the first estimate replaces the uniform start
    assert w2["weights"] == pytest.approx(smooth_weights(w1["weights"], w2["estimate"], 0.5))
    train_multimodal(model(), splits["train"], splits["val"], cfg, out_dir=tmp_path / "b", stop_after=3, **kw)
    resumed = train_multimodal(model(), splits["train"], splits["val"], cfg, out_dir=tmp_path / "b", resume=True,
                               **kw)
    r2 = resumed["blend_windows"][1]
    assert r2["noise"] == pytest.approx(w2["noise"], rel=1e-3) and r2["weights"] == pytest.approx(w2["weights"],
                                                                                               rel=1e-3)


def test_a_study_refuses_a_folder_trained_with_other_settings():
    """Rerunning a study into its --out with other settings names what differs instead of reading
    the old runs back as new ones."""
    from workbench.engine.config import TrainConfig
    from workbench.streams.study import _settings_differ

    tc = TrainConfig(epochs=2, batch_size=8)
    spec = {"fusion": "pyramid", "data_kw": {"frames": 16}, "model_kw": {"snippets": 2, "seed": 0, "sketch_norm": "l2"},
            "train_config": {**tc.to_dict(), "progress": False}, "blend": "fixed", "super_epoch": 2}
    same = {"fusion": "pyramid", "data_kw": {"frames": 16}, "model_kw": {"snippets": 2, "sketch_norm": "l2"},
            "train_config": tc}
    assert _settings_differ(spec, same) == []
    assert _settings_differ(spec, {**same, "model_kw": {"snippets": 2, "sketch_norm": "batch"}}) == \
        ["sketch_norm 'l2' vs 'batch'"]
    assert "online estimates" in _settings_differ(spec, {**same, "noise_floor": True})[0]
    assert _settings_differ(spec, {**same, "train_config": TrainConfig(epochs=3, batch_size=8)})[0].startswith(
        "training epochs 2 vs 3")
