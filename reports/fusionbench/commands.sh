#!/usr/bin/env bash
# FusionBench, end to end. Every training is one cached, OS-locked item: re-running continues, and
# any number of processes (or machines sharing the folder) may run these at once.
set -euo pipefail
W=".venv/bin/python -m workbench"

# 1. the table: 74 strategies (10 presets, 32 uniform draws, 32 gate draws of the shipped template)
#    x seeds 0-2 x settings, 20 epochs at batch 16 (the study budget), one-thread workers
$W bench build --out reports/fusionbench --epochs 20 --workers 2 --setting mixed --setting motion --setting shake
# the table at the 30-epoch budget (budget-e30/ANALYSIS.md) with the paired design (paired-e30/ANALYSIS.md),
# seeds 3-5; its first 96 items are the paired panel's (same config), copied into reports/fusionbench/e30/items
$W bench build --out reports/fusionbench/budget-e30 --epochs 30 --seeds 3 4 --first 24 --setting motion --setting mixed --workers 2
$W bench build --out reports/fusionbench/paired-e30 --epochs 30 --paired --seeds 3 4 --first 24 --setting mixed --setting motion --workers 2
$W bench build --out reports/fusionbench/e30 --epochs 30 --paired --seeds 3 4 5 --setting mixed --setting motion --setting shake --workers 2
$W bench build --out reports/fusionbench/e30 --epochs 30 --paired --seeds 3 4 5 --workers 2 --setting long   # the second held-out setting
# two more seeds where three do not reach a reliability of 0.8 (the README's "seeds for 0.8" column)
$W bench build --out reports/fusionbench/e30 --epochs 30 --paired --seeds 6 7 --workers 2 --setting mixed --setting motion

# 2. multi-fidelity: the first 24 strategies at 10 epochs on their own cosine schedule, other seeds
$W bench build --out reports/fusionbench/fidelity-e10 --epochs 10 --seeds 10 11 --first 24 --workers 2 \
    --setting mixed --setting motion

# 3. the speed of the stand-alone path (quiet machine), and of one step by execution mode
.venv/bin/python benchmarks/standalone.py
.venv/bin/python benchmarks/step_modes.py
