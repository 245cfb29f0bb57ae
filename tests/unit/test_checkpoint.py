import json

import pytest
import torch

from workbench.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from workbench.models import build_model
from workbench.strategy import preset


def _model():
    return build_model(preset("mc3"), tiny=True, num_classes=6)


def test_round_trip_same_outputs(tmp_path):
    m = _model().eval()
    path = save_checkpoint(tmp_path / "run" / "best", m, model_kwargs={"tiny": True, "num_classes": 6},
                           metadata={"epoch": 3}, extra_tensors={"step": torch.tensor(7)})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    m2, meta, extra = load_checkpoint(tmp_path / "run" / "best")
    m2.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    assert meta["metadata"] == {"epoch": 3} and extra["step"].item() == 7
    assert m2.strategy == m.strategy
    assert not list((tmp_path / "run").glob(".*"))  # no temporary files left behind


def test_corruption_is_detected(tmp_path):
    save_checkpoint(tmp_path / "c", _model(), model_kwargs={"tiny": True, "num_classes": 6})
    w = tmp_path / "c.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or were changed"):
        load_checkpoint(tmp_path / "c")
    w.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "c")


def test_bad_metadata(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metadata(tmp_path / "nothing")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_metadata(tmp_path / "x")
    (tmp_path / "y.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a workbench checkpoint"):
        read_metadata(tmp_path / "y")
