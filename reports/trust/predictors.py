"""Each template run's predictions of FusionBench e30's strategies, cached in the run.

    PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --runs runs/trust/mixed-w15-s0 ...

``compute`` caches each predictor's estimates of the table's strategies in RUN/predictors/ (one
thread, so that its seconds compare with the table's one-thread stand-alone trainings); the cheap
predictors run on every run given, the costly ones (``--costly``) only on the 15 + 15 templates.
reports/trust/make.py scores them against the table as it stands.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from workbench.studies.fusionbench import collect
from workbench.studies.predictors import PREDICTORS, predict_run

TABLE = "reports/fusionbench/e30"
RUNS = Path("runs/trust")
CHEAP = ("shared", "shared+bn2", "shared+bn8", "shared+bn2+val5x", "gate-logp")
COSTLY = ("mc8", "finetune50")


def compute(runs, costly: bool, only=None) -> None:
    codes = collect(TABLE, write=False).strategy.values.tolist()
    for run in runs:
        names = tuple(only) if only else CHEAP + (COSTLY if costly and re.search(r"-w15-s\d+$", Path(run).name) else ())
        for name in names:
            r = predict_run(run, codes, name, threads=1)
            print(f"{run} {name}: {r['seconds']:.1f} s ({r['per_strategy_s']:.3f} s per strategy)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compute")
    c.add_argument("--runs", nargs="+", required=True)
    c.add_argument("--costly", action="store_true", help=f"also {', '.join(COSTLY)} on the 15 + 15 templates")
    c.add_argument("--only", nargs="+", default=None, choices=sorted(PREDICTORS), help="just these predictors")
    a = p.parse_args()
    compute(a.runs, a.costly, a.only)


if __name__ == "__main__":
    main()
