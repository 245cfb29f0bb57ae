"""A generic dataset: one sub-folder per class (optionally under split folders) of video files or
folders of numbered frames."""

from __future__ import annotations

from .decode import VIDEO_EXTENSIONS, is_frame_folder
from .index import SPLIT_NAMES, DatasetIndex, Entry, Problem, dataset_root, layout_error, split_name

__all__ = ["index_folder"]


def index_folder(root, split: str = "train", *, classes=None) -> DatasetIndex:
    """``<root>/<class>/<video or frame folder>``, or the same under ``<root>/<split>/``.

    Classes are the sorted sub-folder names of all split folders (so indices agree across
    splits) unless ``classes`` gives the order. Dotfiles are ignored.
    """
    fmt = "folder"
    root = dataset_root(fmt, root)
    split = split_name(split)
    split_dirs = {
        s: root / n
        for s in ("train", "val", "test")
        for n in SPLIT_NAMES[s]
        if (root / n).is_dir()
    }
    if split_dirs:
        if split not in split_dirs:
            raise layout_error(
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
        raise layout_error(fmt, root, "has no class sub-folders")
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
