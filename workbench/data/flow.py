"""Optical flow of real videos: the precomputed flow-frame folders, their codec, and computing flow.

Layout (one folder per video, as mmaction / denseflow write them)::

    FLOW_ROOT/<Class>/<video>/flow_x_00001.jpg, flow_y_00001.jpg, ...   (UCF101, HMDB51, Kinetics)
    FLOW_ROOT/<video id>/flow_x_00001.jpg, ...                          (Something-Something)

The file names vary by tool: ``flow_x_`` / ``flow_y_`` (mmaction, denseflow) or ``x_`` / ``y_``
(mmaction's flow_extraction), numbered from 0 or 1 with any zero padding; all are found by globbing.
Each component is an 8-bit greyscale JPEG: a value ``v`` (pixels) is clipped to ``[-b, b]`` and
stored as ``p = 255 (v + b) / (2 b)``; decoding is ``v = p 2 b / 255 - b``. mmaction uses
``b = 20`` (:data:`FLOW_BOUND`), denseflow's command line 32: pass the bound the flow was written
with. A video of ``N`` frames has ``N - 1`` flow frames; flow frame ``t`` is the motion from frame
``t`` to ``t + 1``.

Computing flow where none is shipped uses OpenCV (``opencv-contrib-python-headless``, the
``flow`` extra): ``tvl1`` (Dual TV-L1, what denseflow and mmaction compute: use it to match
published flow; about 0.9 s per 320x240 frame on 2 CPU cores) or ``dis`` (Dense Inverse Search,
OpenCV's fast method: 90x faster) or ``farneback`` (30x); see ``benchmarks/streams.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FLOW_BOUND",
    "FLOW_METHODS",
    "quantize_flow",
    "dequantize_flow",
    "list_flow_frames",
    "find_flow_folder",
    "read_flow_frames",
    "write_flow_frames",
    "compute_flow",
]

#: The bound mmaction's flow frames are written with (pixels).
FLOW_BOUND = 20.0
FLOW_METHODS = ("tvl1", "dis", "farneback")
_PATTERNS = (("flow_x_", "flow_y_"), ("x_", "y_"))
_NUMBERED = re.compile(r"^(flow_x_|flow_y_|x_|y_)(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def _check_bound(bound: float) -> float:
    if not isinstance(bound, (int, float)) or not bound > 0:
        raise ValueError(f"the flow bound must be a positive number of pixels, got {bound!r}")
    return float(bound)


def quantize_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Pixels -> uint8 ``round(255 (clip(v, -b, b) + b) / (2 b))``."""
    b = _check_bound(bound)
    v = np.clip(np.asarray(flow, dtype=np.float32), -b, b)
    return np.rint((v + b) * (255.0 / (2 * b))).astype(np.uint8)


def dequantize_flow(p: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 -> pixels ``p 2 b / 255 - b`` (float32)."""
    b = _check_bound(bound)
    return np.asarray(p, dtype=np.float32) * np.float32(2 * b / 255.0) - np.float32(b)


def list_flow_frames(folder) -> list[tuple[Path, Path]]:
    """The ``(x, y)`` flow frame files of one video folder, in frame order.

    Raises ``FileNotFoundError`` when the folder or its flow frames are missing and
    ``ValueError`` when the x and y frames do not pair up."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no flow folder {folder}")
    found: dict[str, dict[int, Path]] = {}
    for f in folder.iterdir():
        m = _NUMBERED.match(f.name)
        if m:
            found.setdefault(m.group(1).lower(), {})[int(m.group(2))] = f
    for px, py in _PATTERNS:
        xs, ys = found.get(px, {}), found.get(py, {})
        if not xs and not ys:
            continue
        if sorted(xs) != sorted(ys):
            only_x = sorted(set(xs) - set(ys))[:5]
            only_y = sorted(set(ys) - set(xs))[:5]
            raise ValueError(f"{folder}: {len(xs)} {px}* and {len(ys)} {py}* frames do not pair up "
                             f"(x without y: {only_x}; y without x: {only_y})")
        idx = sorted(xs)
        if idx != list(range(idx[0], idx[0] + len(idx))):
            raise ValueError(f"{folder}: {px}* frames are not numbered consecutively from {idx[0]} "
                             f"(gap after {next(a for a, b in zip(idx, idx[1:]) if b != a + 1)})")
        return [(xs[i], ys[i]) for i in idx]
    raise FileNotFoundError(f"{folder} holds no flow frames (expected flow_x_00001.jpg / flow_y_00001.jpg "
                            f"or x_00001.jpg / y_00001.jpg)")


