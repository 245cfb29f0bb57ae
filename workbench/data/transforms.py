"""Clip transforms: whole uint8 ``T H W 3`` clips in, the same geometry applied to every frame.

The spatial steps (short-side resize, crops, flip) stay in uint8, where they are cheap (torch's
antialiased bilinear resize has a uint8 kernel); the clip becomes float ``C T H W`` only at the
end, for normalisation. :class:`ClipTransform` bundles the usual pipelines:

- ``train``: short-side resize (optionally a random side in a range), random crop, random
  horizontal flip (when ``flip``; off for datasets where left and right matter);
- ``val``: short-side resize, centre crop;
- ``test``: short-side resize, one of ``num_crops`` views (1 = centre, 3 = start / centre / end
  of the long side), chosen by ``view``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .sampling import MODES, default_rng

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "as_clip",
    "resize_short_side",
    "crop",
    "center_crop",
    "random_crop",
    "three_crop",
    "view_crop",
    "hflip",
    "to_float",
    "normalize",
    "to_normalized",
    "ClipTransform",
    "make_transform",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def as_clip(clip) -> torch.Tensor:
    """A uint8 ``T H W 3`` tensor from an array or tensor (checked)."""
    if isinstance(clip, np.ndarray):
        clip = torch.from_numpy(np.ascontiguousarray(clip))
    if not isinstance(clip, torch.Tensor):
        raise ValueError(f"expected a clip array or tensor T H W 3, got {type(clip).__name__}")
    if clip.dim() != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected a clip T H W 3, got shape {tuple(clip.shape)}")
    if clip.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 clip, got {clip.dtype}")
    return clip


def short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    if h <= w:
        return size, max(1, int(round(w * size / h)))
    return max(1, int(round(h * size / w))), size


def resize_short_side(clip, size: int) -> torch.Tensor:
    """Resize every frame so that its shorter side is ``size`` (aspect kept; antialiased bilinear)."""
    clip = as_clip(clip)
    t, h, w, _ = clip.shape
    nh, nw = short_side_size(h, w, size)
    if (nh, nw) == (h, w):
        return clip
    x = clip.permute(0, 3, 1, 2)  # T C H W view, channels-last in memory
    y = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).contiguous()


def _check_fits(clip: torch.Tensor, size: int) -> None:
    h, w = clip.shape[1], clip.shape[2]
    if size > h or size > w:
        raise ValueError(
            f"crop {size}x{size} does not fit frames of {h}x{w}; resize the short side to >= {size} first"
        )


def crop(clip, top: int, left: int, height: int, width: int) -> torch.Tensor:
    clip = as_clip(clip)
    return clip[:, top : top + height, left : left + width, :]


def center_crop(clip, size: int) -> torch.Tensor:
    clip = as_clip(clip)
    _check_fits(clip, size)
    h, w = clip.shape[1], clip.shape[2]
    return crop(clip, (h - size) // 2, (w - size) // 2, size, size)


def random_crop(clip, size: int, rng: np.random.Generator | None = None) -> torch.Tensor:
    clip = as_clip(clip)
    _check_fits(clip, size)
    h, w = clip.shape[1], clip.shape[2]
    g = default_rng(rng)
    return crop(
        clip, int(g.integers(0, h - size + 1)), int(g.integers(0, w - size + 1)), size, size
    )


def view_crop(clip, size: int, view: int, num_views: int = 3) -> torch.Tensor:
    """Crop number ``view`` of ``num_views`` spread along the long side (centred on the short side)."""
    clip = as_clip(clip)
    _check_fits(clip, size)
    if not 0 <= view < num_views:
        raise ValueError(f"view must be in [0, {num_views}), got {view}")
    h, w = clip.shape[1], clip.shape[2]
    if num_views == 1:
        return center_crop(clip, size)
    along = (w - size) if w >= h else (h - size)
    pos = int(round(along * view / (num_views - 1)))
    if w >= h:
        return crop(clip, (h - size) // 2, pos, size, size)
    return crop(clip, pos, (w - size) // 2, size, size)


def three_crop(clip, size: int) -> list[torch.Tensor]:
    """Start, centre and end crops along the long side."""
    return [view_crop(clip, size, v, 3) for v in range(3)]


def hflip(clip) -> torch.Tensor:
    return as_clip(clip).flip(2)


def to_float(clip) -> torch.Tensor:
    """uint8 ``T H W 3`` -> contiguous float32 ``C T H W`` in [0, 1]."""
    clip = as_clip(clip)
    return clip.permute(3, 0, 1, 2).contiguous().to(torch.float32).mul_(1.0 / 255.0)


def _norm_constants(mean, std, c: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {c} channels")
    m = torch.as_tensor(mean, dtype=dtype).view(-1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=dtype).view(-1, 1, 1, 1)
    return m, s


def normalize(
    x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on a float ``C T H W`` clip (or ``B C T H W`` batch)."""
    if not x.is_floating_point():
        raise ValueError(f"normalize expects a float clip C T H W, got {x.dtype}")
    m, s = _norm_constants(mean, std, x.shape[-4], x.dtype)
    return (x - m) / s


