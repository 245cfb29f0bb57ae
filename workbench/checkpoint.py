"""Checkpoints: weights in safetensors, metadata in JSON, both written atomically.

A checkpoint is a pair ``NAME.safetensors`` + ``NAME.json``. The JSON holds what is needed to
rebuild the model (model name or strategy, constructor arguments), free-form metadata, and the
SHA-256 of the weights file, so a truncated or altered file is detected and reported instead of
being loaded. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .strategy import Strategy

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "atomic_write_bytes", "CheckpointError"]

FORMAT = "fusion-workbench-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    model_kwargs: dict | None = None,
    metadata: dict | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save ``model`` (a zoo model: it carries its ``strategy``) as ``path``.safetensors + .json.

    ``model_kwargs`` are the constructor arguments needed to rebuild it (``num_classes``, widths);
    ``extra_tensors`` go into the same safetensors file under ``extra/`` (e.g. optimizer state).
    Returns the path of the weights file.
    """
    wpath, mpath = _paths(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra/{k}"] = v.detach().contiguous().cpu()
    # serialise in memory first so the file appears complete or not at all
    from safetensors.torch import save

    blob = save(tensors)
    strategy = getattr(model, "strategy", None)
    meta = {
        "format": FORMAT,
        "strategy": strategy.to_dict() if isinstance(strategy, Strategy) else None,
        "model_kwargs": model_kwargs or {},
        "metadata": metadata or {},
        "weights_file": wpath.name,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "torch": torch.__version__,
    }
    atomic_write_bytes(wpath, blob)
    atomic_write_bytes(mpath, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return wpath


def read_metadata(path: str | os.PathLike) -> dict:
    _, mpath = _paths(path)
    if not mpath.is_file():
        raise CheckpointError(f"checkpoint metadata {mpath} does not exist (expected NAME.json beside NAME.safetensors)")
    try:
        meta = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint metadata {mpath} is not valid JSON: {e}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{mpath} is not a workbench checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu", build: bool = True):
    """Load a checkpoint: returns ``(model, meta, extra_tensors)``; with ``build=False`` the model
    is the raw state dict. Raises :class:`CheckpointError` naming what is wrong."""
    wpath, _ = _paths(path)
    meta = read_metadata(path)
    if not wpath.is_file():
        raise CheckpointError(f"checkpoint weights {wpath} do not exist")
    digest = hashlib.sha256(wpath.read_bytes()).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise CheckpointError(
            f"checkpoint weights {wpath} are corrupt or were changed: SHA-256 {digest[:12]}... does not "
            f"match the {meta.get('weights_sha256', '')[:12]}... recorded in its metadata"
        )
    try:
        tensors = load_file(str(wpath), device=map_location)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"checkpoint weights {wpath} cannot be read: {e}") from None
    state = {k: v for k, v in tensors.items() if not k.startswith("extra/")}
    extra = {k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")}
    if not build:
        return state, meta, extra
    if not meta.get("strategy"):
        raise CheckpointError(f"{wpath}: metadata has no strategy, so the model cannot be rebuilt (use build=False)")
    from .models import build_model

    model = build_model(Strategy.from_dict(meta["strategy"]), **meta.get("model_kwargs", {}))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{wpath} does not fit its model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model, meta, extra
