"""The training loop: one for the template network (warm-up, then gated), stand-alone networks,
stream-fusion networks and the truth table's many small trainings.

* SGD or AdamW, step or cosine schedule (:mod:`~workbench.engine.config`); one optimisation step
  (:class:`~workbench.engine.step.TrainStep`): AMP on a GPU, clipping, the template's gate
  optimiser after its warm-up, a replaceable loss (Gradient-Blending's per-head losses).
* A checkpoint after every epoch (``DIR/last.safetensors`` + ``DIR/last.json``, written
  atomically): weights, optimizer state, RNG state and history. ``resume=True`` continues from
  it; the data order of each epoch is a function of (seed, epoch), so on CPU a resumed run ends
  with the same numbers as an uninterrupted one.
* Progress bars from ``tqdm.auto``: widgets in notebooks, text in a terminal.

What differs between kinds of training is a :class:`Hooks` object: the phase of an epoch and
what one step trains (:class:`TemplateHooks`: warm-up, relaxed gates, sandwich steps), what is
evaluated and recorded after it (the stream networks' per-head losses and G-Blend's weights live
in :mod:`workbench.streams.train`), and what the checkpoint carries besides the loop's own state.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from workbench.engine import distributed as dist_
from workbench.engine.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    checkpoint_exists,
    load_latest,
    load_state_checked,
    save_checkpoint,
)
from workbench.engine.config import History, TrainConfig, lr_at, tau_at
from workbench.engine.evaluate import evaluate
from workbench.engine.step import (
    TrainStep,
    amp_dtype,
    is_template,
    load_optimizer_tensors,
    make_optimizers,
    measure_step_seconds,
    optimizer_tensors,
    place_for_training,
)

__all__ = [
    "Cancelled", "History", "Hooks", "Loop", "TemplateHooks", "TrainConfig", "TrainStep", "amp_dtype", "evaluate",
    "load_optimizer_tensors", "lr_at", "make_optimizers", "make_train_loader", "measure_step_seconds",
    "optimizer_tensors", "place_for_training", "skipped_videos", "tau_at", "to_device", "train",
    "uniform_strategy", "stoppable",
]


class Cancelled(RuntimeError):
    """A training stopped on request (:func:`stoppable`). The checkpoint of its last finished
    epoch stays: the run resumes from it."""


_STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("workbench_stop", default=None)


@contextlib.contextmanager
def stoppable(event: threading.Event) -> Iterator[threading.Event]:
    """Every training loop run inside this block (in this thread) stops before its next step once
    ``event`` is set, raising :class:`Cancelled`: how a notebook cancels a background training."""
    token = _STOP.set(event)
    try:
        yield event
    finally:
        _STOP.reset(token)


def skipped_videos(dataset) -> list[str]:
    """The videos ``dataset`` skipped as unreadable so far (through subsets; none for synthetic data)."""
    while not hasattr(dataset, "skipped"):  # through subsets and RGB + flow pairs
        inner = getattr(dataset, "dataset", None) or getattr(dataset, "rgb", None)
        if inner is None or inner is dataset:
            break
        dataset = inner
    return list(getattr(dataset, "skipped", []) or [])


def make_train_loader(dataset: Dataset, config: TrainConfig, epoch: int, *, shuffle: bool = True,
                      drop_last: bool = False) -> DataLoader:
    """A loader whose order depends only on (seed, epoch): resumable and reproducible. Under
    ``torchrun`` each process gets its slice of every global batch (``config.batch_size``)."""
    sampler = dist_.ShardedBatchSampler(
        len(dataset), config.batch_size, seed=config.seed * 100_003 + epoch, shuffle=shuffle,
        drop_last=drop_last, rank=dist_.rank(), world_size=dist_.world_size(),
    )
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=config.num_workers,
        pin_memory=config.device.startswith("cuda"), persistent_workers=False,
    )


def to_device(x, device: str):
    """A batch's input (a tensor, or ``{modality: tensor}``) on ``device``."""
    if isinstance(x, Mapping):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def uniform_strategy(model, generator: torch.Generator):
    """One strategy with every layer's unit drawn uniformly from the template's units."""
    from workbench.strategy import Strategy

    idx = torch.randint(len(model.units), (model.num_layers,), generator=generator)
    return Strategy(model.backbone, tuple(model.units[i] for i in idx.tolist()), model.config.stem)


