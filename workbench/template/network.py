"""The template network: every fusion branch gated by variational DropPath.

Every layer of the template holds all candidate branches (``S``: 1x1x1 -> 1x3x3, ``ST``:
3x1x1 -> 1x3x3, and optionally ``T``: 3x1x1 straight to the output). Each (layer, branch) has a
learnable drop probability ``p = sigmoid(logit)``, initialised at 0.1. Training the template once
embeds every fusion strategy in a probability space (Zhou et al., CVPR 2020):

* relaxed training: one concrete (Gumbel-sigmoid) mask per example and gate, temperature ``tau``;
  the branch output is multiplied by ``1 - drop`` (no ``1/(1-p)`` rescaling, as the authors' code);
* a strategy is a hard Bernoulli draw: branch kept with probability ``1 - p``; a layer whose
  branches are all dropped is ``skip``;
* layer-level preference: per-gate ``1 - sqrt(p)`` (the paper's Eq. 7) and the per-unit
  probabilities implied by independent gates (P(S) = (1-p_S) p_ST, ...);
* network-level estimates: a strategy runs as a real sub-network of the shared weights (dropped
  branches are not computed); :mod:`workbench.estimate` scores many of them.

Modes (``TemplateNetwork.mode``): ``"warmup"`` (no gates: every branch on), ``"relaxed"``
(concrete masks; used for training), ``"expected"`` (each branch scaled by ``1 - p``),
``"fixed"`` (one strategy, set with :meth:`TemplateNetwork.set_strategy`: a hard mask) and
``"conditioned"`` (Monte-Carlo masks of one strategy: concrete masks drawn from the training
distribution *given* that strategy's keep/drop outcome at every gate, so the shared weights see
the soft multipliers they were trained with; used by Monte-Carlo estimates).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from workbench.models.base import VideoModel
from workbench.strategy import Strategy, backbone_layout, branches_of, units_from_branches

__all__ = [
    "TemplateConfig",
    "TemplateNetwork",
    "concrete_drop",
    "concrete_drop_given",
    "UNIT_SETS",
    "units_from_branches",
    "branches_of",
    "load_template",
]

# Candidate unit sets: U = {S, ST, S+ST} (the paper's default) or the larger set with T.
UNIT_SETS: dict[str, tuple[str, ...]] = {
    "paper": ("S", "ST"),  # branches; units are their non-empty sums: S, ST, S+ST
    "with-t": ("S", "ST", "T"),  # S, ST, T, S+ST, S+T, T+ST, S+T+ST
}
# temporal extent of each branch's first conv: the 'volume' prior scales the weight penalty by it
_BRANCH_VOLUME = {"S": 1.0, "ST": 3.0, "T": 3.0}


def concrete_drop_given(logit: torch.Tensor, keep: torch.Tensor, shape: Sequence[int], tau: float,
                        generator=None) -> torch.Tensor:
    """Concrete drop variables conditioned on their hard outcome: for a kept gate (``keep`` True)
    the sample is drawn given drop < 1/2, for a dropped one given drop > 1/2. The event
    drop < 1/2 is ``logit + log u - log(1-u) < 0``, i.e. ``u < sigmoid(-logit)``: ``u`` is drawn
    uniformly on that side (a truncated logistic)."""
    eps = 1e-7
    cut = torch.sigmoid(-logit)
    v = torch.rand(shape, generator=generator, device=logit.device, dtype=logit.dtype)
    u = torch.where(keep, v * cut, cut + v * (1 - cut)).clamp(eps, 1 - eps)
    return torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / tau)


def concrete_drop(logit: torch.Tensor, shape: Sequence[int], tau: float, generator=None) -> torch.Tensor:
    """Relaxed Bernoulli(p = sigmoid(logit)) *drop* variable of ``shape``, differentiable in logit:
    sigmoid((logit + log u - log(1-u)) / tau), u ~ U(0,1) (Concrete / Gumbel-sigmoid)."""
    eps = 1e-7
    u = torch.rand(shape, generator=generator, device=logit.device, dtype=logit.dtype).clamp(eps, 1 - eps)
    return torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / tau)


@dataclass(frozen=True)
class TemplateConfig:
    """Everything needed to rebuild a template network (stored in checkpoints as JSON)."""

    backbone: str = "densenet-tiny"
    unit_set: str = "paper"
    num_classes: int = 10
    growth: int = 8  # DenseNet template
    bn_size: int = 2  # DenseNet template
    base_width: int = 8  # ResNet-bottleneck template
    stem_width: int | None = None
    temporal_reduction: int = 1
    tau: float = 0.2
    p_init: float = 0.1
    # regulariser: "paper" = Eq. 5, (1/N) p log p + k^2 (1-p) ||w||^2 / (2N);
    # "code" = the authors' code, (k/N) ||w||^2 (1-p) + (1/N) [p log p + (1-p) log(1-p)]
    regularizer: str = "paper"
    # k: 1.0 separates appearance from motion on the tiny synthetic benchmark (N ~ 800 clips; see
    # workbench.known_answer and the README for the measured range). Larger k prunes more: when
    # accuracy falls with it, the run warns that the gates collapsed
    length_scale: float = 1.0
    # "volume": a branch's weight penalty is scaled by its temporal kernel extent (ST/T x3), i.e.
    # the Gaussian prior's precision grows with the kernel volume; "none": the paper's plain prior
    prior: str = "volume"
    # what surrounds the searched layers: "spatial" = 1x7x7 stem and 1x1x1 transitions, so every
    # temporal conv of the network is a searched branch and the S-only strategy is a frame-level
    # network; "paper" = the authors' 5x7x7 stem and 1x1x1 + 3x1x1 transitions (ungated temporal
    # convs outside the space: even the S-only strategy then models time)
    scaffold: str = "spatial"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        layout = backbone_layout(self.backbone)
        if layout.family not in ("densenet", "resnet-template"):
            from workbench.strategy import list_backbones

            allowed = [b for b in list_backbones() if backbone_layout(b).family in ("densenet", "resnet-template")]
            raise ValueError(
                f"the template network needs a densenet or resnet template backbone, got {self.backbone!r}; "
                f"expected one of: {', '.join(allowed)}"
            )
        if self.unit_set not in UNIT_SETS:
            raise ValueError(f"unknown unit set {self.unit_set!r}; expected one of: {', '.join(UNIT_SETS)}")
        if layout.family == "resnet-template" and self.unit_set != "paper":
            raise ValueError("the ResNet-bottleneck template offers the unit set 'paper' (S, ST, S+ST) only")
        if not 0.0 < self.p_init < 1.0:
            raise ValueError(f"p_init must lie in (0, 1), got {self.p_init}")
        if self.tau <= 0:
            raise ValueError(f"tau must be positive, got {self.tau}")
        if self.regularizer not in ("paper", "code"):
            raise ValueError(f"unknown regularizer {self.regularizer!r}; expected 'paper' or 'code'")
        if self.scaffold not in ("spatial", "paper"):
            raise ValueError(f"unknown scaffold {self.scaffold!r}; expected 'spatial' (2D stem and transitions) "
                             "or 'paper' (5x7x7 stem, temporal transitions)")
        if self.prior not in ("volume", "none"):
            raise ValueError(f"unknown prior {self.prior!r}; expected 'volume' or 'none'")

    @property
    def branches(self) -> tuple[str, ...]:
        return UNIT_SETS[self.unit_set]

    @property
    def units(self) -> tuple[str, ...]:
        """Every unit of the space, skip last."""
        bs = self.branches
        out = []
        for r in range(1, len(bs) + 1):
            for combo in itertools.combinations(bs, r):
                out.append(units_from_branches(combo))
        return (*sorted(set(out), key=lambda u: (len(branches_of(u)), u)), "skip")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TemplateConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown template config keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)

    @property
    def family(self) -> str:
        return backbone_layout(self.backbone).family

    def model_kwargs(self) -> dict:
        if self.family == "resnet-template":
            return dict(num_classes=self.num_classes, base_width=self.base_width, dropout=self.dropout)
        return dict(
            num_classes=self.num_classes, growth=self.growth, bn_size=self.bn_size,
            stem_width=self.stem_width, temporal_reduction=self.temporal_reduction, dropout=self.dropout,
            template_compat=True, temporal_transitions=self.scaffold == "paper",
        )

    @property
    def stem(self) -> str:
        """The stem of every strategy of this template (not part of the searched space)."""
        return "3D" if self.scaffold == "paper" else "2D"


class TemplateNetwork(VideoModel):
    """The gated DenseNet template. Input ``B 3 T H W``; output logits ``B num_classes``."""

    def __init__(self, config: TemplateConfig | None = None, **overrides) -> None:
        super().__init__()
        if config is None:
            config = TemplateConfig(**overrides)
        elif overrides:
            config = TemplateConfig(**{**config.to_dict(), **overrides})
        self.config = config
        layout = backbone_layout(config.backbone)
        full = units_from_branches(config.branches)
        from workbench.models import build_model

        self.net = build_model(
            Strategy(config.backbone, (full,) * layout.num_layers, config.stem), channels_last=False,
            **config.model_kwargs(),
        )
        self.num_layers = layout.num_layers
        self.num_classes = config.num_classes
        logit0 = math.log(config.p_init / (1 - config.p_init))
        # one logit per (layer, branch): L x B
        self.gate_logits = nn.Parameter(torch.full((self.num_layers, len(config.branches)), logit0))
        self.mode = "relaxed"
        self.tau = config.tau  # relaxation temperature in use (a schedule may anneal it)
        self._fixed: tuple[tuple[str, ...], ...] | None = None
        self._layers = [layer for _, layer in self.net.layer_modules()]
        self.branch_index = {b: i for i, b in enumerate(config.branches)}
        self._cached_masks: torch.Tensor | None = None
        # the 'volume' prior's per-branch factors, on the model's device (not part of the weights)
        self.register_buffer("branch_volume", torch.tensor([_BRANCH_VOLUME[b] for b in config.branches]),
                             persistent=False)

    # ---- the space ---------------------------------------------------------------------------
    @property
    def branches(self) -> tuple[str, ...]:
        return self.config.branches

    @property
    def units(self) -> tuple[str, ...]:
        return self.config.units

    @property
    def backbone(self) -> str:
        return self.config.backbone

    def drop_probabilities(self) -> torch.Tensor:
        """``L x B`` drop probabilities p (detached)."""
        return torch.sigmoid(self.gate_logits.detach()).cpu()

    def gate_parameters(self) -> list[nn.Parameter]:
        return [self.gate_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "gate_logits"]

    def unit_probabilities(self) -> torch.Tensor:
        """``L x U`` probability of each unit of :attr:`units` at each layer (rows sum to 1)."""
        p = self.drop_probabilities().double()
        cols = []
        for u in self.units:
            kept = set(branches_of(u))
            prob = torch.ones(self.num_layers, dtype=torch.float64)
            for b, j in self.branch_index.items():
                prob = prob * ((1 - p[:, j]) if b in kept else p[:, j])
            cols.append(prob)
        return torch.stack(cols, 1)

    def use_probabilities(self) -> torch.Tensor:
        """The paper's per-gate layer-level preference, ``1 - sqrt(p)`` (Eq. 7), ``L x B``."""
        return 1 - self.drop_probabilities().sqrt()

    def most_probable(self) -> Strategy:
        probs = self.unit_probabilities()
        units = tuple(self.units[i] for i in probs.argmax(1).tolist())
        return Strategy(self.backbone, units, self.config.stem, name="most-probable")

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[Strategy]:
        """``n`` strategies drawn from the learned distribution (hard Bernoulli masks)."""
        if n < 1:
            raise ValueError(f"n must be a positive number of strategies, got {n}")
        p = self.drop_probabilities()
        out = []
        for _ in range(n):
            drop = torch.rand(p.shape, generator=generator) < p
            units = tuple(
                units_from_branches([b for b, j in self.branch_index.items() if not drop[li, j]])
                for li in range(self.num_layers)
            )
            out.append(Strategy(self.backbone, units, self.config.stem))
        return out

    def log_prob(self, strategy: Strategy) -> float:
        """log P(strategy) under independent gates."""
        self.check_strategy(strategy)
        p = self.drop_probabilities().double()
        total = 0.0
        for li, u in enumerate(strategy.units):
            kept = set(branches_of(u))
            for b, j in self.branch_index.items():
                q = (1 - p[li, j]) if b in kept else p[li, j]
                total += math.log(max(q.item(), 1e-300))
        return total

    def expected_temporal_layers(self) -> float:
        """Expected number of layers that keep at least one temporal branch (ST or T)."""
        p = self.drop_probabilities().double()
        drop_all_t = torch.ones(self.num_layers, dtype=torch.float64)
        for b, j in self.branch_index.items():
            if b in ("ST", "T"):
                drop_all_t = drop_all_t * p[:, j]
        return float((1 - drop_all_t).sum())

    def presets(self) -> list[Strategy]:
        """The literature presets that fit this template (its unit set), on its stem."""
        from workbench.strategy import list_presets, preset

        out = []
        for name in list_presets(self.backbone):
            s = preset(name, self.backbone)
            if all(u in self.units for u in s.units):
                out.append(Strategy(self.backbone, s.units, self.net.strategy.stem, name=name))
        unique: dict[tuple, Strategy] = {}
        for s in out:  # presets that coincide here (st / rmc2) are kept once, under the first name
            unique.setdefault(s.units, s)
        return list(unique.values())

    def on_scaffold(self, strategy: Strategy) -> Strategy:
        """``strategy`` on this template's stem (the stem is fixed by the scaffold, not searched):
        a strategy written without one (``densenet-tiny:SSTT...``) can be used as is."""
        if strategy.stem == self.config.stem:
            return strategy
        return strategy.replace(stem=self.config.stem)

    def check_strategy(self, strategy: Strategy) -> Strategy:
        """Validate ``strategy`` against the space; returns it on the template's stem."""
        if strategy.backbone != self.backbone:
            raise ValueError(f"strategy is for backbone {strategy.backbone!r}, the template is {self.backbone!r}")
        for li, u in enumerate(strategy.units):
            if u not in self.units:
                raise ValueError(
                    f"layer {li}: unit {u!r} is not in this template's unit set {self.config.unit_set!r}; "
                    f"allowed: {', '.join(self.units)}"
                )
        return self.on_scaffold(strategy)

    # ---- modes ---------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> TemplateNetwork:
        if mode not in ("warmup", "relaxed", "expected", "fixed", "conditioned"):
            raise ValueError(f"unknown mode {mode!r}; expected warmup, relaxed, expected, fixed or conditioned")
        if mode in ("fixed", "conditioned") and self._fixed is None:
            raise ValueError(f"mode {mode!r} needs a strategy: call set_strategy(strategy)")
        self.mode = mode
        return self

    @contextlib.contextmanager
    def running(self, strategy: Strategy | None = None, mode: str = "fixed"):
        """``with template.running(strategy): ...``: the template runs ``strategy`` (``mode``
        ``fixed``, or ``conditioned`` for Monte-Carlo masks given it) for the block, and is put
        back as it was afterwards, whatever happens inside. ``strategy=None`` only restores."""
        saved = self.mode, self._fixed
        try:
            if strategy is not None:
                self.set_strategy(strategy)
                if mode != "fixed":
                    self.set_mode(mode)
            yield self
        finally:
            self.mode, self._fixed = saved

    def set_strategy(self, strategy: Strategy | None) -> TemplateNetwork:
        """Run one strategy as a real sub-network (dropped branches are not computed)."""
        if strategy is None:
            self._fixed = None
            if self.mode in ("fixed", "conditioned"):
                self.mode = "relaxed"
            return self
        self.check_strategy(strategy)
        self._fixed = tuple(branches_of(u) for u in strategy.units)
        self.mode = "fixed"
        return self

    # ---- regulariser -----------------------------------------------------------------------------
    def regularizer(self, n_train: int) -> torch.Tensor:
        """The KL term of the variational objective for the gated branches, for a training set of
        ``n_train`` examples (see :class:`TemplateConfig` for the two forms)."""
        if n_train < 1:
            raise ValueError(f"n_train must be a positive number of training examples, got {n_train}")
        cfg = self.config
        k = cfg.length_scale
        p = torch.sigmoid(self.gate_logits).clamp(1e-6, 1 - 1e-6)
        sq = torch.stack([
            torch.stack([self._branch_sq_norm(layer, b) for b in self.branches]) for layer in self._layers
        ])  # L x B
        if cfg.prior == "volume":
            sq = sq * self.branch_volume.to(sq.dtype)
        if cfg.regularizer == "paper":
            reg = (p * torch.log(p)).sum() / n_train + (k * k * (1 - p) * sq).sum() / (2 * n_train)
        else:
            ent = p * torch.log(p) + (1 - p) * torch.log(1 - p)
            reg = (k * (1 - p) * sq).sum() / n_train + ent.sum() / n_train
        return reg

    @staticmethod
    def _branch_sq_norm(layer, branch: str) -> torch.Tensor:
        mod = {"S": layer.branch_s, "ST": layer.branch_st, "T": getattr(layer, "branch_t", None)}[branch]
        conv = mod.conv if hasattr(mod, "conv") else mod  # DenseNet: BN-ReLU-conv; ResNet: the conv
        return conv.weight.pow(2).sum()

    # ---- forward -------------------------------------------------------------------------------
    def _masks(self, batch: int) -> torch.Tensor | None:
        """``B x L x Br`` keep-multipliers for the current mode, or None (all ones)."""
        if self.mode in ("warmup", "fixed"):
            return None
        if self.mode == "expected":
            keep = 1 - torch.sigmoid(self.gate_logits)
            return keep.unsqueeze(0).expand(batch, -1, -1)
        shape = (batch, *self.gate_logits.shape)
        if self.mode == "conditioned":
            keep = torch.tensor([[b in kept for b in self.branch_index] for kept in self._fixed],
                                device=self.gate_logits.device)
            return 1 - concrete_drop_given(self.gate_logits, keep.expand(shape), shape, self.tau)
        return 1 - concrete_drop(self.gate_logits, shape, self.tau)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x)
        masks = self._masks(x.shape[0])
        # hand every layer its gate context, run the backbone's own forward, then clear it
        for li, layer in enumerate(self._layers):
            layer.gate_kept = self._fixed[li] if self.mode == "fixed" else None
            layer.gate_mask = (
                None if masks is None else
                {b: masks[:, li, j].view(-1, 1, 1, 1, 1) for b, j in self.branch_index.items()}
            )
        try:
            return self.net.forward_features(x)
        finally:
            for layer in self._layers:
                layer.gate_kept = layer.gate_mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.net.dropout(self.forward_features(x)))

    def set_activation_checkpointing(self, enabled: bool = True) -> TemplateNetwork:
        """Recompute each dense layer in the backward pass instead of storing its activations:
        the template holds every branch, so it needs more memory than any one strategy."""
        if not hasattr(self.net, "set_activation_checkpointing"):
            raise ValueError(f"activation checkpointing is offered for the DenseNet templates, not {self.backbone!r}")
        self.net.set_activation_checkpointing(enabled)
        return self

    def layer_modules(self):
        return [(f"net.{n}", m) for n, m in self.net.layer_modules()]

    @property
    def strategy(self) -> Strategy:
        """The active strategy in fixed mode, else the full template."""
        if self.mode == "fixed" and self._fixed is not None:
            return Strategy(self.backbone, tuple(units_from_branches(k) for k in self._fixed), self.config.stem)
        return self.net.strategy

    # ---- extraction ------------------------------------------------------------------------------
    def extract(self, strategy: Strategy, *, inherit_weights: bool = True) -> VideoModel:
        """``strategy`` as a stand-alone network, with the template's weights (or fresh ones)."""
        from workbench.models import build_model

        strategy = self.check_strategy(strategy)
        model = build_model(strategy, channels_last=False, **self.config.model_kwargs())
        if inherit_weights:
            src = self.net.state_dict()
            dst = model.state_dict()
            missing = [k for k in dst if k not in src]
            if missing:  # pragma: no cover - the template holds every branch
                raise ValueError(f"template lacks weights for {missing[:5]}")
            model.load_state_dict({k: src[k] for k in dst})
        if self.channels_last:
            model.set_channels_last(True)
        return model


def load_template(run: str | Path, *, map_location: str = "cpu") -> tuple[TemplateNetwork, dict]:
    """The template network of a run folder (``RUN/last``) or checkpoint path, with its metadata."""
    from workbench.engine.checkpoint import CheckpointError, load_latest, load_state_checked

    path = Path(run)
    if not path.exists() and not path.with_suffix(".safetensors").exists():
        raise CheckpointError(f"{run} does not exist: expected a template run folder (template train --out)")
    ckpt = path / "last" if path.is_dir() else path
    state, meta, _ = load_latest(ckpt, map_location=map_location)
    cfg = meta.get("metadata", {}).get("supernet_config")
    if cfg is None:
        raise CheckpointError(f"{path} is not a template run: its checkpoint has no supernet_config "
                              "(expected the --out folder of `workbench template train`)")
    try:
        model = TemplateNetwork(TemplateConfig.from_dict(cfg))
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{ckpt}: its supernet_config does not describe a template: {e}") from None
    load_state_checked(model, state, ckpt)
    return model, meta


# the previous release's names, kept for one release
TemplateSupernet = TemplateNetwork
SupernetConfig = TemplateConfig
load_supernet = load_template
