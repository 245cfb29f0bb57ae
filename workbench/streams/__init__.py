"""Fusing whole streams and modalities: compact bilinear fusion (STCB), the two-stream
Spatiotemporal Pyramid Network and Gradient-Blending.

>>> from workbench.streams import run_streams
>>> run_streams("runs/pyramid", fusion="pyramid")          # RGB + exact flow, synthetic-mixed
"""

from .gblend import gblend_weights, offline_weights, ogr_terms
from .models import FUSIONS, AudioEncoder, MultiModalNet, TwoStream, blended_loss, video_stream
from .run import (
    STREAM_FUSIONS,
    build_streams_model,
    history_dataset,
    open_streams,
    read_result,
    run_streams,
)
from .stcb import CompactBilinear, count_sketch, tensor_sketch
from .train import evaluate_heads, train_multimodal

__all__ = [
    "FUSIONS", "STREAM_FUSIONS", "AudioEncoder", "CompactBilinear", "MultiModalNet", "TwoStream", "blended_loss",
    "build_streams_model", "count_sketch", "evaluate_heads", "gblend_weights", "history_dataset",
    "offline_weights", "ogr_terms", "open_streams", "read_result", "run_streams", "tensor_sketch",
    "train_multimodal", "video_stream",
]
