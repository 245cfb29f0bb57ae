"""The real dataset formats, re-exported from their new modules for one release: import from
``workbench.data.index`` (``Entry``, ``Problem``, ``DatasetIndex``, ``FORMATS``, ``LAYOUTS``,
``canonical_format``), ``ucf101``, ``hmdb51``, ``something``, ``kinetics``, ``folder`` (one
indexer each) and ``dataset`` (``index_dataset``, ``VideoDataset``, ``make_dataset``, the
loaders) instead.
"""

from __future__ import annotations

from .dataset import (
    VideoDataset,
    VideoLoader,  # noqa: F401  (public, outside __all__)
    collate_drop_none,
    index_dataset,
    make_dataset,
    make_loader,
)
from .folder import index_folder
from .hmdb51 import index_hmdb51
from .index import (
    FORMATS,
    LAYOUTS,
    DatasetIndex,
    Entry,
    Problem,
    SkippedVideoWarning,
    canonical_format,
)
from .kinetics import index_kinetics, kinetics_csv  # noqa: F401  (kinetics_csv: public, outside __all__)
from .something import index_something_v1, index_something_v2
from .ucf101 import index_ucf101

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "Entry",
    "Problem",
    "DatasetIndex",
    "SkippedVideoWarning",
    "VideoDataset",
    "index_dataset",
    "index_ucf101",
    "index_hmdb51",
    "index_something_v1",
    "index_something_v2",
    "index_kinetics",
    "index_folder",
    "make_dataset",
    "make_loader",
    "collate_drop_none",
    "average_scores_per_video",
    "canonical_format",
]

from workbench.engine.evaluate import average_scores_per_video  # noqa: E402  (moved; re-exported)
