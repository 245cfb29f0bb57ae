"""The synthetic benchmark's second modalities: exact optical flow and an audio track."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.data.synthetic import make_synthetic


def _warp_errors(ds, n=12, flow_sign=1.0):
    """Frame t+1 sampled at p + flow_t(p), against frame t, on the objects' inner pixels
    (2 px from any edge, where bilinear sampling is exact up to the texture bands)."""
    errs, null = [], []
    for i in range(n):
        item, _ = ds[i]
        rgb = item["rgb"].float().permute(3, 0, 1, 2)
        fl = item["flow"] * flow_sign
        _, t_len, h, w = rgb.shape
        ys, xs = torch.meshgrid(torch.arange(h) + 0.0, torch.arange(w) + 0.0, indexing="ij")
        for t in range(t_len - 1):
            grid = torch.stack([(xs + fl[0, t]) / (w - 1) * 2 - 1, (ys + fl[1, t]) / (h - 1) * 2 - 1], -1)
            warped = F.grid_sample(rgb[:, t + 1][None], grid[None], align_corners=True)[0]
            obj = (item["flow"][:, t].abs().sum(0) > 0).float()
            core = -F.max_pool2d(-obj[None, None], 5, 1, 2)[0, 0] > 0.5
            errs.append((warped - rgb[:, t]).abs().mean(0)[core])
            null.append((rgb[:, t + 1] - rgb[:, t]).abs().mean(0)[core])
    return torch.cat(errs), torch.cat(null)


@pytest.mark.parametrize("motion", ["translate", "rotate", "scale", "spin"])
def test_flow_warps_frame_t_onto_frame_t_plus_1(motion):
    # 128 px: the texture bands are a few pixels wide, so bilinear sampling is mostly exact
    ds = make_synthetic("synthetic-motion", output="uint8", modalities=("rgb", "flow"), noise=0.0, clutter=0.0,
                        motions=(motion,), size=128)
    err, null = _warp_errors(ds, n=6)
    assert len(err) > 5000
    good = (err < 8).float().mean().item()  # within 8 of 255 levels
    assert good > 0.85, f"{motion}: only {good:.2f} of the object's pixels land where frame t+1 shows them"
    # of the pixels that change from frame t to t+1, the flow explains most ...
    changed = null > 24
    explained = (err[changed] < 8).float().mean().item()
    assert changed.sum() > 500 and explained > 0.5, f"{motion}: the flow explains {explained:.2f} of the changes"
    # ... and the test can fail: the reversed flow explains almost none
    bad, _ = _warp_errors(ds, n=6, flow_sign=-1.0)
    assert (bad[changed] < 8).float().mean().item() < 0.15


def test_background_flow_is_the_camera_shake():
    ds = make_synthetic("synthetic-mixed", output="uint8", modalities=("rgb", "flow"), noise=0.0, clutter=0.8,
                        camera_shake=0.06)
    moved = 0
    for i in range(6):
        item, _ = ds[i]
        rgb, fl = item["rgb"].numpy().astype(np.int16), item["flow"].numpy()
        for t in range(rgb.shape[0] - 1):
            # the most common flow vector of the frame is the background's, an integer shift
            dx, dy = (int(v) for v in np.median(fl[:, t].reshape(2, -1), axis=1))
            moved += (dx, dy) != (0, 0)
            # frame t+1 at p + (dx, dy) shows frame t at p: the whole background rolls (periodic field)
            rolled = np.roll(rgb[t + 1], (-dy, -dx), axis=(0, 1))
            same = (np.abs(rolled - rgb[t]).max(-1) == 0) & (np.abs(fl[:, t] - [[[dx]], [[dy]]]).sum(0) == 0)
            assert same.mean() > 0.5
    assert moved > 10
    assert np.all(ds[0][0]["flow"][:, -1].numpy() == 0)  # the last frame has no successor


def test_flow_does_not_change_the_rgb_clips_and_is_cached_alike():
    plain = make_synthetic("synthetic-mixed", split="val", val_per_class=2)
    both = make_synthetic("synthetic-mixed", split="val", val_per_class=2, modalities=("rgb", "flow"), cache=True)
    for i in range(len(plain)):
        x, y = both[i]
        assert y == plain[i][1]
        assert torch.equal(x["rgb"], plain[i][0])
        assert torch.equal(x["flow"], torch.from_numpy(np.array(both.flow_array(i))))
    fresh = make_synthetic("synthetic-mixed", split="val", val_per_class=2, modalities=("flow",))
    assert x["flow"].dtype == torch.float32
    assert torch.allclose(fresh[5][0]["flow"], both[5][0]["flow"], atol=0.01, rtol=0)  # the cache is float16


def test_audio_knobs():
    def accuracy(**kw):
        ds = make_synthetic("synthetic-mixed", modalities=("audio",), train_per_class=40, **kw)
        hits = 0
        for i in range(len(ds)):
            a = ds[i][0]["audio"][0].numpy()
            spec = np.abs(np.fft.rfft(a))
            cycles = int(np.argmax(spec[1:])) + 1  # tone of class c: 2 + 1.5 c cycles -> nearest bin
            guess = int(np.argmin(np.abs(2 + 1.5 * np.arange(ds.num_classes) - cycles)))
            hits += guess == ds.label(i)
        return hits / len(ds)

    assert accuracy(audio_noise=0.2) > 0.95
    half = accuracy(audio_noise=0.2, audio_informativeness=0.5)
    assert 0.4 < half < 0.65  # 0.5 + 0.5 / 8 expected
    assert accuracy(audio_noise=0.2, audio_informativeness=0.0) < 0.25
    assert accuracy(audio_noise=8.0) < 0.6  # drowned in noise
    a = make_synthetic("synthetic-mixed", modalities=("rgb", "audio"))
    assert a[0][0]["audio"].shape == (1, 256)
    assert torch.equal(a[0][0]["rgb"], make_synthetic("synthetic-mixed")[0][0])


@pytest.mark.parametrize("bad", [(), ("rgb", "rgb"), ("depth",), "sound"])
def test_bad_modalities(bad):
    with pytest.raises(ValueError, match="modalities"):
        make_synthetic("synthetic-mixed", modalities=bad)


def test_bad_audio_knobs():
    with pytest.raises(ValueError, match="audio_informativeness"):
        make_synthetic("synthetic-mixed", modalities=("audio",), audio_informativeness=1.5)
