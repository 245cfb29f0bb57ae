"""Real datasets as torch datasets: :func:`index_dataset` (the dispatcher over the formats'
indexers), :class:`VideoDataset`, :func:`make_dataset` and the loaders.

:class:`VideoDataset` turns a :class:`~workbench.data.index.DatasetIndex` into a torch dataset
that samples clips (see ``sampling``), decodes them (``decode``) and transforms them
(``transforms``).

Items are ``(clip, label)``: clip is float ``C T H W`` after the default transform, uint8
``T H W 3`` with ``transform=None``. In test mode (or with ``with_index=True``) items are
``(clip, label, video_index)`` and each video gives ``num_clips * num_crops`` views, in order, so
scores can be averaged per video with :func:`~workbench.engine.evaluate.average_scores_per_video`.
Unlabelled entries have label -1.

A file that cannot be decoded is skipped: a warning names it once, the dataset records it
(``dataset.skipped``, ``dataset.skip_summary()``) and returns the next readable video instead
(``on_error='next'``) or ``None`` (``on_error='drop'``, dropped by :func:`collate_drop_none`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
import weakref
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .decode import DecodeError, read_clips
from .folder import index_folder
from .hmdb51 import index_hmdb51
from .index import DatasetIndex, SkippedVideoWarning, canonical_format
from .kinetics import index_kinetics
from .sampling import ClipSampler
from .something import index_something_v1, index_something_v2
from .transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, as_clip
from .ucf101 import index_ucf101

__all__ = [
    "index_dataset",
    "VideoDataset",
    "make_dataset",
    "collate_drop_none",
    "VideoLoader",
    "make_loader",
]

def index_dataset(fmt: str, root, split: str = "train", **kw) -> DatasetIndex:
    """Dispatch to the indexer of ``fmt`` (a format name or dataset name such as 'kinetics-600')."""
    fmt_l = fmt.lower()
    c = canonical_format(fmt)
    if c == "ucf101":
        return index_ucf101(root, split, **kw)
    if c == "hmdb51":
        return index_hmdb51(root, split, **kw)
    if c == "something-v1":
        return index_something_v1(root, split, **kw)
    if c == "something-v2":
        return index_something_v2(root, split, **kw)
    if c == "kinetics":
        kw.setdefault("variant", fmt_l if fmt_l.startswith("kinetics-") else "kinetics")
        return index_kinetics(root, split, **kw)
    return index_folder(root, split, **kw)


# -- the dataset --------------------------------------------------------------------------------


class VideoDataset(Dataset):
    """Clips from a :class:`DatasetIndex`; see the module docstring for items and skipping."""

    def __init__(
        self,
        index: DatasetIndex,
        *,
        mode: str | None = None,
        frames: int = 16,
        stride: int = 1,
        num_clips: int = 10,
        num_crops: int = 3,
        transform="default",
        size: int = 112,
        short_side=None,
        flip: bool | None = None,
        output: str = "float",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        on_error: str = "next",
        on_missing: str = "warn",
        with_index: bool | None = None,
        threads: int = 1,
    ):
        if mode is None:
            mode = index.split
        if on_error not in ("next", "drop"):
            raise ValueError(f"on_error must be 'next' or 'drop', got {on_error!r}")
        if on_missing not in ("warn", "error", "ignore"):
            raise ValueError(f"on_missing must be 'warn', 'error' or 'ignore', got {on_missing!r}")
        self.index = index
        self.classes = list(index.classes)
        self.entries = list(index.entries)
        self.missing = [str(e.path) for e in index.missing]
        self.problems = list(index.problems)
        self.sampler = ClipSampler(mode, frames, stride, num_clips)
        if flip is None:
            flip = not index.format.startswith("something")
        self.flip = flip
        if isinstance(transform, str) and transform == "default":
            transform = ClipTransform(
                mode,
                size,
                short_side,
                flip=flip,
                num_crops=num_crops,
                mean=mean,
                std=std,
                output=output,
            )
        self.transform = transform
        crops = transform.num_views if isinstance(transform, ClipTransform) else 1
        self.num_crops = crops if mode == "test" else 1
        self.views = self.sampler.clips_per_video * self.num_crops
        self.with_index = (mode == "test") if with_index is None else with_index
        self.on_error = on_error
        self.threads = threads
        self._skipped: dict[str, str] = {}
        self._bad: set[int] = set()
        self._cache: tuple[int, list[np.ndarray]] | None = None
        self._skip_log: str | None = None
        self._owner_pid = os.getpid()
        self._report_build(on_missing)

    # -- build-time report
    @property
    def name(self) -> str:
        return self.index.name

    @property
    def mode(self) -> str:
        return self.sampler.mode

    def _report_build(self, on_missing: str) -> None:
        if self.missing and on_missing != "ignore":
            src = ", ".join(p.name for p in self.index.sources[:2])
            shown = "; ".join(self.missing[:5]) + (
                f"; ... ({len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
            )
            msg = (
                f"{self.name}: {len(self.missing)} of {len(self.missing) + len(self.entries)} entries of {src} "
                f"have no file and are left out (dataset.missing lists them): {shown}"
            )
            if on_missing == "error":
                raise ValueError(msg)
            warnings.warn(msg, UserWarning, stacklevel=3)
        if self.problems and on_missing != "ignore":
            shown = "; ".join(str(p) for p in self.problems[:5])
            more = f"; ... ({len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            warnings.warn(
                f"{self.name}: {len(self.problems)} annotation problems (dataset.problems): {shown}{more}",
                UserWarning,
                stacklevel=3,
            )
        if not self.entries:
            raise ValueError(
                f"{self.name}: no entry of {', '.join(str(s) for s in self.index.sources)} has a file under {self.index.video_dir}"
            )

    # -- sizes and labels
    @property
    def num_videos(self) -> int:
        return len(self.entries)

    def __len__(self) -> int:
        return len(self.entries) * self.views

    def label(self, i: int) -> int:
        """Label of item ``i`` (a view in test mode)."""
        return self.entries[i // self.views].label

    def video_index(self, i: int) -> int:
        return i // self.views

    @property
    def labels(self) -> list[int]:
        """One label per video (not per view)."""
        return [e.label for e in self.entries]

    # -- skipping
    def enable_skip_log(self) -> str:
        """Record skips in a file as well, so that DataLoader workers' skips reach this process."""
        if self._skip_log is None:
            fd, path = tempfile.mkstemp(prefix="workbench-skips-", suffix=".tsv")
            os.close(fd)
            self._skip_log = path
            self._owner_pid = os.getpid()
            weakref.finalize(self, _remove_log, path, self._owner_pid)
        return self._skip_log

    def _logged(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self._skip_log and os.path.exists(self._skip_log):
            with open(self._skip_log, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    path, _, reason = line.rstrip("\n").partition("\t")
                    if path:
                        out.setdefault(path, reason)
        return out

    def _record_skip(self, vi: int, err: Exception) -> None:
        self._bad.add(vi)
        path = str(self.entries[vi].path)
        reason = err.reason if isinstance(err, DecodeError) else f"{type(err).__name__}: {err}"
        if path in self._skipped:
            return
        self._skipped[path] = reason
        if self._skip_log:
            if path in self._logged():
                return
            with open(self._skip_log, "a", encoding="utf-8") as fh:
                fh.write(f"{path}\t{reason.replace(chr(10), ' ').replace(chr(9), ' ')}\n")
        warnings.warn(
            f"{self.name}: skipping unreadable video {path} ({reason})",
            SkippedVideoWarning,
            stacklevel=3,
        )

    @property
    def skipped(self) -> list[str]:
        """Paths skipped as unreadable, in this process and (with a skip log) in its workers."""
        merged = dict(self._skipped)
        for k, v in self._logged().items():
            merged.setdefault(k, v)
        return list(merged)

    def skip_reasons(self) -> dict[str, str]:
        merged = dict(self._skipped)
        for k, v in self._logged().items():
            merged.setdefault(k, v)
        return merged

    def skip_summary(self) -> str:
        reasons = self.skip_reasons()
        if not reasons:
            return f"{self.name}: no video skipped ({self.num_videos} videos)"
        lines = [f"{self.name}: skipped {len(reasons)} of {self.num_videos} videos as unreadable:"]
        lines += [f"  {p}: {r}" for p, r in reasons.items()]
        return "\n".join(lines)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.index.root),
            "mode": self.mode,
            "videos": self.num_videos,
            "items": len(self),
            "classes": len(self.classes),
            "missing": list(self.missing),
            "skipped": self.skip_reasons(),
            "problems": [p.to_dict() for p in self.problems],
        }

    # -- loading
    def _clips(self, vi: int) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == vi:
            return self._cache[1]
        t = self.transform
        short = t.short_side if isinstance(t, ClipTransform) else None
        clips = read_clips(
            self.entries[vi].path, self.sampler, short_side=short, threads=self.threads
        )
        if self.views > 1:
            self._cache = (vi, clips)
        return clips

    def _item(self, vi: int, view: int):
        c, k = divmod(view, self.num_crops)
        clips = self._clips(vi)
        clip = torch.from_numpy(clips[min(c, len(clips) - 1)])
        t = self.transform
        if isinstance(t, ClipTransform):
            clip = t(clip, view=k)
        elif t is not None:
            clip = t(as_clip(clip))
        label = self.entries[vi].label
        return (clip, label, vi) if self.with_index else (clip, label)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        vi, view = divmod(i, self.views)
        n = len(self.entries)
        for step in range(n):
            v = (vi + step) % n
            if v in self._bad:
                if self.on_error == "drop":
                    return None
                continue
            try:
                return self._item(v, view)
            except DecodeError as e:
                self._record_skip(v, e)
                if self.on_error == "drop":
                    return None
        raise ValueError(
            f"{self.name}: none of the {n} videos could be read\n{self.skip_summary()}"
        )

    def __repr__(self) -> str:
        return (
            f"VideoDataset({self.name}, videos={self.num_videos}, classes={len(self.classes)}, mode={self.mode!r}, "
            f"frames={self.sampler.frames}, stride={self.sampler.stride}, views={self.views})"
        )


