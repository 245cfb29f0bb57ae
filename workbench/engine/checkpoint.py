"""Checkpoints: one safetensors file that carries its own metadata, written atomically.

A checkpoint ``NAME.safetensors`` holds the weights (and, under ``extra/``, extra tensors such as
optimizer state) and, in the safetensors header's ``__metadata__``, the workbench metadata as JSON:
what is needed to rebuild the model (model name or strategy, constructor arguments), free-form
metadata, and a SHA-256 over the metadata, the tensor index and the tensor bytes. One file, one
``rename``: a crash at any instant leaves the previous complete checkpoint or the new one, never
new weights beside old metadata. Editing any byte, metadata included, is detected and reported
instead of being loaded. Nothing is ever unpickled.

Each save keeps the previous checkpoint as ``prev.safetensors`` beside ``last.safetensors``
(:func:`load_latest` falls back to it, and says so, when the latest one is unreadable).

Checkpoints of the first format (``NAME.safetensors`` + ``NAME.json``, the SHA-256 of the weights
in the JSON) still load.

Fault injection, for tests: ``WORKBENCH_FAULT=checkpoint:STEP:ACTION`` with STEP one of
:data:`FAULT_STEPS` and ACTION ``crash`` (the process dies at once, as under ``kill -9``) or
``pause`` (it prints ``WORKBENCH_FAULT_PAUSED <pid> <step>`` on stderr and sleeps, so that a test
can kill it at that instant). ``WORKBENCH_FAULT_AT=N`` applies the fault at the N-th save (default 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from workbench.runs import atomic_write_bytes, fsync_dir, write_temp
from workbench.strategy import Strategy

__all__ = ["save_checkpoint", "load_checkpoint", "load_latest", "read_metadata", "checkpoint_exists",
           "atomic_write_bytes", "CheckpointError", "FAULT_STEPS"]

FORMAT = "fusion-workbench-checkpoint/2"
FORMAT_V1 = "fusion-workbench-checkpoint/1"
_META_KEY, _DIGEST_KEY = "workbench", "workbench_sha256"
#: the moments of a checkpoint write at which a fault can be injected
FAULT_STEPS = ("begin", "temp-written", "previous-kept", "replaced")
_saves = 0


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit."""


def _fault(step: str) -> None:
    spec = os.environ.get("WORKBENCH_FAULT", "")
    if not spec.startswith("checkpoint:"):
        return
    _, where, action = (spec.split(":") + ["crash"])[:3]
    if where != step or _saves != int(os.environ.get("WORKBENCH_FAULT_AT", "1")):
        return
    if action == "pause":
        print(f"WORKBENCH_FAULT_PAUSED {os.getpid()} {step}", file=sys.stderr, flush=True)
        time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def checkpoint_exists(path: str | os.PathLike) -> bool:
    """Whether a checkpoint (either format) is at ``path`` (``NAME`` or ``NAME.safetensors``)."""
    wpath, mpath = _paths(path)
    return wpath.is_file() or mpath.is_file()


