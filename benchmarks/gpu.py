"""The GPU path, measured at real size in one short run: training step, gate overhead, memory,
estimates per minute, host-device synchronisation, data loading, activation checkpointing.

    python benchmarks/gpu.py                       # on a GPU: DenseNet-121 template, 16x112x112
    python benchmarks/gpu.py --device cpu --tiny   # the same sections at tiny size (CI)

Needs only torch, numpy and safetensors (sections that need more skip themselves and say why).
Finishes within ``--budget-s`` seconds: sections run in order of importance, each checks the time
left before it starts, and the JSON (``OUT/gpu-bench.json``) is rewritten after every section, so
a run cut short still leaves what it measured. Every time is a median over repeated steps with
the device synchronised around each timed step only (never inside it).

Sections:
  environment       torch / CUDA / device / cuDNN versions, TF32 and bf16 support
  max_batch         the largest training batch of the gated template that fits: fp32, AMP, AMP with
                    activation checkpointing (what checkpointing buys), and peak memory of each
  train_step        gated template step at one batch (the largest power of two within 3/4 of the
                    largest fp32 batch): fp32 and AMP
  gate_overhead     gated (relaxed masks + regulariser) against the same network ungated
  sync_check        host-device synchronisations inside the engine's step (torch.cuda.set_sync_debug_mode)
  estimates         strategies scored per minute (fixed sub-network, 2 BN-recalibration batches,
                    a validation set of --val-clips clips), fp32 and AMP, one at a time and as a
                    prefix tree (the estimates' default)
  loader            pinned-memory loader rate (uint8 clips -> device, normalised); mp4 decoding if PyAV
  compile           torch.compile of the template's step: compile time and step time against eager
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine.estimate import recalibrate_bn  # noqa: E402
from workbench.engine.loop import TrainConfig, TrainStep, amp_dtype, evaluate  # noqa: E402
from workbench.engine.sharing import PrefixScorer  # noqa: E402
from workbench.template.network import TemplateNetwork  # noqa: E402

REAL = dict(backbone="densenet121", growth=32, bn_size=4, num_classes=400, frames=16, size=112,
            batch_cap=256, val_clips=256, strategies=4, repeats=5)
TINY = dict(backbone="densenet-tiny", growth=8, bn_size=2, num_classes=10, frames=8, size=32,
            batch_cap=16, val_clips=32, strategies=3, repeats=3)


class Bench:
    def __init__(self, args, cfg: dict) -> None:
        self.args, self.cfg = args, cfg
        self.device = args.device
        self.cuda = self.device.startswith("cuda")
        self.t_start = time.perf_counter()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.result: dict = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                             "budget_s": args.budget_s, "size": "tiny" if args.tiny else "real",
                             "config": {k: v for k, v in cfg.items()}, "sections": {}}

    # ---- bookkeeping -----------------------------------------------------------------------------
    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t_start)

    def write(self) -> None:
        self.result["elapsed_s"] = round(time.perf_counter() - self.t_start, 1)
        path = self.out / "gpu-bench.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.result, indent=2) + "\n")
        os.replace(tmp, path)

    def section(self, name: str, fn, *, needs_s: float) -> None:
        t0 = time.perf_counter()
        if self.left() < needs_s:
            self.result["sections"][name] = {"status": "skipped",
                                             "reason": f"out of budget ({self.left():.0f} s left, needs ~{needs_s:.0f} s)"}
        else:
            try:
                try:
                    out = fn()
                except torch.cuda.OutOfMemoryError:  # once more at half the batch
                    self.free()
                    if self.timing_batch < 2:
                        raise
                    self.timing_batch //= 2
                    out = fn()
                    out["note"] = f"out of memory at the timing batch; measured at {self.timing_batch}"
                out = {"status": "ok", **(out or {})}
            except _Skip as e:
                out = {"status": "skipped", "reason": str(e)}
            except Exception as e:  # a failed section is recorded; the next ones still run
                out = {"status": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
            out["seconds"] = round(time.perf_counter() - t0, 1)
            self.result["sections"][name] = out
        self.free()
        self.write()
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {name}: {self.result['sections'][name].get('status')}",
              file=sys.stderr, flush=True)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def peak_reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2) if self.cuda else None

    # ---- building blocks ---------------------------------------------------------------------------
    def template(self, *, checkpointing: bool = False) -> TemplateNetwork:
        c = self.cfg
        torch.manual_seed(0)
        m = TemplateNetwork(backbone=c["backbone"], growth=c["growth"], bn_size=c["bn_size"],
                             num_classes=c["num_classes"]).to(self.device)
        if checkpointing:
            m.set_activation_checkpointing(True)
        return m

    def batch(self, b: int):
        c = self.cfg
        g = torch.Generator(device=self.device).manual_seed(b)
        x = torch.randn((b, 3, c["frames"], c["size"], c["size"]), device=self.device, generator=g)
        y = torch.randint(0, c["num_classes"], (b,), device=self.device, generator=g)
        return x, y

    def stepper(self, model: TemplateNetwork, *, amp: bool, gated: bool = True, compiled: bool = False,
                channels_last: bool | None = None, dtype: torch.dtype | None = None):
        """The engine's step for ``model``; ``channels_last`` None: as ``train()`` runs it (channels-
        last under AMP on a GPU)."""
        if channels_last is None:
            channels_last = amp and self.cuda
        cfg = TrainConfig(epochs=1, batch_size=1, lr=1e-3, optimizer="sgd", amp=amp, device=self.device,
                          progress=False)
        if channels_last:
            model.set_channels_last(True)
        opt = torch.optim.SGD(model.weight_parameters(), lr=1e-3, momentum=0.9)
        gopt = torch.optim.Adam(model.gate_parameters(), lr=0.01)
        net = torch.compile(model) if compiled else model
        step = TrainStep(model, opt, gopt, cfg, self.device, net=net, n_train=10_000)
        if amp and dtype is not None:  # another autocast dtype than the engine's choice
            step.dtype = dtype
            step.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        model.set_mode("relaxed" if gated else "warmup")
        model.train()
        return lambda x, y: step(x, y, gated=gated)

    def time_steps(self, fn, x, y, repeats: int, warm: int = 2) -> list[float]:
        for _ in range(warm):
            fn(x, y)
        self.sync()
        times = []
        for _ in range(repeats):
            self.sync()
            t0 = time.perf_counter()
            fn(x, y)
            self.sync()
            times.append(time.perf_counter() - t0)
        return times

    def fits(self, b: int, *, amp: bool, checkpointing: bool) -> float | None:
        """Peak GiB of one training step at batch ``b``, or None when it runs out of memory."""
        model = fn = x = y = None
        try:
            model = self.template(checkpointing=checkpointing)
            fn = self.stepper(model, amp=amp)
            x, y = self.batch(b)
            self.peak_reset()
            fn(x, y)
            self.sync()
            return self.peak_gib() if self.cuda else 0.0
        except torch.cuda.OutOfMemoryError:
            return None
        finally:
            del model, fn, x, y
            self.free()

    # ---- sections ------------------------------------------------------------------------------------
    def environment(self) -> dict:
        env = {"torch": torch.__version__, "python": platform.python_version(), "device": self.device,
               "threads": torch.get_num_threads(), "cuda": torch.version.cuda}
        with contextlib.suppress(ImportError):
            import numpy
            env["numpy"] = numpy.__version__
        with contextlib.suppress(ImportError):
            import safetensors
            env["safetensors"] = safetensors.__version__
        try:
            import av
            env["pyav"] = av.__version__
        except ImportError:
            env["pyav"] = None
        if self.cuda:
            p = torch.cuda.get_device_properties(self.device)
            env.update(gpu=p.name, capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1),
                       gpus=torch.cuda.device_count(), cudnn=torch.backends.cudnn.version(),
                       cudnn_tf32=torch.backends.cudnn.allow_tf32, matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
                       bf16=torch.cuda.is_bf16_supported(), amp_dtype=str(amp_dtype(self.device)))
        m = self.template()
        env["template_params_m"] = round(sum(p.numel() for p in m.weight_parameters()) / 1e6, 2)
        env["gates"] = list(m.gate_logits.shape)
        return env

    def max_batch(self) -> dict:
        cap = self.cfg["batch_cap"]
        out = {}
        variants = (("fp32", False, False), ("amp", True, False), ("amp_checkpointing", True, True)) if self.cuda \
            else (("fp32", False, False), ("fp32_checkpointing", False, True))
        bench_mode = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # no autotuning for every probed batch
        try:
            self._search(variants, cap, out)
        finally:
            torch.backends.cudnn.benchmark = bench_mode
        fp32 = out.get("fp32", {}).get("largest_batch") or 4
        base, ck = ("amp", "amp_checkpointing") if self.cuda else ("fp32", "fp32_checkpointing")
        if out.get(base, {}).get("largest_batch") and out.get(ck, {}).get("largest_batch"):
            out["checkpointing_batch_gain"] = round(out[ck]["largest_batch"] / out[base]["largest_batch"], 2)
        # the common batch of the timing sections (fp32 and AMP compare at it): the largest power
        # of two within 3/4 of the largest fp32 batch, leaving cuDNN's autotuner room for workspace
        self.timing_batch = self.args.timing_batch or max(1, 2 ** int(math.log2(max(1, 0.75 * fp32))))
        out["timing_batch"] = self.timing_batch
        return out

    def _search(self, variants, cap: int, out: dict) -> None:
        for name, amp, ckpt in variants:
            if self.left() < 20:
                out[name] = {"skipped": "out of budget"}
                continue
            ok, bad, peaks = 0, None, {}
            b = 4
            cap_here = cap * 8 if ckpt else cap  # checkpointing needs a fraction of the memory
            while b <= cap_here and self.left() > 20:  # double until it fails, then bisect twice
                peak = self.fits(b, amp=amp, checkpointing=ckpt)
                if peak is None:
                    bad = b
                    break
                ok, peaks[b] = b, peak
                b *= 2
            for _ in range(2):
                if bad is None or bad - ok <= 4 or self.left() < 20:
                    break
                mid = (ok + bad) // 2
                peak = self.fits(mid, amp=amp, checkpointing=ckpt)
                if peak is None:
                    bad = mid
                else:
                    ok, peaks[mid] = mid, peak
            out[name] = {"largest_batch": ok, "first_failing_batch": bad, "capped_at": cap_here if bad is None else None,
                         "peak_gib_by_batch": {str(k): v for k, v in sorted(peaks.items())} if self.cuda else None}

    def train_step(self) -> dict:
        b = self.timing_batch
        x, y = self.batch(b)
        out = {"batch": b}
        rates = {}
        variants = [("fp32", False, False, None), ("amp_ncdhw", True, False, None),
                    ("fp32_channels_last", False, True, None), ("amp_channels_last", True, True, None),
                    ("amp_fp16_channels_last", True, True, torch.float16)]
        for name, amp, cl, dtype in variants:
            if amp and not self.cuda:
                out[name] = {"skipped": "AMP needs a GPU"}
                continue
            if self.left() < 15:
                out[name] = {"skipped": "out of budget"}
                continue
            model = self.template()
            fn = self.stepper(model, amp=amp, channels_last=cl, dtype=dtype)
            self.peak_reset()
            t = self.time_steps(fn, x, y, self.cfg["repeats"])
            med = statistics.median(t)
            rates[name] = b / med
            out[name] = {"step_ms_median": round(med * 1e3, 2), "step_ms_all": [round(v * 1e3, 2) for v in t],
                         "clips_per_s": round(b / med, 1), "peak_gib": self.peak_gib()}
            del model, fn
            self.free()
        if "fp32" in rates and "amp_channels_last" in rates:
            out["amp_speedup"] = round(rates["amp_channels_last"] / rates["fp32"], 2)  # AMP as train() runs it
            out["goal_amp_speedup"] = 1.5
        for name in ("amp_ncdhw", "fp32_channels_last", "amp_channels_last", "amp_fp16_channels_last"):
            if name in rates and "fp32" in rates:
                out[f"{name}_speedup"] = round(rates[name] / rates["fp32"], 2)
        return out

    def gate_overhead(self) -> dict:
        """Interleaved rounds of the gated and the ungated step, medians compared."""
        b = self.timing_batch
        x, y = self.batch(b)
        amp = self.cuda
        fns = {}
        for name, gated in (("ungated", False), ("gated", True)):
            fns[name] = self.stepper(self.template(), amp=amp, gated=gated)
            for _ in range(2):
                fns[name](x, y)
        times = {k: [] for k in fns}
        for _ in range(self.cfg["repeats"]):
            for k, fn in fns.items():
                times[k] += self.time_steps(fn, x, y, 1, warm=0)
        med = {k: statistics.median(v) for k, v in times.items()}
        return {"batch": b, "amp": amp, "step_ms_median": {k: round(v * 1e3, 2) for k, v in med.items()},
                "gate_overhead": round(med["gated"] / med["ungated"] - 1, 4), "goal": 0.10}

    def sync_check(self) -> dict:
        if not self.cuda:
            raise _Skip("host-device synchronisation exists only on a GPU")
        b = min(self.timing_batch, 8)
        x, y = self.batch(b)
        out = {}
        for name, amp in (("amp", True), ("fp32", False)):
            model = self.template()
            fn = self.stepper(model, amp=amp)
            fn(x, y)  # first step outside the check: lazy initialisation may synchronise
            fn(x, y)
            self.sync()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    for _ in range(3):
                        fn(x, y)
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            msgs = [str(w.message).splitlines()[0][:200] for w in caught
                    if "synchroniz" in str(w.message).lower() and "prototype feature" not in str(w.message)]
            out[name] = {"syncs_in_3_steps": len(msgs), "first": sorted(set(msgs))[:5]}
            del model, fn
            self.free()
        out["goal"] = "no synchronisation inside the training step"
        return out

    def estimates(self) -> dict:
        c = self.cfg
        b = min(self.timing_batch, 32)
        n_val = c["val_clips"]
        val = [self.batch(b) for _ in range(max(1, n_val // b))]
        calib = [self.batch(b + 1) for _ in range(2)]
        model = self.template()
        model.eval()
        strategies = model.sample(c["strategies"], torch.Generator().manual_seed(0))
        out = {"val_clips": sum(len(v[1]) for v in val), "batch": b, "recalibrate_batches": 2}
        for name, amp in (("fp32", False), ("amp", True)):
            if amp and not self.cuda:
                out[name] = {"skipped": "AMP needs a GPU"}
                continue
            dtype = amp_dtype(self.device) if amp else None
            secs = []
            with model.running():
                for s in strategies:
                    self.sync()
                    t0 = time.perf_counter()
                    model.set_strategy(s)
                    with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                        recalibrate_bn(model, calib, self.device)
                        evaluate(model, val, self.device)
                    self.sync()
                    secs.append(time.perf_counter() - t0)
            med = statistics.median(secs[1:] if len(secs) > 2 else secs)
            out[name] = {"seconds_per_strategy_median": round(med, 3), "strategies_per_minute": round(60 / med, 1),
                         "eval_clips_per_s": round(out["val_clips"] / med, 1)}
            # the same strategies as one prefix tree (the estimates' default path)
            self.sync()
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                PrefixScorer(model).score(strategies, val, calibration=calib, device=self.device)
            self.sync()
            t = time.perf_counter() - t0
            out[name]["shared_prefixes_strategies_per_minute"] = round(len(strategies) / t * 60, 1)
        return out

    def loader(self) -> dict:
        c = self.cfg
        n = 8 * max(1, min(self.timing_batch, 32))
        data = torch.randint(0, 256, (n, c["frames"], c["size"], c["size"], 3), dtype=torch.uint8)
        labels = torch.randint(0, c["num_classes"], (n,))
        ds = torch.utils.data.TensorDataset(data, labels)
        out = {}
        mean = torch.tensor([0.43, 0.39, 0.37], device=self.device).view(1, 3, 1, 1, 1)
        std = torch.tensor([0.23, 0.22, 0.22], device=self.device).view(1, 3, 1, 1, 1)
        workers = 0 if not self.cuda else min(8, os.cpu_count() or 1)
        loader = torch.utils.data.DataLoader(ds, batch_size=min(self.timing_batch, 32), shuffle=True,
                                             num_workers=workers, pin_memory=self.cuda, drop_last=False)
        for _ in range(2):  # warm (workers start)
            t0 = time.perf_counter()
            seen = 0
            for xb, yb in loader:
                x = xb.to(self.device, non_blocking=True).permute(0, 4, 1, 2, 3).float().div_(255)
                x = (x - mean) / std
                yb.to(self.device, non_blocking=True)
                seen += len(yb)
            self.sync()
            dt = time.perf_counter() - t0
        out["in_memory_uint8"] = {"clips_per_s": round(seen / dt, 1), "workers": workers, "pin_memory": self.cuda,
                                  "clip": [c["frames"], c["size"], c["size"], 3]}
        try:
            import av  # noqa: F401
            import numpy  # noqa: F401
        except ImportError as e:
            out["mp4"] = {"skipped": f"decoding mp4 needs PyAV and numpy ({e})"}
        else:
            out["mp4"] = self._mp4_rate()
        return out

    def _mp4_rate(self) -> dict:
        """Clips decoded per second from mp4 files (64 frames at 128x171, as exported datasets are
        stored), through the workbench's decoder in DataLoader workers, pinned and sent to the device."""
        import tempfile

        import numpy as np

        from workbench.data.export import write_video

        c = self.cfg
        with tempfile.TemporaryDirectory() as tmp:
            rng = np.random.default_rng(0)
            paths = []
            for i in range(16):
                frames = rng.integers(0, 256, (64, 128, 171, 3), dtype=np.uint8)
                paths.append(write_video(Path(tmp) / f"v{i:02d}.mp4", frames))
            ds = _Mp4Clips(paths * 4, c["frames"], c["size"])
            workers = min(8, os.cpu_count() or 1)
            loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers, pin_memory=self.cuda)
            t0 = time.perf_counter()
            seen = 0
            for xb in loader:
                xb.to(self.device, non_blocking=True)
                seen += len(xb)
            self.sync()
            return {"clips_per_s": round(seen / (time.perf_counter() - t0), 1), "workers": workers, "clips": seen,
                    "video": [64, 128, 171], "clip": [c["frames"], c["size"], c["size"]]}

    def compile(self) -> dict:
        if not self.args.compile:
            raise _Skip("compilation not asked for (--compile; on by default on a GPU)")
        b = self.timing_batch
        x, y = self.batch(b)
        amp = self.cuda
        out = {"batch": b, "amp": amp}
        eager = self.stepper(self.template(), amp=amp)
        te = statistics.median(self.time_steps(eager, x, y, self.cfg["repeats"]))
        model = self.template()
        fn = self.stepper(model, amp=amp, compiled=True)
        t0 = time.perf_counter()
        fn(x, y)
        self.sync()
        out["compile_s"] = round(time.perf_counter() - t0, 1)
        tc = statistics.median(self.time_steps(fn, x, y, self.cfg["repeats"]))
        out.update(eager_step_ms=round(te * 1e3, 2), compiled_step_ms=round(tc * 1e3, 2),
                   compile_speedup=round(te / tc, 2))
        return out


