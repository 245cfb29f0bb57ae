"""UCF101 as distributed: ``classInd.txt``, the three train/test lists and the ``UCF-101`` videos."""

from __future__ import annotations

import re
from pathlib import Path

from .index import (
    DatasetIndex,
    Entry,
    Problem,
    check_fold,
    dataset_root,
    first_listing,
    layout_error,
    numbered_lines,
    split_name,
)

__all__ = ["index_ucf101"]

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
    root = dataset_root(fmt, root)
    split, fold = split_name(split), check_fold(fold)
    sdir = Path(split_dir) if split_dir else root / "ucfTrainTestlist"
    if (
        not (sdir / "classInd.txt").is_file()
        and split_dir is None
        and (root / "classInd.txt").is_file()
    ):
        sdir = root
    class_file = sdir / "classInd.txt"
    if not class_file.is_file():
        raise layout_error(
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
        raise layout_error(fmt, root, f"has no video folder {vdir}")

    problems: list[Problem] = []
    numbered: dict[int, str] = {}
    for n, line in numbered_lines(class_file):
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
        raise layout_error(fmt, root, f"has an empty {class_file.name}")
    # classInd's own numbers are the truth; a subset of the classes (a common quick experiment)
    # keeps the original numbers, so they need not be contiguous. Labels are their rank.
    numbers = sorted(numbered)
    classes = [numbered[i] for i in numbers]
    by_name = {c: k for k, c in enumerate(classes)}
    by_lower = {c.lower(): k for k, c in enumerate(classes)}

    list_name = f"{'trainlist' if split == 'train' else 'testlist'}0{fold}.txt"
    list_file = sdir / list_name
    if not list_file.is_file():
        raise layout_error(
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
    for n, line in numbered_lines(list_file):
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
        if not first_listing(rel, seen, problems, where, repr(rel)):
            continue
        entry = Entry(vdir / rel, label, rel, list_file.name)
        (idx.entries if entry.path.is_file() else idx.missing).append(entry)
    return idx
