"""The strategy designer's state and logic (testable without a browser): the current strategy,
presets, "fill from the marginals", "best sampled", parameters, GMACs and the template's accuracy
estimate through the estimates' own scoring path, the two-stream variant of a design and a
layer-by-layer diff. Its widgets are in :mod:`~workbench.designer.view`, export and training in
:mod:`~workbench.designer.jobs`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from workbench.strategy import Strategy

__all__ = ["StrategyDesigner"]


class StrategyDesigner:
    """Design strategies of a trained template.

    ``template``: a :class:`~workbench.template.network.TemplateNetwork`; ``eval_set``: the data the
    estimate is computed on (shared weights, cached per strategy); ``estimates``: an estimates
    Dataset (``workbench template sample``) for "best sampled" and the diff choices; ``run``: the
    template's run folder (trust figure, dataset of the training button).
    """

    def __init__(self, template, eval_set, *, estimates=None, run=None, max_eval_batches: int | None = None,
                 batch_size: int | None = None, train_set=None, recalibrate_batches: int | None = None):
        from workbench.engine.estimate import StrategyCostTable
        from workbench.studies.trust_record import trust_line

        self.template = template.eval()
        self.eval_set = eval_set
        self.estimates = estimates
        self.run = Path(run) if run is not None else None
        self.max_eval_batches = max_eval_batches
        # one scoring path: the estimates' own settings (batch, BN recalibration, its seed), so the
        # designer, the estimates file, notebook 03 and the report give the same float
        attrs = estimates.attrs if estimates is not None else {}
        self.batch_size = int(batch_size or attrs.get("batch_size", 64))
        self.recalibrate_batches = int(recalibrate_batches if recalibrate_batches is not None
                                       else attrs.get("recalibrate_batches", 0 if train_set is None else 2))
        self.calibration_seed = int(attrs.get("calibration_seed", 0))
        self.mc_samples = int(attrs.get("mc_samples", 0))
        self.finetune_steps = int(attrs.get("finetune_steps", 0))
        if max_eval_batches is None and attrs.get("max_eval_batches") not in (None, "", -1):
            self.max_eval_batches = int(attrs["max_eval_batches"])
        if self.recalibrate_batches and train_set is None:
            raise ValueError("BN recalibration needs the training split: pass train_set (or use from_run)")
        self.train_set = train_set
        shape = tuple(int(s) for s in eval_set[0][0].shape)
        self.costs = StrategyCostTable(template, shape)
        self.presets = {s.name: s for s in template.presets()}
        self.trust = trust_line(self.run) if self.run is not None else "estimates UNVALIDATED: no run folder given"
        self._cache: dict[str, float] = {}
        self._intervals: dict[str, tuple[float, float]] = {}
        self._strategy = template.most_probable()
        self.stream_fusion = "none"  # or one of workbench.streams.models.FUSIONS
        self._stream_costs: dict[tuple[str, str], tuple[int, float]] = {}
        self.controls = None
        self.training: threading.Thread | None = None  # the running training's thread
        self.training_strategy: Strategy | None = None
        self.last_training: dict | None = None
        self.finished: list[dict] = []  # every ended training: strategy, status (done, cancelled, error), ...
        self.queue: list[dict] = []  # trainings waiting for the running one to end
        self.stop_event = threading.Event()
        self.jobs_lock = threading.RLock()
        self.running = False  # a training runs or is about to start (set and cleared under jobs_lock)

    @classmethod
    def from_run(cls, run, *, split: str | None = None, estimates=None, **kw) -> StrategyDesigner:
        """The designer of a template run folder (``estimates``: a Dataset or a ``.nc`` path). It
        scores on the split, clips and crops the estimates were made on (``split`` default:
        theirs, else ``val``; asking for another split than the estimates' is an error)."""
        from workbench.analysis import load_netcdf
        from workbench.studies.pipeline import open_splits, read_run
        from workbench.template.network import load_template

        spec = read_run(run)
        model, _ = load_template(run)
        if isinstance(estimates, (str, Path)):
            estimates = load_netcdf(estimates)
        attrs = estimates.attrs if estimates is not None else {}
        theirs = str(attrs["split"]) if "split" in attrs else None
        if split is not None and theirs is not None and split != theirs:
            raise ValueError(f"the estimates were made on the {theirs!r} split; the designer scores on the same one "
                             f"(asked for {split!r})")
        split = split or theirs or "val"
        clips, crops = int(attrs.get("clips", 1)), int(attrs.get("crops", 1))
        eval_kw = dict(spec["data_kw"])
        if clips > 1 or crops > 1:  # multi-view estimates: score the same views
            eval_kw.update(mode="test", num_clips=clips, num_crops=crops)
        root = spec.get("root")
        data = open_splits(spec["dataset"], root=root, splits=(split,), **eval_kw)[split]
        train = open_splits(spec["dataset"], root=root, splits=("train",), **spec["data_kw"])["train"]
        return cls(model, data, estimates=estimates, run=run, train_set=train, **kw)

    # ---- the current strategy --------------------------------------------------------------
    @property
    def strategy(self) -> Strategy:
        return self._strategy

    def set_strategy(self, strategy: Strategy, *, sync: bool = True) -> Strategy:
        """Make ``strategy`` the current design (checked against the template); ``sync=False``
        when the widget itself made the change and only its figures need redrawing."""
        self._strategy = self.template.check_strategy(strategy)
        if sync:
            self._sync_widgets()
        return self._strategy

    def set_unit(self, layer: int, unit: str) -> Strategy:
        if unit not in self.template.units:
            raise ValueError(f"unit {unit!r} is not in the template's units: {', '.join(self.template.units)}")
        return self.set_strategy(self._strategy.replace(layer, unit, name=None))  # an edit is a new design

    def apply_preset(self, name: str) -> Strategy:
        if name not in self.presets:
            raise ValueError(f"unknown preset {name!r} for this template; presets: {', '.join(self.presets)}")
        return self.set_strategy(self.presets[name])

    def fill_from_marginals(self) -> Strategy:
        """Every layer set to its most probable unit."""
        return self.set_strategy(self.template.most_probable())

    def sampled(self) -> list[Strategy]:
        """The sampled strategies of the estimates table, best first."""
        if self.estimates is None:
            return []
        from workbench.analysis import strategies_from, unique_strategies

        rows = strategies_from(self.estimates)
        acc = self.estimates["top1"].values
        uniq = sorted(unique_strategies(self.estimates, "sampled"), key=lambda t: -acc[t[0]])
        return [rows[i].replace(name=f"sampled {rows[i].code.split(':')[-1]} ({acc[i]:.3f}"
                                     + (f", drawn {n}x)" if n > 1 else ")")) for i, n in uniq]

    def best_sampled(self) -> Strategy:
        rows = self.sampled()
        if not rows:
            raise ValueError("no sampled strategies: give the designer an estimates table (workbench template sample)")
        return self.set_strategy(rows[0])

    # ---- what it costs and what the template says ---------------------------------------------
    def cost(self, strategy: Strategy | None = None) -> tuple[int, float]:
        """(parameters, GMACs) of ``strategy`` (default: the current one)."""
        params, macs = self.costs.cost(strategy or self._strategy)
        return params, macs / 1e9

    def estimate(self, strategy: Strategy | None = None) -> float:
        """The template's top-1 estimate with shared weights (cached per strategy), scored by
        :func:`workbench.engine.estimate.estimate_strategies` with the estimates' settings."""
        from workbench.engine.estimate import EstimateConfig, estimate_strategies

        s = strategy or self._strategy
        if s.key not in self._cache:
            cfg = EstimateConfig(batch_size=self.batch_size, recalibrate_batches=self.recalibrate_batches,
                                 calibration_seed=self.calibration_seed, max_eval_batches=self.max_eval_batches,
                                 mc_samples=self.mc_samples, finetune_steps=self.finetune_steps, progress=False)
            ds = estimate_strategies(self.template, [s], self.eval_set, config=cfg, train_set=self.train_set,
                                     cost_table=self.costs)
            self._cache[s.key] = float(ds["top1"].values[0])
            self._intervals[s.key] = (float(ds["top1_low"].values[0]), float(ds["top1_high"].values[0]))
        return self._cache[s.key]

    def interval(self, strategy: Strategy | None = None) -> tuple[float, float]:
        """The estimate's 95% evaluation-noise interval (Wilson, over the validation clips scored)."""
        s = strategy or self._strategy
        self.estimate(s)
        return self._intervals[s.key]

    def summary(self, strategy: Strategy | None = None) -> dict:
        s = strategy or self._strategy
        params, gmacs = self.cost(s)
        out = {"code": s.code, "params": params, "gmacs": gmacs, "estimate": self.estimate(s),
               "estimate_interval": self.interval(s),
               "log_prob": self.template.log_prob(s), "stream_fusion": self.stream_fusion}
        if self.stream_fusion != "none":
            out["two_stream_params"], out["two_stream_gmacs"] = self.stream_cost(s)
        return out

    # ---- stream fusion -------------------------------------------------------------------------
    def set_stream_fusion(self, fusion: str) -> str:
        """``"none"`` (the RGB network alone) or a two-stream fusion (``late``, ``stcb``,
        ``pyramid``): the design becomes the backbone of an RGB and an optical-flow stream."""
        from workbench.streams.models import FUSIONS

        if fusion not in ("none", *FUSIONS):
            raise ValueError(f"unknown stream fusion {fusion!r}; expected 'none' or one of: {', '.join(FUSIONS)}")
        self.stream_fusion = fusion
        if self.controls is not None:
            if self.controls["fusion"].value != fusion:
                self.controls["fusion"].value = fusion
            self.redraw()
        else:
            self._sync_widgets()
        return fusion

    def clip_shape(self) -> tuple[int, int, int, int]:
        return tuple(int(v) for v in self.eval_set[0][0].shape)

    def two_stream_model(self, strategy: Strategy | None = None, fusion: str | None = None):
        """The two-stream network of the design (untrained; the RGB and flow streams both use it)."""
        from workbench.streams import build_streams_model

        fusion = fusion or self.stream_fusion
        if fusion == "none":
            raise ValueError("no stream fusion chosen: set_stream_fusion('late' | 'stcb' | 'pyramid') first")
        s = strategy or self._strategy
        _, t, _, w = self.clip_shape()
        return build_streams_model(fusion, ("rgb", "flow"), self.template.num_classes, frames=t, size=w,
                                   backbone=s.to_dict(), backbone_kw=self.template.config.model_kwargs())

    def stream_cost(self, strategy: Strategy | None = None) -> tuple[int, float]:
        """(parameters, GMACs) of the two-stream network of the design (cached)."""
        from workbench.engine.cost import count_stream_cost

        s = strategy or self._strategy
        key = (s.key, self.stream_fusion)
        if key not in self._stream_costs:
            c, t, h, w = self.clip_shape()
            params, macs = count_stream_cost(self.two_stream_model(s), {"rgb": (c, t, h, w), "flow": (2, t, h, w)})
            self._stream_costs[key] = (params, macs / 1e9)
        return self._stream_costs[key]

    def diff(self, reference: Strategy | str) -> dict:
        """Layer by layer against ``reference`` (a strategy or a preset name): which layers
        changed, and the change in parameters, GMACs and estimate (current - reference)."""
        if isinstance(reference, str):
            if reference not in self.presets:
                raise ValueError(f"unknown preset {reference!r}; presets: {', '.join(self.presets)}")
            reference = self.presets[reference]
        reference = self.template.check_strategy(reference)
        a, b = self.summary(), self.summary(reference)
        return {
            "layers": [{"layer": i, "current": u, "reference": r, "changed": u != r}
                       for i, (u, r) in enumerate(zip(self._strategy.units, reference.units))],
            "changed": [i for i, _, _ in self._strategy.diff(reference)],
            "d_params": a["params"] - b["params"], "d_gmacs": a["gmacs"] - b["gmacs"],
            "d_estimate": a["estimate"] - b["estimate"], "reference": reference.label,
        }

    # ---- export and training -------------------------------------------------------------------
    def export(self, folder, name: str = "design") -> dict[str, Path]:
        """Write the current strategy as ``NAME.json``, the network with the template's weights as
        a checkpoint (``NAME-weights.safetensors`` + JSON metadata, no pickle) and ``NAME.py``, a
        loader that rebuilds it as a plain ``torch.nn.Module``. An existing design of that name is
        never written over: the next free ``NAME-2``, ``NAME-3``, ... is used."""
        from .jobs import export_design

        return export_design(self, folder, name)

    def train(self, out, *, epochs: int = 20, batch_size: int = 16, lr: float = 6e-3, seed: int = 0,
              inherit: bool = False, on_epoch=None, wait: bool = False, queue: bool = False,
              hooks: tuple | None = None):
        """Train the current strategy stand-alone on the run's dataset in a background thread
        (``wait=True``: join it, and any queued after it). ``on_epoch(history)`` runs after each
        epoch; the result lands in :attr:`last_training` and :attr:`finished`, a finished training
        in the run's records. While one runs, another is refused, or queued with ``queue=True``.
        Returns the thread (None when queued)."""
        from .jobs import start_training

        return start_training(self, out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, inherit=inherit,
                              on_epoch=on_epoch, wait=wait, queue=queue, hooks=hooks)

    def cancel(self, *, clear_queue: bool = False) -> bool:
        """Stop the running training before its next step (its folder resumes from the last
        finished epoch); ``clear_queue`` drops the queued ones too. Whether one was running."""
        from .jobs import cancel_training

        return cancel_training(self, clear_queue=clear_queue)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running training and the queued ones have ended."""
        from .jobs import wait_for_trainings

        wait_for_trainings(self, timeout)

    def records(self) -> list[dict]:
        """Every stand-alone training of a strategy of this run, beside its estimate."""
        from workbench.runs import read_records

        return read_records(self.run) if self.run is not None else []

    # ---- widgets -------------------------------------------------------------------------------
    def widget(self):
        """The designer as an ipywidgets box (display it in a notebook)."""
        from .view import build_widget

        return build_widget(self)

    def show_static(self) -> None:
        """Display the current design as a table that follows every change (and stays in a
        static export of the notebook)."""
        from .view import show_static

        show_static(self)

    def static_view(self):
        """The current design as an HTML table (what a static export of the notebook shows)."""
        from .view import static_view

        return static_view(self)

    def _sync_widgets(self) -> None:
        from .view import sync_widgets

        sync_widgets(self)

    def displayed(self) -> dict:
        """What the widget shows now (params, GMACs, estimate as displayed text)."""
        from .view import displayed

        return displayed(self)
