#!/usr/bin/env bash
# Templates on the development settings, three seeds each, at the main job's schedule (5 warm-up +
# 10 gated epochs, batch 16, lr 6e-3), scored against FusionBench. Held-out settings are scored only
# after the defaults are fixed (reports/trust/protocol.json).
set -euo pipefail
W=".venv/bin/python -m workbench"
R=runs/trust
TEMPLATE="--growth 8 --bn-size 2 --epochs 15 --warmup 5 --batch-size 16 --lr 6e-3 --no-progress"
MIXED="--dataset synthetic-mixed --clips-per-class 100 --data-arg val_per_class=50 --data-arg test_per_class=250 \
  --data-arg noise=0.08 --data-arg distractors=1 --data-arg difficulty=0.3"
MOTION="--dataset synthetic-motion --clips-per-class 200 --data-arg val_per_class=100 --data-arg test_per_class=500 \
  --data-arg noise=0.1 --data-arg difficulty=0.5 --data-arg camera_shake=0.02"
export OMP_NUM_THREADS=1   # two templates at a time on two cores
for S in 0 1 2; do
  [ -f $R/mixed-s$S/result.json ] || [ -f $R/mixed-s$S/marginals.nc ] || $W supernet train $MIXED $TEMPLATE --seed $S --out $R/mixed-s$S &
  [ -f $R/motion-s$S/marginals.nc ] || $W supernet train $MOTION $TEMPLATE --seed $S --out $R/motion-s$S &
  wait
done
for S in 0 1 2; do
  for SET in mixed motion; do
    $W bench score --run $R/$SET-s$S --table reports/fusionbench --json > $R/$SET-s$S/bench-score.json
  done
done

# lever on motion, where every default template stayed at chance (health.json): a longer warm-up
# and gated phase (15 + 15 epochs); stand-alone networks start reading motion around epoch 9-13
for S in 0 1 2; do
  [ -f $R/motion-w15-s$S/marginals.nc ] || $W supernet train $MOTION ${TEMPLATE/--epochs 15 --warmup 5/--epochs 30 --warmup 15} --seed $S --out $R/motion-w15-s$S
done
for S in 0 1 2; do
  [ -f $R/mixed-w15-s$S/marginals.nc ] || $W supernet train $MIXED ${TEMPLATE/--epochs 15 --warmup 5/--epochs 30 --warmup 15} --seed $S --out $R/mixed-w15-s$S
done
for RUN in $R/mixed-w15-s0 $R/mixed-w15-s1 $R/mixed-w15-s2 $R/motion-w15-s0 $R/motion-w15-s1 $R/motion-w15-s2; do
  $W bench score --run $RUN --table reports/fusionbench --json > $RUN/bench-score.json
done

# from estimates to a decision: recommend's regret against the budget, and the coverage of the
# surrogate's intervals on 8 tool-chosen anchors, simulated against the table (seconds)
.venv/bin/python - <<'PY'
import json
from pathlib import Path
from workbench.studies.fusionbench import collect
from workbench.studies.trust import decision_report
table = collect("reports/fusionbench", write=False)
R = Path("runs/trust")
configs = {f"{s}: {label}": [json.loads((R / f"{s}{tag}-s{k}" / "bench-score.json").read_text()) for k in (0, 1, 2)]
           for s in ("mixed", "motion") for label, tag in (("default (5 + 10)", ""), ("15 warm-up + 15 gated", "-w15"))}
note = ("PRELIMINARY, development settings. Truth: the 20-epoch FusionBench table as it stands (seed 0 complete, "
        "seed 1 partial): a strategy's truth is its mean over the seeds trained; regret in units of the table's "
        "seed SD. 20 simulated runs per budget and template seed.")
Path("reports/trust/decision-preliminary.md").write_text(decision_report(table, configs, note=note))
PY

# ---- held-out settings (reports/trust/protocol.json, amendment of 2026-11-30) ----------------------
# templates at the schedule chosen on the development settings (15 warm-up + 15 gated)
SHAKE="--dataset synthetic-mixed --clips-per-class 100 --data-arg val_per_class=50 --data-arg test_per_class=250 \
  --data-arg camera_shake=0.04 --data-arg distractors=2 --data-arg motion_classes=4 --data-arg num_classes=16"