def find_flow_folder(flow_root, video_path) -> Path:
    """The flow folder of ``video_path`` under ``flow_root``: the video's path without its suffix,
    matched on its last three, two or one components (``Class/video``, ``split/video``, ``id``)."""
    root = Path(flow_root)
    parts = Path(video_path).with_suffix("").parts if Path(video_path).suffix else Path(video_path).parts
    tried = []
    for k in (3, 2, 1):
        if k <= len(parts):
            cand = root.joinpath(*parts[-k:])
            tried.append(cand)
            if cand.is_dir():
                return cand
    raise FileNotFoundError(f"no flow folder for {video_path} under {flow_root} (looked for "
                            + ", ".join(str(t) for t in tried) + ")")


def _imread_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def read_flow_frames(files: Sequence[tuple[Path, Path]], indices: Sequence[int] | None = None) -> np.ndarray:
    """The quantised flow frames ``indices`` (default all) as uint8 ``T H W 2`` (x, y)."""
    pick = range(len(files)) if indices is None else indices
    out = []
    for i in pick:
        fx, fy = files[min(max(int(i), 0), len(files) - 1)]
        try:
            x, y = _imread_grey(fx), _imread_grey(fy)
        except OSError as e:
            raise ValueError(f"unreadable flow frame {fx} / {fy}: {e}") from None
        if x.shape != y.shape:
            raise ValueError(f"flow frames {fx.name} and {fy.name} differ in size: {x.shape} vs {y.shape}")
        out.append(np.stack([x, y], -1))
    if len({a.shape for a in out}) > 1:
        raise ValueError(f"flow frames of {files[0][0].parent} differ in size")
    return np.stack(out)


