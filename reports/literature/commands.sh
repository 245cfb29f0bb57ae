#!/usr/bin/env bash
# reports/literature.md (2-core CPU; about 70 minutes, every run cached under reports/literature/runs)
set -euo pipefail
export OMP_NUM_THREADS=1
workbench compare --run checkpoints/synthetic-mixed/template --estimates checkpoints/synthetic-mixed/estimates.nc \
    --out reports/literature --seeds 0 --streams late pyramid --no-progress
