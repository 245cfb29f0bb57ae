"""Real-data optical flow: the 8-bit flow-frame folders, export, paired loading, OpenCV flow."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.data.export import export_dataset
from workbench.data.flow import (
    FlowVideoDataset,
    compute_flow,
    dequantize_flow,
    find_flow_folder,
    list_flow_frames,
    quantize_flow,
    write_flow_frames,
)
from workbench.data.formats import make_dataset
from workbench.data.synthetic import make_synthetic


def test_codec_round_trip_and_clipping():
    v = np.linspace(-25, 25, 101, dtype=np.float32)
    p = quantize_flow(v, 20)
    assert p.dtype == np.uint8 and p.min() == 0 and p.max() == 255
    back = dequantize_flow(p, 20)
    inside = np.abs(v) <= 20
    assert np.abs(back[inside] - v[inside]).max() <= 20 / 255 + 1e-4  # half a step of 40/255
    assert back[~inside].min() == -20 and back[~inside].max() == 20
    with pytest.raises(ValueError, match="bound"):
        quantize_flow(v, 0)


@pytest.mark.parametrize("prefix,start", [("flow_", 1), ("flow_", 0), ("", 1)])
def test_flow_folders_any_naming(tmp_path, prefix, start):
    f = np.random.default_rng(0).normal(0, 3, (2, 5, 8, 10)).astype(np.float32)
    write_flow_frames(tmp_path / "v", f, prefix=prefix, start=start)
    files = list_flow_frames(tmp_path / "v")
    assert len(files) == 5 and files[0][0].name == f"{prefix}x_{start:05d}.jpg"
    from workbench.data.flow import read_flow_frames

    q = read_flow_frames(files)
    assert q.shape == (5, 8, 10, 2)
    assert np.abs(dequantize_flow(q) - f.transpose(1, 2, 3, 0)).mean() < 0.3  # JPEG on top of the 8-bit code


def test_flow_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no flow folder"):
        list_flow_frames(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no flow frames"):
        list_flow_frames(tmp_path / "empty")
    write_flow_frames(tmp_path / "v", np.zeros((2, 3, 4, 4), np.float32))
    (tmp_path / "v" / "flow_y_00002.jpg").unlink()
    with pytest.raises(ValueError, match="do not pair up"):
        list_flow_frames(tmp_path / "v")
    write_flow_frames(tmp_path / "g", np.zeros((2, 3, 4, 4), np.float32))
    for c in "xy":
        (tmp_path / "g" / f"flow_{c}_00002.jpg").unlink()
    with pytest.raises(ValueError, match="not numbered consecutively"):
        list_flow_frames(tmp_path / "g")
    with pytest.raises(ValueError, match="2 x T x H x W"):
        write_flow_frames(tmp_path / "bad", np.zeros((3, 4, 4)))


@pytest.fixture(scope="module")
def ucf_with_flow(tmp_path_factory):
    out = tmp_path_factory.mktemp("ucf") / "ucf101"
    res = export_dataset("ucf101", out, dataset="synthetic-motion", clips_per_class=4, frames=8, size=48, flow=True)
    src = make_synthetic("synthetic-motion", output="uint8", frames=8, size=48, train_per_class=4)
    return out, res, src


def test_export_writes_the_exact_flow(ucf_with_flow):
    out, res, src = ucf_with_flow
    assert res.flow_root == out / "flow"
    for path, i in res.videos[:4]:
        folder = find_flow_folder(res.flow_root, path)
        assert folder == res.flow_root / path.parent.name / path.stem
        files = list_flow_frames(folder)
        assert len(files) == 7  # N - 1 flow frames
        from workbench.data.flow import read_flow_frames

        got = dequantize_flow(read_flow_frames(files)).transpose(3, 0, 1, 2)
        exact = np.clip(src.flow_array(i)[:, :-1], -20, 20)
        assert np.abs(got - exact).mean() < 0.25


def test_paired_loading_matches_the_exact_flow_in_val_mode(ucf_with_flow):
    out, res, src = ucf_with_flow
    rgb = make_dataset("ucf101", out, "val", frames=8, size=48, short_side=48)
    ds = FlowVideoDataset(rgb, out / "flow")
    by_path = {str(p): i for p, i in res.videos}
    for k in range(3):
        x, y = ds[k]
        assert x["rgb"].shape == (3, 8, 48, 48) and x["flow"].shape == (2, 8, 48, 48)
        i = by_path[str(rgb.entries[ds.keep[k]].path)]
        exact = np.clip(src.flow_array(i), -20, 20)
        exact[:, -1] = exact[:, -2]  # the last frame reuses the last flow frame
        assert np.abs(x["flow"].numpy() - exact).mean() < 0.3
        assert y == rgb.entries[ds.keep[k]].label


def _warp_error(item, sign):
    """RGB frame t+1 sampled at p + flow(p) against frame t, on moving pixels."""
    rgb = item["rgb"]
    fl = item["flow"].clone()
    fl[0] *= sign
    _, t_len, h, w = rgb.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.0, torch.arange(w) + 0.0, indexing="ij")
    errs = []
    for t in range(t_len - 1):
        grid = torch.stack([(xs + fl[0, t]) / (w - 1) * 2 - 1, (ys + fl[1, t]) / (h - 1) * 2 - 1], -1)
        warped = F.grid_sample(rgb[:, t + 1][None], grid[None], align_corners=True)[0]
        moving = item["flow"][:, t].abs().sum(0) > 1.0
        errs.append((warped - rgb[:, t]).abs().mean(0)[moving])
    return torch.cat(errs).mean().item()


def test_train_mode_crops_and_flips_flow_with_the_frames(ucf_with_flow):
    out, _, _ = ucf_with_flow
    rgb = make_dataset("ucf101", out, "train", frames=8, size=40, short_side=(40, 56), output="uint8")
    ds = FlowVideoDataset(rgb, out / "flow", seed=1)
    better = 0
    for k in range(12):
        x, _ = ds[k % len(ds)]
        item = {"rgb": x["rgb"].permute(3, 0, 1, 2).float(), "flow": x["flow"]}
        assert item["flow"].shape == (2, 8, 40, 40)
        better += _warp_error(item, 1.0) < _warp_error(item, -1.0)
    assert better >= 11  # flips included: the dx sign follows the frames


def test_missing_flow_folders(ucf_with_flow, tmp_path):
    out, res, _ = ucf_with_flow
    import shutil

    shutil.copytree(out / "flow", tmp_path / "flow")
    rgb = make_dataset("ucf101", out, "train", frames=8, size=48, short_side=48)
    shutil.rmtree(find_flow_folder(tmp_path / "flow", rgb.entries[0].path))
    with pytest.raises(FileNotFoundError, match="have no flow folder"):
        FlowVideoDataset(rgb, tmp_path / "flow")
    kept = FlowVideoDataset(rgb, tmp_path / "flow", on_missing="drop")
    assert len(kept) == len(rgb) - 1 and len(kept.missing) == 1
    with pytest.raises(FileNotFoundError, match="flow root"):
        FlowVideoDataset(rgb, tmp_path / "nowhere")


def test_flow_with_the_wrong_frame_count_is_reported(ucf_with_flow, tmp_path):
    out, res, _ = ucf_with_flow
    import shutil

    shutil.copytree(out / "flow", tmp_path / "flow")
    rgb = make_dataset("ucf101", out, "val", frames=8, size=48, short_side=48)
    folder = find_flow_folder(tmp_path / "flow", rgb.entries[0].path)
    for c in "xy":
        for n in (6, 7):
            (folder / f"flow_{c}_{n:05d}.jpg").unlink()
    ds = FlowVideoDataset(rgb, tmp_path / "flow")
    with pytest.raises(ValueError, match="has 8 frames but its flow folder"):
        ds[0]


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_compute_flow_finds_a_known_shift(method):
    pytest.importorskip("cv2")
    g = np.random.default_rng(0)
    base = g.random((24, 24))
    big = np.kron(base, np.ones((4, 4)))  # 96 x 96 blocks: texture at several scales
    big = np.asarray(Image.fromarray((big * 255).astype(np.uint8)).resize((96, 96), Image.BILINEAR))
    frames = np.stack([np.roll(big, (s, 2 * s), axis=(0, 1)) for s in range(3)]).astype(np.uint8)
    f = compute_flow(frames, method)
    assert f.shape == (2, 2, 96, 96)
    inner = f[:, :, 16:-16, 16:-16]
    assert np.median(inner[0]) == pytest.approx(2.0, abs=0.3)  # dx
    assert np.median(inner[1]) == pytest.approx(1.0, abs=0.3)  # dy
    with pytest.raises(ValueError, match="unknown flow method"):
        compute_flow(frames, "lucas")


def test_flow_command_and_two_stream_training_on_a_real_layout(ucf_with_flow, tmp_path):
    pytest.importorskip("cv2")
    from workbench.cli import main
    from workbench.engine.config import TrainConfig
    from workbench.streams import run_streams

    out, _, _ = ucf_with_flow
    assert main(["data", "flow", "--format", "ucf101", "--root", str(out), "--out", str(tmp_path / "flow"),
                 "--method", "dis", "--no-progress"]) == 0
    rgb = make_dataset("ucf101", out, "train", frames=8, size=48)
    assert all(list_flow_frames(find_flow_folder(tmp_path / "flow", e.path)) for e in rgb.entries)
    r = run_streams(tmp_path / "run", dataset="ucf101", root=out, flow_root=tmp_path / "flow", fusion="stcb",
                    data_kw={"frames": 8, "size": 32}, model_kw={"d_final": 128},
                    train_config=TrainConfig(epochs=1, batch_size=8, progress=False))
    assert 0.0 <= r["result"]["test"]["fused"]["top1"] <= 1.0
    with pytest.raises(ValueError, match="flow_root"):
        run_streams(tmp_path / "run2", dataset="ucf101", root=out, fusion="stcb")
