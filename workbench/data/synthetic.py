"""The embedded synthetic spatiotemporal benchmark: procedurally generated clips whose truth is known.

(One module of about 900 lines by choice: the generator is one pipeline, background, object, path,
rendering, distractors, noise and shake, whose steps share each clip's random stream and
parameters; apart, every step would need the others' internals.)

Three kinds, each a ``torch.utils.data.Dataset`` of ``(clip, label)``:

``synthetic-appearance``
    The class is the object's appearance: colour and shape (and texture when there are more than
    36 classes). Its motion is drawn at random, independently of the class, so one frame suffices.
``synthetic-motion``
    The class is a motion *profile*: the order in which the object passes through the states of
    its path. Everything else (appearance, background, path, noise, shake, distractors) is drawn
    independently of the class, and the classes differ **only in the order of the frames**.
``synthetic-mixed``
    The class is an (appearance, motion profile) pair, as in Something-Something's
    "pushing X from left to right".

How a clip is made
------------------
1. A background: a grey level plus a smooth, periodic random field (``clutter``) that the camera
   shake rolls around without seams.
2. A target object: a shape (disk, square, triangle, cross, ring, bar), a colour (red, green,
   blue, yellow, magenta, cyan) and a texture (solid, striped, checked).
3. A *path* of ``T`` states ``s_0 .. s_{T-1}`` in one motion family, drawn per clip from
   ``motions``: ``translate`` (along an axis within 60 degrees of horizontal, ``s_0`` at the left
   end), ``rotate`` (revolve clockwise about a pivot, turning with the revolution), ``scale``
   (grow) and, not among the defaults, ``spin`` (turn clockwise in place: few pixels change on a
   small symmetric shape, too few for a tiny 3D CNN trained on a few hundred clips).
4. A *profile*: a permutation ``pi`` of ``0 .. T-1``; frame ``t`` shows state ``s_{pi(t)}``.
   The profiles (all that are distinct at the clip length: 2 for ``T = 2``, 8 from ``T = 4``) are

   =================== ===================== ==============================================
   ``forward``         0 1 2 3 4 5 6 7       left to right / clockwise / growing
   ``backward``        7 6 5 4 3 2 1 0       the time reversal of ``forward``
   ``forward-return``  0 2 4 6 7 5 3 1       out at double speed, and back
   ``backward-return`` 7 5 3 1 0 2 4 6       the same from the other end
   ``forward-twice``   0 2 4 6 1 3 5 7       two passes at double speed
   ``backward-twice``  7 5 3 1 6 4 2 0       the time reversal of ``forward-twice``
   ``swing-out``       3 4 2 5 1 6 0 7       back and forth with a growing amplitude
   ``swing-in``        7 0 6 1 5 2 4 3       the time reversal of ``swing-out``
   =================== ===================== ==============================================

   (shown for ``T = 8``). Direction, sense of rotation, growth versus shrinking, speed and
   one-way versus back-and-forth are all orders of one and the same set of states; a motion
   class is a profile, whatever the family of the clip's path.
5. Distractors (smaller objects of random look that jitter independently in every frame),
   an integer camera offset drawn independently per frame, and Gaussian pixel noise.

Why the motion classes cannot be told from frames without their order
--------------------------------------------------------------------
For ``synthetic-motion`` the class enters only through ``pi``: the path, the appearance and
every other random draw are made before, and independently of, the class. Everything that
varies over time without following the path (shake, distractor jitter, noise) is independent
and identically distributed over frames. Hence the multiset of frames of a clip has exactly the
same distribution in every class, and so does a frame drawn at a random time: no frame-level
model, and no model of an orderless set of frames, can beat chance. Order carries everything:
``backward`` is ``forward`` played backwards. (A frame at a *known* time index is not
class-free - a growing object is small in frame 0 - but that is order information.)

Determinism
-----------
Clip ``i`` of a split is generated from its own ``numpy.random.SeedSequence([seed, split_id,
index])``, so it does not depend on which other clips were generated, or in which order, and the
train / val / test splits are disjoint random streams. For a fixed seed the bytes are identical
(with a given numpy version; numpy does not promise its streams across versions). Labels are
balanced and interleaved: ``label(i) = i % num_classes``.

Output
------
``output="uint8"``: a ``T H W 3`` uint8 tensor. ``output="float"`` (the default, for training):
a float32 ``3 T H W`` tensor, ``(x / 255 - MEAN) / STD`` with ``MEAN = 0.5`` and ``STD = 0.25``
for every channel. :meth:`SyntheticVideo.clip_array` and :meth:`SyntheticVideo.label` give the
numpy array and the label without building tensors.

Second modalities
-----------------
``make_synthetic(..., modalities=("rgb", "flow", "audio"))`` makes items ``({modality: tensor},
label)``. ``flow`` is the clip's exact forward optical flow, float32 ``2 T H W`` in pixels
(``dx, dy``; frame ``t + 1`` at ``p + flow[:, t, p]`` shows what frame ``t`` shows at ``p``; the
last flow frame is zero): the generator knows every object's similarity transform from one state
to the next and the camera's shift. ``audio`` is a ``1 x audio_length`` track: the tone of the
clip's class (with probability ``audio_informativeness``) plus white noise (``audio_noise``).
Neither changes the RGB clips.

>>> ds = make_synthetic("synthetic-motion", split="train")
>>> clip, label = ds[0]          # clip: float32 3 x 8 x 32 x 32
>>> ds.classes[label]
'forward'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "KINDS",
    "SPLITS",
    "COLOURS",
    "SHAPES",
    "TEXTURES",
    "MOTION_FAMILIES",
    "DEFAULT_MOTIONS",
    "MEAN",
    "STD",
    "PRESETS",
    "MODALITIES",
    "SyntheticConfig",
    "SyntheticVideo",
    "appearance_classes",
    "make_synthetic",
    "motion_profiles",
    "synthetic_config",
    "to_float",
]

KINDS = ("appearance", "motion", "mixed")
#: What a synthetic clip can come with: RGB frames, their exact optical flow, an audio track.
MODALITIES = ("rgb", "flow", "audio")
SPLITS = {"train": 0, "val": 1, "test": 2}
OUTPUTS = ("float", "uint8")

#: Normalisation of ``output="float"``: ``(x / 255 - MEAN) / STD`` per channel.
MEAN = 0.5
STD = 0.25

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.10),
    "green": (0.10, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "magenta": (0.85, 0.15, 0.85),
    "cyan": (0.10, 0.85, 0.90),
}
# Shapes are distinct under rotation, since rotation is part of the random motion.
SHAPES = ("disk", "square", "triangle", "cross", "ring", "bar")
TEXTURES = ("solid", "striped", "checked")
MOTION_FAMILIES = ("translate", "rotate", "scale", "spin")
# Turning in place moves few pixels on a small, symmetric shape: a tiny 3D CNN does not learn it
# from a few hundred clips, so it is a knob rather than a default.
DEFAULT_MOTIONS = ("translate", "rotate", "scale")
_ISOTROPIC = frozenset({"disk", "ring"})  # a spin is invisible on these unless textured

_MAX_APPEARANCE_PAIRS = len(COLOURS) * len(SHAPES)  # classes up to here: (colour, shape)
_MAX_APPEARANCE = _MAX_APPEARANCE_PAIRS * len(TEXTURES)  # beyond: (colour, shape, texture)

# Geometry in units of the frame size, at difficulty 0 and 1 (linear in between).
_RADIUS = ((0.15, 0.21), (0.10, 0.14))  # target radius range
_TRAVEL = (0.42, 0.25)  # translation path length
_ARC = (math.radians(150.0), math.radians(90.0))  # rotation (revolution) path extent
_ORBIT = (0.20, 0.14)  # radius of the revolution
_TURN = (math.radians(90.0), math.radians(50.0))  # spin path extent
_GROWTH = (2.2, 1.5)  # scale ratio between the last and first state
_FADE = (0.0, 0.55)  # how far the object's colour is pulled toward the background
_MAX_TILT = math.radians(60.0)  # translation axes lie within this angle of horizontal


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that defines a synthetic benchmark; presets in :data:`PRESETS`.

    ``num_classes=None`` takes the kind's default (6 appearance, 4 motion, 8 mixed classes);
    :attr:`max_classes` is the limit (108 appearance; 8 motion from 4 frames on, fewer below;
    36 x ``motion_classes`` mixed). ``*_per_class`` are the clips per class of each split.

    Knobs (every one changes the clips):

    ``noise``          std of the Gaussian pixel noise, as a fraction of the full range
    ``clutter``        0..1, contrast of the smooth random background texture
    ``distractors``    number of extra, smaller objects of random look, jittering per frame
    ``camera_shake``   std of the per-frame camera offset, as a fraction of ``size``
    ``difficulty``     0..1: smaller objects, colours pulled toward the background, shorter
                       paths (travel, revolution, growth)
    ``motions``        the motion families a clip's path is drawn from
    ``motion_classes`` ``mixed`` only: motion profiles per appearance

    The ``audio`` modality (see :class:`SyntheticVideo`'s ``modalities``) has knobs of its own;
    they change nothing in the RGB clips or their flow:

    ``audio_length``          samples per clip
    ``audio_informativeness`` 0..1, the probability that a clip's tone is its class's tone
                              (otherwise the tone of a class drawn at random)
    ``audio_noise``           std of the white noise added to the unit-amplitude tone
    """

    kind: str = "motion"
    num_classes: int | None = None
    frames: int = 8
    size: int = 32
    train_per_class: int = 100
    val_per_class: int = 20
    test_per_class: int = 50
    seed: int = 0
    noise: float = 0.03
    clutter: float = 0.3
    distractors: int = 0
    camera_shake: float = 0.0
    difficulty: float = 0.0
    motions: tuple[str, ...] = DEFAULT_MOTIONS
    motion_classes: int = 2
    audio_length: int = 256
    audio_informativeness: float = 1.0
    audio_noise: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown synthetic kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        for name in ("frames", "size", "seed", "distractors", "motion_classes", *(f"{x}_per_class" for x in SPLITS)):
            value = getattr(self, name)
            if isinstance(value, np.integer):  # accept numpy integers, store Python ones
                object.__setattr__(self, name, int(value))
        if isinstance(self.num_classes, np.integer):
            object.__setattr__(self, "num_classes", int(self.num_classes))
        _check_int("frames", self.frames, 1, 1024)
        if self.kind != "appearance" and self.frames < 2:
            raise ValueError(
                f"kind {self.kind!r} needs frames >= 2 (a motion needs at least two frames), got {self.frames}"
            )
        _check_int("size", self.size, 8, 1024)
        for split in SPLITS:
            _check_int(f"{split}_per_class", getattr(self, f"{split}_per_class"), 0, 10**7)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_float("noise", self.noise, 0.0, 1.0)
        _check_float("clutter", self.clutter, 0.0, 1.0)
        _check_int("distractors", self.distractors, 0, 16)
        _check_float("camera_shake", self.camera_shake, 0.0, 0.5)
        _check_float("difficulty", self.difficulty, 0.0, 1.0)
        motions = (self.motions,) if isinstance(self.motions, str) else tuple(self.motions)
        if not motions or any(m not in MOTION_FAMILIES for m in motions) or len(set(motions)) != len(motions):
            raise ValueError(
                f"motions must be a non-empty subset of: {', '.join(MOTION_FAMILIES)}; got {self.motions!r}"
            )
        object.__setattr__(self, "motions", motions)
        _check_int("motion_classes", self.motion_classes, 1, 64)
        _check_int("audio_length", self.audio_length, 16, 1 << 20)
        _check_float("audio_informativeness", self.audio_informativeness, 0.0, 1.0)
        _check_float("audio_noise", self.audio_noise, 0.0, 100.0)
        if self.kind == "mixed" and self.motion_classes > len(motion_profiles(self.frames)):
            raise ValueError(
                f"motion_classes={self.motion_classes} is more than the {len(motion_profiles(self.frames))} "
                f"motion profiles at frames={self.frames}: {', '.join(motion_profiles(self.frames))}"
            )
        limit = self.max_classes
        if self.num_classes is None:
            default = {"appearance": 6, "motion": 4, "mixed": 8}[self.kind]
            object.__setattr__(self, "num_classes", min(default, limit))
        elif isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or not (
            2 <= self.num_classes <= limit
        ):
            raise ValueError(f"num_classes must be an integer in 2..{limit} for {self._limit_reason()}; "
                             f"got {self.num_classes!r}")

    @property
    def max_classes(self) -> int:
        """The most classes this kind supports at this clip length."""
        if self.kind == "appearance":
            return _MAX_APPEARANCE
        if self.kind == "motion":
            return len(motion_profiles(self.frames))
        return _MAX_APPEARANCE_PAIRS * self.motion_classes

    def _limit_reason(self) -> str:
        if self.kind == "appearance":
            return f"kind 'appearance' ({len(COLOURS)} colours x {len(SHAPES)} shapes x {len(TEXTURES)} textures)"
        if self.kind == "motion":
            return f"kind 'motion' at frames={self.frames} (distinct profiles: {', '.join(motion_profiles(self.frames))})"
        return (f"kind 'mixed' ({_MAX_APPEARANCE_PAIRS} appearances x motion_classes={self.motion_classes})")

    def per_class(self, split: str) -> int:
        return getattr(self, f"{_check_split(split)}_per_class")

    def replace(self, **changes) -> SyntheticConfig:
        _check_fields(changes)
        return dataclasses.replace(self, **changes)

    @property
    def classes(self) -> list[str]:
        """Readable class names, index = label."""
        k = self.num_classes
        if self.kind == "appearance":
            return appearance_classes(k)
        if self.kind == "motion":
            return list(motion_profiles(self.frames))[:k]
        profiles = list(motion_profiles(self.frames))[: self.motion_classes]
        looks = appearance_classes(-(-k // self.motion_classes))
        return [f"{looks[i // self.motion_classes]}_{profiles[i % self.motion_classes]}" for i in range(k)]


PRESETS: dict[str, dict] = {
    # Seconds on a 2-core CPU: the known-answer tests use it.
    "tiny": {"frames": 8, "size": 32, "train_per_class": 100, "val_per_class": 20, "test_per_class": 50},
    "small": {"frames": 16, "size": 64, "train_per_class": 300, "val_per_class": 50, "test_per_class": 100},
    # The clip shape of the video ResNets (16 x 112 x 112); minutes per epoch on a CPU.
    "standard": {"frames": 16, "size": 112, "train_per_class": 1000, "val_per_class": 100, "test_per_class": 200},
}


def synthetic_config(name: str, preset: str = "tiny", **overrides) -> SyntheticConfig:
    """The config of ``synthetic-<kind>`` (or ``<kind>``) from a preset plus overrides."""
    kind = name.removeprefix("synthetic-")
    if kind not in KINDS:
        raise ValueError(
            f"unknown synthetic dataset {name!r}; expected one of: "
            + ", ".join(f"synthetic-{k}" for k in KINDS)
        )
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    _check_fields(overrides)
    return SyntheticConfig(kind=kind, **{**PRESETS[preset], **overrides})


def make_synthetic(
    name: str,
    split: str = "train",
    *,
    output: str = "float",
    preset: str = "tiny",
    cache: bool = False,
    config: SyntheticConfig | None = None,
    modalities: Sequence[str] | None = None,
    **overrides,
) -> SyntheticVideo:
    """The synthetic dataset ``name`` (``synthetic-appearance``, ``-motion`` or ``-mixed``).

    ``overrides`` are :class:`SyntheticConfig` fields on top of ``preset``; or pass a whole
    ``config`` (its kind must match ``name``). ``cache=True`` renders the split once into memory.
    Naming ``modalities`` makes items ``({name: tensor}, label)``: ``rgb`` as
    usual, ``flow`` float32 ``2 T H W`` in pixels, ``audio`` float32 ``1 L``.
    """
    if config is None:
        config = synthetic_config(name, preset, **overrides)
    else:
        if name.removeprefix("synthetic-") != config.kind:
            raise ValueError(f"config is of kind {config.kind!r}, but the dataset asked for is {name!r}")
        if overrides:
            config = config.replace(**overrides)
    return SyntheticVideo(config, split, output=output, cache=cache, modalities=modalities)


class SyntheticVideo(Dataset):
    """One split of a synthetic benchmark: ``ds[i] -> (clip, label)``.

    ``clip`` is float32 ``3 T H W`` (normalised, see :data:`MEAN`, :data:`STD`) or, with
    ``output="uint8"``, uint8 ``T H W 3``.
    """

    def __init__(self, config: SyntheticConfig, split: str = "train", *, output: str = "float",
                 cache: bool = False, modalities: Sequence[str] | None = None) -> None:
        if not isinstance(config, SyntheticConfig):
            raise ValueError(f"config must be a SyntheticConfig, got {type(config).__name__}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; expected one of: {', '.join(OUTPUTS)}")
        self.config = config
        self.split = _check_split(split)
        self.output = output
        # with modalities named (even ("rgb",) alone), items are ({modality: tensor}, label)
        self.modalities = check_modalities(modalities) if modalities is not None else ("rgb",)
        self._dict_items = modalities is not None
        self.classes = config.classes
        self.num_classes = config.num_classes
        self._generator = _ClipGenerator(config, SPLITS[self.split])
        self._cache: np.ndarray | None = None
        self._flow_cache: np.ndarray | None = None
        if cache:
            if "flow" in self.modalities:
                self._cache, self._flow_cache = self._render_all(with_flow=True)
                self._flow_cache.flags.writeable = False
            elif "rgb" in self.modalities:
                self._cache = self.array()
            if self._cache is not None:
                self._cache.flags.writeable = False  # clip_array hands out views of it

    def __len__(self) -> int:
        return self.config.num_classes * self.config.per_class(self.split)

    def __repr__(self) -> str:
        c = self.config
        return (f"SyntheticVideo(synthetic-{c.kind}, split={self.split!r}, {len(self)} clips of "
                f"{c.frames}x{c.size}x{c.size}, {c.num_classes} classes, output={self.output!r})")

    def _index(self, i: int) -> int:
        n = len(self)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"clip index must be an integer, got {type(i).__name__}")
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"clip index {i} out of range for {n} clips")
        return i % n

    def label(self, i: int) -> int:
        """The label of clip ``i`` (``i % num_classes``), without rendering it."""
        return self._index(i) % self.config.num_classes

    def render(self, i: int, label: int) -> np.ndarray:
        """Clip ``i`` rendered as if its label were ``label``: the same random draws (scene,
        path, noise), another class. For ``synthetic-motion`` the frames are those of clip
        ``i``'s path in another order. uint8 ``T H W 3``; never cached."""
        i = self._index(i)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < self.num_classes:
            raise ValueError(f"label must be an integer in 0..{self.num_classes - 1}, got {label!r}")
        return self._generator.clip(i, int(label))

    @property
    def labels(self) -> np.ndarray:
        """All labels of the split, int64."""
        return np.arange(len(self), dtype=np.int64) % self.config.num_classes

    def clip_array(self, i: int) -> np.ndarray:
        """Clip ``i`` as a uint8 ``T H W 3`` numpy array (a read-only view when cached)."""
        i = self._index(i)
        if self._cache is not None:
            return self._cache[i]
        return self._generator.clip(i, i % self.config.num_classes)

    def array(self) -> np.ndarray:
        """The whole split as one uint8 ``N T H W 3`` array (the cache, when there is one)."""
        if self._cache is not None:
            return self._cache
        return self._render_all(with_flow=False)[0]

    def _render_all(self, with_flow: bool):
        c = self.config
        out = np.empty((len(self), c.frames, c.size, c.size, 3), np.uint8)
        # the flow cache is float16 (a hundredth of a pixel at 20 px; half the memory)
        flows = np.empty((len(self), 2, c.frames, c.size, c.size), np.float16) if with_flow else None
        one = np.empty((2, c.frames, c.size, c.size), np.float32) if with_flow else None
        for i in range(len(self)):
            planar = self._generator.planar(i, i % c.num_classes, flow=one)
            if flows is not None:
                flows[i] = one
            for ch in range(3):
                out[i, ..., ch] = planar[ch]
        return out, flows

    def flow_array(self, i: int) -> np.ndarray:
        """The exact optical flow of clip ``i``: float32 ``2 T H W`` in pixels, ``(dx, dy)``.

        ``flow[:, t]`` is where the content of frame ``t`` moves to in frame ``t + 1`` (forward
        flow: frame ``t + 1`` at ``p + flow[:, t, p]`` shows what frame ``t`` shows at ``p``), for
        the target, the distractors (each pixel belongs to the top-most object covering at
        least half of it) and the background (the camera shake). ``flow[:, T - 1]`` is zero:
        the last frame has no successor. Pixel noise is not motion and has no flow. A cached
        split keeps the flow in float16 (within 0.01 px of the exact values at the default sizes).
        """
        i = self._index(i)
        if self._flow_cache is not None:
            return self._flow_cache[i].astype(np.float32)
        c = self.config
        flow = np.empty((2, c.frames, c.size, c.size), np.float32)
        self._generator.planar(i, i % c.num_classes, flow=flow)
        return flow

    def audio_array(self, i: int) -> np.ndarray:
        """Clip ``i``'s audio track, float32 ``(1, audio_length)``: a unit-amplitude tone whose
        frequency is the class's with probability ``audio_informativeness`` (another class's
        otherwise), plus white noise of std ``audio_noise``. Drawn from its own random stream,
        so it changes nothing in the clip."""
        i = self._index(i)
        return self._generator.audio(i, i % self.config.num_classes)

    @property
    def cached(self) -> bool:
        """Whether the split is held in memory (``cache=True``)."""
        return self._cache is not None

    def __getitem__(self, i: int):
        i = self._index(i)
        if self._dict_items:
            label = i % self.config.num_classes
            out = {}
            for m in self.modalities:
                if m == "rgb":
                    out[m] = self._rgb(i)[0]
                elif m == "flow":
                    out[m] = torch.from_numpy(np.array(self.flow_array(i)))
                else:
                    out[m] = torch.from_numpy(self.audio_array(i))
            return out, label
        return self._rgb(i)

    def _rgb(self, i: int) -> tuple[torch.Tensor, int]:
        label = i % self.config.num_classes
        if self.output == "uint8":
            return torch.from_numpy(np.array(self.clip_array(i))), label
        if self._cache is not None:
            planar = np.ascontiguousarray(self._cache[i].transpose(3, 0, 1, 2), dtype=np.float32)
        else:  # rendered channel-planar already: no interleaving and no permute on this path
            planar = self._generator.planar(i, label).astype(np.float32)
        # (x / 255 - MEAN) / STD in two in-place numpy passes (cheaper here than torch's ops)
        planar *= np.float32(1.0 / (255.0 * STD))
        planar -= np.float32(MEAN / STD)
        return torch.from_numpy(planar), label


