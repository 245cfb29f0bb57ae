"""Stream-fusion studies end to end: the G-Blend phenomenon on synthetic data, the pyramid ablation."""

import json

import numpy as np
import pytest

from workbench.cli import main

TINY = ["--data-arg", "val_per_class=4", "--data-arg", "test_per_class=4", "--no-progress"]


def test_ablation_command(tmp_path):
    out = tmp_path / "ablation"
    assert main(["streams", "ablation", "--out", str(out), "--epochs", "1", "--clips-per-class", "3", *TINY]) == 0
    from workbench.analysis import load_netcdf

    ds = load_netcdf(out / "ablation.nc")
    assert ds.sizes["run"] == 8 and np.all((ds["test_top1"].values >= 0) & (ds["test_top1"].values <= 1))
    p = dict(zip(ds["run"].values, ds["params"].values))
    assert p["pyramid"] > p["pyramid, no attention"] > p["RGB stream alone"]
    assert "| pyramid, one flow snippet |" in (out / "ablation.md").read_text()
    # cached: a second call trains nothing and gives the same table
    assert main(["streams", "ablation", "--out", str(out), "--epochs", "1", "--clips-per-class", "3", *TINY]) == 0
    assert np.array_equal(load_netcdf(out / "ablation.nc")["test_top1"].values, ds["test_top1"].values)


def test_gblend_finds_the_overfitting_modality(tmp_path):
    """Tiny version of the G-Blend case (reports/streams.md has it at study size): an audio track
    that is informative for half the clips and noisy enough to memorise. The audio network and the
    naive joint network memorise the training set while their held-out loss grows; G-Blend's
    offline weights put (almost) nothing on the audio head."""
    out = tmp_path / "gb"
    assert main(["streams", "gblend-study", "--out", str(out), "--epochs", "5", "--window", "1", "3",
                 "--clips-per-class", "12", "--data-arg", "audio_informativeness=0.5", "--data-arg", "audio_noise=1.0",
                 "--data-arg", "val_per_class=8", "--data-arg", "test_per_class=8", "--no-progress"]) == 0
    from workbench.analysis import load_netcdf
    from workbench.streams.gblend import ogr_terms

    ds = load_netcdf(out / "gblend.nc")
    assert list(ds["run"].values) == ["rgb only", "audio only", "naive joint", "G-Blend offline", "G-Blend online"]

    def hist(run):
        return json.loads((out / "runs" / f"{run}-s0" / "history.json").read_text())

    audio, naive, rgb = hist("audio"), hist("naive"), hist("rgb")
    assert audio["train_loss"]["audio"][-1] < 0.1 < audio["val_loss"]["audio"][-1] - audio["val_loss"]["audio"][1]
    assert naive["train_loss"]["fused"][-1] < 0.1  # the joint network memorised its training set
    t_a = ogr_terms(tuple(audio["train_loss"]["audio"][1:4:2]), tuple(audio["val_loss"]["audio"][1:4:2]))
    t_r = ogr_terms(tuple(rgb["train_loss"]["rgb"][1:4:2]), tuple(rgb["val_loss"]["rgb"][1:4:2]))
    assert t_a["dG"] < 0 < t_r["dG"]  # over the window only RGB generalises better
    w = json.loads(ds.attrs["weights"])
    assert w["naive joint"][0] == {"fused": 1.0}
    off = w["G-Blend offline"][0]
    assert set(off) == {"rgb", "audio", "fused"} and sum(off.values()) == pytest.approx(1.0)
    assert off["audio"] < 0.05 and off["audio"] < min(off["rgb"], off["fused"])
    assert (out / "gblend.png").is_file() and "Best single modality" in (out / "gblend.md").read_text()
    with pytest.raises(SystemExit):
        main(["streams", "gblend-study", "--out", str(out), "--window", "5"])


