import json
import pathlib

from workbench.studies.fusionbench import load_table
from workbench.studies.trust import load_scores, trust_report

t = load_table("reports/fusionbench")
n = {s: int((~t["test_top1"].sel(setting=s).isnull()).any("seed").sum()) for s in ("mixed", "motion")}
cfgs = {}
for setting in ("mixed", "motion"):
    cfgs[f"{setting}: default (5 warm-up + 10 gated)"] = load_scores(
        [f"runs/trust/{setting}-s{s}/bench-score.json" for s in range(3)])
    cfgs[f"{setting}: 15 warm-up + 15 gated"] = load_scores(
        [f"runs/trust/{setting}-w15-s{s}/bench-score.json" for s in range(3)])
health, val = {}, {}
for p in sorted(pathlib.Path("runs/trust").glob("*/health.json")):
    probs = json.loads(p.read_text())["template"]
    health[p.parent.name] = ", ".join(x["problem"] for x in probs) or "none"
for p in sorted(pathlib.Path("runs/trust").glob("*/history.json")):
    val[p.parent.name] = json.loads(p.read_text())["val_acc"][-1]
note = (f"PRELIMINARY, development settings only. The truth is FusionBench seed 0 alone ({n['mixed']} mixed and "
        f"{n['motion']} motion "
        "strategies of 74 finished when scored; presets and uniform draws first, no gate draws yet): one "
        "stand-alone seed is itself noisy, so these taus carry no noise ceiling yet and move as the table grows. "
        "Templates: densenet-tiny, growth 8, batch 16, lr 6e-3, scored with 2 BN-recalibration batches on their "
        "own validation split; one thread each; template seeds 0, 1, 2.")
text = trust_report(cfgs, title="Trust on the development settings: template seeds against FusionBench (preliminary)",
                    note=note)
text += "\n## Template health and final validation top-1\n\n| run | val top-1 | problems (health.json) |\n|---|---|---|\n"
for k in sorted(val):
    text += f"| {k} | {val[k]:.3f} | {health.get(k, '-')} |\n"
text += ("\nReproduce: reports/trust/commands.sh (templates and scores); the table: reports/fusionbench/commands.sh; "
         "this page: reports/trust/preliminary.py.\n")
pathlib.Path("reports/trust/preliminary.md").write_text(text)
print(text)
