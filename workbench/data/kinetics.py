"""Kinetics-400/600/700 as distributed: the CSV annotations and the
``<youtube_id>_<start:06d>_<end:06d>.mp4`` clips."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .index import (
    SPLIT_NAMES,
    DatasetIndex,
    Entry,
    Problem,
    dataset_root,
    files_by_name,
    first_listing,
    layout_error,
    numbered_lines,
    split_name,
)

__all__ = ["kinetics_csv", "index_kinetics"]


def kinetics_csv(root: Path, split: str, annotations=None) -> Path | None:
    names = SPLIT_NAMES[split]
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
        return [line for _, line in numbered_lines(Path(classes))]
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
    root = dataset_root(fmt, root)
    split = split_name(split)
    problems: list[Problem] = []
    csv_path = kinetics_csv(root, split, annotations)
    if csv_path is None:
        raise layout_error(
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
        raise layout_error(
            fmt,
            root,
            f"gives no class labels ({csv_path.name} and the train CSV have no 'label' column)",
        )
    if video_dir is not None:
        vdir = Path(video_dir)
    else:
        cands = [root / n for n in SPLIT_NAMES[split]] + [
            root / f"videos_{n}" for n in SPLIT_NAMES[split]
        ]
        vdir = next((c for c in cands if c.is_dir()), None)
        if vdir is None:
            raise layout_error(
                fmt,
                root,
                f"has no video folder for split {split!r} (looked for {', '.join(c.name + '/' for c in cands)})",
            )
    files = {Path(n).stem: ps[0] for n, ps in files_by_name(vdir).items()}
    repl = root / "replacement" / "replacement_for_corrupted_k400"
    if repl.is_dir():
        files.update({Path(n).stem: ps[0] for n, ps in files_by_name(repl).items()})
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
        if not first_listing(key, seen, problems, where, key):
            continue
        path = files.get(key) or files.get(r["youtube_id"])
        if path is None:
            idx.missing.append(Entry(vdir / f"{key}.mp4", label, key, csv_path.name))
        else:
            idx.entries.append(Entry(path, label, key, csv_path.name))
    return idx
