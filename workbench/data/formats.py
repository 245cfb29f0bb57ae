"""Real action-recognition datasets as distributed: UCF101, HMDB51, Something-Something V1/V2,
Kinetics-400/600/700 and a generic folder of class sub-folders.

Why one file today: the six indexers share the index types (``Entry``, ``DatasetIndex``,
``Problem``), the layout errors and the skip bookkeeping of ``VideoDataset``; splitting them into
one module per format (as torchvision.datasets does) with those shared parts apart is planned in
the package layout work, with this module kept as a re-export.

Each format has an *indexer* (``index_<format>``) that reads the official annotation files and
returns a :class:`DatasetIndex`: the entries that have a file, the class list in the official
order, the entries whose file is missing, and the problems found (label mismatches, unknown
classes, unparseable lines). :class:`VideoDataset` turns an index into a torch dataset that
samples clips (see ``sampling``), decodes them (``decode``) and transforms them (``transforms``).

Items are ``(clip, label)``: clip is float ``C T H W`` after the default transform, uint8
``T H W 3`` with ``transform=None``. In test mode (or with ``with_index=True``) items are
``(clip, label, video_index)`` and each video gives ``num_clips * num_crops`` views, in order, so
scores can be averaged per video with :func:`average_scores_per_video`. Unlabelled entries
(Something-Something test lists, Kinetics test CSVs without labels) have label -1.

A file that cannot be decoded is skipped: a warning names it once, the dataset records it
(``dataset.skipped``, ``dataset.skip_summary()``) and returns the next readable video instead
(``on_error='next'``) or ``None`` (``on_error='drop'``, dropped by :func:`collate_drop_none`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .decode import VIDEO_EXTENSIONS, DecodeError, is_frame_folder, read_clips
from .sampling import ClipSampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, as_clip

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

FORMATS = ("ucf101", "hmdb51", "something-v1", "something-v2", "kinetics", "folder")

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

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "validate": "val",
    "test": "test",
    "testing": "test",
}


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


def _split(split: str) -> str:
    s = _SPLIT_ALIASES.get(str(split).lower())
    if s is None:
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    return s


def _layout_error(fmt: str, root, what: str) -> ValueError:
    return ValueError(f"{_TITLES[fmt]} root {root} {what}; expected layout:\n{LAYOUTS[fmt]}")


_TITLES = {
    "ucf101": "UCF101",
    "hmdb51": "HMDB51",
    "something-v1": "Something-Something V1",
    "something-v2": "Something-Something V2",
    "kinetics": "Kinetics",
    "folder": "Folder dataset",
}


def _root(fmt: str, root) -> Path:
    if root is None:
        raise _layout_error(fmt, None, "was not given (pass root=...)")
    p = Path(root).expanduser()
    if not p.exists():
        raise _layout_error(fmt, p, "does not exist")
    if not p.is_dir():
        raise _layout_error(fmt, p, "is not a directory")
    return p


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines (number, text) with CR/LF and surrounding spaces stripped."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip().lstrip("\ufeff")
        if line:
            out.append((n, line))
    return out


def _fold(fold: int) -> int:
    if fold not in (1, 2, 3):
        raise ValueError(f"fold must be 1, 2 or 3 (the three official splits), got {fold!r}")
    return int(fold)


# -- UCF101 -------------------------------------------------------------------------------------

_UCF_STEM = re.compile(r"^v_(.+)_g\d+_c\d+$", re.IGNORECASE)


def index_ucf101(
    root, split: str = "train", fold: int = 1, *, video_dir=None, split_dir=None
) -> DatasetIndex:
    """UCF101 from ``classInd.txt`` and ``trainlist0N.txt`` / ``testlist0N.txt``.

    Train-list labels are 1-based and checked against the class of the folder the path names; the
    official test lists carry no labels, so the class comes from the folder part of the path (never
    from the file stem: ``HandstandPushups/v_HandStandPushups_...``). ``val`` reads the test list.
    """
    fmt = "ucf101"
    root = _root(fmt, root)
    split, fold = _split(split), _fold(fold)
    sdir = Path(split_dir) if split_dir else root / "ucfTrainTestlist"
    if (
        not (sdir / "classInd.txt").is_file()
        and split_dir is None
        and (root / "classInd.txt").is_file()
    ):
        sdir = root
    class_file = sdir / "classInd.txt"
    if not class_file.is_file():
        raise _layout_error(
            fmt,
            root,
            f"has no {class_file.relative_to(root) if class_file.is_relative_to(root) else class_file}",
        )
    if video_dir is not None:
        vdir = Path(video_dir)
    elif (root / "UCF-101").is_dir():
        vdir = root / "UCF-101"
    else:
        vdir = root
    if not vdir.is_dir():
        raise _layout_error(fmt, root, f"has no video folder {vdir}")

    problems: list[Problem] = []
    numbered: dict[int, str] = {}
    for n, line in _lines(class_file):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            problems.append(
                Problem(
                    "bad-line", f"{class_file}:{n}", f"expected '<index> <Class>', got {line!r}"
                )
            )
            continue
        i, name = int(parts[0]), parts[1].strip()
        if i in numbered:
            problems.append(
                Problem("duplicate", f"{class_file}:{n}", f"class index {i} appears twice")
            )
        numbered[i] = name
    if not numbered:
        raise _layout_error(fmt, root, f"has an empty {class_file.name}")
    # classInd's own numbers are the truth; a subset of the classes (a common quick experiment)
    # keeps the original numbers, so they need not be contiguous. Labels are their rank.
    numbers = sorted(numbered)
    classes = [numbered[i] for i in numbers]
    by_name = {c: k for k, c in enumerate(classes)}
    by_lower = {c.lower(): k for k, c in enumerate(classes)}

    list_name = f"{'trainlist' if split == 'train' else 'testlist'}0{fold}.txt"
    list_file = sdir / list_name
    if not list_file.is_file():
        raise _layout_error(
            fmt,
            root,
            f"has no {list_file.relative_to(root) if list_file.is_relative_to(root) else list_file}",
        )
    idx = DatasetIndex(
        fmt,
        root,
        split,
        classes,
        problems=problems,
        sources=[class_file, list_file],
        video_dir=vdir,
        fold=fold,
    )
    seen: set[str] = set()
    for n, line in _lines(list_file):
        rel, given = line, None
        head, _, tail = line.rpartition(" ")
        if head and tail.strip().lstrip("-").isdigit():
            rel, given = head.strip(), int(tail)
        rel = rel.replace("\\", "/")
        where = f"{list_file}:{n}"
        folder = rel.split("/")[0] if "/" in rel else None
        if folder is not None:
            label = by_name.get(folder, by_lower.get(folder.lower()))
        else:
            m = _UCF_STEM.match(Path(rel).stem)
            label = by_lower.get(m.group(1).lower()) if m else None
        if label is None:
            problems.append(
                Problem(
                    "unknown-class",
                    where,
                    f"{rel!r}: class {folder or Path(rel).stem!r} is not in classInd.txt",
                )
            )
            continue
        if given is not None and given != numbers[label]:
            problems.append(
                Problem(
                    "label-mismatch",
                    where,
                    f"{rel!r} is labelled {given} but its folder {classes[label]!r} is class {numbers[label]} "
                    "in classInd.txt",
                )
            )
        if rel in seen:
            problems.append(Problem("duplicate", where, f"{rel!r} is listed twice"))
            continue
        seen.add(rel)
        entry = Entry(vdir / rel, label, rel, list_file.name)
        (idx.entries if entry.path.is_file() else idx.missing).append(entry)
    return idx


# -- HMDB51 -------------------------------------------------------------------------------------

_HMDB_SPLIT = re.compile(r"^(.+)_test_split(\d)\.txt$")


def _index_files(folder: Path, exts=VIDEO_EXTENSIONS) -> dict[str, list[Path]]:
    """Every video under ``folder`` by file name (dotfiles ignored)."""
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(exts):
                out.setdefault(f, []).append(Path(dirpath) / f)
    return out


def index_hmdb51(
    root, split: str = "train", fold: int = 1, *, video_dir=None, split_dir=None
) -> DatasetIndex:
    """HMDB51 from the 153 ``<class>_test_split<1|2|3>.txt`` files (tag 1 train, 2 test, 0 unused).

    There is no class-index file: the classes are the split-file prefixes, sorted as folder names
    sort (``climb`` before ``climb_stairs``). Videos are looked up as ``<class>/<name>``, then by
    file name anywhere under the video folder.
    """
    fmt = "hmdb51"
    root = _root(fmt, root)
    split, fold = _split(split), _fold(fold)
    sdir = Path(split_dir) if split_dir else root / "testTrainMulti_7030_splits"
    if not sdir.is_dir():
        raise _layout_error(fmt, root, f"has no split folder {sdir.name}/")
    files: dict[str, Path] = {}
    for p in sorted(sdir.iterdir()):
        m = _HMDB_SPLIT.match(p.name)
        if m and int(m.group(2)) == fold:
            files[m.group(1)] = p
    if not files:
        raise _layout_error(
            fmt, root, f"has no '<class>_test_split{fold}.txt' files in {sdir.name}/"
        )
    if video_dir is not None:
        vdir = Path(video_dir)
    else:
        vdir = next(
            (root / d for d in ("hmdb51_org", "videos", "hmdb51") if (root / d).is_dir()), root
        )
    if not vdir.is_dir():
        raise _layout_error(fmt, root, f"has no video folder {vdir}")
    classes = sorted(files)
    idx = DatasetIndex(
        fmt, root, split, classes, sources=list(files.values()), video_dir=vdir, fold=fold
    )
    want = "1" if split == "train" else "2"
    owner: dict[str, str] = {}
    by_name: dict[str, list[Path]] | None = None
    for label, cls in enumerate(classes):
        f = files[cls]
        for n, line in _lines(f):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                idx.problems.append(
                    Problem("bad-line", f"{f}:{n}", f"expected '<video>.avi <0|1|2>', got {line!r}")
                )
                continue
            name, tag = parts
            if tag != "0":
                if name in owner and owner[name] != cls:
                    idx.problems.append(
                        Problem(
                            "duplicate",
                            f"{f}:{n}",
                            f"{name!r} is also listed for class {owner[name]!r}",
                        )
                    )
                    continue
                owner[name] = cls
            if tag != want:
                continue
            path = vdir / cls / name
            if not path.is_file():
                if by_name is None:
                    by_name = _index_files(vdir)
                found = by_name.get(name, [])
                if found:
                    path = found[0]
                    if path.parent.name != cls and path.parent != vdir:
                        idx.problems.append(
                            Problem(
                                "label-mismatch",
                                str(path),
                                f"listed in {f.name} (class {cls!r}) but stored under {path.parent.name!r}",
                            )
                        )
            entry = Entry(path, label, name, f.name)
            (idx.entries if path.is_file() else idx.missing).append(entry)
    return idx


# -- Something-Something V1 ---------------------------------------------------------------------


def index_something_v1(root, split: str = "train", *, video_dir=None) -> DatasetIndex:
    """Something-Something V1: JPEG frame folders and ``;``-separated CSVs (no header).

    Label = 0-based line number in ``something-something-v1-labels.csv`` (not alphabetical).
    """
    fmt = "something-v1"
    root = _root(fmt, root)
    split = _split(split)
    label_file = root / "something-something-v1-labels.csv"
    if not label_file.is_file():
        raise _layout_error(fmt, root, f"has no {label_file.name}")
    classes = [line for _, line in _lines(label_file)]
    if not classes:
        raise _layout_error(fmt, root, f"has an empty {label_file.name}")
    name = {"train": "train", "val": "validation", "test": "test"}[split]
    list_file = root / f"something-something-v1-{name}.csv"
    if not list_file.is_file():
        raise _layout_error(fmt, root, f"has no {list_file.name}")
    if video_dir is not None:
        vdir = Path(video_dir)
    elif (root / "20bn-something-something-v1").is_dir():
        vdir = root / "20bn-something-something-v1"
    else:
        raise _layout_error(fmt, root, "has no frame folder 20bn-something-something-v1/")
    by_name = {c: k for k, c in enumerate(classes)}
    idx = DatasetIndex(fmt, root, split, classes, sources=[label_file, list_file], video_dir=vdir)
    seen = set()
    for n, line in _lines(list_file):
        vid, sep, cls = line.partition(";")
        vid, cls = vid.strip(), cls.strip()
        where = f"{list_file}:{n}"
        if not vid:
            idx.problems.append(
                Problem("bad-line", where, f"expected '<id>;<class>', got {line!r}")
            )
            continue
        label = -1
        if cls:
            if cls not in by_name:
                idx.problems.append(
                    Problem(
                        "unknown-class",
                        where,
                        f"id {vid}: class {cls!r} is not in {label_file.name}",
                    )
                )
                continue
            label = by_name[cls]
        elif split != "test":
            idx.problems.append(
                Problem("bad-line", where, f"id {vid} has no class (expected '<id>;<class>')")
            )
            continue
        if vid in seen:
            idx.problems.append(Problem("duplicate", where, f"id {vid} is listed twice"))
            continue
        seen.add(vid)
        entry = Entry(vdir / vid, label, vid, list_file.name)
        (idx.entries if entry.path.is_dir() else idx.missing).append(entry)
    return idx


# -- Something-Something V2 ---------------------------------------------------------------------


def _template_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def _load_json(path: Path, fmt: str, root: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise _layout_error(fmt, root, f"has an unreadable {path.name} ({e})") from e


def index_something_v2(root, split: str = "train", *, video_dir=None) -> DatasetIndex:
    """Something-Something V2: WebM videos and JSON annotations (20BN or ``labels/`` names).

    Class = ``labels[template without brackets]`` (the ``label`` field is a caption, not the
    class). The test list has no labels unless ``labels/test-answers.csv`` is there.
    """
    fmt = "something-v2"
    root = _root(fmt, root)
    split = _split(split)
    name = {"train": "train", "val": "validation", "test": "test"}[split]
    if (root / "something-something-v2-labels.json").is_file():
        label_file, list_file = (
            root / "something-something-v2-labels.json",
            root / f"something-something-v2-{name}.json",
        )
        answers = None
    elif (root / "labels" / "labels.json").is_file():
        label_file, list_file = root / "labels" / "labels.json", root / "labels" / f"{name}.json"
        answers = root / "labels" / "test-answers.csv"
    else:
        raise _layout_error(
            fmt, root, "has no something-something-v2-labels.json (nor labels/labels.json)"
        )
    if not list_file.is_file():
        raise _layout_error(fmt, root, f"has no {list_file.relative_to(root)}")
    if video_dir is not None:
        vdir = Path(video_dir)
    elif (root / "20bn-something-something-v2").is_dir():
        vdir = root / "20bn-something-something-v2"
    else:
        raise _layout_error(fmt, root, "has no video folder 20bn-something-something-v2/")
    raw = _load_json(label_file, fmt, root)
    if not isinstance(raw, dict) or not raw:
        raise _layout_error(
            fmt, root, f"has a {label_file.name} that is not a non-empty {{template: index}} object"
        )
    problems: list[Problem] = []
    try:
        numbered = {int(v): k for k, v in raw.items()}
    except (TypeError, ValueError) as e:
        raise _layout_error(fmt, root, f"has non-integer indices in {label_file.name} ({e})") from e
    if sorted(numbered) != list(range(len(raw))):
        problems.append(
            Problem(
                "bad-line",
                str(label_file),
                f"class indices are not 0..{len(raw) - 1} (0-based, contiguous)",
            )
        )
    classes = [numbered[i] for i in sorted(numbered)]
    by_name = {c: k for k, c in enumerate(classes)}
    rows = _load_json(list_file, fmt, root)
    if not isinstance(rows, list):
        raise _layout_error(fmt, root, f"has a {list_file.name} that is not a JSON list")
    test_labels: dict[str, str] = {}
    sources = [label_file, list_file]
    if split == "test" and answers is not None and answers.is_file():
        sources.append(answers)
        for _, line in _lines(answers):
            vid, _, cls = line.partition(";")
            test_labels[vid.strip()] = cls.strip()
    idx = DatasetIndex(
        fmt, root, split, classes, problems=problems, sources=sources, video_dir=vdir
    )
    seen = set()
    for n, row in enumerate(rows):
        where = f"{list_file}[{n}]"
        if not isinstance(row, dict) or "id" not in row:
            problems.append(
                Problem(
                    "bad-line", where, f"expected an object with an 'id', got {str(row)[:80]!r}"
                )
            )
            continue
        vid = str(row["id"]).strip()
        label = -1
        if "template" in row:
            cls = _template_class(str(row["template"]))
        else:
            cls = test_labels.get(vid)
            if cls is None and split != "test":
                problems.append(Problem("bad-line", where, f"id {vid} has no 'template'"))
                continue
        if cls is not None:
            if cls not in by_name:
                problems.append(
                    Problem(
                        "unknown-class",
                        where,
                        f"id {vid}: template class {cls!r} is not in {label_file.name}",
                    )
                )
                continue
            label = by_name[cls]
        if vid in seen:
            problems.append(Problem("duplicate", where, f"id {vid} is listed twice"))
            continue
        seen.add(vid)
        path = vdir / f"{vid}.webm"
        if not path.is_file():
            for ext in (".mp4", ".mkv"):
                if (vdir / f"{vid}{ext}").is_file():
                    path = vdir / f"{vid}{ext}"
                    break
        (idx.entries if path.is_file() else idx.missing).append(
            Entry(path, label, vid, list_file.name)
        )
    return idx


# -- Kinetics -----------------------------------------------------------------------------------

_K_SPLIT_NAMES = {"train": ("train",), "val": ("val", "validate", "validation"), "test": ("test",)}


def kinetics_csv(root: Path, split: str, annotations=None) -> Path | None:
    names = _K_SPLIT_NAMES[split]
    if annotations is not None:
        a = Path(annotations)
        if a.is_file():
            return a
        dirs = [a]
    else:
        dirs = [root / "annotations", root]
    for d in dirs:
        for n in names:
            for pattern in (
                f"{n}.csv",
                f"kinetics_{n}.csv",
                f"kinetics-400_{n}.csv",
                f"kinetics-600_{n}.csv",
                f"kinetics-700_{n}.csv",
                f"kinetics-700-2020_{n}.csv",
                f"kinetics400_{n}.csv",
                f"kinetics600_{n}.csv",
                f"kinetics700_{n}.csv",
                f"kinetics700_2020_{n}.csv",
            ):
                if (d / pattern).is_file():
                    return d / pattern
    return None


def _read_kinetics_csv(path: Path, problems: list[Problem]) -> list[dict]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    if "youtube_id" in head:
        cols, body, first = head, rows[1:], 2
    else:  # no header: label,youtube_id,time_start,time_end,split or youtube_id,time_start,time_end,split
        cols = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"][: len(rows[0])]
        if len(rows[0]) == 4:
            cols = ["youtube_id", "time_start", "time_end", "split"]
        body, first = rows, 1
    out = []
    for n, r in enumerate(body, first):
        d = {c: (r[i].strip() if i < len(r) else "") for i, c in enumerate(cols)}
        try:
            d["time_start"] = int(float(d["time_start"]))
            d["time_end"] = int(float(d["time_end"]))
        except (KeyError, ValueError):
            problems.append(
                Problem(
                    "bad-line",
                    f"{path}:{n}",
                    f"expected 'label,youtube_id,time_start,time_end,split', got {','.join(r)!r}",
                )
            )
            continue
        if not d.get("youtube_id"):
            problems.append(Problem("bad-line", f"{path}:{n}", "empty youtube_id"))
            continue
        d["line"] = n
        out.append(d)
    return out


def _kinetics_classes(classes) -> list[str]:
    if isinstance(classes, (str, os.PathLike)):
        return [line for _, line in _lines(Path(classes))]
    return list(classes)


def index_kinetics(
    root,
    split: str = "train",
    *,
    variant: str = "kinetics-400",
    classes=None,
    annotations=None,
    video_dir=None,
) -> DatasetIndex:
    """Kinetics-400/600/700 from the CSV annotations and ``<id>_<start:06d>_<end:06d>.mp4`` clips.

    Clips are found by name anywhere under the split's video folder (flat as CVDF ships it, or in
    class folders with any label mangling); CSV rows without a file are reported as missing, as
    every copy misses some. Classes are the sorted raw labels of the train CSV unless ``classes``
    (a list, or a file with one label per line) is given. Test rows without a label get -1.
    """
    fmt = "kinetics"
    root = _root(fmt, root)
    split = _split(split)
    problems: list[Problem] = []
    csv_path = kinetics_csv(root, split, annotations)
    if csv_path is None:
        raise _layout_error(
            fmt,
            root,
            f"has no {split} CSV (looked for annotations/{split}.csv, {split}.csv, kinetics_{split}.csv)",
        )
    rows = _read_kinetics_csv(csv_path, problems)
    sources = [csv_path]
    if classes is not None:
        class_list = _kinetics_classes(classes)
    else:
        train_csv = csv_path if split == "train" else kinetics_csv(root, "train", annotations)
        if train_csv is not None and train_csv != csv_path:
            class_list = sorted(
                {r["label"] for r in _read_kinetics_csv(train_csv, []) if r.get("label")}
            )
            sources.append(train_csv)
        else:
            class_list = sorted({r["label"] for r in rows if r.get("label")})
    if not class_list:
        raise _layout_error(
            fmt,
            root,
            f"gives no class labels ({csv_path.name} and the train CSV have no 'label' column)",
        )
    if video_dir is not None:
        vdir = Path(video_dir)
    else:
        cands = [root / n for n in _K_SPLIT_NAMES[split]] + [
            root / f"videos_{n}" for n in _K_SPLIT_NAMES[split]
        ]
        vdir = next((c for c in cands if c.is_dir()), None)
        if vdir is None:
            raise _layout_error(
                fmt,
                root,
                f"has no video folder for split {split!r} (looked for {', '.join(c.name + '/' for c in cands)})",
            )
    files = {Path(n).stem: ps[0] for n, ps in _index_files(vdir).items()}
    repl = root / "replacement" / "replacement_for_corrupted_k400"
    if repl.is_dir():
        files.update({Path(n).stem: ps[0] for n, ps in _index_files(repl).items()})
    by_name = {c: k for k, c in enumerate(class_list)}
    idx = DatasetIndex(
        variant if variant.startswith("kinetics") else fmt,
        root,
        split,
        class_list,
        problems=problems,
        sources=sources,
        video_dir=vdir,
    )
    seen = set()
    for r in rows:
        key = f"{r['youtube_id']}_{r['time_start']:06d}_{r['time_end']:06d}"
        where = f"{csv_path}:{r['line']}"
        lab = r.get("label", "")
        label = -1
        if lab:
            if lab not in by_name:
                problems.append(
                    Problem("unknown-class", where, f"{key}: label {lab!r} is not a training class")
                )
                continue
            label = by_name[lab]
        if key in seen:
            problems.append(Problem("duplicate", where, f"{key} is listed twice"))
            continue
        seen.add(key)
        path = files.get(key) or files.get(r["youtube_id"])
        if path is None:
            idx.missing.append(Entry(vdir / f"{key}.mp4", label, key, csv_path.name))
        else:
            idx.entries.append(Entry(path, label, key, csv_path.name))
    return idx


# -- generic folder -----------------------------------------------------------------------------


def index_folder(root, split: str = "train", *, classes=None) -> DatasetIndex:
    """``<root>/<class>/<video or frame folder>``, or the same under ``<root>/<split>/``.

    Classes are the sorted sub-folder names of all split folders (so indices agree across
    splits) unless ``classes`` gives the order. Dotfiles are ignored.
    """
    fmt = "folder"
    root = _root(fmt, root)
    split = _split(split)
    split_dirs = {
        s: root / n
        for s in ("train", "val", "test")
        for n in _K_SPLIT_NAMES[s]
        if (root / n).is_dir()
    }
    if split_dirs:
        if split not in split_dirs:
            raise _layout_error(
                fmt,
                root,
                f"has split folders ({', '.join(sorted(p.name for p in split_dirs.values()))}) but none for {split!r}",
            )
        base = split_dirs[split]
        class_roots = list(split_dirs.values())
    else:
        base, class_roots = root, [root]
    found = sorted(
        {
            d.name
            for r in class_roots
            for d in r.iterdir()
            if d.is_dir() and not d.name.startswith(".")
        }
    )
    class_list = list(classes) if classes is not None else found
    if not class_list:
        raise _layout_error(fmt, root, "has no class sub-folders")
    idx = DatasetIndex(fmt, root, split, class_list, video_dir=base)
    by_name = {c: k for k, c in enumerate(class_list)}
    for cdir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if cdir.name not in by_name:
            idx.problems.append(
                Problem(
                    "unknown-class",
                    str(cdir),
                    f"folder {cdir.name!r} is not among the given classes",
                )
            )
            continue
        for item in sorted(cdir.iterdir()):
            if item.name.startswith("."):
                continue
            if item.is_file() and item.suffix.lower() in VIDEO_EXTENSIONS:
                idx.entries.append(Entry(item, by_name[cdir.name], f"{cdir.name}/{item.name}"))
            elif item.is_dir():
                if is_frame_folder(item):
                    idx.entries.append(Entry(item, by_name[cdir.name], f"{cdir.name}/{item.name}"))
                else:
                    idx.problems.append(
                        Problem(
                            "unreadable", str(item), "folder holds no numbered .jpg/.png frames"
                        )
                    )
    return idx


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


def average_scores_per_video(scores, video_ids, num_videos: int | None = None):
    """Mean of the per-view ``scores`` (``N x C``) of each video; returns ``(ids, mean_scores)``.

    ``ids`` are the distinct video indices in increasing order, ``mean_scores`` their averaged
    rows. With ``num_videos``, the result has one row per video ``0..num_videos-1`` instead and
    videos without any view get NaN rows.
    """
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, torch.Tensor) else scores)
    v = (
        torch.as_tensor(
            np.asarray(video_ids) if not isinstance(video_ids, torch.Tensor) else video_ids
        )
        .long()
        .reshape(-1)
    )
    if s.dim() != 2 or s.shape[0] != v.shape[0]:
        raise ValueError(
            f"scores must be N x C with one video id per row, got {tuple(s.shape)} and {tuple(v.shape)} ids"
        )
    s = s.to(torch.float64) if not s.is_floating_point() else s
    if num_videos is None:
        ids, inv = torch.unique(v, sorted=True, return_inverse=True)
        out = torch.zeros(len(ids), s.shape[1], dtype=s.dtype).index_add_(0, inv, s)
        cnt = torch.zeros(len(ids), dtype=s.dtype).index_add_(
            0, inv, torch.ones_like(v, dtype=s.dtype)
        )
        return ids, out / cnt[:, None]
    if len(v) and (v.min() < 0 or v.max() >= num_videos):
        raise ValueError(
            f"video ids must lie in [0, {num_videos}), got {int(v.min())}..{int(v.max())}"
        )
    out = torch.zeros(num_videos, s.shape[1], dtype=s.dtype).index_add_(0, v, s)
    cnt = torch.zeros(num_videos, dtype=s.dtype).index_add_(0, v, torch.ones_like(v, dtype=s.dtype))
    return torch.arange(num_videos), out / cnt[:, None]
