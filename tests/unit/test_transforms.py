import numpy as np
import pytest
import torch

from workbench.data.synthetic import make_synthetic
from workbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipTransform,
    center_crop,
    hflip,
    normalize,
    random_crop,
    resize_short_side,
    three_crop,
    to_float,
    view_crop,
)


def _grid(t=4, h=24, w=40):
    """A clip whose pixel (y, x) encodes its position, identical in every frame but for channel 2."""
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frame = np.stack([y * 5 % 256, x * 5 % 256, np.zeros_like(x)], -1).astype(np.uint8)
    clip = np.repeat(frame[None], t, 0)
    clip[..., 2] = np.arange(t)[:, None, None] * 10
    return torch.from_numpy(clip)


def test_resize_short_side_keeps_aspect_and_dtype():
    clip = _grid(h=24, w=40)
    out = resize_short_side(clip, 12)
    assert out.shape == (4, 12, 20, 3) and out.dtype == torch.uint8
    assert resize_short_side(clip, 24) is clip  # already that size
    tall = resize_short_side(_grid(h=40, w=24), 12)
    assert tall.shape == (4, 20, 12, 3)
    # the temporal channel is untouched by a spatial resize
    assert out[..., 2].float().mean(dim=(1, 2)).round().tolist() == [0, 10, 20, 30]


def test_crops_are_the_same_in_every_frame():
    clip = _grid()
    rng = np.random.default_rng(0)
    for _ in range(10):
        c = random_crop(clip, 16, rng)
        assert c.shape == (4, 16, 16, 3)
        assert (c[..., :2] == c[:1, ..., :2]).all()  # same geometry for all frames
    c = center_crop(clip, 16)
    assert c[0, 0, 0, 0] == 4 * 5 and c[0, 0, 0, 1] == 12 * 5
    left, mid, right = three_crop(clip, 24)
    assert [int(v[0, 0, 0, 1]) // 5 for v in (left, mid, right)] == [0, 8, 16]
    top, _, bottom = three_crop(_grid(h=40, w=24), 24)
    assert int(top[0, 0, 0, 0]) // 5 == 0 and int(bottom[0, 0, 0, 0]) // 5 == 16
    assert torch.equal(view_crop(clip, 16, 0, 1), center_crop(clip, 16))
    with pytest.raises(ValueError, match="does not fit"):
        center_crop(clip, 30)


def test_flip_to_float_normalize():
    clip = _grid()
    f = hflip(clip)
    assert torch.equal(f[:, :, 0], clip[:, :, -1])
    x = to_float(clip)
    assert x.shape == (3, 4, 24, 40) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    n = normalize(x)
    assert torch.allclose(n[1, 0, 0, 0], torch.tensor((0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]))
    with pytest.raises(ValueError, match="float"):
        normalize(clip)
    with pytest.raises(ValueError, match="uint8"):
        to_float(clip.float())
    with pytest.raises(ValueError, match="T H W 3"):
        to_float(clip[0])


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_clip_transform_modes(mode):
    ds = make_synthetic(
        "synthetic-motion", split="train", output="uint8", frames=8, size=32, train_per_class=1
    )
    clip = torch.from_numpy(ds.clip_array(0))
    t = ClipTransform(mode, size=28, num_crops=3)
    out = t(clip, view=2 if mode == "test" else 0)
    assert out.shape == (3, 8, 28, 28) and out.dtype == torch.float32
    u = ClipTransform(mode, size=28, output="uint8")(clip)
    assert u.shape == (8, 28, 28, 3) and u.dtype == torch.uint8
    assert t.num_views == (3 if mode == "test" else 1)


def test_train_flip_is_consistent_and_can_be_switched_off():
    clip = _grid(h=32, w=32)
    t = ClipTransform("train", size=32, short_side=32, flip=True, output="uint8")
    outs = [t(clip, rng=np.random.default_rng(s)) for s in range(12)]
    flipped = [bool(torch.equal(o, hflip(clip))) for o in outs]
    assert any(flipped) and not all(flipped)
    assert all(
        torch.equal(o, clip) or torch.equal(o, hflip(clip)) for o in outs
    )  # whole clip or nothing
    never = ClipTransform("train", size=32, short_side=32, flip=False, output="uint8")
    assert all(torch.equal(never(clip, rng=np.random.default_rng(s)), clip) for s in range(12))


def test_val_and_test_are_deterministic_and_short_side_jitter():
    clip = _grid(h=48, w=64)
    v = ClipTransform("val", size=32, short_side=(36, 48))
    assert v.short_side == 36 and torch.equal(v(clip), v(clip))
    tr = ClipTransform("train", size=32, short_side=(36, 48))
    assert tr.short_side is None  # drawn per clip
    assert ClipTransform("train", size=112).short_range == (128, 128)
    with pytest.raises(ValueError, match="short_side"):
        ClipTransform(size=32, short_side=20)
    with pytest.raises(ValueError, match="num_crops"):
        ClipTransform("test", num_crops=5)
    with pytest.raises(ValueError, match="mode"):
        ClipTransform("eval")