def _remove_log(path: str, owner: int) -> None:
    if os.getpid() == owner:
        with contextlib.suppress(OSError):  # already gone: nothing to clean up
            os.remove(path)


def make_dataset(name: str, root=None, split: str = "train", **kw) -> VideoDataset:
    """A real dataset by name (``ucf101``, ``hmdb51``, ``something-v1``, ``something-v2``,
    ``kinetics-400``/``-600``/``-700``, ``folder``) read from ``root``.

    Indexing keywords: ``fold`` (1-3, UCF101/HMDB51), ``video_dir``, ``split_dir``
    (UCF101/HMDB51), ``classes``/``annotations`` (Kinetics), ``classes`` (folder). Everything else
    goes to :class:`VideoDataset` (``frames``, ``stride``, ``mode``, ``size``, ``num_clips``,
    ``num_crops``, ``transform``, ``flip``, ``output``, ``on_error``, ``on_missing``, ...).

    ``mode`` defaults to the split: 'train' (random offset, random crop, flip), 'val' (centre
    clip, centre crop) or 'test' (``num_clips`` x ``num_crops`` views per video, items carry the
    video index). UCF101 and HMDB51 only have train and test lists: ``split='val'`` reads the
    test list with the centre-clip mode, as does ``split='test', mode='val'``. Frames are resized
    so that their short side is ``short_side`` (default ``size * 8 / 7``); pass
    ``short_side=size`` to keep data exported at ``size`` unscaled.
    """
    fmt = canonical_format(name)
    index_keys = {
        "ucf101": ("fold", "video_dir", "split_dir"),
        "hmdb51": ("fold", "video_dir", "split_dir"),
        "something-v1": ("video_dir",),
        "something-v2": ("video_dir",),
        "kinetics": ("classes", "annotations", "video_dir", "variant"),
        "folder": ("classes",),
    }[fmt]
    ikw = {k: kw.pop(k) for k in list(kw) if k in index_keys}
    index = index_dataset(name, root, split, **ikw)
    return VideoDataset(index, **kw)


