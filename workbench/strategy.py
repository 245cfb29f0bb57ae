"""Fusion strategies: which fusion unit each layer of a backbone uses.

A :class:`Strategy` is the one value that travels through the workbench: the template network
samples it, the analysis labels results with it, the designer produces it and the model builder
consumes it. This module deliberately imports no torch, so analysis and widgets can use it cheaply.

Layers are counted the way each backbone's literature counts them:

* ResNets: one layer per residual block (ResNet-18: 8, ResNet-50: 16). Groups ``conv2_x`` ..
  ``conv5_x`` are numbered 2..5; ``conv1`` is the stem, chosen by :attr:`Strategy.stem`.
* DenseNet template: one layer per dense layer (DenseNet-121: 6+12+24+16 = 58), dense blocks
  numbered 2..5 so that ``mc{x}`` means the same thing on every backbone.
* C3D: one layer per 3D convolution (8), groups ``conv1`` .. ``conv5`` numbered 1..5.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

#: the template's branches in canonical order (a unit name lists its kept branches in this order)
BRANCH_ORDER = ("S", "T", "ST")


def branches_of(unit: str) -> tuple[str, ...]:
    """The branches a template unit keeps: ``"S+ST"`` -> ``("S", "ST")``, ``"skip"`` -> ``()``."""
    if unit == "skip":
        return ()
    parts = tuple(unit.split("+"))
    if not set(parts) <= set(BRANCH_ORDER) or len(set(parts)) != len(parts):
        raise ValueError(f"unknown template unit {unit!r}; expected 'skip' or a '+'-sum of S, T, ST")
    return parts


def units_from_branches(kept: Iterable[str]) -> str:
    """The unit name for a set of kept branches, in canonical order (``skip`` when none)."""
    kept = set(kept)
    names = [b for b in BRANCH_ORDER if b in kept]
    return "+".join(names) if names else "skip"


def is_temporal(unit: str) -> bool:
    """Whether a template unit models time (keeps a T or ST branch)."""
    return unit != "skip" and bool({"T", "ST"} & set(unit.split("+")))


__all__ = [
    "BRANCH_ORDER",
    "branches_of",
    "units_from_branches",
    "is_temporal",
    "UNIT_NAMES",
    "UNIT_CODES",
    "STEMS",
    "BackboneLayout",
    "Strategy",
    "backbone_layout",
    "list_backbones",
    "list_presets",
    "preset",
    "register_backbone",
]

# Every fusion unit the workbench knows, with a one-character code used in compact labels.
UNIT_CODES: dict[str, str] = {
    "S": "s",
    "T": "t",
    "ST": "3",
    "ST(2+1)D": "f",
    "S+T": "a",
    "S+ST": "b",
    "T+ST": "c",
    "S+T+ST": "d",
    "P3D-A": "A",
    "P3D-B": "B",
    "P3D-C": "C",
    "ip-CSN": "i",
    "ir-CSN": "r",
    "2D": "2",
    "skip": "0",  # template networks only: every branch of the layer dropped
}
UNIT_NAMES: tuple[str, ...] = tuple(UNIT_CODES)
_CODE_TO_UNIT = {c: u for u, c in UNIT_CODES.items()}

# Stems: "3D" = 3x7x7 (ResNet) / 5x7x7 (DenseNet template); "2D" = 1x7x7;
# "(2+1)D" = 1x7x7 -> 45 -> 3x1x1 (torchvision R(2+1)D); "fold" = R2D, frames folded into channels.
STEMS: tuple[str, ...] = ("3D", "2D", "(2+1)D", "fold")

_GENERIC_UNITS = tuple(u for u in UNIT_NAMES if u != "skip")
_TEMPLATE_UNITS = ("S", "ST", "S+ST", "T", "S+T", "T+ST", "S+T+ST", "skip")


@dataclass(frozen=True)
class BackboneLayout:
    """What a strategy needs to know about a backbone: its layers, groups and allowed units."""

    name: str
    groups: tuple[int, ...]  # layers per group (stage / dense block / conv group)
    first_group: int  # number of the first group (ResNet: conv2_x -> 2)
    units: tuple[str, ...]  # units a layer may use
    unit_3d: str  # the "3D" unit for mc/rmc/heavy presets
    unit_2d: str  # the "2D" unit for mc/rmc/heavy presets
    stems: tuple[str, ...] = ("3D", "2D", "(2+1)D", "fold")
    default_stem: str = "3D"
    family: str = "resnet"  # resnet | resnet-template | densenet | c3d
    excluded_presets: tuple[str, ...] = ()  # presets that cannot be built on this backbone

    @property
    def num_layers(self) -> int:
        return sum(self.groups)

    def group_of(self) -> tuple[int, ...]:
        """Group number of every layer."""
        out: list[int] = []
        for g, n in enumerate(self.groups):
            out.extend([self.first_group + g] * n)
        return tuple(out)


_BACKBONES: dict[str, BackboneLayout] = {}


def register_backbone(layout: BackboneLayout) -> BackboneLayout:
    """Register a backbone layout so strategies can be validated against it."""
    _BACKBONES[layout.name] = layout
    return layout


def _resnet(name: str, groups: tuple[int, ...]) -> None:
    register_backbone(
        BackboneLayout(name, groups, 2, _GENERIC_UNITS, "ST", "2D", family="resnet")
    )


for _n, _g in {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
    # one block per stage: the shallowest ResNet, for fast tests
    "resnet10": (1, 1, 1, 1),
}.items():
    _resnet(_n, _g)

for _n, _g in {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet-tiny": (2, 2, 2, 2),
    "densenet-small": (3, 4, 6, 3),
}.items():
    register_backbone(
        BackboneLayout(
            _n, _g, 2, _TEMPLATE_UNITS, "ST", "S", stems=("3D", "2D"), family="densenet"
        )
    )

# ResNet-bottleneck templates (Zhou et al., Table 6): the bottleneck's first conv is a 1x1x1 (S),
# a 3x1x1 (ST) or their sum, followed by 1x3x3 and 1x1x1.
for _n, _g in {"resnet50-template": (3, 4, 6, 3), "resnet101-template": (3, 4, 23, 3),
               "resnet26-template": (2, 2, 2, 2)}.items():
    register_backbone(
        BackboneLayout(
            _n, _g, 2, ("S", "ST", "S+ST", "skip"), "ST", "S", stems=("3D", "2D"), family="resnet-template"
        )
    )

register_backbone(
    BackboneLayout(
        "c3d",
        (1, 1, 2, 2, 2),
        1,
        _GENERIC_UNITS,
        "ST",
        "2D",
        stems=("3D",),
        family="c3d",
        # the first conv sees 3 RGB channels and gives 64: no depthwise conv maps 3 to 64
        excluded_presets=("ir-csn",),
    )
)


def backbone_layout(name: str) -> BackboneLayout:
    try:
        return _BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; expected one of: {', '.join(sorted(_BACKBONES))}"
        ) from None


def list_backbones() -> list[str]:
    return sorted(_BACKBONES)


@dataclass(frozen=True)
class Strategy:
    """A backbone name and one fusion unit per layer (plus the stem).

    >>> s = Strategy("resnet18", ("ST",) * 8)
    >>> s.code
    'resnet18:33333333'
    """

    backbone: str
    units: tuple[str, ...]
    stem: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.units, str) or not isinstance(self.units, Iterable):
            raise ValueError(
                f"units must be a sequence of unit names, got {type(self.units).__name__}"
            )
        object.__setattr__(self, "units", tuple(self.units))
        layout = backbone_layout(self.backbone)
        if len(self.units) != layout.num_layers:
            raise ValueError(
                f"strategy for backbone {self.backbone!r} needs {layout.num_layers} units "
                f"(one per layer), got {len(self.units)}"
            )
        for i, u in enumerate(self.units):
            if u not in layout.units:
                raise ValueError(
                    f"layer {i}: unit {u!r} is not allowed on backbone {self.backbone!r}; "
                    f"allowed units: {', '.join(layout.units)}"
                )
        stem = layout.default_stem if self.stem is None else self.stem
        if stem not in layout.stems:
            raise ValueError(
                f"stem {stem!r} is not allowed on backbone {self.backbone!r}; "
                f"allowed stems: {', '.join(layout.stems)}"
            )
        object.__setattr__(self, "stem", stem)

    # ---- views -----------------------------------------------------------------------------
    @property
    def layout(self) -> BackboneLayout:
        return backbone_layout(self.backbone)

    @property
    def num_layers(self) -> int:
        return len(self.units)

    @property
    def code(self) -> str:
        """Readable compact label: backbone, then one character per layer (see UNIT_CODES)."""
        body = "".join(UNIT_CODES[u] for u in self.units)
        stem = "" if self.stem == self.layout.default_stem else f"[{self.stem}]"
        return f"{self.backbone}{stem}:{body}"

    @property
    def key(self) -> str:
        """Short stable identifier (10 hex digits of a hash of the canonical JSON)."""
        payload = json.dumps(
            {"backbone": self.backbone, "units": list(self.units), "stem": self.stem},
            sort_keys=True,
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:10]

    @property
    def label(self) -> str:
        return self.name or self.code

    def counts(self) -> dict[str, int]:
        """How many layers use each unit."""
        out: dict[str, int] = {}
        for u in self.units:
            out[u] = out.get(u, 0) + 1
        return out

    def diff(self, other: Strategy) -> list[tuple[int, str, str]]:
        """Layers where two strategies on the same backbone differ: (layer, self unit, other unit)."""
        if other.backbone != self.backbone:
            raise ValueError(
                f"cannot diff strategies on different backbones ({self.backbone!r} vs {other.backbone!r})"
            )
        return [(i, a, b) for i, (a, b) in enumerate(zip(self.units, other.units)) if a != b]

    def replace(self, layer: int | None = None, unit: str | None = None, **fields) -> Strategy:
        """A copy with one layer's unit changed (``s.replace(3, "ST")``) and/or other fields
        replaced (``s.replace(stem="2D")``, ``s.replace(name="mine")``); the name is kept unless
        given, and the result is validated like any strategy."""
        import dataclasses

        unknown = set(fields) - {"backbone", "units", "stem", "name"}
        if unknown:
            raise ValueError(f"Strategy has no field(s) {sorted(unknown)}; expected backbone, units, stem or name")
        if (layer is None) != (unit is None):
            raise ValueError("give a layer and its new unit together: replace(layer, unit)")
        if layer is not None:
            if not 0 <= layer < self.num_layers:
                raise ValueError(f"layer {layer} out of range 0..{self.num_layers - 1}")
            units = list(fields.get("units", self.units))
            units[layer] = unit
            fields["units"] = tuple(units)
        if "units" in fields:
            fields["units"] = tuple(fields["units"])
        return dataclasses.replace(self, **fields)

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"backbone": self.backbone, "units": list(self.units), "stem": self.stem}
        if self.name:
            d["name"] = self.name
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Strategy:
        if not isinstance(d, dict):
            raise ValueError(f"a strategy must be a JSON object, got {type(d).__name__}")
        missing = {"backbone", "units"} - set(d)
        if missing:
            raise ValueError(f"strategy JSON is missing {sorted(missing)}; expected keys backbone, units[, stem, name]")
        unknown = sorted(set(d) - {"backbone", "units", "stem", "name"})
        if unknown:
            raise ValueError(f"strategy JSON has unknown key(s) {', '.join(map(repr, unknown))}; "
                             "expected keys backbone, units[, stem, name]")
        return cls(d["backbone"], tuple(d["units"]), d.get("stem"), d.get("name"))

    @classmethod
    def from_json(cls, text: str) -> Strategy:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"strategy JSON does not parse: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def from_code(cls, code: str) -> Strategy:
        """Inverse of :attr:`code`."""
        head, sep, body = code.partition(":")
        if not sep:
            raise ValueError(f"strategy code {code!r} must look like 'backbone:codes'")
        stem = None
        if head.endswith("]") and "[" in head:
            head, _, stem = head[:-1].partition("[")
        units = []
        for i, ch in enumerate(body):
            if ch not in _CODE_TO_UNIT:
                raise ValueError(
                    f"layer {i}: unknown unit code {ch!r}; codes: "
                    + ", ".join(f"{c}={u}" for c, u in _CODE_TO_UNIT.items())
                )
            units.append(_CODE_TO_UNIT[ch])
        return cls(head, tuple(units), stem)

    def __str__(self) -> str:
        return self.label


# ---- presets ---------------------------------------------------------------------------------
def _uniform(unit: str):
    def make(layout: BackboneLayout) -> tuple[tuple[str, ...], str | None]:
        return (unit,) * layout.num_layers, None

    return make


def _mc(x: int, reverse: bool):
    def make(layout: BackboneLayout):
        groups = layout.group_of()
        if reverse:  # 2D below group x, 3D from group x
            units = tuple(layout.unit_2d if g < x else layout.unit_3d for g in groups)
            stem = "2D" if "2D" in layout.stems else None
        else:  # 3D below group x, 2D from group x
            units = tuple(layout.unit_3d if g < x else layout.unit_2d for g in groups)
            stem = None
        return units, stem

    return make


def _heavy(bottom: bool):
    def make(layout: BackboneLayout):
        n = layout.num_layers
        half = n // 2
        units = tuple(
            layout.unit_3d if ((i < half) if bottom else (i >= n - half)) else layout.unit_2d
            for i in range(n)
        )
        return units, None

    return make


def _opt(layout: BackboneLayout):
    # The paper's hand-designed rule (Table 6): S+ST in the first half and the last three layers,
    # ST elsewhere.
    n = layout.num_layers
    half = n // 2
    units = tuple("S+ST" if (i < half or i >= n - 3) else "ST" for i in range(n))
    return units, None


def _p3d(layout: BackboneLayout):
    cycle = ("P3D-A", "P3D-B", "P3D-C")
    return tuple(cycle[i % 3] for i in range(layout.num_layers)), None


def _fixed_stem(make, stem: str):
    def wrapped(layout: BackboneLayout):
        units, _ = make(layout)
        return units, stem

    return wrapped


_PRESETS: dict[str, tuple[str, object]] = {
    "s": ("all spatial (1x3x3): a frame-level network", _fixed_stem(_uniform("S"), "2D")),
    "t": ("all temporal (3x1x1)", _uniform("T")),
    "st": ("all 3D (3x3x3), I3D/C3D-like", _uniform("ST")),
    "s+st": ("2D and 3D summed at every layer (the template's prior)", _uniform("S+ST")),
    "r3d": ("R3D: 3x3x3 everywhere, 3D stem", _fixed_stem(_uniform("ST"), "3D")),
    "r2plus1d": ("R(2+1)D: 1x3x3 -> 3x1x1 everywhere, (2+1)D stem", _fixed_stem(_uniform("ST(2+1)D"), "(2+1)D")),
    "f-r2d": ("f-R2D: frame-wise 2D network, time fused only by the final pooling", _fixed_stem(_uniform("2D"), "2D")),
    "r2d": ("R2D: frames folded into channels by the stem, 2D afterwards", _fixed_stem(_uniform("2D"), "fold")),
    "bottom-heavy": ("3D in the lower half of the layers only", _heavy(True)),
    "top-heavy": ("3D in the upper half of the layers only", _heavy(False)),
    "p3d": ("P3D: A -> B -> C cycling over layers", _p3d),
    "ip-csn": ("interaction-preserved CSN: 1x1x1 then 3x3x3 depthwise", _uniform("ip-CSN")),
    "ir-csn": ("interaction-reduced CSN: 3x3x3 depthwise", _uniform("ir-CSN")),
    "opt": ("the paper's rule: S+ST in the first half and the last three layers, ST elsewhere", _opt),
}
for _x in range(2, 6):
    _PRESETS[f"mc{_x}"] = (f"MC{_x}: 3D below group conv{_x}_x, 2D from it", _mc(_x, False))
    _PRESETS[f"rmc{_x}"] = (f"rMC{_x}: 2D below group conv{_x}_x, 3D from it", _mc(_x, True))


def _preset_units(name: str, layout: BackboneLayout):
    desc, make = _PRESETS[name]
    if name in layout.excluded_presets:
        return None
    if name.startswith(("mc", "rmc")):
        x = int(name.lstrip("rmc"))
        last = layout.first_group + len(layout.groups) - 1
        if not layout.first_group <= x <= last:
            return None  # degenerates to a uniform strategy on this backbone
    units, stem = make(layout)  # type: ignore[operator]
    if any(u not in layout.units for u in units):
        return None
    if stem is not None and stem not in layout.stems:
        if name == "r2d":  # R2D is defined by its folding stem
            return None
        stem = None  # e.g. C3D has a single stem: keep it
    return units, stem


def list_presets(backbone: str | None = None) -> list[str]:
    """Preset names, all of them or those meaningful on ``backbone``."""
    if backbone is None:
        return list(_PRESETS)
    layout = backbone_layout(backbone)
    return [n for n in _PRESETS if _preset_units(n, layout) is not None]


def preset_description(name: str) -> str:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of: {', '.join(_PRESETS)}")
    return _PRESETS[name][0]


def preset(name: str, backbone: str = "resnet18") -> Strategy:
    """A literature strategy as a :class:`Strategy` on ``backbone``."""
    key = name.lower()
    if key not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of: {', '.join(_PRESETS)}")
    layout = backbone_layout(backbone)
    got = _preset_units(key, layout)
    if got is None:
        raise ValueError(
            f"preset {name!r} is not meaningful on backbone {backbone!r}; "
            f"presets for it: {', '.join(list_presets(backbone))}"
        )
    units, stem = got
    return Strategy(backbone, units, stem, name=key)


def parse_strategy(text: str, backbone: str | None = None) -> Strategy:
    """A preset name, a strategy code (``backbone:codes``), a JSON object or a path to a JSON file."""
    text = text.strip()
    if text.startswith("{"):
        return Strategy.from_json(text)
    if text.endswith(".json"):
        from pathlib import Path

        p = Path(text)
        if not p.is_file():
            raise ValueError(f"strategy file {text!r} does not exist")
        return Strategy.from_json(p.read_text())
    if ":" in text:
        return Strategy.from_code(text)
    return preset(text, backbone or "resnet18")
