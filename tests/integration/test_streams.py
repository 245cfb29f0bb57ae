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


def test_gblend_study_command(tmp_path):
    out = tmp_path / "gb"
    assert main(["streams", "gblend-study", "--out", str(out), "--epochs", "2", "--window", "0", "2",
                 "--clips-per-class", "3", "--data-arg", "audio_length=64", *TINY]) == 0
    from workbench.analysis import load_netcdf

    ds = load_netcdf(out / "gblend.nc")
    assert list(ds["run"].values) == ["rgb only", "audio only", "naive joint", "G-Blend offline", "G-Blend online"]
    w = json.loads(ds.attrs["weights"])
    assert w["naive joint"][0] == {"fused": 1.0}
    assert set(w["G-Blend offline"][0]) == {"rgb", "audio", "fused"}
    assert sum(w["G-Blend offline"][0].values()) == pytest.approx(1.0)
    assert (out / "gblend.png").is_file() and "Best single modality" in (out / "gblend.md").read_text()
    with pytest.raises(SystemExit):
        main(["streams", "gblend-study", "--out", str(out), "--window", "5"])