def check_modalities(modalities) -> tuple[str, ...]:
    """``modalities`` as a tuple, checked: a non-empty, repeat-free subset of :data:`MODALITIES`."""
    mods = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    if not mods or any(m not in MODALITIES for m in mods) or len(set(mods)) != len(mods):
        raise ValueError(f"modalities must be a non-empty list of distinct names from: {', '.join(MODALITIES)}; "
                         f"got {modalities!r}")
    return mods


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``... T H W 3`` -> float32 ``... 3 T H W``, ``(x / 255 - MEAN) / STD``."""
    out = torch.empty(x.movedim(-1, -4).shape, dtype=torch.float32)
    out.copy_(x.movedim(-1, -4))
    return out.div_(255.0).sub_(MEAN).div_(STD)


# --------------------------------------------------------------------------------------------
# class vocabularies


def appearance_classes(n: int) -> list[str]:
    """The first ``n`` appearance class names.

    Up to 36 classes a class is a (colour, shape) pair ("red-disk") and the texture is drawn at
    random; above, a class is (colour, shape, texture) ("red-disk-striped"). The order walks
    the diagonals of the colour x shape table, so the first 6 classes differ in both.
    """
    if not 1 <= n <= _MAX_APPEARANCE:
        raise ValueError(f"appearance classes: n must be in 1..{_MAX_APPEARANCE}, got {n}")
    names = []
    for k in range(n):
        colour, shape, texture = _appearance_of(k, n)
        names.append(f"{colour}-{shape}" + (f"-{texture}" if texture is not None else ""))
    return names


def _appearance_of(k: int, n: int) -> tuple[str, str, str | None]:
    colours = list(COLOURS)
    j = k % _MAX_APPEARANCE_PAIRS
    c = j % len(colours)
    s = (c + j // len(colours)) % len(SHAPES)
    texture = TEXTURES[k // _MAX_APPEARANCE_PAIRS] if n > _MAX_APPEARANCE_PAIRS else None
    return colours[c], SHAPES[s], texture


def motion_profiles(frames: int) -> dict[str, tuple[int, ...]]:
    """The distinct motion profiles at clip length ``frames``: name -> permutation ``pi``
    (frame ``t`` shows path state ``pi[t]``). Candidates that coincide with an earlier one at
    this length are dropped, so short clips have fewer profiles."""
    return dict(_profiles(frames))


def _profiles(t: int) -> list[tuple[str, tuple[int, ...]]]:
    if t < 1:
        raise ValueError(f"frames must be >= 1, got {t}")
    fwd = list(range(t))
    evens, odds = fwd[0::2], fwd[1::2]
    mid = (t - 1) // 2
    swing = [mid]
    for step in range(1, t):
        nxt = mid + (step + 1) // 2 if step % 2 else mid - step // 2
        swing.append(nxt)
    if sorted(swing) != fwd:  # pragma: no cover - construction guarantees a permutation
        raise AssertionError("swing profile is not a permutation")

    def mirror(p: list[int]) -> list[int]:
        return [t - 1 - k for k in p]

    candidates = [
        ("forward", fwd),
        ("backward", fwd[::-1]),
        ("forward-return", evens + odds[::-1]),
        ("backward-return", mirror(evens + odds[::-1])),
        ("forward-twice", evens + odds),
        ("backward-twice", (evens + odds)[::-1]),
        ("swing-out", swing),
        ("swing-in", swing[::-1]),
    ]
    seen: set[tuple[int, ...]] = set()
    out = []
    for name, p in candidates:
        key = tuple(p)
        if key not in seen:
            seen.add(key)
            out.append((name, key))
    return out


# --------------------------------------------------------------------------------------------
# rendering


class _ClipGenerator:
    """Renders clip ``index`` of one split; all randomness comes from the clip's own seed.

    Frames are composed channel-planar (3, T, S, S) in float32, which keeps numpy's inner loops
    long, and interleaved into T H W 3 only at the end, in uint8.
    """

    def __init__(self, config: SyntheticConfig, split_id: int) -> None:
        self.c = config
        self.split_id = split_id
        t, s = config.frames, config.size
        self.coords = np.arange(s, dtype=np.float32) + 0.5  # pixel centres
        self.profiles = np.array([p for _, p in _profiles(t)], dtype=np.int64)
        self.palette = list(COLOURS.values())
        self.colour_index = {name: i for i, name in enumerate(COLOURS)}
        self.arange = np.arange(s)
        self.u = np.arange(t, dtype=np.float64) / max(t - 1, 1) - 0.5  # path parameter, -1/2 .. 1/2
        # random bytes -> Gaussian noise in 8-bit units, with the +0.5 of rounding folded in
        self.noise_table = (_NORMAL_TABLE * np.float32(255.0 * config.noise) + np.float32(0.5)).astype(np.float32)
        # The background field is a coarse periodic grid of random values smoothed onto the frame
        # by a Gaussian kernel on the torus: seamless under the camera's roll, blobs of about a
        # sixth of the frame at any size, and two small matrix products per clip.
        self.grid = g = 12
        dist = (np.arange(s)[:, None] + 0.5) / s - (np.arange(g)[None, :] + 0.5) / g
        dist -= np.round(dist)
        w = np.exp(-0.5 * (dist * g / 0.8) ** 2)
        self.smooth = w.astype(np.float32)  # (S, g)
        self.smooth_t = np.ascontiguousarray(self.smooth.T)
        energy = (w**2).sum(1)
        gain = np.array([0.18, 0.06, 0.06, 0.06]) * (255.0 * config.clutter)  # luminance, then colour
        # unit variance at every pixel: divide by sqrt(sum_i wy_i^2 * sum_j wx_j^2)
        self.field_gain = (gain[:, None, None] / np.sqrt(np.outer(energy, energy))).astype(np.float32)
        d = config.difficulty
        lerp = lambda pair: pair[0] + (pair[1] - pair[0]) * d  # noqa: E731
        self.radius = (lerp((_RADIUS[0][0], _RADIUS[1][0])) * s, lerp((_RADIUS[0][1], _RADIUS[1][1])) * s)
        self.travel = lerp(_TRAVEL) * s
        self.turn = lerp(_TURN)
        self.arc = lerp(_ARC)
        self.orbit = lerp(_ORBIT) * s
        self.growth = lerp(_GROWTH)
        self.fade = lerp(_FADE)
        n_app = config.num_classes if config.kind == "appearance" else -(-config.num_classes // config.motion_classes)
        self.app_table = [_appearance_of(k, n_app) for k in range(n_app)] if config.kind != "motion" else []

    # -- one clip ------------------------------------------------------------------------------

    def clip(self, index: int, label: int) -> np.ndarray:
        """Clip ``index`` with label ``label`` as uint8 ``T H W 3``."""
        planar = self.planar(index, label)
        out = np.empty(planar.shape[1:] + (3,), np.uint8)
        for ch in range(3):  # interleaving channel by channel is the fastest way in numpy
            out[..., ch] = planar[ch]
        return out

    def audio(self, index: int, label: int) -> np.ndarray:
        c = self.c
        rng = np.random.default_rng(np.random.SeedSequence([c.seed, self.split_id, index, _AUDIO_STREAM]))
        informative = rng.random() < c.audio_informativeness
        tone = label if informative else int(rng.integers(c.num_classes))
        phase = 2 * math.pi * rng.random()
        n = np.arange(c.audio_length, dtype=np.float64)
        cycles = 2.0 + 1.5 * tone  # per clip: distinct, well inside the Nyquist limit
        wave = np.sin(2 * math.pi * cycles * n / c.audio_length + phase)
        wave += rng.normal(0.0, c.audio_noise, c.audio_length) if c.audio_noise > 0 else 0.0
        return wave.astype(np.float32)[None]

    def planar(self, index: int, label: int, flow: np.ndarray | None = None) -> np.ndarray:
        """Clip ``index`` with label ``label`` as uint8 ``3 T H W``; given ``flow`` (float32
        ``2 T H W``), also writes the clip's exact forward flow into it."""
        c = self.c
        t, s = c.frames, c.size
        rng = np.random.default_rng(np.random.SeedSequence([c.seed, self.split_id, index]))
        # Every draw is made in the same way whatever the label; the label is applied last.
        # Scalars come in one block of uniforms per object (one call instead of a dozen).
        if c.camera_shake > 0:
            shake = np.rint(rng.normal(0.0, c.camera_shake * s, (t, 2))).astype(np.int64)  # (dx, dy)
        else:
            shake = np.zeros((t, 2), np.int64)
        frame, grey = self._background(rng, shake)  # (3, T, S, S) float32, 8-bit units
        if flow is not None:  # the background moves with the camera
            step = np.diff(shake, axis=0).astype(np.float32)  # (T-1, 2)
            flow[:, :-1] = step.T[:, :, None, None]
            flow[:, -1] = 0.0

        # distractors first, so that the target is never hidden; they jitter i.i.d. per frame
        for _ in range(c.distractors):
            draws = rng.random(_OBJECT_DRAWS).tolist()
            jitter = rng.normal(0.0, 0.04 * s, (2, t))
            shape, colour, texture = self._random_look(draws)
            r = (0.55 + 0.25 * draws[3]) * (self.radius[0] + (self.radius[1] - self.radius[0]) * draws[4])
            cx = r + (s - 2 * r) * draws[5] + jitter[0] + shake[:, 0]
            cy = r + (s - 2 * r) * draws[6] + jitter[1] + shake[:, 1]
            self._draw(frame, shape, texture, self._shade(draws, colour, grey), cx, cy,
                       np.full(t, 2 * math.pi * draws[7]), np.full(t, r), draws[8:10], flow)

        draws = rng.random(_OBJECT_DRAWS).tolist()
        shape, colour, texture = self._random_look(draws)
        family = c.motions[int(draws[3] * len(c.motions))]
        cx, cy, ang, rad = self._path(draws, family)
        order = self.profiles[int(draws[10] * len(self.profiles))]  # random: used by 'appearance'
        noise = rng.bit_generator.random_raw(-(-frame.size // 8)) if c.noise > 0 else None

        # the label: the appearance of the target and / or the order of its path's states
        if c.kind == "appearance":
            shape, colour, texture = self._labelled_look(label, texture)
        elif c.kind == "motion":
            order = self.profiles[label]
        else:
            shape, colour, texture = self._labelled_look(label // c.motion_classes, texture)
            order = self.profiles[label % c.motion_classes]
        if c.kind != "appearance" and family == "spin" and shape in _ISOTROPIC and texture == "solid":
            texture = "striped"  # keep the spin visible (texture carries no label here)
        self._draw(frame, shape, texture, self._shade(draws, colour, grey), cx[order] + shake[:, 0],
                   cy[order] + shake[:, 1], ang[order], rad[order], draws[8:10], flow)

        if noise is not None:
            # Gaussian noise through its quantile table: a random byte per value is several
            # times cheaper than a float normal draw, and the result is quantised to 8 bits.
            frame += np.take(self.noise_table, noise.view(np.uint8)[: frame.size]).reshape(frame.shape)
        else:
            frame += np.float32(0.5)
        out = np.empty(frame.shape, np.uint8)
        np.clip(frame, 0.0, 255.0, out=out, casting="unsafe")  # clip, then truncate: rounding
        return out

    # -- pieces --------------------------------------------------------------------------------
    # An object's block of uniforms: 0 shape, 1 colour, 2 texture, 3 family (target) or size
    # factor (distractor), 4 radius, 5-6 position, 7 angle, 8-9 texture phase, 10 profile,
    # 11 axis tilt (translate) or start of the revolution (rotate), 12-15 shading.

    def _background(self, rng: np.random.Generator, shake: np.ndarray) -> tuple[np.ndarray, float]:
        """A grey level plus a smooth periodic field, rolled by the camera shake: (3, T, S, S)."""
        c = self.c
        t, s, g = c.frames, c.size, self.grid
        grey = 0.35 + 0.25 * rng.random()
        if c.clutter == 0:
            return np.full((3, t, s, s), 255.0 * grey, np.float32), grey
        coarse = rng.standard_normal((4, g, g), dtype=np.float32)
        field = np.matmul(np.matmul(self.smooth, coarse), self.smooth_t)  # (4, S, S)
        field *= self.field_gain
        base = field[1:] + (field[0] + np.float32(255.0 * grey))  # mostly luminance, a little colour
        if not shake.any():
            return np.repeat(base[:, None], t, axis=1), grey
        # the camera's roll of each frame is a window into the field tiled 2 x 2
        tiled = np.tile(base, (1, 2, 2))
        frame = np.empty((3, t, s, s), np.float32)
        for i, (ox, oy) in enumerate(((-shake) % s).tolist()):
            frame[:, i] = tiled[:, oy:oy + s, ox:ox + s]
        return frame, grey

    @staticmethod
    def _random_look(draws: list[float]) -> tuple[str, int, str]:
        return (SHAPES[int(draws[0] * len(SHAPES))], int(draws[1] * len(COLOURS)),
                TEXTURES[int(draws[2] * len(TEXTURES))])

    def _labelled_look(self, k: int, random_texture: str) -> tuple[str, int, str]:
        colour, shape, texture = self.app_table[k]
        return shape, self.colour_index[colour], texture if texture is not None else random_texture

    def _shade(self, draws: list[float], colour: int, grey: float) -> np.ndarray:
        """The object's RGB (3, 1, 1, 1), 0..255: the palette colour with a little brightness and hue
        jitter, pulled toward the background grey by ``difficulty``."""
        d, fade = self.c.difficulty, self.fade
        bright = 1.0 - (0.1 + 0.15 * d) * draws[12]
        hue = 0.04 + 0.04 * d
        rgb = []
        for base, u in zip(self.palette[colour], draws[13:16]):
            x = base * bright + hue * (2 * u - 1)
            x += fade * (grey - x)
            rgb.append(255.0 * min(max(x, 0.0), 1.0))
        return np.array(rgb, np.float32).reshape(3, 1, 1, 1)

    def _path(self, draws: list[float], family: str):
        """The target's states s_0 .. s_{T-1} (centre x, y, angle, radius), class-independent.

        The shape of the path comes first, as offsets from an anchor; the anchor is then uniform
        over the positions that keep every state inside the frame.
        """
        s = self.c.size
        r0 = self.radius[0] + (self.radius[1] - self.radius[0]) * draws[4]
        ang0 = 2 * math.pi * draws[7]
        u = self.u
        ang = np.full_like(u, ang0)
        rad = np.full_like(u, r0)
        ox = oy = np.zeros_like(u)
        if family == "translate":  # left to right, along an axis within 60 degrees of horizontal
            tilt = _MAX_TILT * (2 * draws[11] - 1)
            ox, oy = self.travel * math.cos(tilt) * u, self.travel * math.sin(tilt) * u
        elif family == "rotate":  # revolve clockwise about a pivot, turning with the revolution
            phi = 2 * math.pi * draws[11] + self.arc * u  # a growing angle is clockwise (y down)
            ox, oy = self.orbit * np.cos(phi), self.orbit * np.sin(phi)
            ang = ang + self.arc * u
        elif family == "scale":  # grow
            rad = r0 * np.exp(u * math.log(self.growth))
        else:  # spin: turn clockwise in place
            ang = ang + self.turn * u
        reach = float(rad[-1]) * 1.05
        lo_x, hi_x = reach - float(ox.min()), s - reach - float(ox.max())
        lo_y, hi_y = reach - float(oy.min()), s - reach - float(oy.max())
        ax = lo_x + draws[5] * max(hi_x - lo_x, 0.0)
        ay = lo_y + draws[6] * max(hi_y - lo_y, 0.0)
        return ax + ox, ay + oy, ang, rad

    def _draw(self, frame: np.ndarray, shape: str, texture: str, rgb: np.ndarray, cx: np.ndarray,
              cy: np.ndarray, ang: np.ndarray, rad: np.ndarray, phase: np.ndarray,
              flow: np.ndarray | None = None) -> None:
        """Alpha-composite one object onto ``frame`` (3, T, S, S) in place; states are (T,) arrays.
        With ``flow`` (2, T, S, S), the object's pixels (coverage at least one half) in frame
        ``t`` get the motion of the object's similarity transform from state ``t`` to ``t + 1``.

        Only the window that holds the object in every frame is touched, so the cost follows
        the object and its path rather than the frame.
        """
        s = self.c.size
        f32 = np.float32
        reach = 1.2 * float(rad.max()) + 1.0
        x0 = max(0, math.floor(float(cx.min()) - reach))
        x1 = min(s, math.ceil(float(cx.max()) + reach))
        y0 = max(0, math.floor(float(cy.min()) - reach))
        y1 = min(s, math.ceil(float(cy.max()) + reach))
        if x1 <= x0 or y1 <= y0:
            return
        # pixel-centre offsets from the object's centre, turned into the object's frame (pixels)
        dx = self.coords[x0:x1] - cx.astype(f32)[:, None, None]  # (T, 1, w)
        dy = self.coords[y0:y1, None] - cy.astype(f32)[:, None, None]  # (T, h, 1)
        co = np.cos(ang).astype(f32)[:, None, None]
        si = np.sin(ang).astype(f32)[:, None, None]
        u = dx * co + dy * si
        v = dy * co - dx * si
        r = float(rad[0]) if rad[0] == rad[-1] else rad.astype(f32)[:, None, None]  # radius: fixed or growing
        alpha = _inside(shape, u, v, r)  # signed distance inside the outline, in pixels
        if flow is not None and len(cx) > 1:
            # a point at offset d from the centre in frame t sits, in frame t+1, at
            # c' + (r'/r) R(a' - a) d: the object's own coordinates (u, v) / r do not change
            turn = np.diff(ang).astype(f32)[:, None, None]
            zoom = (rad[1:] / rad[:-1]).astype(f32)[:, None, None]
            ct, st = np.cos(turn) * zoom, np.sin(turn) * zoom
            ddx, ddy = dx[:-1], dy[:-1]
            fx = (cx[1:] - cx[:-1]).astype(f32)[:, None, None] + (ct * ddx - st * ddy) - ddx
            fy = (cy[1:] - cy[:-1]).astype(f32)[:, None, None] + (st * ddx + ct * ddy) - ddy
            mine = alpha[:-1] >= 0
            fwin = flow[:, :-1, y0:y1, x0:x1]
            np.copyto(fwin[0], np.broadcast_to(fx, mine.shape), where=mine)
            np.copyto(fwin[1], np.broadcast_to(fy, mine.shape), where=mine)
        alpha += f32(0.5)
        np.clip(alpha, 0.0, 1.0, out=alpha)  # coverage, anti-aliased over about a pixel
        if texture == "solid":
            paint = rgb
        else:
            # light and dark bands, half a period each: a period of 0.9 radii (stripes) or
            # one radius (checks), with a random phase; the parity of the band index decides
            k = f32(2.0) / r
            if texture == "striped":
                band = np.floor(u * (k / f32(0.9)) + f32(phase[0]))
            else:  # checked
                band = np.floor(u * k + f32(phase[0])) + np.floor(v * k + f32(phase[1]))
            paint = _BAND_SHADE[band.astype(np.int64) & 1] * rgb
        win = frame[:, :, y0:y1, x0:x1]
        win += alpha * (paint - win)


def _inside(shape: str, u: np.ndarray, v: np.ndarray, r) -> np.ndarray:
    """How far (pixels, approximately) each point ``(u, v)`` lies inside the outline of ``shape``
    of radius ``r`` centred at the origin (negative outside)."""
    if shape == "disk":
        return r - np.sqrt(u * u + v * v)
    if shape == "square":
        return 0.8 * r - np.maximum(np.abs(u), np.abs(v))
    if shape == "triangle":
        h = np.float32(math.sqrt(3) / 2)
        hv = np.float32(0.5) * v
        return 0.5 * r - np.maximum(np.maximum(-v, h * u + hv), hv - h * u)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return -np.minimum(np.maximum(au - r, av - 0.33 * r), np.maximum(au - 0.33 * r, av - r))
    if shape == "ring":
        return 0.28 * r - np.abs(np.sqrt(u * u + v * v) - 0.72 * r)
    if shape == "bar":
        return -np.maximum(np.abs(u) - r, np.abs(v) - 0.38 * r)
    raise ValueError(f"unknown shape {shape!r}; expected one of: {', '.join(SHAPES)}")


def _normal_table() -> np.ndarray:
    """Standard-normal quantiles of the 256 byte values (tails cut near 2.9 sigma), unit variance."""
    q = np.array([NormalDist().inv_cdf((b + 0.5) / 256) for b in range(256)])
    return (q / q.std()).astype(np.float32)


_NORMAL_TABLE = _normal_table()
_OBJECT_DRAWS = 16  # uniforms per object, see _ClipGenerator
_AUDIO_STREAM = 7  # the audio's own random stream: [seed, split, index, _AUDIO_STREAM]
_BAND_SHADE = np.array([1.0, 0.2], np.float32)  # light band, dark band


# --------------------------------------------------------------------------------------------
# argument checks


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


def _check_float(name: str, value: object, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    return split


_FIELDS = tuple(f.name for f in dataclasses.fields(SyntheticConfig))


def _check_fields(overrides: dict) -> None:
    bad = sorted(set(overrides) - set(_FIELDS))
    if bad:
        raise ValueError(f"unknown synthetic option(s) {', '.join(bad)}; expected any of: {', '.join(_FIELDS)}")