class _Skip(Exception):
    pass


class _Mp4Clips(torch.utils.data.Dataset):
    def __init__(self, paths, frames: int, size: int) -> None:
        self.paths, self.frames, self.size = paths, frames, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        import numpy as np

        from workbench.data.decode import read_video_clips

        f = self.frames
        (clip,) = read_video_clips(self.paths[i], lambda n: [np.arange(f) + (i % max(1, n - f))],
                                   short_side=self.size)
        return torch.from_numpy(np.ascontiguousarray(clip[:, :self.size, :self.size]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny size (DenseNet-tiny, 8x32x32): the CPU/CI run")
    p.add_argument("--budget-s", type=float, default=360.0, help="wall-clock budget of the whole run (default 6 min)")
    p.add_argument("--out", default="reports/gpu", help="folder of gpu-bench.json (default reports/gpu)")
    p.add_argument("--timing-batch", type=int, default=None, help="batch of the timing sections (default: the "
                   "largest fp32 batch found)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="time torch.compile (default: on for a GPU, off on CPU)")
    p.add_argument("--sections", default=None, help="comma-separated subset of the sections to run "
                   "(environment and max_batch always run)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: this machine has no CUDA device; use --device cpu --tiny")
    if not args.device.startswith("cuda") and not args.tiny:
        p.error("on CPU the benchmark runs at tiny size only: add --tiny")
    if args.compile is None:
        args.compile = args.device.startswith("cuda")
    cfg = dict(TINY if args.tiny else REAL)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    bench = Bench(args, cfg)
    bench.timing_batch = args.timing_batch or 4
    bench.section("environment", bench.environment, needs_s=5)
    bench.section("max_batch", bench.max_batch, needs_s=30)
    wanted = None if args.sections is None else {x.strip() for x in args.sections.split(",")}
    for name, needs in (("train_step", 20), ("gate_overhead", 15), ("sync_check", 10), ("estimates", 20),
                        ("loader", 10), ("compile", 90)):
        if wanted is None or name in wanted:
            bench.section(name, getattr(bench, name), needs_s=needs)
    print(json.dumps(bench.result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
