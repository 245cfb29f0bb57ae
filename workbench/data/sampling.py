"""Temporal clip sampling: which frame indices make up a clip.

- training: ``frames`` indices ``stride`` apart from a random offset;
- validation: the same span, centred in the video;
- test: ``num_clips`` spans spread uniformly from the first to the last possible offset.

A video shorter than the span repeats its last frame (indices are clamped), so every clip has
exactly ``frames`` frames. Randomness comes from an ``np.random.Generator`` when given, otherwise
from torch's global generator, which PyTorch seeds separately in every DataLoader worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MODES",
    "ClipSampler",
    "clip_span",
    "train_indices",
    "center_indices",
    "uniform_indices",
    "default_rng",
]

MODES = ("train", "val", "test")


def default_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` itself, or a generator seeded from torch's global RNG (per-worker seeded)."""
    if rng is not None:
        return rng
    import torch

    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def _check(frames: int, stride: int) -> None:
    if frames < 1 or stride < 1:
        raise ValueError(
            f"frames and stride must be positive, got frames={frames}, stride={stride}"
        )


def clip_span(frames: int, stride: int) -> int:
    """Frames covered by a clip of ``frames`` frames ``stride`` apart."""
    _check(frames, stride)
    return (frames - 1) * stride + 1


def _indices(start: int, num_frames: int, frames: int, stride: int) -> np.ndarray:
    idx = start + np.arange(frames, dtype=np.int64) * stride
    return np.minimum(idx, max(num_frames - 1, 0))


def train_indices(
    num_frames: int, frames: int, stride: int = 1, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One clip from a random offset."""
    last = num_frames - clip_span(frames, stride)
    start = int(default_rng(rng).integers(0, last + 1)) if last > 0 else 0
    return _indices(start, num_frames, frames, stride)


def center_indices(num_frames: int, frames: int, stride: int = 1) -> np.ndarray:
    """One clip centred in the video."""
    last = num_frames - clip_span(frames, stride)
    return _indices(max(last, 0) // 2, num_frames, frames, stride)


def uniform_indices(
    num_frames: int, frames: int, stride: int = 1, num_clips: int = 10
) -> list[np.ndarray]:
    """``num_clips`` clips with offsets spread evenly over the video (one clip = centre clip)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    if num_clips == 1:
        return [center_indices(num_frames, frames, stride)]
    last = max(num_frames - clip_span(frames, stride), 0)
    starts = np.rint(np.linspace(0, last, num_clips)).astype(np.int64)
    return [_indices(int(s), num_frames, frames, stride) for s in starts]


@dataclass(frozen=True)
class ClipSampler:
    """The indices of the clip(s) to read from a video of ``num_frames`` frames, per mode."""

    mode: str = "train"
    frames: int = 16
    stride: int = 2
    num_clips: int = 10  # test mode only

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"sampling mode must be one of {MODES}, got {self.mode!r}")
        _check(self.frames, self.stride)
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be positive, got {self.num_clips}")

    @property
    def clips_per_video(self) -> int:
        return self.num_clips if self.mode == "test" else 1

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        if self.mode == "train":
            return [train_indices(num_frames, self.frames, self.stride, rng)]
        if self.mode == "val":
            return [center_indices(num_frames, self.frames, self.stride)]
        return uniform_indices(num_frames, self.frames, self.stride, self.num_clips)
