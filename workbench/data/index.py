"""The index of a real dataset and the helpers its indexers share.

Each format has an *indexer* (``index_<format>``, one module per format: ``ucf101``, ``hmdb51``,
``something``, ``kinetics``, ``folder``) that reads the official annotation files and returns a
:class:`DatasetIndex`: the entries that have a file, the class list in the official order, the
entries whose file is missing, and the problems found (label mismatches, unknown classes,
unparseable lines). This module holds those types, the format names and expected layouts
(:data:`LAYOUTS`, quoted by every layout error) and the helpers several indexers use.
Unlabelled entries (Something-Something test lists, Kinetics test CSVs without labels) have
label -1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .decode import VIDEO_EXTENSIONS

__all__ = [
    "first_listing",
    "FORMATS",
    "FORMAT_NAMES",
    "KINETICS_VERSIONS",
    "REAL_DATASETS",
    "LAYOUTS",
    "TITLES",
    "SPLIT_ALIASES",
    "SPLIT_NAMES",
    "SkippedVideoWarning",
    "Entry",
    "Problem",
    "DatasetIndex",
    "canonical_format",
    "split_name",
    "layout_error",
    "dataset_root",
    "numbered_lines",
    "check_fold",
    "files_by_name",
    "load_json",
]

FORMATS = ("ucf101", "hmdb51", "something-v1", "something-v2", "kinetics", "folder")
#: the Kinetics releases, each a dataset name of the ``kinetics`` format
KINETICS_VERSIONS = ("kinetics-400", "kinetics-600", "kinetics-700")
#: every name a format may be given by on the command line (``kinetics`` and its releases)
FORMAT_NAMES = tuple(n for f in FORMATS for n in ((f, *KINETICS_VERSIONS) if f == "kinetics" else (f,)))
#: the real datasets by name (the Kinetics releases in place of the format)
REAL_DATASETS = tuple(n for f in FORMATS for n in (KINETICS_VERSIONS if f == "kinetics" else (f,)))

LAYOUTS = {
    "ucf101": """\
  <root>/UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi     videos (or <root>/<Class>/...)
  <root>/ucfTrainTestlist/classInd.txt                 '1 ApplyEyeMakeup' ... '101 YoYo'
  <root>/ucfTrainTestlist/trainlist0{1,2,3}.txt        'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'
  <root>/ucfTrainTestlist/testlist0{1,2,3}.txt         'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi'""",
    "hmdb51": """\
  <root>/hmdb51_org/<class>/<video>.avi                videos (or <root>/videos/<class>/ or <root>/<class>/)
  <root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt
                                                       '<video>.avi <tag>', tag 1 = train, 2 = test, 0 = unused""",
    "something-v1": """\
  <root>/20bn-something-something-v1/<id>/00001.jpg    JPEG frames, numbered from 00001
  <root>/something-something-v1-labels.csv             one class per line (label = 0-based line number)
  <root>/something-something-v1-train.csv              '<id>;<class>'  (also -validation.csv)
  <root>/something-something-v1-test.csv              '<id>'""",
    "something-v2": """\
  <root>/20bn-something-something-v2/<id>.webm         videos
  <root>/something-something-v2-labels.json            {"<template without brackets>": "<index>", ...}
  <root>/something-something-v2-train.json             [{"id": "78687", "template": "Holding [something] ...", ...}]
  <root>/something-something-v2-{validation,test}.json (or <root>/labels/{labels,train,validation,test}.json
                                                       with labels/test-answers.csv '<id>;<class>')""",
    "kinetics": """\
  <root>/annotations/{train,val,test}.csv              'label,youtube_id,time_start,time_end,split[,is_cc]'
                                                       (or <root>/{train,validate,test}.csv, kinetics_<split>.csv)
  <root>/{train,val,test}/<youtube_id>_<start:06d>_<end:06d>.mp4
                                                       flat or in class sub-folders (also videos_<split>/)
  <root>/replacement/replacement_for_corrupted_k400/   optional replacement clips""",
    "folder": """\
  <root>/<class>/<video file or folder of numbered frames>
  or <root>/{train,val,test}/<class>/...               (class = sub-folder name, sorted)""",
}

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "validate": "val",
    "test": "test",
    "testing": "test",
}

#: how the files and folders of each split may be named (Kinetics CSVs and video folders, the
#: split folders of a folder dataset)
SPLIT_NAMES = {"train": ("train",), "val": ("val", "validate", "validation"), "test": ("test",)}


class SkippedVideoWarning(UserWarning):
    """A video could not be read and was skipped."""


@dataclass(frozen=True)
class Entry:
    path: Path  # video file or frame folder
    label: int  # class index, -1 when unlabelled
    key: str  # the entry as the annotation names it
    source: str = ""  # the annotation file that lists it


@dataclass(frozen=True)
class Problem:
    kind: str  # layout | missing-file | unreadable | label-mismatch | unknown-class | bad-line | duplicate
    path: str
    detail: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}

    def __str__(self) -> str:
        return f"[{self.kind}] {self.path}: {self.detail}"


@dataclass
class DatasetIndex:
    format: str
    root: Path
    split: str
    classes: list[str]
    entries: list[Entry] = field(default_factory=list)
    missing: list[Entry] = field(default_factory=list)  # listed, but no file
    problems: list[Problem] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)  # annotation files read
    video_dir: Path | None = None
    fold: int | None = None

    @property
    def name(self) -> str:
        return f"{self.format}/{self.split}" + (f"{self.fold}" if self.fold else "")


def canonical_format(name: str) -> str:
    """'ucf101', 'hmdb51', 'something-v1', 'something-v2', 'kinetics' or 'folder'."""
    n = name.lower().replace("_", "-")
    aliases = {
        "ucf-101": "ucf101",
        "hmdb-51": "hmdb51",
        "hmdb": "hmdb51",
        "ssv1": "something-v1",
        "sthv1": "something-v1",
        "something-something-v1": "something-v1",
        "ssv2": "something-v2",
        "sthv2": "something-v2",
        "something-something-v2": "something-v2",
        "kinetics-400": "kinetics",
        "kinetics-600": "kinetics",
        "kinetics-700": "kinetics",
        "kinetics-700-2020": "kinetics",
        "k400": "kinetics",
        "k600": "kinetics",
        "k700": "kinetics",
    }
    n = aliases.get(n, n)
    if n not in FORMATS:
        raise ValueError(
            f"unknown dataset format {name!r}; expected one of: {', '.join(FORMATS)} (kinetics also as kinetics-400/600/700)"
        )
    return n


def split_name(split: str) -> str:
    """'train', 'val' or 'test' for any of their spellings (:data:`SPLIT_ALIASES`)."""
    s = SPLIT_ALIASES.get(str(split).lower())
    if s is None:
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    return s


def layout_error(fmt: str, root, what: str) -> ValueError:
    """The error for a root that does not hold ``fmt`` as distributed; quotes its :data:`LAYOUTS`."""
    return ValueError(f"{TITLES[fmt]} root {root} {what}; expected layout:\n{LAYOUTS[fmt]}")


TITLES = {
    "ucf101": "UCF101",
    "hmdb51": "HMDB51",
    "something-v1": "Something-Something V1",
    "something-v2": "Something-Something V2",
    "kinetics": "Kinetics",
    "folder": "Folder dataset",
}


def dataset_root(fmt: str, root) -> Path:
    """``root`` as a path to an existing folder, or a layout error."""
    if root is None:
        raise layout_error(fmt, None, "was not given (pass root=...)")
    p = Path(root).expanduser()
    if not p.exists():
        raise layout_error(fmt, p, "does not exist")
    if not p.is_dir():
        raise layout_error(fmt, p, "is not a directory")
    return p


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines (number, text) with CR/LF and surrounding spaces stripped."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip().lstrip("\ufeff")
        if line:
            out.append((n, line))
    return out


def check_fold(fold: int) -> int:
    """``fold`` if it is one of the three official splits of UCF101 and HMDB51."""
    if fold not in (1, 2, 3):
        raise ValueError(f"fold must be 1, 2 or 3 (the three official splits), got {fold!r}")
    return int(fold)


def files_by_name(folder: Path, exts=VIDEO_EXTENSIONS) -> dict[str, list[Path]]:
    """Every video under ``folder`` by file name (dotfiles ignored)."""
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(exts):
                out.setdefault(f, []).append(Path(dirpath) / f)
    return out


def load_json(path: Path, fmt: str, root: Path):
    """The JSON in ``path``, or a layout error naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise layout_error(fmt, root, f"has an unreadable {path.name} ({e})") from e


def first_listing(key, seen: set, problems: list, where: str, what: str) -> bool:
    """Whether ``key`` is listed for the first time in an annotation file; a second listing is
    recorded as a ``duplicate`` problem at ``where`` (``what`` names the entry) and skipped."""
    if key in seen:
        problems.append(Problem("duplicate", where, f"{what} is listed twice"))
        return False
    seen.add(key)
    return True
