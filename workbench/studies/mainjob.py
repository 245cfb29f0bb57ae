"""The main job (``workbench demo``): the whole pipeline on the embedded synthetic benchmark.

1. train the template network on ``synthetic-mixed`` (the class is an appearance *and* a motion);
2. sample strategies from the learned distribution and score them with the shared weights, with
   the literature presets and the most probable strategy;
3. write the figures (layer-level preferences, gate trajectories, estimate distribution,
   accuracy versus GMACs with the Pareto front, per-layer importance) as PDF, SVG and PNG;
4. write a short markdown report that carries the estimates' trust figure.

About a minute on a 2-core CPU at the default size (measured: 45 s training at 15 warm-up + 15
gated epochs, 2 s scoring 211 strategies, 3 s figures). ``smoke=True`` shrinks everything (CI).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.engine.config import TEMPLATE_TRAINING
from workbench.runs import Run, RunError, write_json, write_text

__all__ = ["MainJobSettings", "MAIN_JOB", "SMOKE", "run_main_job", "write_figures", "main_job_report"]


@dataclass(frozen=True)
class MainJobSettings:
    dataset: str = "synthetic-mixed"
    train_per_class: int = 100  # 8 classes: 800 training clips
    val_per_class: int = 50
    test_per_class: int = 50
    growth: int = 8
    bn_size: int = 2
    # the template schedule of every command (engine.config.TEMPLATE_TRAINING, chosen on the trust
    # study's development settings), and 2 batches of BN recalibration per scored strategy
    epochs: int = TEMPLATE_TRAINING.epochs
    warmup_epochs: int = TEMPLATE_TRAINING.warmup_epochs
    batch_size: int = TEMPLATE_TRAINING.batch_size
    lr: float = TEMPLATE_TRAINING.lr
    tau_start: float | None = None  # temperature annealing (see workbench.train.TrainConfig)
    sandwich: float = 0.0
    recalibrate_batches: int = 2  # BN recalibration of each scored strategy
    seed: int = 0
    samples: int = 200  # strategies sampled from the learned distribution

    def train_config(self, progress: bool = True):
        from workbench.engine.config import TrainConfig

        return TrainConfig(epochs=self.epochs, warmup_epochs=self.warmup_epochs, batch_size=self.batch_size,
                           lr=self.lr, tau_start=self.tau_start, sandwich=self.sandwich, seed=self.seed,
                           progress=progress)

    def data_kw(self) -> dict:
        return {"train_per_class": self.train_per_class, "val_per_class": self.val_per_class,
                "test_per_class": self.test_per_class}


MAIN_JOB = MainJobSettings()
SMOKE = MainJobSettings(train_per_class=6, val_per_class=4, test_per_class=4, growth=4, epochs=2, warmup_epochs=1,
                        batch_size=16, samples=12, recalibrate_batches=1)


def write_figures(run, estimates, out, *, formats=("pdf", "svg", "png")) -> dict[str, list[Path]]:
    """The figures of one template run and its estimates, into ``out`` (one file per format)."""
    import matplotlib.pyplot as plt

    from workbench.analysis import layer_importance, load_netcdf, marginals
    from workbench.plots import (
        accuracy_histogram,
        accuracy_vs_gmacs,
        gate_trajectories,
        layer_importance_plot,
        save_figure,
        unit_bars,
        unit_heatmap,
    )
    from workbench.studies.trust_record import trust_short
    from workbench.template.network import load_template

    model, _ = load_template(run)
    m = marginals(model)
    figs = {
        "unit_probability_heatmap": unit_heatmap(m),
        "unit_probability_bars": unit_bars(m),
        "estimate_histogram": accuracy_histogram(estimates),
        "accuracy_vs_gmacs": accuracy_vs_gmacs(estimates, trust=trust_short(run)),
        "layer_importance": layer_importance_plot(layer_importance(estimates)),
    }
    hist = Path(run) / "history.nc"
    if hist.is_file():
        figs["gate_trajectories"] = gate_trajectories(load_netcdf(hist))
    written = {}
    for name, fig in figs.items():
        written[name] = save_figure(fig, Path(out) / name, formats=formats)
        plt.close(fig)
    return written


def main_job_report(run, estimates, *, settings: MainJobSettings, seconds: dict, figures: dict) -> str:
    """A short markdown report: setup, layer-level preferences, best strategies, trust figure."""
    import numpy as np

    from workbench.analysis import marginals, pareto_front, unique_strategies
    from workbench.studies.trust_record import trust_line
    from workbench.template.network import load_template

    model, meta = load_template(run)
    m = marginals(model)
    hist = meta["metadata"]["history"]
    units = [str(u) for u in m["unit"].values]
    lines = [
        "# Fusion Workbench: main job",
        "",
        f"Template network `{model.backbone}` (growth {model.config.growth}, scaffold {model.config.scaffold}, "
        f"unit set {model.config.unit_set}) trained on `{settings.dataset}` "
        f"({settings.train_per_class} training clips per class, {model.num_classes} classes) for "
        f"{settings.epochs} epochs ({settings.warmup_epochs} warm-up); final validation top-1 "
        f"{hist['val_acc'][-1]:.3f}. Expected number of layers keeping a temporal branch: "
        f"{model.expected_temporal_layers():.2f} of {model.num_layers}.",
        "",
        f"**Trust:** {trust_line(run)}.",
        "",
        "## Layer-level preference: P(unit) at each layer",
        "",
        "| layer | " + " | ".join(units) + " | most probable |",
        "|---" * (len(units) + 2) + "|",
    ]
    for li in range(m.sizes["layer"]):
        row = m.values[li]
        lines.append(f"| {li} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {units[int(np.argmax(row))]} |")
    acc = estimates["top1"].values
    src = [str(s) for s in estimates["source"].values]
    codes = [str(c) for c in estimates["code"].values]
    names = [str(n) for n in estimates["name"].values]
    sampled = [i for i, s in enumerate(src) if s == "sampled"]
    uniq = unique_strategies(estimates, "sampled")
    drawn = dict(uniq)
    lines += ["", f"## Network-level estimates ({len(sampled)} sampled strategies, {len(uniq)} distinct; "
                  "shared weights, validation split)",
              "", f"Sampled: median {np.median(acc[sampled]):.3f}, best {acc[sampled].max():.3f}, "
                  f"worst {acc[sampled].min():.3f}. The interval is evaluation noise only (95%, over "
                  f"{int(estimates['n_eval'].values[0]) if 'n_eval' in estimates else '?'} validation clips); how far "
                  "shared weights are from stand-alone training is the trust figure below.", "",
              "| strategy | source | drawn | estimated top-1 [95% interval] | GMACs | params |",
              "|---|---|---|---|---|---|"]
    low = estimates["top1_low"].values if "top1_low" in estimates else acc
    high = estimates["top1_high"].values if "top1_high" in estimates else acc
    order = sorted(drawn, key=lambda i: -acc[i])[:5] + [i for i, s in enumerate(src) if s != "sampled"]
    for i in order:
        lines.append(f"| `{names[i] or codes[i]}` {'' if not names[i] else f'(`{codes[i]}`)'} | {src[i]} | "
                     f"{drawn.get(i, '')} | {acc[i]:.3f} [{low[i]:.3f}, {high[i]:.3f}] | "
                     f"{estimates['gmacs'].values[i]:.4f} | {int(estimates['params'].values[i]):,} |")
    front = np.flatnonzero(pareto_front(estimates))
    lines += ["", f"Pareto front (accuracy vs GMACs): {len(front)} strategies.", "", "## Figures", ""]
    for name, paths in figures.items():
        png = [p for p in paths if p.suffix == ".png"]
        if png:
            lines.append(f"- {name.replace('_', ' ')}: ![{name}](figures/{png[0].name}) "
                         f"({', '.join(p.suffix[1:] for p in paths)})")
    lines += ["", "## Time", "", ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".", "",
              "## Next", "", "- `jupyter lab notebooks/`: explore this run (set `RUN` in the parameters cell).",
              f"- `workbench trust --run {run} --out {Path(run).parent / 'anchors'} --parallel 2`: how well the "
              "estimates rank strategies against stand-alone training, from 8 tool-chosen anchors "
              f"(`workbench study rank --run-dir {run} --out {Path(run).parent / 'study'}` for a full study).", ""]
    return "\n".join(lines)


def run_main_job(out="runs/demo", *, settings: MainJobSettings = MAIN_JOB, progress: bool = True) -> dict:
    """Train, sample, score, plot and report into ``out`` (``template/``, ``estimates.nc``,
    ``figures/``, ``report.md``). Returns the paths and timings."""
    from workbench.studies.pipeline import estimate_run, train_template

    out = Path(out)
    run = out / "template"
    t0 = time.perf_counter()
    cfg = settings.train_config(progress)
    if Run(run).has_spec():  # a template of an earlier version's schedule is neither resumed nor reused
        saved = Run(run).spec().get("train_config") or {}
        want = {k: v for k, v in cfg.to_dict().items() if k not in ("progress", "device")}
        if {k: saved.get(k) for k in want} != want:
            raise RunError(
                f"{run} holds a template trained with another schedule ({saved.get('epochs')} epochs, "
                f"{saved.get('warmup_epochs')} warm-up, batch {saved.get('batch_size')}; the main job trains "
                f"{cfg.epochs}, {cfg.warmup_epochs} warm-up, batch {cfg.batch_size}): move or delete {out}, "
                "or give the main job another --out")
    if Run(run).epochs_done() < settings.epochs:  # an interrupted run resumes from its last epoch
        train_template(run, dataset=settings.dataset, data_kw=settings.data_kw(),
                       template={"growth": settings.growth, "bn_size": settings.bn_size}, train_config=cfg,
                       resume=Run(run).is_present())
    t1 = time.perf_counter()
    est = estimate_run(run, n=settings.samples, seed=settings.seed, progress=progress, out=out / "estimates.nc",
                       recalibrate_batches=settings.recalibrate_batches)
    t2 = time.perf_counter()
    figures = write_figures(run, est, out / "figures")
    t3 = time.perf_counter()
    seconds = {"training": t1 - t0, "estimates": t2 - t1, "figures": t3 - t2}
    report = main_job_report(run, est, settings=settings, seconds=seconds, figures=figures)
    write_text(out / "report.md", report)
    write_json(out / "settings.json", asdict(settings))
    return {"run": run, "estimates": out / "estimates.nc", "figures": figures, "report": out / "report.md",
            "seconds": seconds}