# -- loading in batches -------------------------------------------------------------------------


def collate_drop_none(batch):
    """``default_collate`` after dropping ``None`` items (skipped videos); ``None`` if all were."""
    batch = [b for b in batch if b is not None]
    return default_collate(batch) if batch else None


class VideoLoader(DataLoader):
    """A DataLoader that, at the end of each epoch, warns with a summary of newly skipped videos."""

    def __iter__(self):
        ds = self.dataset
        before = len(ds.skipped) if isinstance(ds, VideoDataset) else 0
        yield from super().__iter__()
        if isinstance(ds, VideoDataset):
            now = ds.skipped
            if len(now) > before:
                warnings.warn(
                    f"epoch done; {len(now) - before} newly skipped.\n{ds.skip_summary()}",
                    SkippedVideoWarning,
                    stacklevel=2,
                )


def make_loader(
    dataset,
    batch_size: int,
    train: bool,
    workers: int | None = None,
    *,
    pin_memory: bool | None = None,
    drop_last: bool | None = None,
    prefetch_factor: int | None = 2,
    persistent_workers: bool | None = None,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """Batches from ``dataset``: shuffled and with full batches only when ``train``.

    ``workers`` defaults to one less than the CPU count (at most 8); pinned memory is used only
    when CUDA is available. Skipped videos are dropped (``on_error='drop'``) or replaced, and
    workers' skips reach ``dataset.skipped`` through a small log file.
    """
    if workers is None:
        workers = max(0, min(8, (os.cpu_count() or 1) - 1))
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    if drop_last is None:
        drop_last = train and len(dataset) >= batch_size
    if isinstance(dataset, VideoDataset) and workers > 0:
        dataset.enable_skip_log()
    kw = {}
    if workers > 0:
        kw["prefetch_factor"] = prefetch_factor
        kw["persistent_workers"] = True if persistent_workers is None else persistent_workers
    cls = VideoLoader if isinstance(dataset, VideoDataset) else DataLoader
    return cls(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        collate_fn=collate_drop_none,
        generator=generator,
        **kw,
    )
