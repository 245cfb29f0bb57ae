"""reports/trust.md from the committed protocol, the truth table and the templates' estimates.

    PYTHONPATH=. .venv/bin/python reports/trust/make.py

Reads every template run's cached predictions (runs/trust/*/predictors/*.json, made by
reports/trust/predictors.py) into reports/trust/estimates.json, which is committed, so the report
is rebuilt in seconds from the repository alone. Held-out settings are scored only with the
predictor and schedule named in reports/trust/choice.json, which is written from the development
settings before any held-out score (reports/trust/protocol.json).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from workbench.plots.paper import save_figure
from workbench.plots.trust import regret_vs_budget
from workbench.studies.fusionbench import (
    DEVELOPMENT,
    HELD_OUT,
    collect,
    flattening_epoch,
    truth_quality,
)
from workbench.studies.predictors import predictor_report, predictor_rows
from workbench.studies.recommend import interval_coverage, simulate_recommend, trust_flag_rates
from workbench.studies.trust import table_truth
from workbench.studies.trust_record import LOW_TAU

HERE = Path("reports/trust")
TABLE = "reports/fusionbench/e30"
RUNS = Path("runs/trust")
SEEDS = (0, 1, 2)
BUDGETS = (0, 2, 4, 8, 16)
REPEATS = 20
#: run-name tag -> the template configuration (densenet-tiny, growth 8, batch 16, lr 6e-3)
CONFIGS = {"": "5 + 10", "-w15": "15 + 15", "-w15-sw50": "15 + 15, sandwich 0.5", "-w15-k05": "15 + 15, k 0.5",
           "-w15-pu": "15 + 15, path-uniform warm-up", "-w15-t1": "15 + 15, temperature 1.0 to 0.2",
           "-w15-b32": "15 + 15, batch 32"}


def config_of(run_name: str) -> str:
    tag = run_name.split("-", 1)[1].rsplit("-s", 1)[0] if run_name.count("-") > 1 else ""
    return CONFIGS.get("-" + tag if tag else "", tag)


def gather() -> dict:
    """Merge the runs' cached predictions and health into estimates.json (committed)."""
    path = HERE / "estimates.json"
    store = json.loads(path.read_text()) if path.exists() else {}
    for run in sorted(RUNS.glob("*")) if RUNS.is_dir() else []:
        entry = store.setdefault(run.name, {"predictors": {}})
        for p in sorted((run / "predictors").glob("*.json")):
            d = json.loads(p.read_text())
            entry["predictors"][d["predictor"]] = {k: d[k] for k in ("estimates", "per_strategy_s", "seconds",
                                                                      "environment", "config")}
            # when it was computed (predictions cached before the field existed: the file's time)
            entry["predictors"][d["predictor"]]["computed_at"] = d.get("computed_at") or time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.stat().st_mtime))
        if (run / "health.json").exists():
            entry["health"] = json.loads((run / "health.json").read_text()).get("template", [])
        if (run / "history.json").exists():
            h = json.loads((run / "history.json").read_text())
            entry["val_top1"] = h["val_acc"][-1]
            entry["template_seconds"] = round(float(sum(h["seconds"])), 1)
        if (run / "run.json").exists():
            entry["environment"] = json.loads((run / "run.json").read_text()).get("environment")
    path.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    return store


def preds(store, setting, tag, name):
    got = [store.get(f"{setting}{tag}-s{k}", {}).get("predictors", {}).get(name) for k in SEEDS]
    return got if all(got) else []


