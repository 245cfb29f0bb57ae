"""Fusing whole streams and modalities: compact bilinear fusion (STCB), the two-stream
Spatiotemporal Pyramid Network and Gradient-Blending.

>>> from workbench.streams import run_streams
>>> run_streams("runs/pyramid", fusion="pyramid")          # RGB + exact flow, synthetic-mixed
"""

import importlib

#: where each public name lives; modules load on first use, so that importing a torch-free part
#: (``workbench.streams.run.STREAM_FUSIONS`` for the command line) does not import torch
_WHERE = {
    "gblend": ("gblend_weights", "offline_weights", "ogr_terms"),
    "models": ("FUSIONS", "AudioEncoder", "MultiModalNet", "TwoStream", "blended_loss", "video_stream"),
    "run": ("STREAM_FUSIONS", "build_streams_model", "history_dataset", "open_streams", "read_result", "run_streams"),
    "stcb": ("CompactBilinear", "count_sketch", "tensor_sketch"),
    "train": ("evaluate_heads", "train_multimodal"),
}
_MODULE_OF = {name: mod for mod, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    mod = _MODULE_OF.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
