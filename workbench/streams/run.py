"""Stream-fusion runs from names: open the modalities, build the network, train, score, save.

:func:`run_streams` is what ``workbench streams train`` calls; its folder holds ``run.json`` (what
was asked), ``last.safetensors`` (resumable), ``history.json``, ``result.json``
(test top-1 per head) and ``results.nc`` (the per-epoch curves as an ``xarray.Dataset``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..runs import Run, environment

__all__ = ["STREAM_FUSIONS", "open_streams", "build_streams_model", "run_streams", "history_dataset",
           "read_result"]

#: ``late`` / ``stcb`` / ``pyramid``: two-stream RGB + flow; ``gblend``: the multi-head network
#: (any modalities) trained with blended losses.
#: the audio encoders of a multi-modal network (:func:`workbench.streams.models.audio_encoder`)
AUDIO_ENCODERS = ("mlp", "cnn", "spectral")
STREAM_FUSIONS = ("late", "stcb", "pyramid", "gblend")


def open_streams(dataset: str, modalities: Sequence[str], *, root=None, flow_root=None, flow_bound: float = 20.0,
                 splits=("train", "val", "test"), **data_kw):
    """The splits of ``dataset`` with items ``({modality: tensor}, label)``.

    Synthetic datasets give any of rgb, flow (exact) and audio. Real datasets give rgb and the
    precomputed flow under ``flow_root`` (:class:`~workbench.data.flow.FlowVideoDataset`; the
    test split is scored on its centre clip, like the val split)."""
    from ..data import REAL_DATASETS, SYNTHETIC_DATASETS
    from ..data.synthetic import check_modalities, make_synthetic

    mods = check_modalities(modalities)
    if dataset in SYNTHETIC_DATASETS:
        return {s: make_synthetic(dataset, split=s, modalities=mods, cache=True, **data_kw) for s in splits}
    if dataset not in REAL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of: {', '.join(SYNTHETIC_DATASETS + REAL_DATASETS)}")
    if set(mods) != {"rgb", "flow"}:
        raise ValueError(f"real datasets give rgb and flow (from --flow-root); got modalities {list(mods)}")
    if flow_root is None:
        raise ValueError(f"{dataset}: pass flow_root (--flow-root), the folder of the precomputed flow frames "
                         f"(FLOW_ROOT/<Class>/<video>/flow_x_00001.jpg ...; `workbench data flow` computes them)")
    from ..data.dataset import make_dataset
    from ..data.flow import FlowVideoDataset

    out = {}
    for s in splits:
        kw = dict(data_kw)
        if s == "test":
            kw.setdefault("mode", "val")
        out[s] = FlowVideoDataset(make_dataset(dataset, root, s, **kw), flow_root, bound=flow_bound)
    return out


def build_streams_model(fusion: str, modalities: Sequence[str], num_classes: int, *, frames: int, size: int,
                        backbone="r3d_18", tiny: bool = True, backbone_kw: Mapping | None = None,
                        audio_length: int = 256,
                        audio_encoder: str = "mlp", snippets: int = 2, attention: bool = True, final: str = "stcb",
                        d_temporal: int = 1024, d_attention: int = 512, d_final: int = 2048, dropout: float = 0.0,
                        seed: int = 0, sketch_norm: str = "batch"):
    """The network of ``fusion`` over ``modalities`` (see :data:`STREAM_FUSIONS`). ``backbone``: a
    zoo name or a strategy (or its dict) built with ``backbone_kw``, for every video stream."""
    from .models import AudioEncoder, MultiModalNet, TwoStream, video_stream

    mods = tuple(modalities)
    if fusion not in STREAM_FUSIONS:
        raise ValueError(f"unknown stream fusion {fusion!r}; expected one of: {', '.join(STREAM_FUSIONS)}")
    if fusion != "gblend":
        if set(mods) != {"rgb", "flow"}:
            raise ValueError(f"fusion {fusion!r} fuses an RGB and a flow stream; got modalities {list(mods)} "
                             f"(use --modalities rgb flow, or --fusion gblend for other modalities)")
        k = snippets if fusion == "pyramid" else 1
        if frames % k:
            raise ValueError(f"snippets must divide the clip's {frames} frames, got {snippets}")
        torch_seed(seed)
        rgb = video_stream(backbone, modality="rgb", tiny=tiny, frames=frames, size=size, backbone_kw=backbone_kw)
        flow = video_stream(backbone, modality="flow", tiny=tiny, frames=frames // k, size=size,
                            backbone_kw=backbone_kw)
        return TwoStream(rgb, flow, num_classes, fusion=fusion, frames=frames, size=size, snippets=snippets,
                         attention=attention, final=final, d_temporal=d_temporal, d_attention=d_attention,
                         d_final=d_final, dropout=dropout, seed=seed, sketch_norm=sketch_norm)
    torch_seed(seed)
    encoders = {}
    shapes = {}
    for m in mods:
        if m == "audio":
            encoders[m] = AudioEncoder(audio_length, audio_encoder)
        else:
            encoders[m] = video_stream(backbone, modality=m, tiny=tiny, frames=frames, size=size,
                                       backbone_kw=backbone_kw)
            shapes[m] = ({"rgb": 3, "flow": 2}[m], frames, size, size)
    return MultiModalNet(encoders, num_classes, dropout=dropout, feature_shapes=shapes)


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(int(seed))


def history_dataset(history: Mapping, attrs: Mapping | None = None):
    """A training history as ``xarray.Dataset`` (epoch x head): losses, accuracies, loss weights."""
    import xarray as xr

    heads = list(history["val_loss"])
    epochs = list(history["epoch"])
    data = {}
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        data[key] = (("epoch", "head"), np.array([history[key][h] for h in heads], dtype=float).T)
    w = np.array([[float(wt.get(h, 0.0)) for h in heads] for wt in history["weights"]])
    data["weight"] = (("epoch", "head"), w)
    data["seconds"] = ("epoch", np.asarray(history["seconds"], dtype=float))
    return xr.Dataset(data, coords={"epoch": epochs, "head": heads},
                      attrs={k: (json.dumps(v) if not isinstance(v, (str, int, float)) else v)
                             for k, v in (attrs or {}).items()})


def read_result(folder) -> dict:
    run = Run(folder)
    if not run.is_finished():
        raise FileNotFoundError(f"{folder} has no result.json: not a finished `workbench streams train` run")
    return run.result()


def run_streams(out, *, dataset: str = "synthetic-mixed", fusion: str = "pyramid",
                modalities: Sequence[str] | None = None, train_config=None, weights: Mapping[str, float] | None = None,
                blend: str = "fixed", super_epoch: int = 2, noise_floor: bool = False, smoothing: float = 0.0,
                model_kw: Mapping | None = None,
                data_kw: Mapping | None = None, root=None, flow_root=None, resume: bool = False,
                overwrite: bool = False, on_epoch=None) -> dict:
    """Train one stream-fusion network on ``dataset`` and score it on the test split (a folder
    that holds a run needs ``resume`` or ``overwrite``: :meth:`~workbench.runs.Run.begin`).
    ``noise_floor`` and ``smoothing``: online G-Blend's estimates (see
    :func:`~workbench.streams.train.train_multimodal`)."""
    from workbench.engine.config import TrainConfig

    from ..data import check_data_args

    out = Path(out)
    run = Run(out)
    check_data_args(dataset, root, data_kw, splits=("train", "val", "test"))
    run.precheck("streams", resume=resume, overwrite=overwrite)
    cfg = train_config or TrainConfig(epochs=10, batch_size=16, lr=3e-3)
    mods = tuple(modalities or (("rgb", "flow") if fusion != "gblend" else ("rgb", "audio")))
    data_kw = dict(data_kw or {})
    model_kw = dict(model_kw or {})
    splits = open_streams(dataset, mods, root=root, flow_root=flow_root, **data_kw)
    first, _ = splits["train"][0]
    video = next((first[m] for m in ("rgb", "flow") if m in first), None)
    frames, size = (int(video.shape[1]), int(video.shape[-1])) if video is not None else (8, 32)
    model_kw.setdefault("seed", cfg.seed)
    if "audio" in mods:
        model_kw.setdefault("audio_length", int(first["audio"].shape[-1]))
    model = build_streams_model(fusion, mods, len(splits["train"].classes), frames=frames, size=size, **model_kw)
    spec = {"kind": "streams", "dataset": dataset, "root": str(root) if root else None, "flow_root": str(flow_root) if flow_root else None,
            "data_kw": data_kw, "fusion": fusion, "modalities": list(mods),
            "model_kw": model_kw, "train_config": cfg.to_dict(), "weights": dict(weights) if weights else None,
            "blend": blend, "super_epoch": super_epoch}
    if noise_floor or smoothing:  # recorded when used, so that older run folders keep their settings
        spec["online"] = {"noise_floor": bool(noise_floor), "smoothing": float(smoothing)}
    # runs written before run.json named its kind resume as streams runs
    same = [k for k in spec if k != "kind"] if run.has_spec() and "kind" not in run.spec() else None
    with run.start({**spec, "environment": environment(cfg.device)}, resume=resume, overwrite=overwrite,
                   same=same) as resumed:
        return _run_streams(run, model, splits, cfg, mods, fusion, dataset, weights, blend, super_epoch,
                            model_kw, resumed, on_epoch, noise_floor=noise_floor, smoothing=smoothing)


def _run_streams(run, model, splits, cfg, mods, fusion, dataset, weights, blend, super_epoch, model_kw, resume,
                 on_epoch, *, noise_floor: bool = False, smoothing: float = 0.0) -> dict:
    from ..analysis import save_netcdf
    from .train import evaluate_heads, train_multimodal

    out = run.path
    history = train_multimodal(model, splits["train"], splits["val"], cfg, weights=weights, blend=blend,
                               super_epoch=super_epoch, noise_floor=noise_floor, smoothing=smoothing,
                               out_dir=out, resume=resume,
                               model_kwargs={"fusion": fusion, **model_kw}, on_epoch=on_epoch)
    test = evaluate_heads(model, splits["test"], batch_size=cfg.batch_size * 2, device=cfg.device,
                          weights=history["final_weights"] if len(history["final_weights"]) > 1 else None)
    params = sum(p.numel() for p in model.parameters())
    from workbench.engine.loop import skipped_videos

    skipped = {split: skipped_videos(ds) for split, ds in splits.items()}
    result = {"skipped_videos": {"count": sum(len(v) for v in skipped.values()),
                                 "per_epoch": history.get("skipped", []), **skipped},
              "test": test, "params": int(params), "final_weights": history["final_weights"],
              "seconds": float(sum(history["seconds"])), "fusion": fusion, "modalities": list(mods)}
    run.write_result(result)
    save_netcdf(history_dataset(history, {"fusion": fusion, "dataset": dataset, "blend": blend}), out / "results.nc")
    return {"model": model, "history": history, "result": result, "folder": str(out)}
