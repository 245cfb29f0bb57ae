"""Decoding video files (PyAV) and JPEG frame folders (Pillow) into uint8 ``T H W 3`` arrays.

PyAV is the decoder: its wheels bundle their own FFmpeg, so it installs from the registry with no
system libraries on CPU machines and GPU boxes alike, and reads every codec of the real datasets
(Xvid/mpeg4 AVI, VP8/VP9 WebM, H.264 MP4). torchcodec would need a system FFmpeg and a build that
matches the installed torch exactly, which is what a CPU-only torch pinned by the Makefile makes
fragile.

A clip is read in one pass: the frame count comes from the container (or its duration when the
container does not store one, as in WebM), the sampler picks indices, decoding stops after the
last needed frame, and only the picked frames are converted to RGB. When the container
over-reports its length the indices are picked again from the frames actually decoded.

Every failure (unreadable, empty, truncated, not a video) raises :class:`DecodeError`, a
``ValueError``, so datasets can skip the file and carry on.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DecodeError",
    "VideoInfo",
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "probe_video",
    "decode_video",
    "read_video_clips",
    "list_frames",
    "read_frame_clips",
    "read_clips",
    "is_frame_folder",
]

VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".webm",
    ".mkv",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ogv",
    ".flv",
    ".wmv",
)
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")

IndexPicker = Callable[[int], Sequence[np.ndarray]]
"""Given the number of frames, the frame indices of each clip to read."""


class DecodeError(ValueError):
    """A video or frame folder could not be read (corrupt, empty, truncated, missing, not a video)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read {self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int  # as stored or estimated from the duration (exact when ``exact``)
    fps: float
    width: int
    height: int
    codec: str
    exact: bool = False


def _av():
    import av

    return av


def _errors() -> tuple[type[BaseException], ...]:
    av = _av()
    return (av.FFmpegError, OSError, EOFError, ValueError, IndexError, RuntimeError, MemoryError)


def _open(path):
    av = _av()
    p = Path(path)
    if not p.is_file():
        raise DecodeError(path, "no such file")
    if p.stat().st_size == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(p))
    except _errors() as e:
        raise DecodeError(path, f"not a readable video ({type(e).__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise DecodeError(path, "no video stream")
    return container


def _stream_frames(stream, container) -> tuple[int, bool]:
    """Frame count as stored, or estimated from the duration; and whether it was stored."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames), True
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if rate > 0 and duration:
        return max(1, int(round(duration * rate))), False
    return 0, False


def probe_video(path, decode: str = "first") -> VideoInfo:
    """Open ``path`` and read its header; ``decode``: 'none', 'first' frame or 'full' (exact count).

    Raises :class:`DecodeError` when the file cannot be opened or (per ``decode``) decoded.
    """
    if decode not in ("none", "first", "full"):
        raise ValueError(f"decode must be 'none', 'first' or 'full', got {decode!r}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        n, exact = _stream_frames(stream, container)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        width, height = stream.codec_context.width, stream.codec_context.height
        codec = stream.codec_context.name
        if decode != "none":
            count = 0
            try:
                for frame in container.decode(stream):
                    if count == 0:
                        _to_rgb(frame, None)
                        width, height = frame.width, frame.height
                    count += 1
                    if decode == "first":
                        break
            except _errors() as e:
                raise DecodeError(
                    path, f"decoding failed after {count} frames ({type(e).__name__}: {e})"
                ) from e
            if count == 0:
                raise DecodeError(path, "no decodable frames")
            if decode == "full":
                n, exact = count, True
        return VideoInfo(str(path), n, rate, width, height, codec, exact)
    finally:
        container.close()


_local = threading.local()


def _reformatter():
    """A per-thread, per-process VideoReformatter: it keeps its swscale context between frames.

    Conversions run with ``threads=1``: swscale's default starts a thread pool per context, which
    costs milliseconds per frame at these sizes and deadlocks in a forked DataLoader worker that
    inherits a context whose threads did not come along."""
    cached = getattr(_local, "reformatter", None)
    if cached is None or cached[0] != os.getpid():
        from av.video.reformatter import VideoReformatter

        cached = _local.reformatter = (os.getpid(), VideoReformatter())
    return cached[1]


def _to_rgb(frame, short_side: int | None, interpolation: str = "AREA") -> np.ndarray:
    w, h = frame.width, frame.height
    if short_side and min(w, h) != short_side:
        if w <= h:
            w, h = short_side, max(1, int(round(h * short_side / w)))
        else:
            w, h = max(1, int(round(w * short_side / h))), short_side
        return (
            _reformatter()
            .reformat(
                frame, width=w, height=h, format="rgb24", interpolation=interpolation, threads=1
            )
            .to_ndarray()
        )
    return _reformatter().reformat(frame, format="rgb24", threads=1).to_ndarray()


def _stack_clips(clips: list[np.ndarray], count: int, load: Callable[[int], np.ndarray], where) -> list[np.ndarray]:
    """Each clip of frame indices as a uint8 ``T H W 3`` array: indices clamped to the ``count``
    frames there are, every frame loaded once by ``load(i)`` however many clips use it."""
    cache: dict[int, np.ndarray] = {}
    out = []
    for c in clips:
        arrs = []
        for i in c.tolist():
            i = min(max(i, 0), count - 1)
            if i not in cache:
                cache[i] = load(i)
            arrs.append(cache[i])
        shapes = {a.shape for a in arrs}
        if len(shapes) > 1:
            raise DecodeError(where, f"frames of different sizes {sorted(shapes)}")
        out.append(np.stack(arrs))
    return out


def read_video_clips(
    path,
    pick: IndexPicker,
    *,
    short_side: int | None = None,
    threads: int = 1,
) -> list[np.ndarray]:
    """Decode the clips ``pick(num_frames)`` names from one video, as uint8 ``T H W 3`` arrays.

    ``short_side`` resizes (area filter) while converting to RGB, which is cheaper than resizing
    afterwards. ``threads`` > 1 lets FFmpeg decode with that many threads (0 = FFmpeg's choice);
    1 suits DataLoader workers, which already use the cores.
    """
    container = _open(path)
    try:
        stream = container.streams.video[0]
        if threads == 1:
            stream.thread_count = 1  # no decoder threads to start per file
        else:
            stream.thread_type = "AUTO"
            stream.thread_count = threads
        n_est, _ = _stream_frames(stream, container)
        clips = [np.asarray(c, dtype=np.int64) for c in pick(max(n_est, 1))] if n_est > 0 else None
        need = max(int(c.max()) for c in clips) if clips else None
        frames = []
        try:
            for frame in container.decode(stream):
                frames.append(frame)
                if need is not None and len(frames) > need:
                    break
        except _errors() as e:
            if not frames:
                raise DecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e
            # a damaged tail: use what decoded (counted as the real length below)
            need = None
        if not frames:
            raise DecodeError(path, "no decodable frames")
        if need is None or len(frames) <= need:
            clips = [np.asarray(c, dtype=np.int64) for c in pick(len(frames))]
        return _stack_clips(clips, len(frames), lambda i: _to_rgb(frames[i], short_side), path)
    except DecodeError:
        raise
    except _errors() as e:
        raise DecodeError(path, f"{type(e).__name__}: {e}") from e
    finally:
        container.close()


def decode_video(
    path, indices: Sequence[int] | None = None, *, short_side: int | None = None
) -> np.ndarray:
    """All frames of a video (or those at ``indices``) as a uint8 ``T H W 3`` array."""
    if indices is None:
        return read_video_clips(path, lambda n: [np.arange(n)], short_side=short_side)[0]
    idx = np.asarray(indices, dtype=np.int64)
    return read_video_clips(path, lambda n: [idx], short_side=short_side)[0]


# -- frame folders ------------------------------------------------------------------------------

_NUMBERED = re.compile(r"^(?:img_|frame|image_)?(\d+)$")


def list_frames(folder) -> list[Path]:
    """The RGB frames of a frame folder in temporal order.

    Frames are image files whose stem is a number, optionally prefixed ``img_`` / ``frame`` /
    ``image_`` (``00001.jpg`` in Something-Something V1, ``img_00001.jpg`` in mmaction trees);
    optical-flow files (``flow_x_*``, ``x_*``) in the same folder are ignored. Sorted by number.
    """
    p = Path(folder)
    found = []
    try:
        entries = list(os.scandir(p))
    except OSError as e:
        raise DecodeError(folder, f"cannot list frame folder ({e.strerror or e})") from e
    for ent in entries:
        name = ent.name
        if name.startswith("."):
            continue
        stem, ext = os.path.splitext(name)
        if ext.lower() not in FRAME_EXTENSIONS:
            continue
        m = _NUMBERED.match(stem)
        if m:
            found.append((int(m.group(1)), name))
    found.sort()
    return [p / name for _, name in found]


def is_frame_folder(path) -> bool:
    p = Path(path)
    return p.is_dir() and bool(list_frames(p))


def _load_image(path: Path, short_side: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if short_side and im.format == "JPEG":
            w, h = im.size
            scale = short_side / min(w, h)
            if scale <= 0.5:  # let libjpeg decode at 1/2, 1/4 or 1/8 scale first
                im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        im = im.convert("RGB")
        if short_side and min(im.size) != short_side:
            w, h = im.size
            if w <= h:
                size = (short_side, max(1, int(round(h * short_side / w))))
            else:
                size = (max(1, int(round(w * short_side / h))), short_side)
            im = im.resize(size, Image.BILINEAR, reducing_gap=None)
        return np.asarray(im, dtype=np.uint8)


def read_frame_clips(
    folder, pick: IndexPicker, *, short_side: int | None = None
) -> list[np.ndarray]:
    """Like :func:`read_video_clips` for a folder of numbered JPEG/PNG frames."""
    frames = list_frames(folder)
    if not frames:
        if not Path(folder).is_dir():
            raise DecodeError(folder, "no such frame folder")
        raise DecodeError(folder, "frame folder holds no numbered .jpg/.png frames")
    clips = [np.asarray(c, dtype=np.int64) for c in pick(len(frames))]

    def load(i: int) -> np.ndarray:
        try:
            return _load_image(frames[i], short_side)
        except (OSError, ValueError, SyntaxError) as e:
            raise DecodeError(frames[i], f"unreadable frame ({type(e).__name__}: {e})") from e

    return _stack_clips(clips, len(frames), load, folder)


def read_clips(
    path, pick: IndexPicker, *, short_side: int | None = None, threads: int = 1
) -> list[np.ndarray]:
    """A video file or a frame folder, whichever ``path`` is."""
    if Path(path).is_dir():
        return read_frame_clips(path, pick, short_side=short_side)
    return read_video_clips(path, pick, short_side=short_side, threads=threads)
