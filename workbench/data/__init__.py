"""Video data: the embedded synthetic benchmark and the real dataset formats.

``build_dataset(name, ...)`` is the one door; ``list_datasets()`` names what it opens.
Clips come out as uint8 ``T H W 3`` frames before transforms and as float ``C T H W`` after.
"""

from __future__ import annotations

SYNTHETIC_DATASETS = ("synthetic-appearance", "synthetic-motion", "synthetic-mixed")
REAL_DATASETS = (
    "ucf101",
    "hmdb51",
    "something-v1",
    "something-v2",
    "kinetics-400",
    "kinetics-600",
    "kinetics-700",
    "folder",
)

__all__ = ["SYNTHETIC_DATASETS", "REAL_DATASETS", "list_datasets", "build_dataset"]


def list_datasets() -> list[str]:
    return [*SYNTHETIC_DATASETS, *REAL_DATASETS]


def build_dataset(name: str, *, root=None, split: str = "train", **kw):
    """A dataset by name: synthetic ones need no root; real ones read ``root``."""
    if name in SYNTHETIC_DATASETS:
        from .synthetic import make_synthetic

        return make_synthetic(name, split=split, **kw)
    if name in REAL_DATASETS:
        from .formats import make_dataset

        return make_dataset(name, root=root, split=split, **kw)
    raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(list_datasets())}")
