#!/usr/bin/env bash
# The rank study of reports/rank-study.md, end to end (about 2 h on a 2-core CPU, most of it the
# 2 x 48 stand-alone trainings; every training is cached and resumable: re-running continues).
set -euo pipefail
W=".venv/bin/python -m workbench"
TR=".venv/bin/python -m torch.distributed.run --standalone --nproc_per_node=2 -m workbench"
R=runs/rank-study
DATA="--clips-per-class 100 --data-arg val_per_class=50 --data-arg test_per_class=50"
TEMPLATE="--growth 8 --bn-size 2 --epochs 15 --warmup 5 --batch-size 32 --lr 6e-3 --seed 0 --no-progress"
STUDY="--seeds 0 1 --epochs 20 --batch-size 16 --recalibrate 0 2 8 32 --no-progress"
export OMP_NUM_THREADS=1

# 1. the template (the main job's settings) and the template levers, on synthetic-mixed
$W supernet train --dataset synthetic-mixed $DATA $TEMPLATE --out $R/base
$W supernet train --dataset synthetic-mixed $DATA ${TEMPLATE/--epochs 15/--epochs 25} --out $R/long
$W supernet train --dataset synthetic-mixed $DATA $TEMPLATE --tau-start 1.0 --out $R/anneal
$W supernet train --dataset synthetic-mixed $DATA $TEMPLATE --sandwich 0.25 --out $R/sandwich
$W supernet train --dataset synthetic-mixed $DATA $TEMPLATE --p-init 0.5 --out $R/balanced
$W supernet train --dataset synthetic-mixed $DATA ${TEMPLATE/--batch-size 32/--batch-size 16} --out $R/b16
$W supernet few-shot --run-dir $R/base --out $R/fewshot --epochs 4 --no-progress

# 2. 24 strategies picked on the base template, trained stand-alone (2 processes share them out),
#    scored with every predictor
$TR study rank --run-dir $R/base --out $R/study-base $STUDY --mc 8 --finetune 20 --few-shot $R/fewshot \
    --cache $R/standalone-mixed
for L in long anneal sandwich balanced b16; do
  $W study rank --run-dir $R/$L --out $R/study-$L --fixed $R/study-base/strategies.json $STUDY --cache $R/standalone-mixed
done
$W study levers --study base=$R/study-base --study "longer gated phase"=$R/study-long \
    --study "temperature annealing"=$R/study-anneal --study "sandwich 0.25"=$R/study-sandwich \
    --study "balanced init"=$R/study-balanced --study "batch 16"=$R/study-b16 --out reports/rank-study/mixed-levers

# 3. the second setting, with the defaults as they are
# the motion template of the committed figures was trained at batch 16 (the default since the b16 lever)
$W supernet train --dataset synthetic-motion $DATA ${TEMPLATE/--batch-size 32/--batch-size 16} --out $R/motion
$TR study rank --run-dir $R/motion --out $R/study-motion $STUDY --mc 8 --finetune 20 --cache $R/standalone-motion