for S in 0 1 2; do
  [ -f $R/shake-w15-s$S/marginals.nc ] || $W template train $SHAKE ${TEMPLATE/--epochs 15 --warmup 5/--epochs 30 --warmup 15} --seed $S --out $R/shake-w15-s$S
done

LONG="--dataset synthetic-motion --frames 16 --clips-per-class 100 --data-arg val_per_class=50 --data-arg test_per_class=250 \
  --data-arg noise=0.1 --data-arg difficulty=0.5 --data-arg num_classes=8"
for S in 0 1 2; do
  [ -f $R/long-w15-s$S/marginals.nc ] || $W template train $LONG ${TEMPLATE/--epochs 15 --warmup 5/--epochs 30 --warmup 15} --seed $S --out $R/long-w15-s$S
done

# the held-out estimates, with the predictor chosen on the development settings (reports/trust/choice.json),
# computed only after that choice was committed (make.py refuses any computed before it)
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --only shared+bn2 --runs $R/shake-w15-s? $R/long-w15-s?

# predictors and their cost (cached in each run's predictors/ folder; reports/trust/predictors.py scores them)
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --runs $R/mixed-s? $R/motion-s? $R/mixed-w15-s? $R/motion-w15-s?
# the costly predictors (8 Monte-Carlo masks, 50 fine-tuning steps) as a pilot on one template: they ranked
# worse than the default at 250x and 350x its cost, so no more seeds were spent on them
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --costly --runs $R/motion-w15-s0
# the gates' own log-probability of each strategy (no forward pass), on the development templates
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --only gate-logp --runs $R/mixed-s? $R/motion-s? \
  $R/mixed-w15-s? $R/motion-w15-s? $R/mixed-w15-sw50-s? $R/motion-w15-sw50-s? $R/mixed-w15-k05-s? $R/motion-w15-k05-s?
# ranked by validation loss instead of top-1
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --only shared+bn2-nll --runs $R/mixed-w15-s? \
  $R/motion-w15-s? $R/mixed-w15-sw50-s? $R/motion-w15-sw50-s? $R/mixed-w15-k05-s? $R/motion-w15-k05-s?
# few-shot templates (split on the least sure layer, one part per unit, 4 more epochs each)
PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --only fewshot --runs $R/mixed-w15-s? $R/motion-w15-s?

# levers on the development settings, three template seeds each, then their predictors:
#  sw50: sandwich steps (half the gated steps train one uniformly drawn strategy), aimed at the
#        strategies the gates rarely draw (skip-heavy ones are underrated);
#  k05:  a smaller length-scale k (the weight penalty grows with k^2/N)
#  pu:   a path-uniform warm-up (every warm-up step trains one uniformly drawn strategy, as in
#        single-path one-shot NAS), aimed at the same weak spot from the start;
#  t1:   the relaxation temperature annealed from 1.0 to the template's 0.2 over the gated epochs;
#  b32:  batch 32 (half the steps, the same learning rate)
for LEVER in "sw50:--sandwich 0.5" "k05:--k 0.5" "pu:--warmup-uniform 1" "t1:--tau-start 1.0" "b32:--batch-size 32"; do
  TAG=${LEVER%%:*}; ARGS=${LEVER#*:}
  for S in 0 1 2; do
    for SET in mixed motion; do
      DATA=$MIXED; [ $SET = motion ] && DATA=$MOTION
      [ -f $R/$SET-w15-$TAG-s$S/marginals.nc ] || $W template train $DATA ${TEMPLATE/--epochs 15 --warmup 5/--epochs 30 --warmup 15} $ARGS --seed $S --out $R/$SET-w15-$TAG-s$S
    done
  done
  PYTHONPATH=. .venv/bin/python reports/trust/predictors.py compute --runs $R/mixed-w15-$TAG-s? $R/motion-w15-$TAG-s?
done
PYTHONPATH=. .venv/bin/python reports/trust/make.py
