# Run from the repository root: python reports/fusionbench/budget-e30/analysis.py OUT.json
"""Between-seed agreement and failure rate of the 20- and 30-epoch budgets on the same 24 strategies."""
import json, sys
import numpy as np
from workbench.studies.fusionbench import collect
from workbench.studies.fusionbench_score import fidelity, truth_quality
from workbench.studies.agreement import kendall_tau

e20 = collect("reports/fusionbench", write=False)
e30 = collect("reports/fusionbench/budget-e30", write=False)
codes = e30.strategy.values.tolist()
rows = []
for s in ("mixed", "motion"):
    a = e20.sel(strategy=codes)
    q20 = truth_quality(a.sel(seed=[0, 1]), s)
    q30 = truth_quality(e30, s)
    f = fidelity(e30, a.sel(seed=[0, 1]), s)

    acc20 = a["test_top1"].sel(setting=s, seed=[0, 1]).values
    acc30 = e30["test_top1"].sel(setting=s).values
    rows.append({"setting": s, "e20_tau_between_seeds": q20["tau_between_seeds"], "e20_reliability": q20["reliability"],
                 "e20_strategies": q20["strategies"], "e30_tau_between_seeds": q30["tau_between_seeds"],
                 "e30_reliability": q30["reliability"], "e30_strategies": q30["strategies"],
                 "tau_e20_mean_vs_e30_mean": f["tau_short_vs_full"],
                 "e20_mean_sd_between_seeds": float(np.nanmean(np.abs(acc20[:, 0] - acc20[:, 1])) / np.sqrt(2)),
                 "e30_mean_sd_between_seeds": float(np.nanmean(np.abs(acc30[:, 0] - acc30[:, 1])) / np.sqrt(2)),
                 "e20_mean_top1": float(np.nanmean(acc20)), "e30_mean_top1": float(np.nanmean(acc30))})
print(json.dumps(rows, indent=1))
json.dump(rows, open(sys.argv[1], "w"), indent=1)
