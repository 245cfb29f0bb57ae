#!/usr/bin/env bash
# The stream-fusion studies of reports/streams.md (2-core CPU, one torch thread each). Every study
# caches its runs under OUT/runs: running a line again continues it and retrains nothing finished.
set -euo pipefail
export OMP_NUM_THREADS=1
# G-Blend, diagnosis on the development seed 0: audio alone and naive joint, per audio encoder and
# training-set size (reports/streams/gblend-regime.md)
python reports/streams/diagnosis/encoders.py --what audio joint --encoders mlp spectral --clips 30 100
# G-Blend, the regime of gblend-regime.md: RGB + an audio track informative for half the clips,
# a band-spectrum audio encoder, 100 clips per class, online estimates with their noise floor and
# smoothing, joint networks scored by their fused head; 8 new seeds
workbench streams gblend-study --out reports/streams/gblend --seeds 6 7 8 9 10 11 12 13 --epochs 10 \
    --clips-per-class 100 --data-arg val_per_class=40 --data-arg test_per_class=100 \
    --data-arg audio_informativeness=0.5 --data-arg audio_noise=1.0 \
    --audio-encoder spectral --noise-floor --smoothing 0.5 --score fused --no-progress
# what an ideal use of the audio could add: each seed's RGB network and the audio's exact likelihood
python reports/streams/diagnosis/ceiling.py reports/streams/gblend
DATA=(--dataset synthetic-mixed --clips-per-class 30 --data-arg val_per_class=20 --data-arg test_per_class=40)
# the Spatiotemporal Pyramid Network's parts, one at a time (RGB + exact optical flow)
workbench streams ablation --out reports/streams/ablation --seeds 0 1 --epochs 10 "${DATA[@]}" --no-progress
# the pyramid at 16 frames (2 flow snippets of 8), L2-normalised sketches; diagnosis on the development seed 0
# at 8 frames first (reports/streams/pyramid-regime.md)
python reports/streams/diagnosis/pyramid.py --variants default one-snippet dims l2 l2-one-snippet concat
workbench streams ablation --out reports/streams/ablation16 --seeds 10 11 12 --epochs 10 --frames 16 \
    --snippets 2 --sketch-norm l2 "${DATA[@]}" --no-progress
# speed and memory
python benchmarks/streams.py > reports/streams/bench.json