def _header(blob: bytes, where: Path) -> tuple[int, dict]:
    if len(blob) < 8:
        raise CheckpointError(f"checkpoint {where} is truncated ({len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or 8 + n > len(blob):
        raise CheckpointError(f"checkpoint {where} is truncated or corrupt (not a complete safetensors file)")
    try:
        header = json.loads(blob[8:8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"checkpoint {where} has a corrupt header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {where} has a corrupt header")
    return n, header


def _digest(index: dict, meta_json: str, data: bytes) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(index, sort_keys=True).encode())
    h.update(b"\0")
    h.update(meta_json.encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    model_kwargs: dict | None = None,
    metadata: dict | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    keep_previous: bool = True,
) -> Path:
    """Save ``model`` (a zoo model: it carries its ``strategy``) as ``path``.safetensors.

    ``model_kwargs`` are the constructor arguments needed to rebuild it (``num_classes``, widths);
    ``extra_tensors`` go into the same file under ``extra/`` (e.g. optimizer state). With
    ``keep_previous``, the checkpoint it replaces stays as ``prev.safetensors`` beside it (for
    ``NAME = last``; ``NAME.prev.safetensors`` otherwise). Returns the path of the file.
    """
    global _saves
    _saves += 1
    wpath, mpath = _paths(path)
    _fault("begin")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra/{k}"] = v.detach().contiguous().cpu()
    strategy = getattr(model, "strategy", None)
    meta = {
        "format": FORMAT,
        "strategy": strategy.to_dict() if isinstance(strategy, Strategy) else None,
        "model_kwargs": model_kwargs or {},
        "metadata": metadata or {},
        "torch": torch.__version__,
    }
    meta_json = json.dumps(meta, sort_keys=True)
    plain = save_bytes(tensors)  # the tensor bytes do not depend on the header's metadata
    n, index = _header(plain, wpath)
    index.pop("__metadata__", None)
    data = plain[8 + n:]
    blob = save_bytes(tensors, metadata={_META_KEY: meta_json, _DIGEST_KEY: _digest(index, meta_json, data)})
    n2, _ = _header(blob, wpath)
    if blob[8 + n2:] != data:  # pragma: no cover - safetensors' layout guarantee, checked once per save
        raise CheckpointError("safetensors laid the tensors out differently with metadata; cannot save")
    del plain
    tmp = write_temp(wpath, blob)
    try:
        _fault("temp-written")
        if keep_previous and wpath.is_file():
            prev = _previous(wpath)
            ptmp = tempfile.mktemp(prefix=f".{prev.name}.", dir=wpath.parent)
            try:
                os.link(wpath, ptmp)
            except OSError:  # file systems without hard links
                shutil.copy2(wpath, ptmp)
            os.replace(ptmp, prev)
            if mpath.is_file() and not _embedded(wpath):  # a first-format pair: keep its JSON too
                shutil.copy2(mpath, prev.with_suffix(".json"))
            _fault("previous-kept")
        os.replace(tmp, wpath)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(wpath.parent)
    _fault("replaced")
    mpath.unlink(missing_ok=True)  # the first format's metadata, now stale
    return wpath


def _previous(wpath: Path) -> Path:
    return wpath.with_name("prev.safetensors" if wpath.stem == "last" else f"{wpath.stem}.prev.safetensors")


def _embedded(wpath: Path) -> bool:
    try:
        with open(wpath, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            header = json.loads(f.read(n)) if 0 < n < 100_000_000 else {}
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and _META_KEY in (header.get("__metadata__") or {})


def _read(wpath: Path) -> tuple[dict, bytes | None]:
    """``(meta, blob)`` of a checkpoint of either format; ``blob`` is None for the first format
    (whose weights are checked against their JSON by the caller)."""
    _, mpath = _paths(wpath)
    if wpath.is_file():
        blob = wpath.read_bytes()
        n, header = _header(blob, wpath)
        extra = header.get("__metadata__") or {}
        if _META_KEY in extra:
            meta_json = extra[_META_KEY]
            index = {k: v for k, v in header.items() if k != "__metadata__"}
            digest = _digest(index, meta_json, blob[8 + n:])
            if digest != extra.get(_DIGEST_KEY):
                raise CheckpointError(
                    f"checkpoint {wpath} is corrupt or was changed: its SHA-256 {digest[:12]}... does not match "
                    f"the {str(extra.get(_DIGEST_KEY, ''))[:12]}... it records (metadata and weights are both covered)")
            try:
                meta = json.loads(meta_json)
            except json.JSONDecodeError:  # pragma: no cover - the digest matched, so we wrote it
                raise CheckpointError(f"checkpoint {wpath} has unreadable metadata") from None
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{wpath} is not a workbench checkpoint (format {meta.get('format')!r})")
            return meta, blob
    if mpath.is_file():  # first format: NAME.json beside NAME.safetensors
        try:
            meta = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"checkpoint metadata {mpath} is not valid JSON: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_V1:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError(f"{mpath} is not a workbench checkpoint (format {fmt!r}, expected {FORMAT!r})")
        return meta, None
    if wpath.is_file():
        raise CheckpointError(f"{wpath} is a safetensors file without workbench metadata (not a workbench checkpoint)")
    raise CheckpointError(f"checkpoint {wpath} does not exist")


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of the checkpoint at ``path``, its integrity checked."""
    wpath, _ = _paths(path)
    meta, _ = _read(wpath)
    if meta.get("format") == FORMAT_V1:
        _check_v1(wpath, meta)
    return meta


def _check_v1(wpath: Path, meta: dict) -> bytes:
    if not wpath.is_file():
        raise CheckpointError(f"checkpoint weights {wpath} do not exist")
    blob = wpath.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise CheckpointError(
            f"checkpoint weights {wpath} are corrupt or were changed: SHA-256 {digest[:12]}... does not "
            f"match the {str(meta.get('weights_sha256', ''))[:12]}... recorded in its metadata"
        )
    return blob


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu", build: bool = True):
    """Load a checkpoint: returns ``(model, meta, extra_tensors)``; with ``build=False`` the model
    is the raw state dict. Raises :class:`CheckpointError` naming what is wrong."""
    wpath, _ = _paths(path)
    meta, blob = _read(wpath)
    if blob is None:
        blob = _check_v1(wpath, meta)
    try:
        tensors = load_bytes(blob)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint weights {wpath} cannot be read: {e}") from None
    if map_location != "cpu":
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    state = {k: v for k, v in tensors.items() if not k.startswith("extra/")}
    extra = {k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")}
    if not build:
        return state, meta, extra
    if not meta.get("strategy"):
        raise CheckpointError(f"{wpath}: metadata has no strategy, so the model cannot be rebuilt (use build=False)")
    from workbench.models import build_model

    try:
        model = build_model(Strategy.from_dict(meta["strategy"]), **meta.get("model_kwargs", {}))
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{wpath}: its metadata does not describe a model this workbench builds: {e}") from None
    load_state_checked(model, state, wpath)
    return model, meta, extra


def load_state_checked(model: torch.nn.Module, state: dict, where, *, strict: bool = True) -> None:
    """``model.load_state_dict(state)``, with a mismatch reported as one :class:`CheckpointError`
    line (which tensors are missing, unexpected or of another shape) instead of torch's report."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes or (strict and (missing or unexpected)):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                         f"{tuple(own[k].shape)} in the model)")
        raise CheckpointError(f"{where} does not fit this model: tensors " + ", ".join(parts)
                              + "; it was written for another architecture or run kind")
    model.load_state_dict(state, strict=strict)


def load_latest(path: str | os.PathLike, *, map_location: str = "cpu", build: bool = False):
    """:func:`load_checkpoint` of ``path``; when that one is missing or unreadable and the previous
    checkpoint kept beside it is complete, that one, with a warning naming both."""
    wpath, _ = _paths(path)
    try:
        return load_checkpoint(wpath, map_location=map_location, build=build)
    except CheckpointError as e:
        prev = _previous(wpath)
        if not checkpoint_exists(prev):
            raise
        try:
            out = load_checkpoint(prev, map_location=map_location, build=build)
        except CheckpointError:
            raise e from None
        epoch = out[1].get("metadata", {}).get("epoch")
        at = f" (its records end at epoch {epoch})" if isinstance(epoch, int) else ""
        warnings.warn(f"{e}; falling back to the previous complete checkpoint {prev}{at}",
                      RuntimeWarning, stacklevel=2)
        return out
