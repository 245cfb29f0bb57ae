#!/usr/bin/env bash
# The stream-fusion studies of reports/streams.md (2-core CPU, one torch thread each).
set -euo pipefail
export OMP_NUM_THREADS=1
DATA=(--dataset synthetic-mixed --clips-per-class 30 --data-arg val_per_class=20 --data-arg test_per_class=40)
# G-Blend: RGB + an audio track informative for half the clips, noisy enough to memorise
workbench streams gblend-study --out reports/streams/gblend --seeds 0 1 2 --epochs 10 \
    "${DATA[@]}" --data-arg audio_informativeness=0.5 --data-arg audio_noise=1.0 --no-progress
# the Spatiotemporal Pyramid Network's parts, one at a time (RGB + exact optical flow)
workbench streams ablation --out reports/streams/ablation --seeds 0 1 --epochs 10 "${DATA[@]}" --no-progress
# speed and memory
python benchmarks/streams.py > reports/streams/bench.json
