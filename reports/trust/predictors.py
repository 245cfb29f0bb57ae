"""Predictors and their cost on the development settings, scored against FusionBench e30.

    PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --runs runs/trust/mixed-w15-s0 ...
    PYTHONPATH=. .venv/bin/python reports/trust/predictors.py report

``compute`` caches each predictor's estimates of the table's strategies in RUN/predictors/ (one
thread, so that its seconds compare with the table's one-thread stand-alone trainings); the cheap
predictors run on every run given, the costly ones (``--costly``) only on the 15 + 15 templates.
``report`` scores them against the table as it stands and writes predictors-dev.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from workbench.studies.fusionbench import DEVELOPMENT, collect
from workbench.studies.predictors import PREDICTORS, predict_run, predictor_report, predictor_rows

TABLE = "reports/fusionbench/e30"
RUNS = Path("runs/trust")
CHEAP = ("shared", "shared+bn2", "shared+bn8", "shared+bn2+val5x")
COSTLY = ("mc8", "finetune50")
SCHEDULES = {"": "5 + 10", "-w15": "15 + 15"}


def compute(runs, costly: bool) -> None:
    codes = collect(TABLE, write=False).strategy.values.tolist()
    for run in runs:
        names = CHEAP + (COSTLY if costly and "-w15-" in Path(run).name else ())
        for name in names:
            r = predict_run(run, codes, name, threads=1)
            print(f"{run} {name}: {r['seconds']:.1f} s ({r['per_strategy_s']:.3f} s per strategy)", flush=True)


def report(out: Path, settings=DEVELOPMENT) -> str:
    tab = collect(TABLE, write=False)
    rows = []
    for setting in settings:
        sec = tab["seconds"].sel(setting=setting).values
        standalone = float(np.nanmedian(sec))
        for tag, label in SCHEDULES.items():
            preds = {}
            for name in PREDICTORS:
                got = [json.loads(p.read_text()) for k in (0, 1, 2)
                       if (p := RUNS / f"{setting}{tag}-s{k}" / "predictors" / f"{name}.json").exists()]
                if len(got) == 3:
                    preds[name] = got
            for r in predictor_rows(tab, setting, preds, standalone_s=standalone):
                r["predictor"] = f"[{label}] {r['predictor']}"
                rows.append(r)
    n = {s: int(np.isfinite(tab["test_top1"].sel(setting=s).values).sum()) for s in settings}
    note = ("Development settings only. Truth: FusionBench e30 as it stands ("
            + ", ".join(f"{s} {n[s]} of {tab.sizes['strategy'] * tab.sizes['seed']} trainings" for s in settings)
            + "); a strategy's truth is its mean over the seeds trained. Three template seeds (0, 1, 2) per "
            "schedule, estimates on each run's own validation split; one thread. Cost: seconds per strategy, "
            "and as a share of one stand-alone training (the median of the table's, one thread). Ensembles "
            "cost one template per member; the surrogate costs its anchors' stand-alone trainings besides.")
    text = "# " + "Predictors on the development settings\n\n" + predictor_report(rows, title="Tau, regret and cost", note=note)
    out.write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compute")
    c.add_argument("--runs", nargs="+", required=True)
    c.add_argument("--costly", action="store_true", help=f"also {', '.join(COSTLY)} on the 15 + 15 templates")
    r = sub.add_parser("report")
    r.add_argument("--out", default="reports/trust/predictors-dev.md")
    a = p.parse_args()
    if a.cmd == "compute":
        compute(a.runs, a.costly)
    else:
        print(report(Path(a.out)))


if __name__ == "__main__":
    main()
