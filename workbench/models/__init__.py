"""The model zoo: backbones built from (backbone, strategy), and named models behind one door.

>>> from workbench.models import create_model
>>> model = create_model("r2plus1d_18", num_classes=10, tiny=True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..strategy import Strategy, parse_strategy, preset
from .base import VideoModel, check_clip
from .c3d import C3D
from .densenet3d import DenseTemplate
from .resnet3d import VideoResNet
from .torchvision_compat import from_torchvision_state_dict, torchvision_state_dict_keys

__all__ = [
    "C3D",
    "DenseTemplate",
    "VideoModel",
    "VideoResNet",
    "build_model",
    "clip_kwargs",
    "check_clip",
    "create_model",
    "from_torchvision_state_dict",
    "list_models",
    "model_info",
    "torchvision_state_dict_keys",
]

# Settings that make any backbone small enough for tests and CPU demos.
TINY = {
    "resnet": {"base_width": 8},
    "resnet-template": {"base_width": 8},
    "densenet": {"growth": 8, "bn_size": 2},
    "c3d": {"width": 1 / 8, "fc_dim": 64, "num_frames": 8, "size": 32},
}


def build_model(
    strategy: Strategy | str,
    *,
    backbone: str | None = None,
    tiny: bool = False,
    channels_last: bool = True,
    **kw,
) -> VideoModel:
    """Build the backbone of ``strategy`` with its units.

    ``strategy`` may be a :class:`Strategy`, or a preset name / code / JSON (then ``backbone``
    names the backbone for a preset). ``tiny=True`` applies the tiny width settings. Keyword
    arguments go to the backbone (``num_classes``, ``base_width``, ``growth``, ...).
    """
    if isinstance(strategy, str):
        strategy = parse_strategy(strategy, backbone)
    elif backbone is not None and backbone != strategy.backbone:
        raise ValueError(f"strategy is for backbone {strategy.backbone!r}, not {backbone!r}")
    family = strategy.layout.family
    if tiny:
        kw = {**TINY[family], **kw}
    if family in ("resnet", "resnet-template"):
        model: VideoModel = VideoResNet(strategy, **kw)
    elif family == "densenet":
        model = DenseTemplate(strategy, **kw)
    elif family == "c3d":
        model = C3D(strategy, **kw)
    else:  # pragma: no cover - layouts are registered with a known family
        raise ValueError(f"no builder for backbone family {family!r}")
    if channels_last:
        model.set_channels_last(True)
    return model


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backbone: str
    preset: str
    description: str
    kwargs: dict = field(default_factory=dict)
    reference: str = ""  # where the architecture (and its numbers) come from

    def strategy(self) -> Strategy:
        s = preset(self.preset, self.backbone)
        return Strategy(s.backbone, s.units, s.stem, name=self.name)

    def clip_kwargs(self, frames: int, size: int) -> dict:
        """What this model needs to know of the clip at build time (see :func:`clip_kwargs`)."""
        return clip_kwargs(self.strategy(), frames, size)


def clip_kwargs(strategy: Strategy, frames: int, size: int) -> dict:
    """The clip geometry a network needs at build time, as model keyword arguments: C3D's fully
    connected layers need the clip length and frame size, a stem that folds frames into channels
    (R2D) needs the clip length; every other network adapts to any clip ({})."""
    if strategy.layout.family == "c3d":
        return {"num_frames": frames, "size": size}
    if strategy.stem == "fold":
        return {"num_frames": frames}
    return {}


_MODELS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    _MODELS[spec.name] = spec


for _name, _bb, _p, _desc, _kw, _ref in [
    ("r3d_18", "resnet18", "r3d", "R3D-18: 3x3x3 everywhere", {}, "torchvision r3d_18"),
    ("mc3_18", "resnet18", "mc3", "MC3-18: 3D in conv1-conv2_x, 2D above", {}, "torchvision mc3_18"),
    ("r2plus1d_18", "resnet18", "r2plus1d", "R(2+1)D-18, torchvision's per-block M_i",
     {"mid_rule": "torchvision"}, "torchvision r2plus1d_18"),
    ("rmc3_18", "resnet18", "rmc3", "rMC3-18: 2D in conv1-conv2_x, 3D above", {}, "Tran et al. 2018"),
    ("f_r2d_18", "resnet18", "f-r2d", "f-R2D-18: frame-wise 2D ResNet, time pooled at the end", {}, "Tran et al. 2018"),
    ("r2d_18", "resnet18", "r2d", "R2D-18: frames folded into channels by the stem",
     {"num_frames": 16}, "Tran et al. 2018"),
    ("r3d_34", "resnet34", "r3d", "R3D-34", {}, "Tran et al. 2018"),
    ("r2plus1d_34", "resnet34", "r2plus1d", "R(2+1)D-34, per-conv M_i (VMZ)", {}, "Tran et al. 2018 / VMZ"),
    ("r3d_50", "resnet50", "r3d", "3D ResNet-50 (bottleneck)", {}, "Zhou et al. Table 6 backbone"),
    ("res3d_18", "resnet18", "r3d", "Res3D-18 (3D ResNet-18, 8x112x112 clips)", {"num_classes": 101},
     "Tran et al. 2017, arXiv 1708.05038"),
    ("c3d", "c3d", "st", "C3D: 8 convs, 5 pools, 2 FC", {"num_classes": 101}, "Tran et al. ICCV 2015"),
    ("p3d_resnet50", "resnet50", "p3d", "P3D ResNet-50: A -> B -> C cycling", {"stem_pool": True}, "Qiu et al. ICCV 2017"),
    ("p3d_resnet152", "resnet152", "p3d", "P3D ResNet-152 (P3D-199)", {"stem_pool": True}, "Qiu et al. ICCV 2017"),
    ("ip_csn_50", "resnet50", "ip-csn", "ip-CSN-50", {"stem_pool": True}, "Tran et al. ICCV 2019"),
    ("ir_csn_50", "resnet50", "ir-csn", "ir-CSN-50", {"stem_pool": True}, "Tran et al. ICCV 2019"),
    ("ip_csn_152", "resnet152", "ip-csn", "ip-CSN-152", {"stem_pool": True}, "Tran et al. ICCV 2019 / VMZ"),
    ("ir_csn_152", "resnet152", "ir-csn", "ir-CSN-152", {"stem_pool": True}, "Tran et al. ICCV 2019 / VMZ"),
    ("densenet121_template", "densenet121", "s+st", "the paper's S+ST DenseNet-121 template",
     {"num_classes": 174}, "Zhou et al. CVPR 2020"),
    ("densenet121_opt", "densenet121", "opt", "DenseNet-121 with the paper's hand-designed Opt rule",
     {"num_classes": 174}, "Zhou et al. CVPR 2020"),
    ("template_tiny", "densenet-tiny", "s+st", "a 8-layer S+ST template for tests and CPU demos",
     {"growth": 8, "bn_size": 2}, "tiny"),
]:
    _register(ModelSpec(_name, _bb, _p, _desc, _kw, _ref))


def list_models() -> list[str]:
    return list(_MODELS)


def model_info(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(_MODELS)}") from None


def create_model(name: str, *, tiny: bool = False, **kw) -> VideoModel:
    """The one door to the named models. ``tiny=True`` gives the tiny configuration;
    keyword arguments override the model's defaults (``num_classes=...``)."""
    spec = model_info(name)
    return build_model(spec.strategy(), tiny=tiny, **{**spec.kwargs, **kw})

