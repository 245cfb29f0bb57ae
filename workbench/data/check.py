"""Validate a real dataset on disk: layout, annotation files, missing and unreadable videos.

``check_dataset("ucf101", root)`` indexes every split (and fold) the format defines, collects the
annotation problems the indexers find (label mismatches, unknown classes, bad lines, duplicates),
lists entries whose file is missing, and opens every referenced video or frame folder:

- ``decode='none'``: the file exists and is not empty;
- ``decode='first'`` (default): the container opens and its first frame decodes;
- ``decode='full'``: every frame decodes (slow on a full dataset; catches truncated files).

The report is ``ok`` only when there is no problem at all.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .dataset import index_dataset
from .decode import DecodeError, list_frames, probe_video
from .index import LAYOUTS, DatasetIndex, Problem, canonical_format
from .kinetics import kinetics_csv

__all__ = ["CheckReport", "check_dataset", "check_file", "DECODE_MODES"]

DECODE_MODES = ("none", "first", "full")


@dataclass
class CheckReport:
    format: str
    root: str
    decode: str
    classes: int = 0
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "root": self.root,
            "ok": self.ok,
            "decode": self.decode,
            "classes": self.classes,
            "splits": self.splits,
            "checked": self.checked,
            "problem_counts": self.counts(),
            "problems": [p.to_dict() for p in self.problems],
        }

    def format_text(self, limit: int = 50) -> str:
        lines = [f"{self.format} at {self.root}: {self.classes} classes"]
        if self.splits:
            lines.append(
                "  splits: "
                + ", ".join(
                    f"{k} {v['videos']} videos"
                    + (f" ({v['missing']} missing)" if v["missing"] else "")
                    for k, v in self.splits.items()
                )
            )
        lines.append(f"  checked {self.checked} files (decode={self.decode})")
        if self.ok:
            lines.append("OK: no problems found")
            return "\n".join(lines)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        lines.append(f"FAILED: {len(self.problems)} problems ({counts})")
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... {len(self.problems) - limit} more (use --json for all)")
        return "\n".join(lines)


def check_file(path, decode: str = "first") -> Problem | None:
    """One video file or frame folder; a Problem when it cannot be read as ``decode`` asks."""
    p = Path(path)
    try:
        if p.is_dir():
            frames = list_frames(p)
            if not frames:
                return Problem(
                    "unreadable", str(p), "frame folder holds no numbered .jpg/.png frames"
                )
            nums = sorted(int("".join(ch for ch in f.stem if ch.isdigit())) for f in frames)
            if nums[-1] - nums[0] + 1 != len(nums):
                gaps = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums))
                return Problem(
                    "unreadable",
                    str(p),
                    f"frame numbering has gaps (missing {gaps[:5]}{' ...' if len(gaps) > 5 else ''})",
                )
            if decode != "none":
                from PIL import Image

                for f in frames if decode == "full" else frames[:1]:
                    try:
                        with Image.open(f) as im:
                            im.convert("RGB").load()
                    except (OSError, ValueError, SyntaxError) as e:
                        return Problem(
                            "unreadable", str(f), f"frame does not load ({type(e).__name__}: {e})"
                        )
            return None
        if not p.is_file():
            return Problem("missing-file", str(p), "no such file")
        if p.stat().st_size == 0:
            return Problem("unreadable", str(p), "empty file (0 bytes)")
        if decode != "none":
            probe_video(p, decode=decode)
    except DecodeError as e:
        return Problem("unreadable", str(p), e.reason)
    except OSError as e:
        return Problem("unreadable", str(p), f"{type(e).__name__}: {e}")
    return None


def _plan(fmt: str, root: Path, folds, index_kw: dict) -> list[tuple[str, dict, bool]]:
    """(split, index keywords, required) to check for a format."""
    if fmt in ("ucf101", "hmdb51"):
        # folds not asked for by name: fold 1 is required, 2 and 3 are checked where they exist
        asked = folds is not None
        return [(s, {"fold": f}, True if asked or f == 1 else "if-present")
                for f in (folds if asked else (1, 2, 3)) for s in ("train", "test")]
    if fmt == "something-v1":
        return [
            ("train", {}, True),
            ("val", {}, True),
            ("test", {}, (root / "something-something-v1-test.csv").is_file()),
        ]
    if fmt == "something-v2":
        test = (root / "something-something-v2-test.json").is_file() or (
            root / "labels" / "test.json"
        ).is_file()
        return [("train", {}, True), ("val", {}, True), ("test", {}, test)]
    if fmt == "kinetics":
        ann = index_kw.get("annotations")
        return [(s, {}, kinetics_csv(root, s, ann) is not None) for s in ("train", "val", "test")]
    return [("train", {}, False), ("val", {}, False), ("test", {}, False)]


def check_dataset(
    fmt: str,
    root,
    *,
    decode: str = "first",
    workers: int | None = None,
    folds=None,
    **index_kw,
) -> CheckReport:
    """Check the dataset of format ``fmt`` at ``root``; see the module docstring. ``folds``
    (UCF101/HMDB51): the official splits to check; default fold 1 and those of 2, 3 present."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}")
    name = fmt
    fmt = canonical_format(fmt)
    report = CheckReport(name, str(root), decode)
    seen_problems: set[tuple[str, str, str]] = set()

    def add(p: Problem) -> None:
        key = (p.kind, p.path, p.detail)
        if key not in seen_problems:
            seen_problems.add(key)
            report.problems.append(p)

    root_p = Path(root) if root is not None else None
    if root_p is None or not root_p.is_dir():
        what = (
            "was not given"
            if root_p is None
            else ("does not exist" if not root_p.exists() else "is not a directory")
        )
        add(Problem("layout", str(root), f"dataset root {what}; expected layout:\n{LAYOUTS[fmt]}"))
        return report

    indexes: list[DatasetIndex] = []
    optional_errors = []
    for split, kw, required in _plan(fmt, root_p, folds, index_kw):
        try:
            idx = index_dataset(name, root_p, split, **kw, **index_kw)
        except ValueError as e:
            if required == "if-present" and " has no " in str(e):
                continue  # a fold that is not there and was not asked for
            if required:
                add(Problem("layout", str(root_p), str(e)))
            else:
                optional_errors.append(str(e))
            continue
        if fmt == "folder" and idx.video_dir == root_p and indexes:
            continue  # no split folders: one index covers the whole root
        indexes.append(idx)
    if not indexes and not report.problems:
        add(
            Problem(
                "layout",
                str(root_p),
                optional_errors[0]
                if optional_errors
                else f"nothing to index; expected layout:\n{LAYOUTS[fmt]}",
            )
        )
    if not indexes:
        return report

    report.classes = max(len(i.classes) for i in indexes)
    paths: dict[str, None] = {}
    for idx in indexes:
        label = idx.split + (str(idx.fold) if idx.fold else "")
        report.splits[label] = {
            "videos": len(idx.entries) + len(idx.missing),
            "missing": len(idx.missing),
        }
        for p in idx.problems:
            add(p)
        for e in idx.missing:
            add(
                Problem(
                    "missing-file",
                    str(e.path),
                    f"listed in {e.source or 'the annotations'} as {e.key!r} but not found",
                )
            )
        for e in idx.entries:
            paths.setdefault(str(e.path), None)

    todo = list(paths)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda p: check_file(p, decode), todo))
    else:
        results = [check_file(p, decode) for p in todo]
    report.checked = len(todo)
    for r in results:
        if r is not None:
            add(r)
    return report
