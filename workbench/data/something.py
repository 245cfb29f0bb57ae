"""Something-Something V1 (JPEG frame folders, ``;``-separated CSVs) and V2 (WebM videos, JSON
annotations) as distributed."""

from __future__ import annotations

from pathlib import Path

from .index import (
    DatasetIndex,
    Entry,
    Problem,
    dataset_root,
    first_listing,
    layout_error,
    load_json,
    numbered_lines,
    split_name,
)

__all__ = ["index_something_v1", "index_something_v2"]

# -- Something-Something V1 ---------------------------------------------------------------------


def index_something_v1(root, split: str = "train", *, video_dir=None) -> DatasetIndex:
    """Something-Something V1: JPEG frame folders and ``;``-separated CSVs (no header).

    Label = 0-based line number in ``something-something-v1-labels.csv`` (not alphabetical).
    """
    fmt = "something-v1"
    root = dataset_root(fmt, root)
    split = split_name(split)
    label_file = root / "something-something-v1-labels.csv"
    if not label_file.is_file():
        raise layout_error(fmt, root, f"has no {label_file.name}")
    classes = [line for _, line in numbered_lines(label_file)]
    if not classes:
        raise layout_error(fmt, root, f"has an empty {label_file.name}")
    name = {"train": "train", "val": "validation", "test": "test"}[split]
    list_file = root / f"something-something-v1-{name}.csv"
    if not list_file.is_file():
        raise layout_error(fmt, root, f"has no {list_file.name}")
    if video_dir is not None:
        vdir = Path(video_dir)
    elif (root / "20bn-something-something-v1").is_dir():
        vdir = root / "20bn-something-something-v1"
    else:
        raise layout_error(fmt, root, "has no frame folder 20bn-something-something-v1/")
    by_name = {c: k for k, c in enumerate(classes)}
    idx = DatasetIndex(fmt, root, split, classes, sources=[label_file, list_file], video_dir=vdir)
    seen = set()
    for n, line in numbered_lines(list_file):
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
        if not first_listing(vid, seen, idx.problems, where, f"id {vid}"):
            continue
        entry = Entry(vdir / vid, label, vid, list_file.name)
        (idx.entries if entry.path.is_dir() else idx.missing).append(entry)
    return idx


# -- Something-Something V2 ---------------------------------------------------------------------


def _template_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def index_something_v2(root, split: str = "train", *, video_dir=None) -> DatasetIndex:
    """Something-Something V2: WebM videos and JSON annotations (20BN or ``labels/`` names).

    Class = ``labels[template without brackets]`` (the ``label`` field is a caption, not the
    class). The test list has no labels unless ``labels/test-answers.csv`` is there.
    """
    fmt = "something-v2"
    root = dataset_root(fmt, root)
    split = split_name(split)
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
        raise layout_error(
            fmt, root, "has no something-something-v2-labels.json (nor labels/labels.json)"
        )
    if not list_file.is_file():
        raise layout_error(fmt, root, f"has no {list_file.relative_to(root)}")
    if video_dir is not None:
        vdir = Path(video_dir)
    elif (root / "20bn-something-something-v2").is_dir():
        vdir = root / "20bn-something-something-v2"
    else:
        raise layout_error(fmt, root, "has no video folder 20bn-something-something-v2/")
    raw = load_json(label_file, fmt, root)
    if not isinstance(raw, dict) or not raw:
        raise layout_error(
            fmt, root, f"has a {label_file.name} that is not a non-empty {{template: index}} object"
        )
    problems: list[Problem] = []
    try:
        numbered = {int(v): k for k, v in raw.items()}
    except (TypeError, ValueError) as e:
        raise layout_error(fmt, root, f"has non-integer indices in {label_file.name} ({e})") from e
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
    rows = load_json(list_file, fmt, root)
    if not isinstance(rows, list):
        raise layout_error(fmt, root, f"has a {list_file.name} that is not a JSON list")
    test_labels: dict[str, str] = {}
    sources = [label_file, list_file]
    if split == "test" and answers is not None and answers.is_file():
        sources.append(answers)
        for _, line in numbered_lines(answers):
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
        if not first_listing(vid, seen, problems, where, f"id {vid}"):
            continue
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