class Hooks:
    """What one kind of training adds to :class:`Loop`. This base trains a plain classifier with
    the cross-entropy step and records, per epoch, the training loss and accuracy and the held-out
    loss and top-1 (NaN without held-out data) in a :class:`History`."""

    #: the loop builds a loader over its held-out set and :meth:`evaluate` scores it
    val_loader = True
    #: under ``torchrun`` the loop trains data-parallel
    data_parallel = True
    #: ``(output, y) -> loss`` replacing the cross-entropy of the step (None: cross-entropy)
    loss_fn: Callable | None = None

    def new_history(self):
        return History()

    def history_from(self, d: dict):
        return History.from_dict(d)

    def history_dict(self, history) -> dict:
        return history.to_dict()

    def label(self, model: nn.Module) -> str:
        return type(model).__name__

    def start(self, loop: Loop) -> None:
        """Before the first epoch of this call, after any resume."""

    def begin_epoch(self, loop: Loop, epoch: int) -> str:
        """Set the model up for ``epoch``; returns its phase."""
        return "train"

    def step(self, loop: Loop, x, y: torch.Tensor, weight: float) -> torch.Tensor:
        return loop.step_fn(x, y, weight=weight)

    def evaluate(self, loop: Loop, epoch: int):
        """The epoch's held-out scores (what :meth:`record` receives)."""
        if loop.val_batches is None:
            return None
        return evaluate(loop.model, loop.val_batches, loop.device, gather=True)

    def record(self, loop: Loop, epoch: int, phase: str, lr: float, totals: tuple, result, seconds: float,
               skipped: int) -> None:
        loss_sum, reg_sum, correct, seen = totals
        h = loop.history
        h.epoch.append(epoch)
        h.phase.append(phase)
        h.lr.append(lr)
        h.train_loss.append(loss_sum / seen)
        h.train_reg.append(reg_sum / seen)
        h.train_acc.append(correct / seen)
        h.val_loss.append(result["loss"] if result is not None else float("nan"))
        h.val_acc.append(result["top1"] if result is not None else float("nan"))
        h.seconds.append(seconds)
        h.skipped.append(int(skipped))

    def after_epoch(self, loop: Loop, epoch: int) -> None:
        """After the epoch is recorded, before its checkpoint."""

    def state(self) -> dict:
        """What the checkpoint's metadata carries besides the loop's own state."""
        return {}

    def load_state(self, meta: dict) -> None:
        """Restore what :meth:`state` wrote."""

    def epochs_done(self, meta: dict) -> int:
        """Epochs a checkpoint holds (``epoch`` names the last one finished)."""
        return int(meta.get("epochs_done", int(meta["epoch"]) + 1))

    def finish(self, loop: Loop):
        """What :meth:`Loop.run` returns."""
        return loop.history


