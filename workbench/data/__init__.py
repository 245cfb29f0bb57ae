"""Video data: the embedded synthetic benchmark and the real dataset formats.

``build_dataset(name, ...)`` is the one door; ``list_datasets()`` names what it opens.
Clips come out as uint8 ``T H W 3`` frames before transforms and as float ``C T H W`` after.
"""

from __future__ import annotations

SYNTHETIC_DATASETS = ("synthetic-appearance", "synthetic-motion", "synthetic-mixed")
from .index import REAL_DATASETS  # noqa: E402

__all__ = ["SYNTHETIC_DATASETS", "REAL_DATASETS", "list_datasets", "build_dataset", "check_data_args"]

#: how the command line spells a dataset argument (the rest are ``--data-arg KEY=VALUE``)
FLAG_OF = {"train_per_class": "--clips-per-class", "seed": "--data-seed", "frames": "--frames", "size": "--size"}
#: keywords the data pipeline itself passes to a dataset, not arguments a user gives
_INTERNAL = {"cache", "output", "modalities", "preset", "mode", "num_clips", "num_crops", "transform"}


def _flag(key: str) -> str:
    return FLAG_OF.get(key, f"--data-arg {key}")


def list_datasets() -> list[str]:
    return [*SYNTHETIC_DATASETS, *REAL_DATASETS]


def build_dataset(name: str, *, root=None, split: str = "train", **kw):
    """A dataset by name: synthetic ones need no root; real ones read ``root``."""
    if name in SYNTHETIC_DATASETS:
        from .synthetic import make_synthetic

        return make_synthetic(name, split=split, **kw)
    if name in REAL_DATASETS:
        from .dataset import make_dataset

        return make_dataset(name, root=root, split=split, **kw)
    raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(list_datasets())}")


def check_data_args(name: str, root=None, data_kw: dict | None = None,
                    splits: tuple[str, ...] = ("train", "val")) -> None:
    """Check a dataset name, root and arguments before any work starts; raise ``ValueError`` in
    one line naming the flag as the command line spells it and what is expected. ``splits``: the
    splits the work will read (each must hold clips)."""
    import inspect
    from pathlib import Path

    data_kw = dict(data_kw or {})
    if name not in SYNTHETIC_DATASETS and name not in REAL_DATASETS:
        raise ValueError(f"unknown --dataset {name!r}; expected one of: {', '.join(list_datasets())}")
    if name in SYNTHETIC_DATASETS:
        if root is not None:
            raise ValueError(f"--root applies to real datasets; {name} is generated, not read (drop --root)")
        from .synthetic import SyntheticConfig, synthetic_config

        fields = set(SyntheticConfig.__dataclass_fields__) - {"kind"}
        for key in data_kw:
            if key not in fields and key not in _INTERNAL:
                raise ValueError(f"{_flag(key)}: {name} has no argument {key!r}; it takes: "
                                 + ", ".join(sorted(fields)))
        try:
            cfg = synthetic_config(name, **{k: v for k, v in data_kw.items() if k in fields})
        except (TypeError, ValueError) as e:
            bad = next((k for k in data_kw if k in str(e)), None)
            raise ValueError(f"{_flag(bad)}: {e}" if bad else str(e)) from None
        for split in splits:
            if getattr(cfg, f"{split}_per_class") < 1:
                raise ValueError(f"{_flag(f'{split}_per_class')}=0 leaves the {split} split empty; "
                                 f"this command reads it: give at least 1 clip per class")
        return
    if root is None:
        raise ValueError(f"--dataset {name} is read from disk: give --root, the dataset's folder as distributed")
    if not Path(root).is_dir():
        raise ValueError(f"--root {root} is not a folder (expected {name} as distributed)")
    for key in ("train_per_class", "seed"):
        if key in data_kw:
            raise ValueError(f"{_flag(key)} applies to the synthetic datasets only, not to {name}")
    from .dataset import VideoDataset
    from .index import canonical_format

    index_keys = {"ucf101": ("fold", "video_dir", "split_dir"), "hmdb51": ("fold", "video_dir", "split_dir"),
                  "something-v1": ("video_dir",), "something-v2": ("video_dir",),
                  "kinetics": ("classes", "annotations", "video_dir", "variant"),
                  "folder": ("classes",)}[canonical_format(name)]
    allowed = set(index_keys) | (set(inspect.signature(VideoDataset.__init__).parameters) - {"self", "index"})
    allowed -= {"transform"}
    allowed |= {"flow_bound"}
    for key in data_kw:
        if key not in allowed:
            raise ValueError(f"{_flag(key)}: {name} has no argument {key!r}; it takes: {', '.join(sorted(allowed))}")
