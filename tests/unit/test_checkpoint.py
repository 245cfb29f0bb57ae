import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

from workbench.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_latest,
    read_metadata,
    save_checkpoint,
)
from workbench.models import build_model
from workbench.strategy import preset


def _model():
    return build_model(preset("mc3"), tiny=True, num_classes=6)


def test_round_trip_same_outputs(tmp_path):
    m = _model().eval()
    path = save_checkpoint(tmp_path / "run" / "best", m, model_kwargs={"tiny": True, "num_classes": 6},
                           metadata={"epoch": 3}, extra_tensors={"step": torch.tensor(7)})
    assert path.suffix == ".safetensors"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.safetensors"]  # one file, no sidecar
    m2, meta, extra = load_checkpoint(tmp_path / "run" / "best")
    m2.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    assert meta["metadata"] == {"epoch": 3} and extra["step"].item() == 7
    assert m2.strategy == m.strategy
    assert read_metadata(path)["metadata"] == {"epoch": 3}
    assert not list((tmp_path / "run").glob(".*"))  # no temporary files left behind


def test_corruption_is_detected(tmp_path):
    save_checkpoint(tmp_path / "c", _model(), model_kwargs={"tiny": True, "num_classes": 6})
    w = tmp_path / "c.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or was changed"):
        load_checkpoint(tmp_path / "c")
    w.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "c")


def _edit_header(path, edit):
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + blob[8 + n:])


def test_metadata_is_covered_by_the_digest(tmp_path):
    """Editing the epoch, the architecture or the tensor index is detected like editing weights."""
    save_checkpoint(tmp_path / "c", _model(), model_kwargs={"tiny": True, "num_classes": 6}, metadata={"epoch": 3})
    w = tmp_path / "c.safetensors"
    good = w.read_bytes()

    def epoch(h):
        meta = json.loads(h["__metadata__"]["workbench"])
        meta["metadata"]["epoch"] = 9
        h["__metadata__"]["workbench"] = json.dumps(meta, sort_keys=True)

    def arch(h):
        meta = json.loads(h["__metadata__"]["workbench"])
        meta["strategy"]["units"] = ["ST"] * len(meta["strategy"]["units"])
        h["__metadata__"]["workbench"] = json.dumps(meta, sort_keys=True)

    def rename(h):
        k = next(k for k in h if k != "__metadata__")
        h["renamed." + k] = h.pop(k)

    for edit in (epoch, arch, rename):
        w.write_bytes(good)
        _edit_header(w, edit)
        with pytest.raises(CheckpointError, match="corrupt or was changed"):
            load_checkpoint(tmp_path / "c")
        with pytest.raises(CheckpointError, match="corrupt or was changed"):
            read_metadata(tmp_path / "c")


def test_bad_metadata(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metadata(tmp_path / "nothing")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_metadata(tmp_path / "x")
    (tmp_path / "y.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a workbench checkpoint"):
        read_metadata(tmp_path / "y")
    save_file({"a": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without workbench metadata"):
        load_checkpoint(tmp_path / "plain")


def _write_v1(stem, model, meta_extra=None):
    """A checkpoint of the first format: NAME.safetensors + NAME.json holding the weights' SHA-256."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(stem.with_suffix(".safetensors")))
    blob = stem.with_suffix(".safetensors").read_bytes()
    meta = {"format": "fusion-workbench-checkpoint/1", "strategy": model.strategy.to_dict(),
            "model_kwargs": {"tiny": True, "num_classes": 6}, "metadata": meta_extra or {},
            "weights_file": stem.name + ".safetensors", "weights_sha256": hashlib.sha256(blob).hexdigest()}
    stem.with_suffix(".json").write_text(json.dumps(meta))


def test_first_format_still_loads_and_is_upgraded_in_place(tmp_path):
    m = _model().eval()
    _write_v1(tmp_path / "last", m, {"epoch": 1})
    m2, meta, _ = load_checkpoint(tmp_path / "last")
    assert meta["metadata"] == {"epoch": 1}
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m2.eval()(x))
    # the next save writes the new format; the old pair is kept whole as the previous checkpoint
    save_checkpoint(tmp_path / "last", m, model_kwargs={"tiny": True, "num_classes": 6}, metadata={"epoch": 2})
    assert not (tmp_path / "last.json").exists()
    assert load_checkpoint(tmp_path / "last")[1]["metadata"] == {"epoch": 2}
    assert load_checkpoint(tmp_path / "prev")[1]["metadata"] == {"epoch": 1}


def test_previous_checkpoint_is_kept_and_used_when_the_latest_is_torn(tmp_path):
    m = _model()
    kw = {"tiny": True, "num_classes": 6}
    save_checkpoint(tmp_path / "last", m, model_kwargs=kw, metadata={"epoch": 0})
    assert not (tmp_path / "prev.safetensors").exists()
    save_checkpoint(tmp_path / "last", m, model_kwargs=kw, metadata={"epoch": 1})
    assert load_checkpoint(tmp_path / "prev")[1]["metadata"]["epoch"] == 0
    last = tmp_path / "last.safetensors"
    last.write_bytes(last.read_bytes()[:-50])  # torn
    with pytest.warns(RuntimeWarning, match="previous complete checkpoint"):
        _, meta, _ = load_latest(tmp_path / "last")
    assert meta["metadata"]["epoch"] == 0
    last.unlink()  # gone
    with pytest.warns(RuntimeWarning, match="previous complete checkpoint"):
        assert load_latest(tmp_path / "last")[1]["metadata"]["epoch"] == 0
    (tmp_path / "prev.safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_latest(tmp_path / "last")


def test_a_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c", _model(), model_kwargs={"tiny": True, "num_classes": 6})
    state, _, _ = load_checkpoint(tmp_path / "c", build=False)
    from workbench.engine.checkpoint import load_state_checked

    other = build_model(preset("r3d"), tiny=True, num_classes=7)
    with pytest.raises(CheckpointError, match="does not fit this model: tensors .* of another shape"):
        load_state_checked(other, state, tmp_path / "c")
