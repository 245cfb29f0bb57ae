"""HMDB51 as distributed: the 153 ``<class>_test_split<N>.txt`` files and the ``hmdb51_org`` videos."""

from __future__ import annotations

import re
from pathlib import Path

from .index import (
    DatasetIndex,
    Entry,
    Problem,
    check_fold,
    dataset_root,
    files_by_name,
    layout_error,
    numbered_lines,
    split_name,
)

__all__ = ["index_hmdb51"]

_HMDB_SPLIT = re.compile(r"^(.+)_test_split(\d)\.txt$")


def index_hmdb51(
    root, split: str = "train", fold: int = 1, *, video_dir=None, split_dir=None
) -> DatasetIndex:
    """HMDB51 from the 153 ``<class>_test_split<1|2|3>.txt`` files (tag 1 train, 2 test, 0 unused).

    There is no class-index file: the classes are the split-file prefixes, sorted as folder names
    sort (``climb`` before ``climb_stairs``). Videos are looked up as ``<class>/<name>``, then by
    file name anywhere under the video folder.
    """
    fmt = "hmdb51"
    root = dataset_root(fmt, root)
    split, fold = split_name(split), check_fold(fold)
    sdir = Path(split_dir) if split_dir else root / "testTrainMulti_7030_splits"
    if not sdir.is_dir():
        raise layout_error(fmt, root, f"has no split folder {sdir.name}/")
    files: dict[str, Path] = {}
    for p in sorted(sdir.iterdir()):
        m = _HMDB_SPLIT.match(p.name)
        if m and int(m.group(2)) == fold:
            files[m.group(1)] = p
    if not files:
        raise layout_error(
            fmt, root, f"has no '<class>_test_split{fold}.txt' files in {sdir.name}/"
        )
    if video_dir is not None:
        vdir = Path(video_dir)
    else:
        vdir = next(
            (root / d for d in ("hmdb51_org", "videos", "hmdb51") if (root / d).is_dir()), root
        )
    if not vdir.is_dir():
        raise layout_error(fmt, root, f"has no video folder {vdir}")
    classes = sorted(files)
    idx = DatasetIndex(
        fmt, root, split, classes, sources=list(files.values()), video_dir=vdir, fold=fold
    )
    want = "1" if split == "train" else "2"
    owner: dict[str, str] = {}
    by_name: dict[str, list[Path]] | None = None
    for label, cls in enumerate(classes):
        f = files[cls]
        for n, line in numbered_lines(f):
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
                    by_name = files_by_name(vdir)
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
