"""Helpers the notebooks call (the notebooks stay thin: parameters, then one call per view).

* :func:`smoke` - the CI switch (``WORKBENCH_SMOKE=1``): tiny sizes everywhere;
* :func:`ensure_template` - load a template run, or train it when it is missing;
* :class:`LivePlot` - loss, accuracy and P(unit) curves that redraw after every epoch (a
  matplotlib image in one display slot, so an exported static notebook keeps the last state);
* interactive plotly views (hover shows a strategy layer by layer) that also write offline HTML;
* :func:`export_selection` - any selection of strategies as CSV and JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .plots.interactive import (
    interactive_heatmap,
    interactive_scatter,
    parallel_units,
    strategy_hover,
)
from .runs import Run

__all__ = ["smoke", "default_run", "setup", "history_of", "ensure_estimates", "ensure_template", "LivePlot", "interactive_heatmap", "interactive_scatter",
           "parallel_units", "export_selection", "strategy_hover"]


def smoke() -> bool:
    """True when the notebooks run headless in CI (``WORKBENCH_SMOKE=1``)."""
    return os.environ.get("WORKBENCH_SMOKE", "") not in ("", "0", "false", "False")


_REPO = Path(__file__).resolve().parents[1]


def default_run() -> Path:
    """The template run the notebooks open: the main job's (``runs/demo/template`` at the
    repository root, from ``make demo``) when it is trained, else the one that ships in
    ``checkpoints/synthetic-mixed/template``; else ``runs/demo/template`` (trained on first use)."""
    for p in (_REPO / "runs" / "demo" / "template", _REPO / "checkpoints" / "synthetic-mixed" / "template"):
        if Run(p).has_checkpoint() and (p / "history.json").is_file():
            return p
    return _REPO / "runs" / "demo" / "template" if (_REPO / "notebooks").is_dir() else Path("runs/demo/template")


def setup() -> None:
    """Notebook defaults: plotly figures carry both the interactive bundle (JupyterLab) and an
    HTML version with plotly.js embedded, so an exported notebook works offline."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


def history_of(run) -> dict:
    """The per-epoch history of a run folder (``history.json``)."""
    path = Path(run) / "history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train the run first (notebook 01 or `workbench demo`)")
    return json.loads(path.read_text())


def ensure_estimates(run, path=None, *, n: int | None = None, progress: bool = True):
    """The sampled estimates of ``run``: read from ``path`` (default ``RUN/../estimates.nc``, as
    the main job writes them), or computed there (``n`` strategies, fewer under :func:`smoke`)."""
    from workbench.studies.pipeline import estimate_run

    from .analysis import load_netcdf

    path = Path(path) if path is not None else Path(run).parent / "estimates.nc"
    if path.is_file():
        return load_netcdf(path)
    n = n or (12 if smoke() else 200)
    return estimate_run(run, n=n, progress=progress, out=path)


def ensure_template(run, *, dataset: str = "synthetic-mixed", settings=None, on_epoch=None, progress: bool = True):
    """The template of ``run``: loaded when it is trained, else trained there (main-job settings
    on ``dataset``, smoke settings under :func:`smoke`). Returns ``(model, history_dataset)``."""
    from workbench.studies.mainjob import MAIN_JOB, SMOKE
    from workbench.studies.pipeline import train_template
    from workbench.template.network import load_template

    from .analysis import load_netcdf

    run = Path(run)
    settings = settings or (SMOKE if smoke() else MAIN_JOB)
    if Run(run).epochs_done() < settings.epochs:
        cfg = settings.train_config(progress)
        plan = template_training_plan(run, dataset=dataset, settings=settings)
        print(plan["text"], flush=True)  # what will run, and for how long, before it runs
        train_template(run, dataset=dataset, data_kw=settings.data_kw(),
                       template={"growth": settings.growth, "bn_size": settings.bn_size}, train_config=cfg,
                       resume=Run(run).is_present(), on_epoch=on_epoch)
    model, _ = load_template(run)
    return model, load_netcdf(run / "history.nc")


