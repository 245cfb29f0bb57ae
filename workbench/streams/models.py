"""Networks that fuse whole streams: two-stream RGB + flow (late, STCB, the Spatiotemporal Pyramid
Network) and the multi-head multi-modal network that Gradient-Blending trains.

Every video stream is a zoo backbone (any name of ``workbench zoo``, tiny widths for tests and
CPUs) whose first convolution takes the stream's channels: 3 for RGB, 2 for flow (dx, dy).
Inputs are dicts ``{modality: tensor}`` as the multi-modal datasets give them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .stcb import CompactBilinear

__all__ = [
    "MODALITY_CHANNELS",
    "FUSIONS",
    "AUDIO_ENCODERS",
    "AudioEncoder",
    "MultiModalNet",
    "TwoStream",
    "video_stream",
    "check_batch",
]

#: Channels of each video modality.
MODALITY_CHANNELS = {"rgb": 3, "flow": 2}
#: Two-stream fusions of :class:`TwoStream`.
FUSIONS = ("late", "stcb", "pyramid")
#: What follows an STCB's signed square root in :class:`TwoStream`.
SKETCH_NORMS = ("batch", "l2")


def video_stream(model="r3d_18", *, modality: str = "rgb", tiny: bool = True, frames: int = 8,
                 size: int = 32, backbone_kw: Mapping | None = None, **kw) -> nn.Module:
    """A video backbone whose input is ``modality`` (its channel count): ``model`` is a zoo name,
    or a fusion strategy (a :class:`~workbench.strategy.Strategy` or its dict, e.g. a design of
    the strategy designer) built with ``backbone_kw`` (e.g. the template's model kwargs)."""
    from ..models import build_model, clip_kwargs, create_model, model_info
    from ..strategy import Strategy

    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"no video stream for modality {modality!r}; expected one of: {', '.join(MODALITY_CHANNELS)}")
    num_classes = kw.pop("num_classes", 2)
    if isinstance(model, (Strategy, Mapping)):
        strategy = model if isinstance(model, Strategy) else Strategy.from_dict(dict(model))
        bkw = {k: v for k, v in dict(backbone_kw or {}).items() if k != "num_classes"}
        net = build_model(strategy, channels_last=False, num_classes=num_classes,
                          **{**clip_kwargs(strategy, frames, size), **bkw, **kw})
    else:
        kw = {**model_info(model).clip_kwargs(frames, size), **kw}
        net = create_model(model, tiny=tiny, num_classes=num_classes, channels_last=False, **kw)
    cin = MODALITY_CHANNELS[modality]
    if cin != 3:
        first = next((m for m in net.modules() if isinstance(m, nn.Conv3d)), None)
        if first is None or first.in_channels != 3:  # pragma: no cover - every zoo model starts with a conv
            raise ValueError(f"{model}: cannot find the first convolution to adapt to {cin} channels")
        new = nn.Conv3d(cin, first.out_channels, first.kernel_size, first.stride, first.padding, first.dilation,
                        first.groups, first.bias is not None)
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        _replace_module(net, first, new)
        net.in_channels = cin
    net.modality = modality
    return net


def _replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for mod in root.modules():
        for child_name, child in mod.named_children():
            if child is old:
                setattr(mod, child_name, new)
                return


def _probe(net: nn.Module, shape: Sequence[int], method: str) -> torch.Size:
    """Output shape of ``net.method`` on a zero batch of ``shape`` (without touching BN statistics)."""
    was = net.training
    net.eval()
    with torch.no_grad():
        out = getattr(net, method)(torch.zeros(1, *shape))
    net.train(was)
    return out.shape


def check_batch(batch, needed: Sequence[str], what: str) -> None:
    """A clear error unless ``batch`` is a dict holding every modality in ``needed``, with one batch size."""
    if not isinstance(batch, Mapping):
        raise ValueError(f"{what} expects a dict {{modality: tensor}} with {', '.join(needed)}; "
                         f"got {type(batch).__name__} (open the dataset with modalities={tuple(needed)})")
    missing = [m for m in needed if m not in batch]
    if missing:
        raise ValueError(f"{what} needs modalities {', '.join(needed)}; the batch has no {', '.join(missing)} "
                         f"(it has {', '.join(batch) or 'nothing'})")
    sizes = {m: int(batch[m].shape[0]) for m in needed}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{what}: the streams disagree on the batch size: {sizes}")