def to_normalized(
    clip, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """uint8 ``T H W 3`` -> float32 ``C T H W`` ``(x / 255 - mean) / std`` in two fused passes."""
    clip = as_clip(clip)
    m, s = _norm_constants(mean, std, 3, torch.float32)
    x = clip.permute(3, 0, 1, 2).contiguous().to(torch.float32)
    return x.mul_(1.0 / (255.0 * s)).sub_(m / s)


class ClipTransform:
    """Resize, crop, (flip), to float ``C T H W``, normalise; one geometry for all frames.

    size:        crop side (square crops).
    short_side:  side the shorter frame edge is resized to before cropping; an int, or in train
                 mode a ``(lo, hi)`` range drawn per clip (val/test use ``lo``). Default
                 ``round(size * 8 / 7)`` (128 for 112).
    flip:        random horizontal flip in train mode.
    num_crops:   spatial views in test mode (1 or 3); pick one with ``view``.
    output:      'float' (normalised float ``C T H W``) or 'uint8' (cropped uint8 ``T H W 3``).
    """

    def __init__(
        self,
        mode: str = "train",
        size: int = 112,
        short_side: int | tuple[int, int] | None = None,
        flip: bool = True,
        num_crops: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        output: str = "float",
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if short_side is None:
            short_side = max(size, int(round(size * 8 / 7)))
        lo, hi = (short_side, short_side) if isinstance(short_side, int) else tuple(short_side)
        if lo < size or hi < lo:
            raise ValueError(f"short_side {short_side} must be >= size {size} (and lo <= hi)")
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        if output not in ("float", "uint8"):
            raise ValueError(f"output must be 'float' or 'uint8', got {output!r}")
        self.mode, self.size, self.flip, self.output = mode, size, flip, output
        self.short_range = (int(lo), int(hi))
        self.num_crops = num_crops if mode == "test" else 1
        self.mean, self.std = tuple(mean), tuple(std)

    @property
    def short_side(self) -> int | None:
        """The fixed resize target, or None when it is drawn per clip (train-time jitter)."""
        lo, hi = self.short_range
        return lo if (lo == hi or self.mode != "train") else None

    @property
    def num_views(self) -> int:
        return self.num_crops

    def geometry(self, clip, view: int = 0, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, int, bool]:
        """Resize, crop and flip only: ``(uint8 T H W C clip, resized short side, flipped)``. Two
        clips of one size given generators in the same state get the same geometry (a flow clip
        beside its RGB clip)."""
        clip = as_clip(clip)
        lo, hi = self.short_range
        flipped = False
        if self.mode == "train":
            g = default_rng(rng)
            side = lo if lo == hi else int(g.integers(lo, hi + 1))
            clip = random_crop(resize_short_side(clip, side), self.size, g)
            if self.flip and g.random() < 0.5:
                clip, flipped = hflip(clip), True
        elif self.mode == "val":
            side = lo
            clip = center_crop(resize_short_side(clip, lo), self.size)
        else:
            side = lo
            clip = view_crop(resize_short_side(clip, lo), self.size, view, self.num_crops)
        return clip, side, flipped

    def __call__(self, clip, view: int = 0, rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = self.geometry(clip, view, rng)[0]
        if self.output == "uint8":
            return clip.contiguous()
        return to_normalized(clip, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"ClipTransform(mode={self.mode!r}, size={self.size}, short_side={self.short_range}, "
            f"flip={self.flip}, num_crops={self.num_crops}, output={self.output!r})"
        )


def make_transform(mode: str = "train", size: int = 112, **kw) -> ClipTransform:
    return ClipTransform(mode=mode, size=size, **kw)
