"""Write clips of the synthetic benchmark (or any clip source) in a real dataset's format.

``export_dataset("ucf101", out)`` writes videos and annotation files laid out exactly as the
distributed dataset (see ``index.LAYOUTS``), so the real pipeline (indexing, decoding, sampling,
transforms, ``workbench data check``) can run end to end on generated data.

A *clip source* is anything with ``classes``, ``len()``, ``clip_array(i)`` (uint8 ``T H W 3``)
and ``label(i)``, as the synthetic datasets provide.

Per format: UCF101 and HMDB51 as mpeg4 (Xvid tag) AVI with the three official splits;
Something V1 as ``%05d.jpg`` frame folders; Something V2 as VP9 WebM; Kinetics as H.264 MP4
(mpeg4 when this FFmpeg lacks libx264) in the CVDF layout; the folder format as MP4 in
``train/val/test/<class>/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .index import FORMATS, canonical_format

__all__ = [
    "EXPORT_FORMATS",
    "ExportResult",
    "export_dataset",
    "write_video",
    "write_frames",
    "synthetic_source",
    "select_clips",
]

#: every format can be written (and read back: ``workbench data check``)
EXPORT_FORMATS = FORMATS

_FPS = {
    "ucf101": 25,
    "hmdb51": 30,
    "something-v1": 12,
    "something-v2": 12,
    "kinetics": 30,
    "folder": 25,
}


@dataclass
class ExportResult:
    format: str
    root: Path
    classes: list[str]
    files: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    videos: list[tuple[Path, int]] = field(default_factory=list)  # (written path, source index)
    flow_root: Path | None = None

    def add(self, i: int, path: Path) -> None:
        self.videos.append((Path(path), int(i)))
        self.files += 1

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "root": str(self.root),
            "classes": self.classes,
            "files": self.files,
            "splits": self.splits,
            "flow_root": str(self.flow_root) if self.flow_root else None,
        }


# -- writers ------------------------------------------------------------------------------------


def _codec_available(name: str) -> bool:
    import av

    return name in av.codecs_available


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad H and W to even sizes (yuv420p needs them) by repeating the last row/column."""
    t, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def write_video(path, frames: np.ndarray, *, codec: str = "mpeg4", fps: int = 25) -> Path:
    """Encode uint8 ``T H W 3`` frames to ``path`` (container from the extension)."""
    import av

    frames = _even(np.ascontiguousarray(np.asarray(frames, dtype=np.uint8)))
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(
            f"write_video expects uint8 frames T H W 3 with T >= 1, got shape {frames.shape}"
        )
    if codec == "libx264" and not _codec_available("libx264"):
        codec = "mpeg4"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "mpeg4": {"flags": "qscale", "global_quality": str(2 * 118)},  # -q:v 2 (118 = FF_QP2LAMBDA)
        "libx264": {"preset": "ultrafast", "crf": "18"},
        "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "24", "b": "0"},
    }.get(codec, {})
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "mpeg4" and path.suffix.lower() == ".avi":
            stream.codec_tag = "XVID"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(
    folder, frames: np.ndarray, *, pattern: str = "{:05d}.jpg", start: int = 1, quality: int = 90
) -> Path:
    """Write uint8 ``T H W 3`` frames as numbered JPEGs (``00001.jpg`` ...)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(np.asarray(frames, dtype=np.uint8)):
        Image.fromarray(f).save(folder / pattern.format(i + start), quality=quality)
    return folder


# -- sources ------------------------------------------------------------------------------------


def synthetic_source(
    name: str = "synthetic-motion",
    *,
    clips_per_class: int = 4,
    frames: int = 8,
    size: int = 32,
    seed: int = 0,
    split: str = "train",
):
    """The synthetic benchmark as a clip source, ``clips_per_class`` clips of each class."""
    from .synthetic import make_synthetic

    return make_synthetic(
        name,
        split=split,
        output="uint8",
        frames=frames,
        size=size,
        seed=seed,
        **{f"{split}_per_class": clips_per_class},
    )


def select_clips(source, clips_per_class: int) -> list[list[int]]:
    """Up to ``clips_per_class`` source indices per class, in source order."""
    if clips_per_class < 1:
        raise ValueError(f"clips_per_class must be positive, got {clips_per_class}")
    ncls = len(source.classes)
    picked: list[list[int]] = [[] for _ in range(ncls)]
    full = 0
    for i in range(len(source)):
        y = int(source.label(i))
        if 0 <= y < ncls and len(picked[y]) < clips_per_class:
            picked[y].append(i)
            if len(picked[y]) == clips_per_class:
                full += 1
                if full == ncls:
                    break
    empty = [source.classes[k] for k, p in enumerate(picked) if not p]
    if empty:
        raise ValueError(f"the source has no clip of class(es) {', '.join(map(str, empty))}")
    return picked


# -- naming and split assignment ------------------------------------------------------------------


def _camel(name: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", str(name)) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) or "Class"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "class"


def _sentence(name: str) -> str:
    s = re.sub(r"[_;\n\r\t]+", " ", str(name)).strip()
    return s[:1].upper() + s[1:] if s else "Class"


def _label(name: str) -> str:
    return re.sub(r"[_\n\r\t]+", " ", str(name)).strip().lower() or "class"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}{k + 1}")
    return out


# UCF101 groups in an order that puts each split's test groups (g01-07, g08-14, g15-21) early.
_UCF_GROUPS = [s * 7 + r + 1 for r in range(7) for s in range(4) if s * 7 + r + 1 <= 25]


def _three_way(j: int, n: int) -> str:
    """train / val / test for clip ``j`` of ``n`` in a class: last -> test, second last -> val."""
    if n >= 3 and j == n - 1:
        return "test"
    if n >= 2 and j == n - (2 if n >= 3 else 1):
        return "val"
    return "train"


def _youtube_ids(count: int, rng: np.random.Generator) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    out = []
    for k in range(count):
        s = "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 11))
        if k == 0:
            s = "--" + s[2:]  # ids may start with '-' and hold '_': parse from the right
        elif k == 1:
            s = "_" + s[1:9] + "_" + s[10]
        out.append(s)
    return out


# -- the exporters ------------------------------------------------------------------------------


def _ucf101(source, picked, out: Path, fps: int, res: ExportResult) -> None:
    names = _unique([_camel(c) for c in source.classes])
    sdir = out / "ucfTrainTestlist"
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "classInd.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(names)))
    rows = []  # (rel, label, group)
    for y, idxs in enumerate(picked):
        cls = names[y]
        for j, i in enumerate(idxs):
            g, c = _UCF_GROUPS[j % len(_UCF_GROUPS)], j // len(_UCF_GROUPS) + 1
            rel = f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi"
            res.add(i, write_video(out / "UCF-101" / rel, source.clip_array(i), codec="mpeg4", fps=fps))
            rows.append((rel, y, g))
    for fold in (1, 2, 3):
        test_groups = range(7 * (fold - 1) + 1, 7 * fold + 1)
        train = [f"{rel} {y + 1}\n" for rel, y, g in rows if g not in test_groups]
        test = [f"{rel}\n" for rel, y, g in rows if g in test_groups]
        (sdir / f"trainlist0{fold}.txt").write_text("".join(train))
        (sdir / f"testlist0{fold}.txt").write_text("".join(test))
        res.splits[f"train{fold}"], res.splits[f"test{fold}"] = len(train), len(test)
    res.classes = names


def _hmdb51(source, picked, out: Path, fps: int, res: ExportResult) -> None:
    names = _unique([_snake(c) for c in source.classes])
    sdir = out / "testTrainMulti_7030_splits"
    sdir.mkdir(parents=True, exist_ok=True)
    tags: dict[int, dict[str, list[str]]] = {1: {}, 2: {}, 3: {}}
    for y, idxs in enumerate(picked):
        cls, n = names[y], len(idxs)
        files = []
        for j, i in enumerate(idxs):
            src = "(Synth)Clip!000" if j == 0 else f"Synth{j:03d}"  # real names hold ( ) ! too
            name = f"{src}_{cls}_f_cm_np1_fr_med_{j}.avi"
            res.add(i, write_video(out / "hmdb51_org" / cls / name, source.clip_array(i), codec="mpeg4", fps=fps))
            files.append(name)
        for fold in (1, 2, 3):
            lines = []
            for j, name in enumerate(files):
                if n >= 5 and fold == 3 and j == n - 1:
                    tag = 0  # unused in this split
                elif n >= 2 and (j + fold - 1) % 3 == 0:
                    tag = 2
                else:
                    tag = 1
                lines.append(f"{name} {tag} \n")  # the official files end lines with a space
            tags[fold][cls] = lines
            (sdir / f"{cls}_test_split{fold}.txt").write_text("".join(lines))
    for fold in (1, 2, 3):
        for tag, split in (("1", "train"), ("2", "test")):
            res.splits[f"{split}{fold}"] = sum(
                1 for ls in tags[fold].values() for ln in ls if ln.split()[-1] == tag
            )
    res.classes = names


def _something_v1(source, picked, out: Path, fps: int, res: ExportResult) -> None:
    names = _unique([_sentence(c) for c in source.classes])
    (out / "something-something-v1-labels.csv").parent.mkdir(parents=True, exist_ok=True)
    (out / "something-something-v1-labels.csv").write_text("".join(f"{c}\n" for c in names))
    lists: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    vid = 0
    for y, idxs in enumerate(picked):
        for j, i in enumerate(idxs):
            vid += 1
            res.add(i, write_frames(out / "20bn-something-something-v1" / str(vid), source.clip_array(i)))
            split = {"train": "train", "val": "validation", "test": "test"}[
                _three_way(j, len(idxs))
            ]
            lists[split].append(f"{vid}\n" if split == "test" else f"{vid};{names[y]}\n")
    for split, rows in lists.items():
        (out / f"something-something-v1-{split}.csv").write_text("".join(rows))
        res.splits[split] = len(rows)
    res.classes = names


def _template(name: str) -> str:
    if re.search(r"\bsomething\b", name, re.IGNORECASE):
        return re.sub(r"\b([Ss]omething)\b", r"[\1]", name, count=1)
    head, sep, last = name.rpartition(" ")
    return f"{head}{sep}[{last}]" if last else name


def _something_v2(source, picked, out: Path, fps: int, res: ExportResult) -> None:
    names = _unique([_sentence(c) for c in source.classes])
    out.mkdir(parents=True, exist_ok=True)
    (out / "something-something-v2-labels.json").write_text(
        json.dumps({c: str(k) for k, c in enumerate(names)}, indent=1)
    )
    lists: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    vid = 77000
    for y, idxs in enumerate(picked):
        for j, i in enumerate(idxs):
            vid += 1
            res.add(i, write_video(out / "20bn-something-something-v2" / f"{vid}.webm", source.clip_array(i),
                                   codec="libvpx-vp9", fps=fps))
            split = {"train": "train", "val": "validation", "test": "test"}[
                _three_way(j, len(idxs))
            ]
            if split == "test":
                lists[split].append({"id": str(vid)})
            else:
                t = _template(names[y])
                lists[split].append(
                    {
                        "id": str(vid),
                        "label": t.replace("[", "").replace("]", "").lower(),
                        "template": t,
                        "placeholders": ["square"],
                    }
                )
    for split, rows in lists.items():
        (out / f"something-something-v2-{split}.json").write_text(json.dumps(rows, indent=1))
        res.splits[split] = len(rows)
    res.classes = names


def _kinetics(source, picked, out: Path, fps: int, res: ExportResult, seed: int) -> None:
    names = _unique([_label(c) for c in source.classes])
    total = sum(len(p) for p in picked)
    ids = _youtube_ids(total, np.random.default_rng(seed))
    rows: dict[str, list[list]] = {"train": [], "val": [], "test": []}
    k = 0
    for y, idxs in enumerate(picked):
        for j, i in enumerate(idxs):
            split = _three_way(j, len(idxs))
            start = 10 * j + 3
            clip = f"{ids[k]}_{start:06d}_{start + 10:06d}"
            k += 1
            res.add(i, write_video(out / split / f"{clip}.mp4", source.clip_array(i), codec="libx264", fps=fps))
            rows[split].append([names[y], clip[:11], start, start + 10, split, 0])
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, rs in rows.items():
        with open(out / "annotations" / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
            w.writerows(rs)
        res.splits[split] = len(rs)
    res.classes = names


def _folder(source, picked, out: Path, fps: int, res: ExportResult) -> None:
    names = _unique([_snake(c) for c in source.classes])
    for y, idxs in enumerate(picked):
        for j, i in enumerate(idxs):
            split = _three_way(j, len(idxs))
            res.add(i, write_video(out / split / names[y] / f"clip_{j:04d}.mp4", source.clip_array(i),
                                   codec="libx264", fps=fps))
            res.splits[split] = res.splits.get(split, 0) + 1
    res.classes = names


def export_dataset(
    fmt: str,
    out,
    *,
    dataset: str = "synthetic-motion",
    source=None,
    clips_per_class: int = 4,
    frames: int = 8,
    size: int = 32,
    seed: int = 0,
    fps: int | None = None,
    force: bool = False,
    flow: bool = False,
    flow_bound: float = 20.0,
    flow_method: str | None = None,
) -> ExportResult:
    """Write ``clips_per_class`` clips of every class of ``source`` (default: the synthetic
    benchmark ``dataset`` at ``frames`` x ``size`` x ``size``) to ``out`` in format ``fmt``.

    ``out`` must be empty or absent unless ``force`` (which deletes it first). ``flow=True`` also
    writes each video's optical flow as ``out/flow/<Class>/<video>/flow_{x,y}_%05d.jpg`` (mmaction's
    layout and 8-bit code, bound ``flow_bound``): the exact flow of a synthetic source, or flow
    computed with OpenCV's ``flow_method`` for a source without it.
    """
    fmt = canonical_format(fmt)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise ValueError(
                f"output {out} exists and is not empty; pick another folder or pass force=True (--force)"
            )
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    if source is None:
        source = synthetic_source(
            dataset, clips_per_class=clips_per_class, frames=frames, size=size, seed=seed
        )
    picked = select_clips(source, clips_per_class)
    # written into a temporary folder beside ``out`` and renamed at the end: an export that fails
    # (a full disk, a decoder error, Ctrl-C) leaves no half dataset behind
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        out.rmdir()  # empty (checked above)
    part = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        res = ExportResult(fmt, part, [])
        fps = fps or _FPS[fmt]
        if fmt == "ucf101":
            _ucf101(source, picked, part, fps, res)
        elif fmt == "hmdb51":
            _hmdb51(source, picked, part, fps, res)
        elif fmt == "something-v1":
            _something_v1(source, picked, part, fps, res)
        elif fmt == "something-v2":
            _something_v2(source, picked, part, fps, res)
        elif fmt == "kinetics":
            _kinetics(source, picked, part, fps, res, seed)
        else:
            _folder(source, picked, part, fps, res)
        if flow:
            _write_flow(source, part, res, fmt, flow_bound, flow_method)
        part.chmod(0o755)
        os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    res.root = out
    res.videos = [(out / p.relative_to(part), i) for p, i in res.videos]
    if res.flow_root is not None:
        res.flow_root = out / Path(res.flow_root).relative_to(part)
    return res


def _write_flow(source, out: Path, res: ExportResult, fmt: str, bound: float, method: str | None) -> None:
    from .flow import compute_flow, write_flow_frames

    res.flow_root = out / "flow"
    exact = hasattr(source, "flow_array") and method is None
    for path, i in res.videos:
        rel = path.relative_to(out)
        parts = rel.with_suffix("").parts if rel.suffix else rel.parts
        if fmt in ("ucf101", "hmdb51", "something-v1", "something-v2"):
            parts = parts[1:]  # below the dataset's video folder, as mmaction's rawframes
        f = source.flow_array(i)[:, :-1] if exact else compute_flow(source.clip_array(i), method or "tvl1")
        write_flow_frames(res.flow_root.joinpath(*parts), f, bound=bound)