class TemplateHooks(Hooks):
    """The template network: its first ``warmup_epochs`` with every branch on (or, for a share
    ``warmup_uniform`` of their steps, one uniformly drawn strategy), then relaxed gates and the
    regulariser, the relaxation temperature annealed when ``tau_start`` is set, a share
    ``sandwich`` of gated steps training one uniformly drawn strategy; validation with expected
    masks; every gate's drop probability recorded per epoch."""

    def __init__(self) -> None:
        self.gated = False
        self.rng: torch.Generator | None = None

    def label(self, model: nn.Module) -> str:
        return f"template {model.backbone}"

    def begin_epoch(self, loop: Loop, epoch: int) -> str:
        config, model = loop.config, loop.model
        self.gated = epoch >= config.warmup_epochs
        model.set_mode("relaxed" if self.gated else "warmup")
        model.tau = tau_at(config, model.config.tau, epoch)
        self.rng = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 17)
        return "gated" if self.gated else "warmup"

    def step(self, loop: Loop, x, y: torch.Tensor, weight: float) -> torch.Tensor:
        config = loop.config
        share = config.sandwich if self.gated else config.warmup_uniform
        uniform = share > 0 and float(torch.rand((), generator=self.rng)) < share
        strategy = uniform_strategy(loop.model, self.rng) if uniform else None
        return loop.step_fn(x, y, gated=self.gated, uniform=strategy, weight=weight)

    def evaluate(self, loop: Loop, epoch: int):
        model = loop.model
        result = None
        if loop.val_batches is not None:  # validate the template as it trains: expected masks, deterministic
            model.set_mode("expected" if self.gated else "warmup")
            result = evaluate(model, loop.val_batches, loop.device, gather=True)
        gates = model.drop_probabilities().tolist()
        model.set_mode("relaxed")
        return result, gates

    def record(self, loop: Loop, epoch: int, phase: str, lr: float, totals: tuple, result, seconds: float,
               skipped: int) -> None:
        result, gates = result
        super().record(loop, epoch, phase, lr, totals, result, seconds, skipped)
        loop.history.gates.append(gates)