def write_flow_frames(folder, flow: np.ndarray, *, bound: float = FLOW_BOUND, prefix: str = "flow_",
                      start: int = 1, quality: int = 95) -> Path:
    """Write float ``2 T H W`` flow (pixels) as ``{prefix}x_%05d.jpg`` / ``{prefix}y_%05d.jpg``."""
    from PIL import Image

    flow = np.asarray(flow)
    if flow.ndim != 4 or flow.shape[0] != 2:
        raise ValueError(f"flow must be 2 x T x H x W (dx, dy), got shape {flow.shape}")
    if prefix not in ("flow_", ""):
        raise ValueError(f"prefix must be 'flow_' or '' (x_ / y_ files), got {prefix!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    q = quantize_flow(flow, bound)
    for t in range(q.shape[1]):
        for c, name in enumerate("xy"):
            Image.fromarray(q[c, t]).save(folder / f"{prefix}{name}_{t + start:05d}.jpg", quality=quality)
    return folder


def compute_flow(frames: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Optical flow between consecutive frames of uint8 ``T H W 3`` (or ``T H W``) frames:
    float32 ``2 (T-1) H W`` in pixels, with OpenCV's ``method`` (see :data:`FLOW_METHODS`)."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; expected one of: {', '.join(FLOW_METHODS)}")
    try:
        import cv2
    except ImportError:
        raise ImportError("computing optical flow needs OpenCV: pip install 'fusion-workbench[flow]' "
                          "(opencv-contrib-python-headless)") from None
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) < 2:
        raise ValueError(f"compute_flow expects at least two uint8 frames T H W [3], got {frames.dtype} {frames.shape}")
    grey = frames if frames.ndim == 3 else np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise ImportError("TV-L1 lives in OpenCV's contrib modules: install opencv-contrib-python-headless "
                              "(the 'flow' extra) instead of opencv-python(-headless), or use method='dis'")
        algo = cv2.optflow.DualTVL1OpticalFlow_create()
        calc = lambda a, b: algo.calc(a, b, None)  # noqa: E731
    elif method == "dis":
        algo = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        calc = lambda a, b: algo.calc(a, b, None)  # noqa: E731
    else:
        calc = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # noqa: E731
    out = np.empty((2, len(grey) - 1, *grey.shape[1:]), np.float32)
    for t in range(len(grey) - 1):
        f = calc(np.ascontiguousarray(grey[t]), np.ascontiguousarray(grey[t + 1]))
        out[0, t], out[1, t] = f[..., 0], f[..., 1]
    return out


class FlowVideoDataset:
    """A real dataset's RGB clips with their precomputed flow: items ``({"rgb": C T H W,
    "flow": 2 T H W}, label)`` (plus the video index in test mode, like :class:`VideoDataset`).

    ``rgb`` is a :class:`~workbench.data.dataset.VideoDataset` (its sampling and transform are
    used); ``flow_root`` holds one flow folder per video (:func:`find_flow_folder`), written with
    ``bound``. The flow clip takes the RGB clip's frame indices (flow frame ``t``: motion from
    frame ``t`` to ``t + 1``; the last frame reuses the last flow frame) and the same resize, crop
    and flip: resizing scales the vectors, a horizontal flip negates ``dx``. Flow comes out in
    pixels of the resized frame. Videos without a flow folder are an error at construction
    (``on_missing="error"``, the default) or left out (``"drop"``).
    """

    def __init__(self, rgb, flow_root, *, bound: float = FLOW_BOUND, on_missing: str = "error", seed: int = 0):
        from torch.utils.data import Dataset  # noqa: F401 - the class follows its protocol

        from .transforms import ClipTransform

        if not isinstance(rgb.transform, ClipTransform):
            raise ValueError("FlowVideoDataset needs the RGB dataset's default transform (ClipTransform), so that "
                             "the flow gets the same crop and flip")
        if on_missing not in ("error", "drop"):
            raise ValueError(f"on_missing must be 'error' or 'drop', got {on_missing!r}")
        self.rgb = rgb
        self.bound = _check_bound(bound)
        self.flow_root = Path(flow_root)
        if not self.flow_root.is_dir():
            raise FileNotFoundError(f"flow root {flow_root} does not exist")
        self.folders: list[Path | None] = []
        missing = []
        for e in rgb.entries:
            try:
                self.folders.append(find_flow_folder(self.flow_root, e.path))
            except FileNotFoundError:
                self.folders.append(None)
                missing.append(str(e.path))
        if missing and on_missing == "error":
            raise FileNotFoundError(
                f"{len(missing)} of {len(rgb.entries)} videos have no flow folder under {flow_root}, e.g. "
                + "; ".join(missing[:3]) + " (expected FLOW_ROOT/<Class>/<video>/flow_x_00001.jpg ...; "
                "on_missing='drop' leaves them out)")
        self.keep = [i for i, f in enumerate(self.folders) if f is not None]
        self.missing = missing
        self.classes = rgb.classes
        self.num_classes = len(rgb.classes)
        self.views = rgb.views
        self._seed, self._calls = int(seed), 0
        self._files: dict[int, list[tuple[Path, Path]]] = {}

    def __len__(self) -> int:
        return len(self.keep) * self.views

    def label(self, i: int) -> int:
        return self.rgb.entries[self.keep[i // self.views]].label

    def __getitem__(self, i: int):
        import torch

        from .decode import read_clips
        from .transforms import short_side_size, to_normalized

        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        k, view = divmod(i, self.views)
        vi = self.keep[k]
        entry = self.rgb.entries[vi]
        files = self._files.get(vi)
        if files is None:  # listed once per video, not once per clip
            files = self._files[vi] = list_flow_frames(self.folders[vi])
        chosen: list[np.ndarray] = []
        # a fresh draw per call, distinct across DataLoader workers (torch seeds each differently)
        self._calls += 1
        item_seed = int(np.random.default_rng([self._seed, torch.initial_seed() % 2**63, self._calls, i])
                        .integers(2**62))
        sampler = self.rgb.sampler

        def pick(n: int):
            if len(files) not in (n - 1, n):
                raise ValueError(f"{entry.path} has {n} frames but its flow folder {self.folders[vi]} has "
                                 f"{len(files)} flow frames (expected {n - 1})")
            idx = sampler(n, np.random.default_rng(item_seed))
            chosen.extend(idx)
            return idx

        clips = read_clips(entry.path, pick)
        c, crop_view = divmod(view, self.rgb.num_crops)
        c = min(c, len(clips) - 1)
        t = self.rgb.transform
        rgb_clip, side, flipped = t.geometry(torch.from_numpy(clips[c]), crop_view, np.random.default_rng(item_seed + 1))
        q = read_flow_frames(files, chosen[c])  # T H W 2
        h0, w0 = q.shape[1:3]
        if (h0, w0) != clips[c].shape[1:3]:
            raise ValueError(f"{entry.path}: RGB frames are {clips[c].shape[1:3]} but flow frames are {(h0, w0)}; "
                             f"they must be the same size")
        packed = np.concatenate([q, np.full(q.shape[:3] + (1,), 128, np.uint8)], -1)
        fq, _, _ = t.geometry(torch.from_numpy(packed), crop_view, np.random.default_rng(item_seed + 1))
        flow = dequantize_flow(fq[..., :2].numpy(), self.bound)  # T H W 2, pixels of the source frames
        nh, nw = short_side_size(h0, w0, side)
        flow[..., 0] *= nw / w0
        flow[..., 1] *= nh / h0
        if flipped:
            flow[..., 0] *= -1
        rgb_t = rgb_clip.contiguous() if t.output == "uint8" else to_normalized(rgb_clip, t.mean, t.std)
        out = ({"rgb": rgb_t, "flow": torch.from_numpy(np.ascontiguousarray(flow.transpose(3, 0, 1, 2)))},
               entry.label)
        return (*out, vi) if self.rgb.with_index else out


def compute_flow_folders(fmt: str, root, out, *, method: str = "tvl1", bound: float = FLOW_BOUND,
                         splits: Sequence[str] = ("train", "val", "test"), force: bool = False,
                         progress: bool = True, **index_kw) -> dict:
    """Compute and write the flow frames of every video of a real dataset: ``out/<Class>/<video>/``
    (or ``out/<id>/``), as :func:`find_flow_folder` finds them. Videos whose folder exists are
    skipped unless ``force`` (so an interrupted run continues). Returns counts."""
    from tqdm.auto import tqdm

    from .dataset import index_dataset
    from .decode import read_clips

    out = Path(out)
    seen: dict[Path, Path] = {}
    for split in splits:
        try:
            idx = index_dataset(fmt, root, split, **index_kw)
        except (FileNotFoundError, ValueError):
            if split == "val":  # UCF101 / HMDB51 have no val list of their own
                continue
            raise
        for e in idx.entries:
            p = Path(e.path)
            parts = (p.with_suffix("") if p.suffix else p).parts
            seen.setdefault(p, out.joinpath(*parts[-2:]) if fmt not in ("something-v1", "something-v2")
                            else out / parts[-1])
    written = skipped = 0
    for path, dest in tqdm(seen.items(), desc=f"flow ({method})", disable=not progress):
        if dest.is_dir() and not force:
            try:
                list_flow_frames(dest)
                skipped += 1
                continue
            except (FileNotFoundError, ValueError):
                pass  # incomplete: compute it again
        frames = read_clips(path, lambda n: [np.arange(n)])[0]
        tmp = dest.with_name(dest.name + ".partial")
        write_flow_frames(tmp, compute_flow(frames, method), bound=bound)
        if dest.exists():
            import shutil

            shutil.rmtree(dest)
        tmp.rename(dest)  # a folder appears complete or not at all
        written += 1
    return {"videos": len(seen), "written": written, "skipped": skipped, "out": str(out)}