def template_training_plan(run, *, dataset: str = "synthetic-mixed", settings=None) -> dict:
    """What :func:`ensure_template` is about to train in ``run`` and about how long it takes: the
    epochs left times the steps per epoch times one measured training step (a dry run: nothing is
    trained, the model is thrown away). ``{"epochs", "steps", "step_seconds", "seconds", "text"}``."""
    import math

    import torch

    from workbench.engine.loop import measure_step_seconds
    from workbench.studies.mainjob import MAIN_JOB, SMOKE
    from workbench.studies.pipeline import open_splits
    from workbench.template.network import TemplateNetwork

    settings = settings or (SMOKE if smoke() else MAIN_JOB)
    cfg = settings.train_config(progress=False)
    train = open_splits(dataset, splits=("train",), **settings.data_kw())["train"]
    shape = tuple(int(v) for v in train[0][0].shape)
    k = len(train.classes)
    with torch.random.fork_rng():  # the measurement leaves the caller's random stream alone
        model = TemplateNetwork(num_classes=k, growth=settings.growth, bn_size=settings.bn_size)
        step = measure_step_seconds(model, shape, k, cfg)
    epochs = settings.epochs - Run(run).epochs_done()
    steps = math.ceil(len(train) / cfg.batch_size)
    seconds = epochs * steps * step
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
    text = (f"{run}: training the template on {dataset} for {epochs} epoch(s) of {steps} steps, about "
            f"{took} ({step * 1000:.0f} ms per measured step; validation adds a little)")
    return {"epochs": epochs, "steps": steps, "step_seconds": step, "seconds": seconds, "text": text}


class LivePlot:
    """``on_epoch(history, model)`` callback: loss, accuracy and each layer's most likely unit
    probability, redrawn in place after every epoch."""

    def __init__(self, width: str = "double"):
        from IPython.display import display

        self.width = width
        self.handle = display(self._placeholder(), display_id=True)

    @staticmethod
    def _placeholder():
        from IPython.display import HTML

        return HTML("<i>waiting for the first epoch...</i>")

    def figure(self, history, model=None):
        from .plots.live import training_curves

        return training_curves(history, model, width=self.width)

    def __call__(self, history, model=None):
        import matplotlib.pyplot as plt

        fig = self.figure(history, model)
        self.handle.update(fig)
        plt.close(fig)


def export_selection(est, indices, path) -> dict[str, Path]:
    """Rows ``indices`` of an estimates Dataset as ``PATH.csv`` (one row per strategy, one column
    per layer) and ``PATH.json`` (strategies, exact, with their numbers)."""
    import pandas as pd

    from .analysis import strategies_from

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("the selection is empty: select at least one strategy")
    sub = est.isel(strategy=idx)
    cols = [c for c in ("top1", "top5", "gmacs", "params", "log_prob", "source", "name", "code") if c in sub]
    df = pd.DataFrame({c: sub[c].values for c in cols})
    for li in range(sub.sizes["layer"]):
        df[f"layer{li}"] = [str(u) for u in sub["units"].values[:, li]]
    df.to_csv(path.with_suffix(".csv"), index=False)
    rows = [{"strategy": s.to_dict(), **{c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, r)}}
            for s, r in zip(strategies_from(sub), df[cols].itertuples(index=False))]
    path.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    return {"csv": path.with_suffix(".csv"), "json": path.with_suffix(".json")}


def records_table(run):
    """The run's stand-alone trainings beside their estimates (``RUN/records.json``, written by the
    designer and anyone who trains a strategy of the run), as a DataFrame; empty when none."""
    import pandas as pd

    from workbench.runs import read_records

    rows = [{"strategy": r["code"], "estimate": r["estimate"],
             "estimate 95%": f"[{r['estimate_interval'][0]:.3f}, {r['estimate_interval'][1]:.3f}]",
             "stand-alone test top-1": r["standalone_test_top1"],
             "epochs": r.get("train_config", {}).get("epochs"), "source": r.get("source"), "when": r.get("time")}
            for r in read_records(run)]
    return pd.DataFrame(rows, columns=["strategy", "estimate", "estimate 95%", "stand-alone test top-1", "epochs",
                                       "source", "when"])