def test_band_spectrum_encoder_does_not_memorise(tmp_path):
    """Tiny version of the diagnosis in reports/streams/gblend-regime.md: on an audio track that is
    the class's tone for half the clips, the raw-sample MLP fits the uninformative half (its
    training loss goes to zero, its held-out loss up); the band-spectrum encoder cannot (its
    training loss stays near the Bayes limit, 1.54 with 8 classes) and generalises better."""
    from workbench.engine.config import TrainConfig
    from workbench.streams import run_streams

    data = {"train_per_class": 12, "val_per_class": 8, "test_per_class": 8, "audio_informativeness": 0.5,
            "audio_noise": 1.0}
    h = {}
    for enc in ("mlp", "spectral"):
        r = run_streams(tmp_path / enc, fusion="gblend", modalities=("audio",), model_kw={"audio_encoder": enc},
                        train_config=TrainConfig(epochs=6, batch_size=16, lr=3e-3, progress=False), data_kw=data)
        h[enc] = r["history"]
    gap = {k: v["val_loss"]["audio"][-1] - v["train_loss"]["audio"][-1] for k, v in h.items()}
    assert h["mlp"]["train_loss"]["audio"][-1] < 0.1 < 1.0 < h["spectral"]["train_loss"]["audio"][-1]
    assert gap["mlp"] > 2.0 > 1.0 > gap["spectral"]
    assert h["spectral"]["val_loss"]["audio"][-1] < h["mlp"]["val_loss"]["audio"][-1]


def test_gblend_regime_command(tmp_path):
    """The committed regime's command at tiny size: band-spectrum audio, online estimates with
    their noise and smoothing, joint networks scored by their fused head."""
    from workbench.analysis import load_netcdf
    from workbench.cli import main

    out = tmp_path / "gb"
    assert main(["streams", "gblend-study", "--out", str(out), "--seeds", "0", "--epochs", "3", "--window", "1", "2",
                         "--clips-per-class", "4", "--data-arg", "val_per_class=3", "--data-arg", "test_per_class=3",
                         "--audio-encoder", "spectral", "--noise-floor", "--smoothing", "0.5", "--score", "fused",
                         "--no-progress"]) == 0
    ds = load_netcdf(out / "gblend.nc")
    assert ds.attrs["score"] == "fused" and json.loads(ds.attrs["online"]) == {"noise_floor": True, "smoothing": 0.5}
    runs = list(ds["run"].values)
    for r in ("naive joint", "G-Blend offline", "G-Blend online"):  # scored by the fused head
        i = runs.index(r)
        assert ds["test_top1"].values[i, 0] == ds["fused_top1"].values[i, 0]
    online = json.loads((out / "runs" / "online-s0" / "history.json").read_text())
    assert set(online["blend_windows"][0]["noise"]) == {"rgb", "audio", "fused"}
    assert json.loads((out / "runs" / "online-s0" / "run.json").read_text())["online"]["smoothing"] == 0.5
    assert "scored by its fused head" in (out / "gblend.md").read_text()


def test_the_study_knobs_reach_the_studies_through_workbench_streams(monkeypatch, tmp_path):
    """`workbench streams ablation` passes the pyramid's settings on (unset ones stay the study's),
    and `streams train` takes the sketch normalisation; nothing is trained here."""
    import workbench.streams.study as study
    from workbench.cli import main

    seen = {}

    def fake_ablation(out, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(study, "stream_ablation", fake_ablation)
    with pytest.raises(SystemExit):
        main(["streams", "ablation", "--out", str(tmp_path), "--frames", "16", "--snippets", "2", "--sketch-norm", "l2"])
    assert seen["model_kw"] == {"backbone": "r3d_18", "tiny": True, "snippets": 2, "sketch_norm": "l2"}
    with pytest.raises(SystemExit):
        main(["streams", "ablation", "--out", str(tmp_path)])
    assert seen["model_kw"] == {"backbone": "r3d_18", "tiny": True}
    from workbench.cli import build_parser

    args = build_parser().parse_args(["streams", "train", "--out", str(tmp_path), "--sketch-norm", "l2",
                                      "--audio-encoder", "spectral"])
    assert args.sketch_norm == "l2" and args.audio_encoder == "spectral"
