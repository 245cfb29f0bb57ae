"""The strategy designer: assemble a fusion strategy layer by layer in a notebook.

:class:`StrategyDesigner` holds the logic (testable without a browser) and builds the
ipywidgets: one dropdown per layer, presets, "fill from the marginals", "best sampled", live
parameters, GMACs and the template's accuracy estimate for the current choice (with the run's
trust figure), a layer-by-layer diff against any preset or sampled strategy, export (JSON,
inherited weights in safetensors and a small Python loader) and stand-alone training in a
background thread with a progress bar, so the notebook stays responsive.
"""

from __future__ import annotations

import html
import json
import threading
from pathlib import Path

from .strategy import Strategy

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
        from workbench.studies.rank import trust_line

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
        self._widgets = None
        self.training: threading.Thread | None = None
        self._training_strategy: Strategy | None = None
        self.last_training: dict | None = None

    @classmethod
    def from_run(cls, run, *, split: str | None = None, estimates=None, **kw) -> StrategyDesigner:
        """The designer of a template run folder (``estimates``: a Dataset or a ``.nc`` path). It
        scores on the split, clips and crops the estimates were made on (``split`` default:
        theirs, else ``val``; asking for another split than the estimates' is an error)."""
        from workbench.studies.pipeline import open_splits, read_run
        from workbench.template.network import load_template

        from .analysis import load_netcdf

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

    def set_strategy(self, strategy: Strategy) -> Strategy:
        self._strategy = self.template.check_strategy(strategy)
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
        from .analysis import strategies_from, unique_strategies

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
        from .streams.models import FUSIONS

        if fusion not in ("none", *FUSIONS):
            raise ValueError(f"unknown stream fusion {fusion!r}; expected 'none' or one of: {', '.join(FUSIONS)}")
        self.stream_fusion = fusion
        if self._widgets is not None:
            if self._widgets["fusion"].value != fusion:
                self._widgets["fusion"].value = fusion
            self._refresh()
        return fusion

    def _clip_shape(self) -> tuple[int, int, int, int]:
        return tuple(int(v) for v in self.eval_set[0][0].shape)

    def two_stream_model(self, strategy: Strategy | None = None, fusion: str | None = None):
        """The two-stream network of the design (untrained; the RGB and flow streams both use it)."""
        from .streams import build_streams_model

        fusion = fusion or self.stream_fusion
        if fusion == "none":
            raise ValueError("no stream fusion chosen: set_stream_fusion('late' | 'stcb' | 'pyramid') first")
        s = strategy or self._strategy
        _, t, _, w = self._clip_shape()
        return build_streams_model(fusion, ("rgb", "flow"), self.template.num_classes, frames=t, size=w,
                                   backbone=s.to_dict(), backbone_kw=self.template.config.model_kwargs())

    def stream_cost(self, strategy: Strategy | None = None) -> tuple[int, float]:
        """(parameters, GMACs) of the two-stream network of the design (cached)."""
        from workbench.engine.cost import count_stream_cost

        s = strategy or self._strategy
        key = (s.key, self.stream_fusion)
        if key not in self._stream_costs:
            c, t, h, w = self._clip_shape()
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
        a checkpoint (``NAME.safetensors`` + ``NAME.json`` metadata, no pickle) and ``NAME.py``,
        a loader that rebuilds it as a plain ``torch.nn.Module``. An existing design of that name
        is never written over: the next free ``NAME-2``, ``NAME-3``, ... is used."""
        from workbench.engine.checkpoint import save_checkpoint

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = _free_name(folder, name)  # never written over: design, design-2, design-3, ...
        s = self._strategy.replace(name=name)
        model = self.template.extract(s, inherit_weights=True)
        save_checkpoint(folder / f"{name}-weights", model, model_kwargs=self.template.config.model_kwargs(),
                        metadata={"strategy": s.to_dict(), "from_template": str(self.run) if self.run else None,
                                  "estimate": self.estimate(s)})
        (folder / f"{name}.json").write_text(json.dumps(s.to_dict(), indent=1) + "\n")
        (folder / f"{name}.py").write_text(
            f'"""{s.code}: a fusion strategy exported by the strategy designer.\n\n'
            "build() returns the network as a torch.nn.Module with the template's weights (safetensors).\n"
            '"""\n\nfrom pathlib import Path\n\nfrom workbench.checkpoint import load_checkpoint\n\n\n'
            "def build():\n"
            f'    model, meta, _ = load_checkpoint(Path(__file__).with_name("{name}-weights"))\n'
            "    return model\n"
        )
        paths = {"strategy": folder / f"{name}.json", "weights": folder / f"{name}-weights.safetensors",
                 "module": folder / f"{name}.py"}
        if self.stream_fusion != "none":
            _, t, _, w = self._clip_shape()
            spec = {"fusion": self.stream_fusion, "modalities": ["rgb", "flow"], "backbone": s.to_dict(),
                    "backbone_kw": self.template.config.model_kwargs(), "num_classes": self.template.num_classes,
                    "frames": t, "size": w}
            (folder / f"{name}-streams.json").write_text(json.dumps(spec, indent=1) + "\n")
            with open(folder / f"{name}.py", "a") as fh:
                fh.write(
                    "\n\ndef build_two_stream():\n"
                    f'    """The {self.stream_fusion} two-stream (RGB + flow) network of this design, untrained."""\n'
                    "    import json\n\n    from workbench.streams import build_streams_model\n\n"
                    f'    spec = json.loads(Path(__file__).with_name("{name}-streams.json").read_text())\n'
                    '    return build_streams_model(spec["fusion"], spec["modalities"], spec["num_classes"], '
                    'frames=spec["frames"],\n                               size=spec["size"], backbone=spec["backbone"], '
                    'backbone_kw=spec["backbone_kw"])\n')
            paths["streams"] = folder / f"{name}-streams.json"
        return paths

    def train(self, out, *, epochs: int = 20, batch_size: int = 16, lr: float = 6e-3, seed: int = 0,
              inherit: bool = False, on_epoch=None, wait: bool = False) -> threading.Thread:
        """Train the current strategy stand-alone on the run's dataset in a background thread
        (``wait=True``: join it). ``on_epoch(history)`` runs after each epoch; the result lands
        in :attr:`last_training` (or its exception)."""
        from workbench.engine.config import TrainConfig
        from workbench.studies.pipeline import read_run, train_strategy

        if self.run is None:
            raise ValueError("training needs the template's run folder (StrategyDesigner.from_run)")
        if self.training is not None and self.training.is_alive():
            raise RuntimeError("a training is already running; wait for it to finish")
        spec = read_run(self.run)
        s = self._strategy
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
        # the template is scored here, in the caller's thread: the training thread never touches it
        estimate = (self.estimate(s), self.interval(s))

        fusion = self.stream_fusion

        def job():
            try:
                if fusion != "none":
                    from .streams import run_streams

                    epochs_seen: list[int] = []

                    def streams_epoch(h, m):
                        epochs_seen.append(h["epoch"][-1])
                        if on_epoch:
                            on_epoch(_StreamsProgress(h))

                    r = run_streams(out, dataset=spec["dataset"], fusion=fusion, modalities=("rgb", "flow"),
                                    train_config=cfg, data_kw=spec["data_kw"],
                                    model_kw={"backbone": s.to_dict(), "backbone_kw": self.template.config.model_kwargs()},
                                    on_epoch=streams_epoch)
                    self.last_training = {"strategy": s, "history": r["history"], "test": r["result"]["test"]["fused"],
                                          "out": str(out), "stream_fusion": fusion}
                    try:
                        val = r["history"]["val_acc"]["fused"][-1]
                    except (KeyError, IndexError, TypeError):
                        val = None
                    try:
                        self._record(s, estimate, val, self.last_training["test"], cfg, out, inherit, fusion)
                        self.last_training["recorded"] = True
                    except Exception as e:
                        self.last_training["record_error"] = e
                    return
                _, history, test = train_strategy(
                    s, out, dataset=spec["dataset"], root=spec.get("root"), data_kw=spec["data_kw"],
                    model_kw=self.template.config.model_kwargs(), train_config=cfg,
                    inherit_from=self.run if inherit else None,
                    on_epoch=(lambda h, m: on_epoch(h)) if on_epoch else None)
                self.last_training = {"strategy": s, "history": history, "test": test, "out": str(out)}
            except Exception as e:  # reported in the widget and kept for the caller
                self.last_training = {"strategy": s, "error": e}
                return
            try:  # a training that finished stays finished, whatever happens to its record
                self._record(s, estimate, history.val_acc[-1], test, cfg, out, inherit, fusion)
                self.last_training["recorded"] = True
            except Exception as e:
                self.last_training["record_error"] = e

        self.last_training = None
        self._training_strategy = s
        self.training = threading.Thread(target=job, daemon=True, name="designer-training")
        self.training.start()
        if wait:
            self.training.join()
        return self.training

    def _record(self, s: Strategy, estimate: tuple[float, tuple[float, float]], val_top1, test: dict, cfg, out,
                inherit: bool, fusion: str) -> None:
        """The finished training beside its estimate, in the run's records (``RUN/records.json``)."""
        from workbench.runs import add_record

        add_record(self.run, {
            "strategy": s.to_dict(), "code": s.code, "estimate": estimate[0], "estimate_interval": list(estimate[1]),
            "recalibrate_batches": self.recalibrate_batches, "standalone_test_top1": test["top1"],
            "standalone_val_top1": val_top1, "test_clips": test.get("n"), "train_config": cfg.to_dict(),
            "inherited_weights": inherit, "stream_fusion": fusion, "out": str(out), "source": "designer",
        })

    def records(self) -> list[dict]:
        """Every stand-alone training of a strategy of this run, beside its estimate."""
        from workbench.runs import read_records

        return read_records(self.run) if self.run is not None else []

    # ---- widgets -------------------------------------------------------------------------------
    def widget(self):
        """The designer as an ipywidgets box (display it in a notebook)."""
        import ipywidgets as W

        units = list(self.template.units)
        layers = [W.Dropdown(options=units, value=u, description=f"layer {i}", layout=W.Layout(width="190px"))
                  for i, u in enumerate(self._strategy.units)]
        preset = W.Dropdown(options=["(preset)"] + list(self.presets), value="(preset)", description="preset")
        fill = W.Button(description="fill from the marginals", layout=W.Layout(width="auto"))
        best = W.Button(description="best sampled", disabled=self.estimates is None, layout=W.Layout(width="auto"))
        from .streams.models import FUSIONS

        fusion = W.Dropdown(options=["none", *FUSIONS], value=self.stream_fusion, description="streams",
                            tooltip="none: the RGB network; else an RGB + optical-flow two-stream network of the design")
        info = W.HTML()
        refs = ["(none)"] + list(self.presets) + [s.label for s in self.sampled()[:20]]
        diff_to = W.Dropdown(options=refs, value="(none)", description="diff against")
        diff_out = W.HTML()
        folder = W.Text(value="designs", description="folder")
        export = W.Button(description="export")
        epochs = W.BoundedIntText(value=20, min=1, max=1000, description="epochs")
        train = W.Button(description="train stand-alone")
        bar = W.IntProgress(value=0, min=0, max=1, description="training")
        status = W.HTML()
        self._widgets = {"layers": layers, "info": info, "diff_to": diff_to, "diff": diff_out, "preset": preset,
                         "bar": bar, "status": status, "fusion": fusion}
        by_label = {**self.presets, **{s.label: s for s in self.sampled()[:20]}}

        def refresh(*_):
            s = self.summary()
            info.value = (f"<b>{html.escape(s['code'])}</b><br>params <b class='wb-params'>{s['params']:,}</b> | "
                          f"GMACs <b class='wb-gmacs'>{s['gmacs']:.4g}</b> | estimated top-1 "
                          f"<b class='wb-estimate'>{s['estimate']:.3f}</b> "
                          f"<span title='evaluation noise only (95% Wilson interval over the validation clips); "
                          f"the trust figure below says how far shared weights are from stand-alone training'>"
                          f"[{s['estimate_interval'][0]:.3f}, {s['estimate_interval'][1]:.3f}]</span>"
                          f" | log P {s['log_prob']:.1f}<br>"
                          + (f"two-stream ({html.escape(self.stream_fusion)}, RGB + flow): params "
                             f"<b class='wb-streams-params'>{s['two_stream_params']:,}</b> | GMACs "
                             f"<b class='wb-streams-gmacs'>{s['two_stream_gmacs']:.4g}</b> "
                             "<small>(the estimate is the RGB network's)</small><br>"
                             if self.stream_fusion != "none" else "")
                          + f"<small>{html.escape(self.trust)}</small>")
            ref = diff_to.value
            if ref == "(none)":
                diff_out.value = ""
                return
            d = self.diff(by_label[ref])
            rows = "".join(
                f"<tr style='{'background:#fde0c5' if r['changed'] else ''}'><td>{r['layer']}</td>"
                f"<td>{r['current']}</td><td>{r['reference']}</td></tr>" for r in d["layers"])
            diff_out.value = (f"<table><tr><th>layer</th><th>current</th><th>{html.escape(ref)}</th></tr>{rows}</table>"
                              f"changed layers: {d['changed'] or 'none'}; params {d['d_params']:+,}, "
                              f"GMACs {d['d_gmacs']:+.4g}, estimate {d['d_estimate']:+.3f}")

        def on_layer(change, i):
            if change["new"] != self._strategy.units[i]:
                self._strategy = self._strategy.replace(i, change["new"], name=None)  # a new design
                if preset.value != "(preset)":
                    preset.value = "(preset)"  # the dropdown no longer names what is shown
                refresh()

        for i, dd in enumerate(layers):
            dd.observe(lambda c, i=i: on_layer(c, i), names="value")
        preset.observe(lambda c: c["new"] != "(preset)" and self.apply_preset(c["new"]), names="value")
        fill.on_click(lambda _: self.fill_from_marginals())
        best.on_click(lambda _: self.best_sampled())
        diff_to.observe(refresh, names="value")
        fusion.observe(lambda c: self.set_stream_fusion(c["new"]), names="value")

        def do_export(_):
            paths = self.export(folder.value)
            status.value = "exported: " + ", ".join(html.escape(str(p)) for p in paths.values())

        def do_train(_):
            if self.training is not None and self.training.is_alive():
                running = (self.last_training or {}).get("strategy") or self._training_strategy
                status.value = (f"refused: {html.escape(running.code if running else 'a design')} is still training; "
                                "wait for it to finish")
                return
            n = epochs.value
            bar.max, bar.value = n, 0
            out = Path(folder.value) / f"train-{self._strategy.key}"
            status.value = f"training {html.escape(self._strategy.code)} for {n} epochs -> {html.escape(str(out))}"

            def progress(h):
                bar.value = len(h)
                status.value = f"epoch {len(h)}/{n}: val top-1 {h.val_acc[-1]:.3f}"


            def watch():
                self.training.join()
                r = self.last_training or {}
                code = html.escape(r["strategy"].code) if r.get("strategy") is not None else "?"
                where = (f"recorded in {html.escape(str(self.run))}/records.json" if r.get("recorded") else
                         f"NOT recorded: {html.escape(str(r.get('record_error')))}")
                status.value = (f"error training {code}: {html.escape(str(r['error']))}" if "error" in r else
                                f"done: {code}: test top-1 {r['test']['top1']:.3f} (estimate was "
                                f"{self.estimate(r['strategy']):.3f}); {where}")

            self.train(out, epochs=n, on_epoch=progress)
            threading.Thread(target=watch, daemon=True).start()

        export.on_click(do_export)
        train.on_click(do_train)
        refresh()
        grid = W.GridBox(layers, layout=W.Layout(grid_template_columns="repeat(4, 200px)"))
        box = W.VBox([W.HBox([preset, fill, best, fusion]), grid, info, diff_to, diff_out,
                      W.HBox([folder, export]), W.HBox([epochs, train, bar]), status])
        self._refresh = refresh
        return box

    def static_view(self):
        """The current design as an HTML table (what a static export of the notebook shows)."""
        from IPython.display import HTML

        s = self.summary()
        rows = "".join(f"<tr><td>{i}</td><td>{u}</td></tr>" for i, u in enumerate(self._strategy.units))
        return HTML(f"<p><b>{html.escape(s['code'])}</b>: params {s['params']:,}, GMACs {s['gmacs']:.4g}, "
                    f"estimated top-1 {s['estimate']:.3f}<br>"
                    + (f"two-stream ({html.escape(self.stream_fusion)}, RGB + flow): params {s['two_stream_params']:,}, "
                       f"GMACs {s['two_stream_gmacs']:.4g}<br>" if self.stream_fusion != "none" else "")
                    + f"<small>{html.escape(self.trust)}</small></p>"
                    f"<table><tr><th>layer</th><th>unit</th></tr>{rows}</table>")

    def _sync_widgets(self) -> None:
        if self._widgets is None:
            return
        for dd, u in zip(self._widgets["layers"], self._strategy.units):
            if dd.value != u:
                dd.value = u
        preset = self._widgets["preset"]
        shown = self._strategy.name if self._strategy.name in self.presets else "(preset)"
        if preset.value != shown:  # the dropdown names the design only while it is that preset
            preset.value = shown
        self._refresh()

    def displayed(self) -> dict:
        """What the widget shows now (params, GMACs, estimate as displayed text)."""
        import re

        if self._widgets is None:
            raise ValueError("no widget yet: call widget() first")
        text = self._widgets["info"].value
        return {k: re.search(f"class='wb-{k}'>([^<]+)<", text).group(1) for k in ("params", "gmacs", "estimate")}


class _StreamsProgress:
    """A stream-fusion history seen through the two fields the designer's progress bar reads."""

    def __init__(self, history: dict) -> None:
        self.val_acc = history["val_acc"]["fused"][1:]

    def __len__(self) -> int:
        return len(self.val_acc)


def _free_name(folder: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first with none of a design's files in ``folder``."""
    def taken(n: str) -> bool:
        return any((folder / f"{n}{suffix}").exists() for suffix in (".json", ".py", "-weights.safetensors"))

    if not taken(name):
        return name
    i = 2
    while taken(f"{name}-{i}"):
        i += 1
    return f"{name}-{i}"