def truth_section(tab) -> list[str]:
    lines = ["## The truth", "",
             f"FusionBench e30 ([{TABLE}]({TABLE.replace('reports/', '')}/README.md)): 74 strategies of the "
             "densenet-tiny template, stand-alone at 30 epochs (batch 16, AdamW 6e-3, cosine), paired design, "
             f"seeds {', '.join(map(str, tab.seed.values.tolist()))} (not every setting has every seed yet: see "
             "the trainings column); a strategy's truth is its seed mean. The noise ceiling is the tau a perfect "
             "predictor would reach against the seed mean of this many seeds.", "",
             "| setting | role | trainings | agreement measured on | seed SD | tau between seeds | "
             "reliability of the seed mean | seeds for 0.8 | noise ceiling tau | curves flat by epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in tab.setting.values.tolist():
        q = truth_quality(tab, s)
        role = "development" if s in DEVELOPMENT else "held-out" if s in HELD_OUT else "-"

        def f(v):
            return "-" if v is None else f"{v:.3f}"
        lines.append(f"| {s} | {role} | {q['finished']} of {tab.sizes['strategy'] * tab.sizes['seed']} | "
                     f"{q['strategies']} strategies x {q['seeds']} seeds | {f(q['seed_sd'])} | {f(q['tau_between_seeds'])} | {f(q['reliability'])} | "
                     f"{q['seeds_for_goal'] or '-'} | {f(q['noise_ceiling_tau'])} | {flattening_epoch(tab, s) or '-'} |")
    return lines + [""]


def health_section(store) -> list[str]:
    lines = ["## The templates", "",
             "densenet-tiny, growth 8, batch 16, lr 6e-3, one thread; template seeds 0, 1, 2 per configuration. "
             "Problems are those the run itself reports after training (health.json).", "",
             "| run | schedule | val top-1 | training s | problems |", "|---|---|---|---|---|"]
    for name, e in sorted(store.items()):
        if "val_top1" not in e:
            continue
        sched = config_of(name)
        probs = ", ".join(p["problem"] for p in e.get("health", [])) or "none"
        lines.append(f"| {name} | {sched} | {e['val_top1']:.3f} | {e.get('template_seconds', '-')} | {probs} |")
    return lines + [""]


def dev_section(tab, store, choice=None) -> list[str]:
    rows = []
    for setting in DEVELOPMENT:
        standalone = float(np.nanmedian(tab["seconds"].sel(setting=setting).values))
        rows += predictor_rows(tab, setting, {}, standalone_s=standalone)  # the zero-cost baselines
        for tag, label in CONFIGS.items():
            names = sorted({n for k in SEEDS for n in store.get(f"{setting}{tag}-s{k}", {}).get("predictors", {})})
            p = {n: preds(store, setting, tag, n) for n in names}
            late = {n for n, v in p.items() if v and choice and any(x["computed_at"] > choice["committed_at"] for x in v)}
            for r in predictor_rows(tab, setting, {n: v for n, v in p.items() if v}, standalone_s=standalone,
                                    repeats=REPEATS, baselines=()):
                base = r["predictor"].split(" x")[0].split(" + surrogate")[0]
                if base in late:
                    r["note"] = ("measured after the held-out choice: informs a later choice only; "
                                 + r.get("note", ""))
                r["predictor"] = f"[{label}] {r['predictor']}"
                rows.append(r)
    pilots = []
    for setting in DEVELOPMENT:
        for tag, label in CONFIGS.items():
            runs = [f"{setting}{tag}-s{k}" for k in SEEDS]
            names = sorted({n for r in runs for n in store.get(r, {}).get("predictors", {})})
            for n in names:
                got = [(r, store[r]["predictors"][n]) for r in runs if n in store.get(r, {}).get("predictors", {})]
                if len(got) < len(SEEDS):
                    pilots.append((setting, label, n, got))
    note = ("Development settings (where levers and defaults are chosen). Estimates on each run's own validation "
            "split (the val5x predictor: five times as many clips of the same generator). Tau per template seed on "
            "all strategies; gate draws and uniform draws are the means over template seeds on those subsets. "
            "Cost: seconds per strategy on one thread, and as a share of one stand-alone training (the table's "
            "median on one thread). Ensembles cost one template per member.")
    out = [predictor_report(rows, title="Development: schedules and predictors", note=note)]
    out += lever_summary(rows)
    if pilots:
        from workbench.studies.fusionbench_score import score_estimates

        out += ["Pilots on fewer than three template seeds (a predictor stopped once it cost far more than the "
                "default and ranked worse; one template seed is no figure, only a reason not to spend more):", "",
                "| setting | configuration | predictor | template | tau [95% CI] | default predictor's tau, same "
                "template | s per strategy |", "|---|---|---|---|---|---|---|"]
        for setting, label, n, got in pilots:
            for r, d in got:
                sc = score_estimates(tab, setting, d["estimates"], bootstrap=500)
                ref = store[r]["predictors"].get("shared+bn2")
                rt = score_estimates(tab, setting, ref["estimates"], bootstrap=10)["tau"] if ref else float("nan")
                out.append(f"| {setting} | {label} | {n} | {r} | {sc['tau']:+.2f} [{sc['tau_ci'][0]:+.2f}, "
                           f"{sc['tau_ci'][1]:+.2f}] | {rt:+.2f} | {d['per_strategy_s']:.1f} |")
        out.append("")
    return out


def lever_summary(rows, predictor: str = "shared+bn2") -> list[str]:
    """One line per template configuration: the default predictor's tau on each development
    setting (mean +- SD over template seeds) and the change against 15 + 15."""
    by, late = {}, set()
    for r in rows:
        name = r["predictor"]
        if not name.startswith("[") or not name.endswith("] " + predictor):
            continue
        label = name[1:name.index("]")]
        by.setdefault(label, {})[r["setting"]] = r["all"]["tau"]
        if "measured after the held-out choice" in r.get("note", ""):
            late.add(label)
    if "15 + 15" not in by:
        return []
    lines = [f"Template configurations at a glance ({predictor}, tau on all strategies, mean +- SD over template "
             "seeds; the change is against 15 + 15, per setting):", "",
             "| configuration | " + " | ".join(DEVELOPMENT) + " | change | mean change |",
             "|---|" + "---|" * len(DEVELOPMENT) + "---|---|"]
    base = by["15 + 15"]
    for label, taus in by.items():
        if set(taus) != set(DEVELOPMENT):
            continue
        cells = [f"{np.mean(taus[s]):+.2f} +- {np.std(taus[s], ddof=1):.2f}" for s in DEVELOPMENT]
        delta = [np.mean(taus[s]) - np.mean(base[s]) for s in DEVELOPMENT]
        lines.append(f"| {label}{' (*)' if label in late else ''} | " + " | ".join(cells) + " | "
                     + ", ".join(f"{d:+.2f}" for d in delta) + f" | {np.mean(delta):+.2f} |")
    return lines + ["", "(*) measured after the held-out choice: informs a later choice only.", ""] if late else lines + [""]


def heldout_section(tab, store, choice) -> tuple[list[str], dict]:
    if choice is None:
        return ["## Held-out settings", "", "Not scored yet: reports/trust/choice.json (the predictor and schedule "
                "chosen on the development settings) is written first.", ""], {}
    tag, name = choice["run_tag"], choice["predictor"]
    lines = ["## Held-out settings", "",
             f"Chosen on the development settings ({choice['written']}): {choice['why']}", ""]
    rows, curves, cover, worst = [], {}, [], {}
    for setting in HELD_OUT:
        p = preds(store, setting, tag, name)
        if not p or setting not in tab.setting.values.tolist():
            lines += [f"- {setting}: no templates or no truth yet.", ""]
            continue
        early = [x["computed_at"] for x in p if x["computed_at"] < choice["committed_at"]]
        if early:  # the protocol: no held-out estimate before the choice was committed
            raise SystemExit(f"held-out estimates of {setting} computed at {early[0]}, before the choice "
                             f"({choice['committed_at']}): the protocol forbids reporting them")
        standalone = float(np.nanmedian(tab["seconds"].sel(setting=setting).values))
        rows += predictor_rows(tab, setting, {name: p}, standalone_s=standalone, ensemble_of=(name,), repeats=REPEATS)
        truth = table_truth(tab, setting)
        sims = [simulate_recommend(truth, x["estimates"], BUDGETS, repeats=REPEATS) for x in p]
        curves[setting] = {b: [s["budgets"][b]["mean"] for s in sims] for b in BUDGETS}
        worst[setting] = {b: [s["budgets"][b]["mean_vs_seed_max"] for s in sims] for b in BUDGETS}
        cover.append((setting, [interval_coverage(truth, x["estimates"], 8, repeats=REPEATS) for x in p],
                      all(s["held_back"] for s in sims)))
    lines.append(predictor_report(rows, title="Held-out: tau, regret and cost", note=(
        "Only the chosen predictor, and its ensembles and anchor surrogate; template seeds 0, 1, 2.")))
    if curves:
        lines += ["### From estimates to a decision", "",
                  f"`workbench recommend --budget B`, simulated {REPEATS} times per budget and template seed: each "
                  "verification looks one seed of the table up; where every strategy has all its seeds, the "
                  "returned strategy is judged on a held-back seed against the strategy the other seeds rank best, "
                  "judged on the same seed (a pick that beats it there counts as negative regret). That reference is "
                  "itself a noisy pick, so this understates the regret against the true best; the second line of each "
                  "setting judges against the best result of the held-back seed, whose maximum is inflated by noise, "
                  "and overstates it. Regret in seed SDs, mean over template seeds +- SD (figure: "
                  "[regret-vs-budget.png](trust/regret-vs-budget.png)).", "",
                  "| setting | " + " | ".join(f"B={b}" for b in BUDGETS) + " | judged on | 90% interval coverage "
                  "(8 anchors) |", "|---|" + "---|" * len(BUDGETS) + "---|---|"]
        for (setting, by_b), (_, cov, held) in zip(curves.items(), cover):
            cells = [f"{np.mean(v):.2f} +- {np.std(v, ddof=1):.2f}" if np.isfinite(v).all() else
                     "- (one seed: no seed SD yet)" for v in by_b.values()]
            c = [x["coverage"] for x in cov]
            lines.append(f"| {setting} | " + " | ".join(cells) + f" | {'a held-back seed' if held else 'the seeds it drew (optimistic)'}"
                         f" | {np.mean(c):.2f} ({min(c):.2f}-{max(c):.2f}) |")
            if held:
                hi = [f"{np.mean(v):.2f} +- {np.std(v, ddof=1):.2f}" for v in worst[setting].values()]
                lines.append(f"| {setting}, against the held-back seed's maximum | " + " | ".join(hi)
                             + " | a held-back seed (pessimistic) | |")
        lines.append("")
    return lines, curves


def flag_section(tab, store, choice) -> list[str]:
    """Does a run whose estimates rank poorly say so? Every template run's trust figure (8
    tool-chosen anchors, `workbench trust`) simulated against the table, beside the tau its
    estimates reach against every strategy's seed mean."""
    name = choice["predictor"] if choice else "shared+bn2"
    rows = []
    for run, entry in sorted(store.items()):
        setting = run.split("-")[0]
        p = entry.get("predictors", {}).get(name)
        if p is None or setting not in tab.setting.values.tolist():
            continue
        if setting in HELD_OUT and (choice is None or p["computed_at"] < choice["committed_at"]):
            continue
        rows.append((run, trust_flag_rates(table_truth(tab, setting), p["estimates"], 8, repeats=REPEATS)))
    if not rows:
        return []
    lines = ["## Does a run say when its estimates rank poorly?", "",
             f"Each template run's trust figure (`workbench trust`: 8 tool-chosen stand-alone anchors, one training "
             f"each, predictor {name}) simulated {REPEATS} times against the table: the share of draws in which the "
             f"run says LOW (anchor tau below {LOW_TAU}, or none measurable), says it cannot rule out a tau below "
             f"{LOW_TAU} (unproven), or says the 95% interval lies above {LOW_TAU} (ok). Full tau: the estimates "
             "against every strategy's seed mean.", "",
             "| run | full tau | anchor tau, mean +- SD | LOW | unproven | ok |", "|---|---|---|---|---|---|"]
    for run, r in rows:
        lines.append(f"| {run} | {r['full_tau']:+.2f} | {r['anchor_tau_mean']:+.2f} +- {r['anchor_tau_sd']:.2f} | "
                     f"{r['low']:.2f} | {r['unproven']:.2f} | {r['ok']:.2f} |")
    below = [r for _, r in rows if r["full_tau"] < LOW_TAU]
    above = [r for _, r in rows if r["full_tau"] >= LOW_TAU]
    lines.append("")
    if below:
        lines.append(f"Runs whose full tau is below {LOW_TAU} ({len(below)}): the run says LOW in "
                     f"{np.mean([r['low'] for r in below]):.0%} of draws and LOW or unproven in "
                     f"{np.mean([r['low'] + r['unproven'] for r in below]):.0%}.")
    if above:
        lines.append(f"Runs at {LOW_TAU} or above ({len(above)}): LOW in {np.mean([r['low'] for r in above]):.0%} of "
                     f"draws (a false alarm), ok in {np.mean([r['ok'] for r in above]):.0%}.")
    sds = [r["anchor_tau_sd"] for _, r in rows if math.isfinite(r["anchor_tau_sd"])]
    return lines + ["", f"With 8 anchors the anchor tau has an SD of {min(sds):.2f}-{max(sds):.2f} over draws (median "
                    f"{np.median(sds):.2f}), so the figure cannot tell a tau of 0.3 from 0.5: a run only says ok when its "
                    "anchors agree almost perfectly; more anchors (`--anchors 16`) narrow it at twice the cost.", ""]


def goals_section(tab, store, choice) -> list[str]:
    lines = ["## Against the goals (held-out settings, mean over template seeds)", ""]
    if choice is None:
        return lines + ["Not scored yet.", ""]
    tag, name = choice["run_tag"], choice["predictor"]
    lines += ["| setting | tau all (goal >= 0.6 or 0.85 x ceiling) | tau gate draws | worst template seed | "
              "regret B=0 (goal <= 1) | verdict |", "|---|---|---|---|---|---|"]
    for setting in HELD_OUT:
        p = preds(store, setting, tag, name)
        if not p or setting not in tab.setting.values.tolist():
            lines.append(f"| {setting} | - | - | - | - | no templates or truth yet |")
            continue
        r = predictor_rows(tab, setting, {name: p}, standalone_s=1.0, ensemble_of=(), anchors=(), baselines=())[0]
        a, g = r["all"], r.get("gates", {})
        ceil, regret = a.get("ceiling"), a["regret_mean"]
        known = ceil is not None and math.isfinite(ceil)
        goal = min(0.6, 0.85 * ceil) if known else float("nan")
        # until the truth is ready (the ceiling needs 24 strategies with two seeds), regret is judged
        # against mostly one-seed truths, whose maximum is inflated by noise: shown, not judged
        verdict = goal_verdict(a["tau_mean"], g.get("tau_mean", float("nan")), regret if known else float("nan"),
                               goal)
        goal_text = f"goal {goal:.2f}" if known else "goal open: no noise ceiling yet"
        regret_text = "-" if not math.isfinite(regret) else f"{regret:.2f}" + ("" if known else " (provisional)")
        lines.append(f"| {setting} | {a['tau_mean']:+.2f} ({goal_text}) | {g.get('tau_mean', float('nan')):+.2f} | "
                     f"{min(a['tau']):+.2f} | {regret_text} | {verdict} |")
    return lines + [""]


def goal_verdict(tau_all: float, tau_gates: float, regret: float, goal: float) -> str:
    """'missed' when a measure that is known misses its goal, 'met' when every one is known and
    meets it, else 'open' (the tau goal needs the noise ceiling; regret needs two truth seeds)."""
    checks = [(tau_all, goal, lambda v, g: v >= g), (tau_gates, goal, lambda v, g: v >= g),
              (regret, 1.0, lambda v, g: v <= g)]
    known = [ok(v, g) for v, g, ok in checks if math.isfinite(v) and math.isfinite(g)]
    if not all(known):
        return "missed"
    if len(known) == len(checks):
        return "met"
    return "open: " + ("the noise ceiling needs a second truth seed" if not math.isfinite(goal)
                       else "regret needs a second truth seed")


def main() -> int:
    store = gather()
    tab = collect(TABLE, write=False)
    protocol = json.loads((HERE / "protocol.json").read_text())
    choice_path = HERE / "choice.json"
    choice = json.loads(choice_path.read_text()) if choice_path.exists() else None
    lines = ["# Trust: do shared-weight estimates rank fusion strategies on data they were not tuned on?", "",
             "Generated by `reports/trust/make.py` from the committed protocol, truth table and estimates; the "
             "templates and their estimates: `reports/trust/commands.sh`.", "",
             "## Protocol", "",
             f"Written {protocol['written']}; amended {protocol['amendments'][-1]['written']} "
             f"([protocol.json](trust/protocol.json)). Development settings: {', '.join(protocol['development'])}; "
             f"held-out: {', '.join(protocol['held_out'])}. Rules:", ""]
    lines += [f"- {r}" for r in protocol["rules"]] + [""]
    lines += truth_section(tab) + health_section(store) + dev_section(tab, store, choice)
    held, curves = heldout_section(tab, store, choice)
    lines += held + flag_section(tab, store, choice) + goals_section(tab, store, choice)
    if curves:
        fig = regret_vs_budget(curves)
        save_figure(fig, HERE / "regret-vs-budget", formats=("png", "pdf"))
    Path("reports/trust.md").write_text("\n".join(lines) + "\n")
    print("wrote reports/trust.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
