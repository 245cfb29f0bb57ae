"""Model speed on CPU: every preset on ResNet-18, and R(2+1)D-18 against torchvision's.

Prints one JSON object. Inference: clips/s at batch 4 of 3x16x112x112 (inference_mode).
Training: clips/s of SGD steps at batch 4 of 3x8x64x64. Variants are timed in interleaved rounds
(one iteration of each per round) and the median per variant is reported, so slow drifts of the
machine hit every variant alike; ratios are taken inside this one run.

    python benchmarks/models.py                   # all presets + the R(2+1)D-18 comparison
    python benchmarks/models.py --presets r3d mc3 --repeats 3
    python benchmarks/models.py --compare-only    # only the R(2+1)D-18 comparison

torchvision is optional (its rows appear when it imports: `make bench-reference`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine.cost import count_cost, count_params  # noqa: E402
from workbench.models import build_model, create_model  # noqa: E402
from workbench.models.fuse import fuse_for_inference  # noqa: E402
from workbench.strategy import list_presets, preset  # noqa: E402

INFER_SHAPE = (4, 3, 16, 112, 112)
TRAIN_SHAPE = (4, 3, 8, 64, 64)


def _infer_fn(model: nn.Module, channels_last: bool):
    model.eval()
    x = torch.randn(INFER_SHAPE)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)

    def run():
        with torch.inference_mode():
            model(x)

    return run


def _train_fn(model: nn.Module, channels_last: bool):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(TRAIN_SHAPE)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    num_classes = model.fc.out_features
    y = torch.randint(0, num_classes, (TRAIN_SHAPE[0],))

    def run():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return run


def _timed_rounds(fns: dict[str, object], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _torchvision_r2plus1d():
    try:
        from torchvision.models.video import r2plus1d_18
    except Exception:  # torchvision absent or not importable beside this torch
        return None
    return r2plus1d_18(weights=None, num_classes=400)


def compare_r2plus1d(repeats: int, compile_: bool) -> dict:
    """Ours (eager, contiguous = same arch and layout) and ours (default path, channels_last_3d)
    against torchvision's r2plus1d_18 (eager, and channels_last_3d)."""
    variants: dict[str, tuple[nn.Module, bool]] = {
        "ours_eager": (create_model("r2plus1d_18", channels_last=False), False),
        "ours_default": (create_model("r2plus1d_18", channels_last=True), True),
    }
    tv = _torchvision_r2plus1d()
    if tv is not None:
        import copy

        variants["torchvision_eager"] = (tv, False)
        tv_cl = copy.deepcopy(tv).to(memory_format=torch.channels_last_3d)
        variants["torchvision_channels_last"] = (tv_cl, True)
    if compile_:
        m = create_model("r2plus1d_18", channels_last=True)
        variants["ours_compiled"] = (torch.compile(m), True)
    out: dict = {"variants": list(variants) + ["ours_fused (inference only)"]}
    for phase, make in (("inference", _infer_fn), ("train", _train_fn)):
        fns = {k: make(m, cl) for k, (m, cl) in variants.items()}
        if phase == "inference":  # BN folded into the convs: an eval-only path
            fns["ours_fused"] = _infer_fn(fuse_for_inference(variants["ours_default"][0]), True)
        sec = _timed_rounds(fns, repeats, warmup=2 if compile_ else 1)
        batch = (INFER_SHAPE if phase == "inference" else TRAIN_SHAPE)[0]
        rates = {k: batch / s for k, s in sec.items()}
        out[phase] = {"clips_per_s": {k: round(v, 3) for k, v in rates.items()}}
        if "torchvision_eager" in rates:
            ref = rates["torchvision_eager"]
            out[phase]["ratio_vs_torchvision_eager"] = {
                k: round(v / ref, 3) for k, v in rates.items() if k != "torchvision_eager"
            }
    return out


def preset_table(names: list[str], repeats: int) -> list[dict]:
    rows = []
    for name in names:
        s = preset(name, "resnet18")
        kw = {"num_frames": 16} if s.stem == "fold" else {}
        model = build_model(s, num_classes=400, **kw)
        cost = count_cost(model, INFER_SHAPE[1:])
        row = {"preset": name, "code": s.code, "params": count_params(model), "gmacs": round(cost.gmacs, 3)}
        sec = _timed_rounds({"inference": _infer_fn(model, True)}, repeats)["inference"]
        row["inference_clips_per_s"] = round(INFER_SHAPE[0] / sec, 3)
        if s.stem != "fold":  # the R2D stem is built for 16 frames
            sec = _timed_rounds({"train": _train_fn(model, True)}, repeats)["train"]
            row["train_clips_per_s"] = round(TRAIN_SHAPE[0] / sec, 3)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=None, help="presets on resnet18 (default: all)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compare-only", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time torch.compile on our R(2+1)D-18")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "inference_input": list(INFER_SHAPE),
        "train_input": list(TRAIN_SHAPE),
        "repeats": args.repeats,
        "r2plus1d_18": compare_r2plus1d(args.repeats, args.compile),
    }
    if not args.compare_only:
        names = args.presets or list_presets("resnet18")
        result["presets_resnet18"] = preset_table(names, args.repeats)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