class Loop:
    """Train ``model`` epoch by epoch; :meth:`run` returns the history.

    ``train_set`` is a dataset (batches from :func:`make_train_loader`), or ``batches(epoch)``
    gives each epoch's batches directly (in-memory arrays); the held-out data are a dataset
    (``val_set``) or batches (``val_batches``). ``model_kwargs`` are stored in the checkpoint so the model can be
    rebuilt from it; ``extra_meta`` joins its metadata. ``label`` names the model in the progress
    bars."""

    def __init__(self, model: nn.Module, train_set: Dataset | None, val_set, config: TrainConfig,
                 hooks: Hooks | None = None, *, batches: Callable[[int], Iterable] | None = None,
                 val_batches: Iterable | None = None,
                 out_dir: str | Path | None = None, model_kwargs: dict | None = None,
                 extra_meta: dict | None = None, label: str | None = None) -> None:
        if batches is None and (train_set is None or len(train_set) == 0):
            raise ValueError("training set is empty")
        self.model, self.train_set, self.val_set, self.config = model, train_set, val_set, config
        self.hooks = hooks if hooks is not None else (TemplateHooks() if is_template(model) else Hooks())
        self.batches, self.val_batches = batches, val_batches
        self.run_dir = Path(out_dir) if out_dir is not None else None
        self.model_kwargs, self.extra_meta = model_kwargs or {}, extra_meta or {}
        self.label = label or self.hooks.label(model)
        self.history = self.hooks.new_history()
        self.start_epoch = 0

    # -- set-up ----------------------------------------------------------------------------------

    def _place(self) -> None:
        """Processes, device, memory format, DDP wrapper, optimisers and the step."""
        config, model = self.config, self.model
        if self.hooks.data_parallel:
            dist_.init_from_env(config.device)
        self.distributed = self.hooks.data_parallel and dist_.is_distributed()
        self.world, self.main = dist_.world_size(), dist_.is_main()
        self.device = dist_.device_for_rank(config.device) if self.hooks.data_parallel else config.device
        model.to(self.device)
        place_for_training(model, config, self.device)
        self.net = model
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # the template's gate logits sit unused during warm-up: let DDP find unused parameters
            self.net = DistributedDataParallel(
                model, device_ids=[torch.device(self.device).index] if self.device.startswith("cuda") else None,
                find_unused_parameters=is_template(model),
            )
        self.opt, self.gate_opt = make_optimizers(model, config)

    def _resume(self) -> None:
        run_dir, config = self.run_dir, self.config
        if run_dir is None:
            raise ValueError("resume=True needs out_dir, the run folder holding last.safetensors")
        if not checkpoint_exists(run_dir / "last") and not checkpoint_exists(run_dir / "prev"):
            raise CheckpointError(f"nothing to resume: {run_dir} holds no checkpoint")
        state, meta, extra = load_latest(run_dir / "last")
        load_state_checked(self.model, state, run_dir / "last")
        m = meta["metadata"]
        if "train_config" in m:
            saved = TrainConfig.from_dict(m["train_config"])
            if replace(saved, progress=config.progress, device=config.device, num_workers=config.num_workers) != config:
                raise ValueError(
                    "resume: the training configuration differs from the checkpoint's "
                    f"({saved} vs {config}); resume with the saved configuration"
                )
        load_optimizer_tensors("opt", self.opt, extra, m["optimizer"])
        if self.gate_opt is not None and m.get("gate_optimizer"):
            load_optimizer_tensors("gate_opt", self.gate_opt, extra, m["gate_optimizer"])
        done = self.hooks.epochs_done(m)
        rng_key = "rng/torch" if dist_.rank() == 0 else f"rng/torch/{dist_.rank()}"
        if rng_key in extra:
            torch.set_rng_state(extra[rng_key])
        else:  # resumed on more processes than were saved: a fresh, rank-specific stream
            torch.manual_seed(config.seed + 7919 * dist_.rank() + done - 1)
        self.history = self.hooks.history_from(m["history"])
        self.hooks.load_state(m)
        self.start_epoch = done

    def _val_loader(self):
        if self.val_batches is not None:
            return self.val_batches
        val = self.val_set
        if val is None or not self.hooks.val_loader:
            return None
        if self.distributed:  # each process scores a shard; evaluate(gather=True) combines them
            val = torch.utils.data.Subset(val, dist_.shard(range(len(val))))
        return DataLoader(val, batch_size=max(1, self.config.batch_size // self.world), shuffle=False,
                          num_workers=self.config.num_workers)

    def _skips(self) -> int:
        return sum(len(skipped_videos(d)) for d in (self.train_set, self.val_set) if d is not None)

    # -- one epoch -------------------------------------------------------------------------------

    def _epoch(self, epoch: int) -> None:
        from tqdm.auto import tqdm

        config, model, hooks = self.config, self.model, self.hooks
        t0 = time.perf_counter()
        skipped_before = self._skips()
        phase = hooks.begin_epoch(self, epoch)
        lr = lr_at(config, epoch)
        for g in self.opt.param_groups:
            g["lr"] = lr
        model.train()
        loader = self.batches(epoch) if self.batches is not None else make_train_loader(self.train_set, config, epoch)
        # running sums stay on the device: one host synchronisation per epoch, not per step
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, regulariser, correct
        seen = 0
        show = config.progress and self.main
        bar = tqdm(loader, desc=f"{self.label}: epoch {epoch + 1}/{config.epochs} [{phase}]", leave=False,
                   disable=not show)
        stop = _STOP.get()
        for i, batch in enumerate(bar):
            if stop is not None and stop.is_set():
                bar.close()
                raise Cancelled(f"{self.label}: stopped in epoch {epoch + 1}/{config.epochs} on request; "
                                + (f"its checkpoint holds {epoch} finished epoch(s) and resumes from there"
                                   if self.run_dir is not None else "nothing was saved (no run folder)"))
            x, y = to_device(batch[0], self.device), batch[1].to(self.device, non_blocking=True)
            weight = 1.0
            if self.distributed:  # DDP averages over processes: weigh each by its share of the batch
                weight = y.numel() * self.world / loader.batch_sampler.global_size(i)
            sums += hooks.step(self, x, y, weight)
            seen += y.numel()
            if show and (self.device == "cpu" or i % 25 == 0):
                s = sums.tolist()
                bar.set_postfix(loss=f"{s[0] / seen:.3f}", **({"acc": f"{s[2] / seen:.3f}"} if hooks.loss_fn is None
                                                              else {}))
        bar.close()
        loss_sum, reg_sum, correct = sums.tolist()
        totals = tuple(dist_.all_reduce_sum([loss_sum, reg_sum, int(correct), seen]))
        result = hooks.evaluate(self, epoch)
        seconds = time.perf_counter() - t0
        (new_skips,) = dist_.all_reduce_sum([self._skips() - skipped_before])
        hooks.record(self, epoch, phase, lr, totals, result, seconds, int(new_skips))
        if new_skips and self.main:
            total = sum(self.history["skipped"] if isinstance(self.history, dict) else self.history.skipped)
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: skipped {int(new_skips)} unreadable video(s) "
                       f"({total} in this run so far); each is named in the warnings")
        hooks.after_epoch(self, epoch)

    def _save(self, epoch: int) -> None:
        tensors, opt_meta = optimizer_tensors("opt", self.opt)
        gate_meta = None
        if self.gate_opt is not None:
            t2, gate_meta = optimizer_tensors("gate_opt", self.gate_opt)
            tensors.update(t2)
        states = dist_.all_gather_objects(torch.get_rng_state())
        if not self.main:
            return
        tensors["rng/torch"] = states[0]
        for r, st in enumerate(states[1:], start=1):
            tensors[f"rng/torch/{r}"] = st
        history = self.hooks.history_dict(self.history)
        meta = {
            "world_size": len(states),
            "epoch": epoch,
            "epochs_done": epoch + 1,
            "train_config": self.config.to_dict(),
            "history": history,
            "optimizer": opt_meta,
            "gate_optimizer": gate_meta,
            **self.hooks.state(),
            **self.extra_meta,
        }
        save_checkpoint(self.run_dir / "last", self.model, model_kwargs=self.model_kwargs, metadata=meta,
                        extra_tensors=tensors)
        atomic_write_bytes(self.run_dir / "history.json", (json.dumps(history) + "\n").encode())

    # -- the run ---------------------------------------------------------------------------------

    def run(self, *, resume: bool = False, on_epoch: Callable | None = None, stop_after: int | None = None):
        """Train to ``config.epochs`` (from the checkpoint with ``resume``); ``on_epoch(history,
        model)`` after each epoch (live plots); ``stop_after`` ends this call after that many
        epochs (to test resumption)."""
        self._place()
        if resume:
            self._resume()
        else:
            # each process draws its own masks (one per example); rank 0 reproduces a single process
            torch.manual_seed(self.config.seed + 7919 * dist_.rank())
        if self.batches is not None and self.distributed:
            raise ValueError("batches= gives every process the same batches: under torchrun pass a dataset")
        if self.train_set is None and is_template(self.model) and not self.config.n_train:
            raise ValueError("a template trained from batches= needs config.n_train (the N of its regulariser)")
        n_train = self.config.n_train or (len(self.train_set) if self.train_set is not None else 1)
        self.val_batches = self._val_loader()
        self.step_fn = TrainStep(self.model, self.opt, self.gate_opt, self.config, self.device, net=self.net,
                                 n_train=n_train, loss_fn=self.hooks.loss_fn)
        self.hooks.start(self)
        done_here = 0
        for epoch in range(self.start_epoch, self.config.epochs):
            if stop_after is not None and done_here >= stop_after:
                break
            self._epoch(epoch)
            if self.run_dir is not None:
                self._save(epoch)
                dist_.barrier()
            if on_epoch is not None and self.main:
                on_epoch(self.history, self.model)
            done_here += 1
        return self.hooks.finish(self)


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    model_kwargs: dict | None = None,
    extra_meta: dict | None = None,
    on_epoch: Callable[[History, nn.Module], None] | None = None,
    stop_after: int | None = None,
    label: str | None = None,
) -> History:
    """Train ``model``; returns its :class:`History`.

    A template network (:class:`~workbench.template.network.TemplateNetwork`) trains its first
    ``warmup_epochs`` with every branch on, then with relaxed gates and the regulariser
    (:class:`TemplateHooks`). ``on_epoch(history, model)`` runs after each epoch (live plots).
    ``stop_after`` ends the run after that many epochs of this call (to test resumption).
    ``model_kwargs`` are stored in the checkpoint so the model can be rebuilt from it. ``label``
    names the model in the progress bars (default: the template's backbone, or the model's class).
    """
    loop = Loop(model, train_set, val_set, config, out_dir=out_dir, model_kwargs=model_kwargs,
                extra_meta=extra_meta, label=label)
    return loop.run(resume=resume, on_epoch=on_epoch, stop_after=stop_after)