def _check_video_pair(rgb: torch.Tensor, flow: torch.Tensor) -> None:
    if rgb.dim() != 5 or flow.dim() != 5:
        raise ValueError(f"two-stream input: rgb and flow must be B C T H W, got {tuple(rgb.shape)} and {tuple(flow.shape)}")
    if rgb.shape[2] != flow.shape[2]:
        raise ValueError(f"two-stream input: rgb has {rgb.shape[2]} frames and flow {flow.shape[2]}; the streams "
                         f"must cover the same frames (flow[:, t] is the motion from frame t to t+1)")
    if rgb.shape[3:] != flow.shape[3:]:
        raise ValueError(f"two-stream input: rgb frames are {tuple(rgb.shape[3:])} and flow frames "
                         f"{tuple(flow.shape[3:])}; resize them alike")


class TwoStream(nn.Module):
    """RGB + optical-flow network with one of :data:`FUSIONS`.

    ``late``
        each stream classifies, the logits are averaged (the classic two-stream network).
    ``stcb``
        the pooled features of both streams meet in one compact bilinear fusion, then a classifier.
    ``pyramid``
        the Spatiotemporal Pyramid Network, each part a switch:

        * ``snippets=K`` (multi-snippet temporal fusion): the flow clip is cut into ``K``
          consecutive snippets spread over the clip; one weight-shared flow stream sees each and
          STCB merges the ``K`` vectors (``K=1``: the flow stream sees the whole clip);
        * ``attention``: the RGB stream's last feature map (averaged over time) is pooled with
          weights that motion decides: each location is STCB-fused with the flow vector, two
          1x1 convolutions and a softmax over locations give the weights (off: average pooling);
        * ``final``: ``"stcb"`` fuses the pooled RGB, flow and attended vectors with one STCB,
          ``"concat"`` concatenates them.

    STCB outputs pass a signed square root, then (``sketch_norm``) a batch norm (``"batch"``) or
    an L2 normalisation scaled to unit mean square entries (``"l2"``, the usual compact bilinear
    pooling: a sketch's scale follows the product of its inputs' scales, and a batch norm's running
    statistics lag behind it while the streams change fast) before the next layer.
    """

    def __init__(self, rgb: nn.Module, flow: nn.Module, num_classes: int, *, fusion: str = "pyramid",
                 frames: int = 8, size: int = 32, snippets: int = 2, attention: bool = True, final: str = "stcb",
                 d_temporal: int = 1024, d_attention: int = 512, d_final: int = 2048, dropout: float = 0.0,
                 seed: int = 0, sketch_norm: str = "batch") -> None:
        super().__init__()
        if sketch_norm not in SKETCH_NORMS:
            raise ValueError(f"sketch_norm must be one of: {', '.join(SKETCH_NORMS)}; got {sketch_norm!r}")
        self.sketch_norm = sketch_norm
        if fusion not in FUSIONS:
            raise ValueError(f"unknown two-stream fusion {fusion!r}; expected one of: {', '.join(FUSIONS)}")
        if final not in ("stcb", "concat"):
            raise ValueError(f"final must be 'stcb' or 'concat', got {final!r}")
        if fusion != "pyramid":
            snippets, attention, final = 1, False, "stcb"
        if not isinstance(snippets, int) or snippets < 1 or frames % snippets:
            raise ValueError(f"snippets must be a positive divisor of frames={frames}, got {snippets!r}")
        self.rgb, self.flow = rgb, flow
        self.fusion, self.snippets, self.attention, self.final = fusion, snippets, attention, final
        self.frames, self.size, self.num_classes = frames, size, num_classes
        c_rgb = _probe(rgb, (3, frames, size, size), "forward_features")[1]
        c_flow = _probe(flow, (2, frames // snippets, size, size), "forward_features")[1]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if fusion == "late":
            self.fc_rgb = nn.Linear(c_rgb, num_classes)
            self.fc_flow = nn.Linear(c_flow, num_classes)
            return
        if fusion == "stcb":
            self.fuse = CompactBilinear((c_rgb, c_flow), d_final, seed=seed, signed_sqrt=True)
            self.norm = _sketch_norm(sketch_norm, d_final)
            self.fc = nn.Linear(d_final, num_classes)
            return
        d_t = c_flow
        if snippets > 1:
            self.temporal = CompactBilinear([c_flow] * snippets, d_temporal, seed=seed + 1, signed_sqrt=True)
            self.temporal_norm = _sketch_norm(sketch_norm, d_temporal)
            d_t = d_temporal
        c_map = _probe(rgb, (3, frames, size, size), "forward_map")[1]
        parts = [c_map, d_t]
        if attention:
            self.attend = CompactBilinear((c_map, d_t), d_attention, seed=seed + 2, signed_sqrt=True)
            self.attend_net = nn.Sequential(
                nn.Conv2d(d_attention, 64, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.Conv2d(64, 1, 1))
            parts.append(c_map)
        if final == "stcb":
            self.fuse = CompactBilinear(parts, d_final, seed=seed + 3, signed_sqrt=True)
            self.norm = _sketch_norm(sketch_norm, d_final)
            self.fc = nn.Linear(d_final, num_classes)
        else:
            self.norm = nn.BatchNorm1d(sum(parts))
            self.fc = nn.Linear(sum(parts), num_classes)

    def flow_vector(self, flow: torch.Tensor) -> torch.Tensor:
        if self.snippets == 1:
            return self.flow.forward_features(flow)
        b, c, t, h, w = flow.shape
        k = self.snippets
        # B C (K t') H W -> (B K) C t' H W: the snippets go through one weight-shared stream
        x = flow.reshape(b, c, k, t // k, h, w).transpose(1, 2).reshape(b * k, c, t // k, h, w)
        v = self.flow.forward_features(x).reshape(b, k, -1)
        return self.temporal_norm(self.temporal(*v.unbind(1)))

    def attention_map(self, rgb_map: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
        """Pooling weights over the RGB map's locations, ``B H' W'`` (they sum to one)."""
        a = rgb_map.permute(0, 2, 3, 1)  # B H W C
        z = self.attend(a, v_t[:, None, None, :])  # B H W d
        logits = self.attend_net(z.permute(0, 3, 1, 2))[:, 0]  # B H W
        return torch.softmax(logits.flatten(1), 1).view_as(logits)

    def forward(self, batch) -> torch.Tensor:
        check_batch(batch, ("rgb", "flow"), "TwoStream")
        rgb, flow = batch["rgb"], batch["flow"]
        _check_video_pair(rgb, flow)
        if self.fusion == "late":
            return 0.5 * (self.fc_rgb(self.dropout(self.rgb.forward_features(rgb)))
                          + self.fc_flow(self.dropout(self.flow.forward_features(flow))))
        if self.fusion == "stcb":
            z = self.fuse(self.rgb.forward_features(rgb), self.flow.forward_features(flow))
            return self.fc(self.dropout(self.norm(z)))
        rgb_map = self.rgb.forward_map(rgb).mean(2)  # B C H' W'
        v_s = rgb_map.mean((2, 3))
        v_t = self.flow_vector(flow)
        parts = [v_s, v_t]
        if self.attention:
            w = self.attention_map(rgb_map, v_t)
            parts.append((rgb_map * w[:, None]).sum((2, 3)))
        z = self.fuse(*parts) if self.final == "stcb" else torch.cat(parts, 1)
        return self.fc(self.dropout(self.norm(z)))


#: The audio encoders of :class:`AudioEncoder`.
from .run import AUDIO_ENCODERS  # noqa: E402  (torch-free: the CLI lists them)


class _UnitL2(nn.Module):
    """``x / ||x|| * sqrt(d)``: L2 normalisation scaled so that the entries have unit mean square."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * x.shape[-1] ** 0.5


def _sketch_norm(kind: str, dim: int) -> nn.Module:
    return nn.BatchNorm1d(dim) if kind == "batch" else _UnitL2()


class AudioEncoder(nn.Module):
    """A 1-D encoder of a ``B 1 L`` waveform.

    ``"mlp"``
        two hidden layers on the raw samples: many weights per sample, so it memorises a small
        training set (its noise) quickly;
    ``"cnn"``
        three strided conv-BN-ReLU layers and global pooling;
    ``"spectral"``
        the magnitude spectrum pooled into log-spaced bands (``log1p`` of the mean ``|rfft|`` per
        band, as a mel filterbank does: narrow bands at low frequencies, wide ones above; blind to
        phase), a batch norm and one ReLU layer of ``width // 16`` units. Few inputs and few
        weights: it learns which tones a class has rather than the noise of each training clip
        (on 256 noisy samples the raw-sample ``"mlp"`` fits the uninformative clips' labels within
        four epochs; see reports/streams.md).
    """

    def __init__(self, length: int, kind: str = "mlp", width: int = 256, bands: int = 32) -> None:
        super().__init__()
        if kind not in AUDIO_ENCODERS:
            raise ValueError(f"unknown audio encoder {kind!r}; expected one of: {', '.join(AUDIO_ENCODERS)}")
        self.length, self.kind = int(length), kind
        if kind == "mlp":
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(self.length, width), nn.ReLU(inplace=True),
                                     nn.Linear(width, width), nn.ReLU(inplace=True))
            self.feature_dim = width
        elif kind == "spectral":
            spectrum = _BandSpectrum(self.length, bands)
            hidden = max(width // 16, 8)
            self.net = nn.Sequential(spectrum, nn.BatchNorm1d(spectrum.bands), nn.Linear(spectrum.bands, hidden),
                                     nn.ReLU(inplace=True))
            self.feature_dim = hidden
        else:
            c = max(width // 8, 8)
            layers, cin = [], 1
            for cout in (c, 2 * c, 4 * c):
                layers += [nn.Conv1d(cin, cout, 9, 2, 4, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
                cin = cout
            self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten())
            self.feature_dim = cin

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.length:
            raise ValueError(f"AudioEncoder expects B 1 {self.length} waveforms, got shape {tuple(x.shape)}")
        return self.net(x)


class _BandSpectrum(nn.Module):
    """``B 1 L`` waveforms -> ``B bands'`` log band energies: ``log1p`` of the mean ``|rfft(x)|``
    over each of ``bands`` log-spaced bands of the ``L // 2 + 1`` bins from bin 1 up (bands that
    round to the same bins are merged, so ``bands' <= bands``; the constant bin 0 is left out)."""

    def __init__(self, length: int, bands: int) -> None:
        super().__init__()
        import numpy as np

        if not isinstance(bands, int) or bands < 1:
            raise ValueError(f"bands must be a positive integer, got {bands!r}")
        bins = length // 2 + 1
        edges = np.unique(np.round(np.geomspace(1, bins, bands + 1)).astype(int))
        pool = torch.zeros(len(edges) - 1, bins)
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            pool[i, lo:hi] = 1.0 / (hi - lo)
        self.register_buffer("pool", pool)
        self.bands = int(pool.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag = torch.fft.rfft(x[:, 0].float(), dim=-1).abs()
        return torch.log1p(mag @ self.pool.T).to(x.dtype)


class MultiModalNet(nn.Module):
    """One encoder and one classifier head per modality, plus a fused head on their concatenated
    features (late fusion by concatenation, as in Gradient-Blending). ``forward`` returns
    ``{modality: logits, ..., "fused": logits}`` (no fused head with a single modality)."""

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int, *, dropout: float = 0.0,
                 feature_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("MultiModalNet needs at least one modality encoder")
        if "fused" in encoders:
            raise ValueError("'fused' names the fused head; it cannot be a modality")
        self.modalities = tuple(encoders)
        self.encoders = nn.ModuleDict(dict(encoders))
        dims = {}
        for m, enc in encoders.items():
            dim = getattr(enc, "feature_dim", None)
            if feature_shapes is not None and m in feature_shapes:
                dim = _probe(enc, feature_shapes[m], "forward_features")[1]
            if dim is None:
                raise ValueError(f"encoder {m!r} has no feature_dim; pass feature_shapes={{{m!r}: input shape}}")
            dims[m] = int(dim)
        self.feature_dims = dims
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})
        if len(dims) > 1:
            self.heads["fused"] = nn.Linear(sum(dims.values()), num_classes)
        self.num_classes = num_classes

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(self.heads)

    def forward(self, batch) -> dict[str, torch.Tensor]:
        check_batch(batch, self.modalities, "MultiModalNet")
        feats = {m: self.encoders[m].forward_features(batch[m]) for m in self.modalities}
        out = {m: self.heads[m](self.dropout(f)) for m, f in feats.items()}
        if "fused" in self.heads:
            out["fused"] = self.heads["fused"](self.dropout(torch.cat([feats[m] for m in self.modalities], 1)))
        return out


def blended_loss(logits: Mapping[str, torch.Tensor], target: torch.Tensor, weights: Mapping[str, float]):
    """``sum_k w_k CE(logits_k, target)`` over the heads with a weight (Gradient-Blending's loss)."""
    unknown = [k for k in weights if k not in logits]
    if unknown:
        raise ValueError(f"loss weights name head(s) {', '.join(unknown)} that the model does not have "
                         f"(heads: {', '.join(logits)})")
    total = None
    for k, w in weights.items():
        if w:
            term = float(w) * F.cross_entropy(logits[k], target)
            total = term if total is None else total + term
    if total is None:
        raise ValueError(f"every loss weight is zero: {dict(weights)}")
    return total
