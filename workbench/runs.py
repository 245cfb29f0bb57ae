"""A run folder as an object: its kind, its files, how to start, resume, lock and reuse it.

Every command that trains something writes one run folder (``--out``):

================  ===========================================================================
``run.json``      what was asked: ``kind``, dataset and its arguments, configs, versions
``last.safetensors``  the checkpoint of the last finished epoch (metadata inside it);
                  ``prev.safetensors`` the one before it. Training resumes from them.
``history.json``  per-epoch records (``history.nc``: the same as xarray, template runs)
``result.json``   written last: the run is finished when it exists
``marginals.nc``  P(unit) per layer (template runs); ``trust.json``: the run's rank study
``.lock``         held by the process that writes the folder (an OS lock: a crash releases it)
================  ===========================================================================

:meth:`Run.start` is the one door into a folder: it refuses to write over a run unless asked to
resume it (same kind, same settings) or to overwrite it, takes the lock, and writes ``run.json``.
:meth:`Run.reuse_or` is the cache pattern of studies: a finished run's result is read back, an
interrupted one resumes, a missing one is trained. :func:`cache_key` names cached items.

No torch import: the analysis side reads run folders too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Run", "RunError", "RunExistsError", "RunLockedError", "cache_key", "environment", "KINDS", "atomic_write_bytes",
           "write_json", "write_text"]

#: what a run folder can hold, by the command that writes it
KINDS = ("supernet", "standalone", "streams", "few-shot-part")
#: how messages name a kind (the stored word of template runs is kept, so older runs still open)
KIND_NAMES = {"supernet": "template"}

SPEC, RESULT, HISTORY, LOCK = "run.json", "result.json", "history.json", ".lock"
CHECKPOINT, PREVIOUS = "last", "prev"
#: every file a run writes (removed by ``overwrite``); other files in the folder are left alone
RUN_FILES = (SPEC, RESULT, HISTORY, "history.nc", "results.nc", "marginals.nc", "trust.json", "health.json", "records.json",
             "last.safetensors", "last.json", "prev.safetensors", "prev.json")


class RunError(ValueError):
    """A run folder cannot be used as asked (one line, naming what to do)."""


class RunExistsError(RunError):
    """The folder holds a run and neither resume nor overwrite was asked for."""


class RunLockedError(RunError):
    """Another process is writing the folder."""


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict())
    raise TypeError(f"cache_key: {type(obj).__name__} is not JSON data (give dicts, lists, str, numbers)")


def cache_key(obj: Any) -> str:
    """10 hex digits naming ``obj`` (JSON data: dicts in any key order, lists, tuples, paths,
    objects with ``to_dict``) for cached results; equal inputs always give equal keys, and
    anything that is not data is refused rather than stringified."""
    payload = json.dumps(_jsonable(obj), sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:10]


def environment(device: str | None = None) -> dict:
    """What a run's numbers depend on beyond its settings: versions, thread count, device."""
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    try:
        from . import __version__

        env["workbench"] = __version__
    except ImportError:  # pragma: no cover
        pass
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        env.update(torch=torch.__version__, threads=torch.get_num_threads(),
                   interop_threads=torch.get_num_interop_threads(),
                   cuda=torch.version.cuda, device=device or "cpu")
        if device and str(device).startswith("cuda") and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (where the platform allows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_temp(path: Path, data: bytes) -> str:
    """``data`` in a new temporary file beside ``path``, flushed to disk; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """``text`` written atomically (a crash leaves the old file or the new one)."""
    atomic_write_bytes(path, text.encode())


RECORDS = "records.json"  # in a template run folder: stand-alone trainings of its strategies


def add_record(run, record: dict) -> None:
    """Append one stand-alone result of a strategy of template ``run`` beside its estimate
    (``RUN/records.json``; whoever trains a strategy of the run writes one). The list is rewritten
    atomically under an OS lock, so concurrent writers lose nothing."""
    import datetime
    import fcntl

    path = Path(run) / RECORDS
    with open(Path(run) / ".records.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        records = read_records(run)
        records.append({**record, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        write_json(path, {"records": records})


def read_records(run) -> list[dict]:
    """The stand-alone results recorded for template ``run`` ([] when none)."""
    path = Path(run) / RECORDS
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["records"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a records file ({e}); move it aside to start a new one") from None


class Run:
    """One run folder. Cheap to create; nothing is read or written until asked."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # ---- files ---------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        """The latest checkpoint's path without suffix (``RUN/last``), as the checkpoint API takes it."""
        return self.path / CHECKPOINT

    def has_spec(self) -> bool:
        return (self.path / SPEC).is_file()

    def has_checkpoint(self) -> bool:
        return any((self.path / f).is_file() for f in ("last.safetensors", "last.json", "prev.safetensors"))

    def is_finished(self) -> bool:
        return (self.path / RESULT).is_file()

    def is_present(self) -> bool:
        """Whether the folder holds (part of) a run."""
        return self.path.is_dir() and any((self.path / f).is_file() for f in RUN_FILES)

    def read_json(self, name: str) -> dict:
        path = self.path / name
        if not path.is_file():
            raise RunError(f"{self.path} has no {name}")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{path} is not valid JSON ({e}); the file is damaged") from None

    def write_json(self, name: str, obj) -> Path:
        path = self.path / name
        write_json(path, obj)
        return path

    def spec(self) -> dict:
        """``run.json``: what was run."""
        if not self.has_spec():
            what = "does not exist" if not self.path.exists() else "is not a run folder (no run.json)"
            raise RunError(f"{self.path} {what}: expected the --out folder of a training run")
        return self.read_json(SPEC)

    @property
    def kind(self) -> str | None:
        return self.spec().get("kind") if self.has_spec() else None

    def result(self) -> dict:
        if not self.is_finished():
            raise RunError(f"{self.path} has no {RESULT}: the run is not finished")
        return self.read_json(RESULT)

    def write_result(self, result: Mapping) -> Path:
        return self.write_json(RESULT, dict(result))

    def history(self) -> dict:
        return self.read_json(HISTORY)

    def epochs_done(self) -> int:
        """Epochs recorded in ``history.json`` (0 when there is none)."""
        path = self.path / HISTORY
        if not path.is_file():
            return 0
        try:
            return len(json.loads(path.read_text()).get("epoch", []))
        except (json.JSONDecodeError, AttributeError):
            return 0

    def describe(self) -> str:
        """A short phrase for messages: ``a finished standalone run``, ``a template run stopped after epoch 3``."""
        kind = KIND_NAMES.get(self.kind, self.kind) if self.has_spec() else None
        what = f"a {kind} run" if kind else "a run"
        if self.is_finished():
            return f"a finished {kind + ' ' if kind else ''}run"
        n = self.epochs_done()
        return f"{what} stopped after epoch {n}" if n else f"{what} without a checkpoint"

    # ---- the lock --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for the block; a second holder fails at once with the first
        one's pid. An OS lock (``flock``): it is released when the process ends, however it ends."""
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows: no advisory locks, no protection
                fcntl = None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise RunLockedError(
                        f"{self.path} is being written by another process (pid {holder}); wait for it to "
                        "finish or stop it, or use another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    # ---- starting ----------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail early, in one line, when ``--out`` cannot be a folder."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunError(f"--out {p} is a file, not a folder: give a folder for the run")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunError(f"--out {p}: {parent} is a file, so no folder can be made under it")
                if not os.access(parent, os.W_OK):
                    raise RunError(f"--out {p}: {parent} is not writable")
                break

    def precheck(self, kind: str | None, *, resume: bool = False, overwrite: bool = False) -> None:
        """The checks of :meth:`begin` that need no settings (writable, not written over in
        silence, resumable as ``kind``), for callers that validate before any work starts."""
        if resume and overwrite:
            raise RunError("--resume and --overwrite exclude each other: continue the run or replace it")
        self.check_writable()
        present = self.is_present()
        if present and not (resume or overwrite):
            raise RunExistsError(
                f"{self.path} already holds {self.describe()}: pass --resume to continue it with the same "
                "settings, --overwrite to replace it, or choose another --out")
        if resume and not present:
            raise RunError(f"nothing to resume: {self.path} holds no run (drop --resume to start one there)")
        if resume and self.has_spec():
            saved = self.spec().get("kind")
            if kind and saved and saved != kind:
                raise RunError(f"{self.path} holds a {KIND_NAMES.get(saved, saved)} run, not a {KIND_NAMES.get(kind, kind)} run: "
                               "it cannot be resumed as one "
                               "(use another --out, or --overwrite to replace it)")

    def begin(self, spec: Mapping, *, resume: bool = False, overwrite: bool = False,
              same: Iterable[str] | None = None) -> bool:
        """Check that the folder may take the run ``spec`` and write ``run.json``; returns whether
        training resumes from a checkpoint. ``same``: the keys of ``spec`` that must equal the
        saved run's to resume (default: all but ``versions`` and ``environment``).

        * a folder that holds a run needs ``resume`` (same kind, same settings) or ``overwrite``;
        * ``resume`` of a run stopped before its first checkpoint starts it again, and says so;
        * ``overwrite`` removes the run's files (and only those) first.
        """
        spec = dict(spec)
        kind = spec.get("kind")
        self.precheck(kind, resume=resume, overwrite=overwrite)
        present = self.is_present()
        resumed = False
        if resume:
            if not self.has_spec():
                raise RunError(f"{self.path} holds run files but no run.json, so it cannot be resumed safely; "
                               "pass --overwrite to start over")
            saved = self.spec()
            keys = list(same) if same is not None else [k for k in spec if k not in ("versions", "environment")]
            norm = json.loads(json.dumps(_jsonable(spec)))
            differ = [k for k in keys if saved.get(k) != norm.get(k)]
            if differ:
                k = differ[0]
                raise RunError(f"cannot resume {self.path}: its {k} differs ({_short(saved.get(k))} saved, "
                               f"{_short(norm.get(k))} now); resume with the saved settings or pass --overwrite")
            resumed = self.has_checkpoint()
            if not resumed:
                warnings.warn(f"{self.path} stopped before its first checkpoint: starting it from the beginning",
                              RuntimeWarning, stacklevel=2)
        elif overwrite and present:
            self.clear()
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_json(SPEC, spec)
        return resumed

    @contextlib.contextmanager
    def start(self, spec: Mapping, *, resume: bool = False, overwrite: bool = False,
              same: Iterable[str] | None = None, main: bool = True) -> Iterator[bool]:
        """``with run.start(spec, resume=...) as resumed:`` the folder locked and its ``run.json``
        written for the block (by the main process; ``main=False`` for other torchrun ranks, which
        only learn whether to resume)."""
        if not main:
            yield bool(resume) and self.has_checkpoint()
            return
        self.check_writable()
        with self.lock():
            yield self.begin(spec, resume=resume, overwrite=overwrite, same=same)

    def clear(self) -> None:
        """Remove the run's own files (not the lock, not files the run did not write)."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for child in ("figures",):
            if (self.path / child).is_dir():
                shutil.rmtree(self.path / child)

    # ---- the cache pattern -----------------------------------------------------------------------
    def reuse_or(self, train: Callable[[bool], Any]) -> dict:
        """The run's result: read back when it is finished, else ``train(resume)`` runs (resuming
        an interrupted run) and its ``result.json`` is read."""
        if not self.is_finished():
            train(self.is_present())
        return self.result()


def _short(v, n: int = 80) -> str:
    s = json.dumps(v, sort_keys=True) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."
