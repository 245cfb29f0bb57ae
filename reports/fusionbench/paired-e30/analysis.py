# Run from the repository root: python reports/fusionbench/paired-e30/analysis.py OUT.json
"""Paired vs unpaired initialisation at 30 epochs, same 24 strategies, seeds 3 and 4."""
import json, sys
import numpy as np
from workbench.studies.fusionbench import collect
from workbench.studies.fusionbench_score import truth_quality
from workbench.studies.agreement import kendall_tau

un = collect("reports/fusionbench/budget-e30", write=False)
pa = collect("reports/fusionbench/paired-e30", write=False)
rows = []
for s in ("mixed", "motion"):
    qu, qp = truth_quality(un, s), truth_quality(pa, s)
    au = un["test_top1"].sel(setting=s).values; ap = pa["test_top1"].sel(setting=s).values
    ok = np.isfinite(ap).all(1) & np.isfinite(au).all(1)
    rows.append({"setting": s, "strategies": int(ok.sum()),
                 "unpaired_tau": qu["tau_between_seeds"], "paired_tau": qp["tau_between_seeds"],
                 "unpaired_reliability": qu["reliability"], "paired_reliability": qp["reliability"],
                 "unpaired_seed_sd": float(np.mean(np.abs(au[ok, 0] - au[ok, 1])) / np.sqrt(2)),
                 "paired_seed_sd": float(np.mean(np.abs(ap[ok, 0] - ap[ok, 1])) / np.sqrt(2)),
                 "tau_paired_mean_vs_unpaired_mean": kendall_tau(ap[ok].mean(1), au[ok].mean(1)),
                 "mean_top1_unpaired": float(au[ok].mean()), "mean_top1_paired": float(ap[ok].mean())})
print(json.dumps(rows, indent=1))
json.dump(rows, open(sys.argv[1], "w"), indent=1)
