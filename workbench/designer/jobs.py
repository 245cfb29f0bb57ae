"""What the designer does with a design: export it (strategy JSON, inherited weights in safetensors,
a small Python loader; never over an earlier design) and train it stand-alone in a background
thread, the finished training recorded beside its estimate in the run's ``records.json``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from workbench.strategy import Strategy

__all__ = ["StreamsProgress", "busy", "cancel_training", "export_design", "free_name", "record_training",
           "start_training", "wait_for_trainings"]


def export_design(designer, folder, name: str = "design") -> dict[str, Path]:
    """Write the current strategy as ``NAME.json``, the network with the template's weights as
    a checkpoint (``NAME.safetensors`` + ``NAME.json`` metadata, no pickle) and ``NAME.py``,
    a loader that rebuilds it as a plain ``torch.nn.Module``. An existing design of that name
    is never written over: the next free ``NAME-2``, ``NAME-3``, ... is used."""
    from workbench.engine.checkpoint import save_checkpoint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = free_name(folder, name)  # never written over: design, design-2, design-3, ...
    s = designer.strategy.replace(name=name)
    model = designer.template.extract(s, inherit_weights=True)
    save_checkpoint(folder / f"{name}-weights", model, model_kwargs=designer.template.config.model_kwargs(),
                    metadata={"strategy": s.to_dict(), "from_template": str(designer.run) if designer.run else None,
                              "estimate": designer.estimate(s)})
    (folder / f"{name}.json").write_text(json.dumps(s.to_dict(), indent=1) + "\n")
    (folder / f"{name}.py").write_text(
        f'"""{s.code}: a fusion strategy exported by the strategy designer.\n\n'
        "build() returns the network as a torch.nn.Module with the template's weights (safetensors).\n"
        '"""\n\nfrom pathlib import Path\n\nfrom workbench.engine.checkpoint import load_checkpoint\n\n\n'
        "def build():\n"
        f'    model, meta, _ = load_checkpoint(Path(__file__).with_name("{name}-weights"))\n'
        "    return model\n"
    )
    paths = {"strategy": folder / f"{name}.json", "weights": folder / f"{name}-weights.safetensors",
             "module": folder / f"{name}.py"}
    if designer.stream_fusion != "none":
        _, t, _, w = designer.clip_shape()
        spec = {"fusion": designer.stream_fusion, "modalities": ["rgb", "flow"], "backbone": s.to_dict(),
                "backbone_kw": designer.template.config.model_kwargs(), "num_classes": designer.template.num_classes,
                "frames": t, "size": w}
        (folder / f"{name}-streams.json").write_text(json.dumps(spec, indent=1) + "\n")
        with open(folder / f"{name}.py", "a") as fh:
            fh.write(
                "\n\ndef build_two_stream():\n"
                f'    """The {designer.stream_fusion} two-stream (RGB + flow) network of this design, untrained."""\n'
                "    import json\n\n    from workbench.streams import build_streams_model\n\n"
                f'    spec = json.loads(Path(__file__).with_name("{name}-streams.json").read_text())\n'
                '    return build_streams_model(spec["fusion"], spec["modalities"], spec["num_classes"], '
                'frames=spec["frames"],\n                               size=spec["size"], backbone=spec["backbone"], '
                'backbone_kw=spec["backbone_kw"])\n')
        paths["streams"] = folder / f"{name}-streams.json"
    return paths


def start_training(designer, out, *, epochs: int = 20, batch_size: int = 16, lr: float = 6e-3, seed: int = 0,
                   inherit: bool = False, on_epoch=None, wait: bool = False, queue: bool = False,
                   hooks: tuple | None = None):
    """Train the current strategy stand-alone on the run's dataset in a background thread
    (``wait=True``: join it). ``on_epoch(history)`` runs after each epoch; the result lands in
    ``designer.last_training`` and ``designer.finished`` (status ``done``, ``cancelled`` or
    ``error``), a finished training in the run's records. While one runs, another is refused,
    or with ``queue=True`` queued: it starts when the running one ends. Returns the thread, or
    None when queued. ``hooks``: ``(begin(), end(result))`` called in the training thread as the
    job starts and after it ended (the widget's status line)."""
    from workbench.engine.config import TrainConfig

    if designer.run is None:
        raise ValueError("training needs the template's run folder (StrategyDesigner.from_run)")
    s = designer.strategy
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    # the template is scored here, in the caller's thread: the training thread never touches it
    job = {"strategy": s, "estimate": (designer.estimate(s), designer.interval(s)), "config": cfg, "out": out,
           "inherit": inherit, "fusion": designer.stream_fusion, "on_epoch": on_epoch, "hooks": hooks}
    with designer.jobs_lock:
        if busy(designer):
            if not queue:
                running = designer.training_strategy
                raise RuntimeError(f"a training is already running ({running.code if running else 'a design'}); "
                                   "queue this one (queue=True), cancel that one, or wait for it to finish")
            designer.queue.append(job)
            return None
        thread = _launch(designer, job)
    if wait:
        wait_for_trainings(designer)
    return thread


def busy(designer) -> bool:
    """Whether a training of the designer runs now (set as a job is launched, cleared under the
    lock as its thread ends with nothing queued: a finishing thread never looks busy)."""
    return bool(designer.running)


def cancel_training(designer, *, clear_queue: bool = False) -> bool:
    """Stop the running training before its next step (its run folder keeps the last finished
    epoch; training the same design again resumes from it); ``clear_queue``: drop the queued ones
    too. Returns whether one was running."""
    with designer.jobs_lock:
        if clear_queue:
            designer.queue.clear()
        if not busy(designer):
            return False
        designer.stop_event.set()
        return True


def wait_for_trainings(designer, timeout: float | None = None) -> None:
    """Block until the running training and every queued one have ended."""
    import time

    end = None if timeout is None else time.monotonic() + timeout
    while True:
        with designer.jobs_lock:
            if not designer.running and designer.queue:  # never left waiting: start the next one
                _launch(designer, designer.queue.pop(0))
            thread = designer.training
            pending = designer.running or bool(designer.queue)
        if not pending:
            return
        left = None if end is None else max(0.0, end - time.monotonic())
        if left == 0.0:
            raise TimeoutError("trainings still running")
        thread.join(1.0 if left is None else min(left, 1.0))


def _launch(designer, job: dict) -> threading.Thread:
    """Start ``job`` in a training thread (the caller holds ``jobs_lock``)."""
    designer.running = True
    designer.training_strategy = job["strategy"]
    designer.stop_event = threading.Event()
    stop = designer.stop_event
    designer.training = threading.Thread(target=_run_job, args=(designer, job, stop), daemon=True,
                                         name="designer-training")
    designer.training.start()
    return designer.training


def _safe(callback, result: dict):
    """``callback`` whose exceptions are kept in ``result["progress_error"]`` instead of ending the
    training: a display problem never costs the epochs."""
    if callback is None:
        return None

    def call(*a):
        try:
            callback(*a)
        except Exception as e:  # noqa: BLE001 - reported, never raised into the training
            result["progress_error"] = e

    return call


def _run_job(designer, job: dict, stop: threading.Event) -> None:
    from workbench.engine.loop import Cancelled, stoppable
    from workbench.runs import Run
    from workbench.studies.pipeline import read_run, train_strategy

    s, cfg, out, inherit, fusion = (job[k] for k in ("strategy", "config", "out", "inherit", "fusion"))
    result: dict = {"strategy": s, "out": str(out), "estimate": job["estimate"]}
    on_epoch = _safe(job["on_epoch"], result)
    begin, end = job.get("hooks") or (None, None)
    try:
        if begin is not None:
            _safe(begin, result)()
        spec = read_run(designer.run)
        run = Run(out)
        if run.is_finished():  # the same design at the same settings was trained there already
            result.update(status="done", reused=True, test=run.result()["test"] if fusion == "none"
                          else run.result()["test"]["fused"], history=run.history())
            return
        resume = run.is_present()  # a cancelled or interrupted training of this design goes on
        with stoppable(stop):
            if fusion != "none":
                from workbench.streams import run_streams

                r = run_streams(out, dataset=spec["dataset"], fusion=fusion, modalities=("rgb", "flow"),
                                train_config=cfg, data_kw=spec["data_kw"], resume=resume,
                                model_kw={"backbone": s.to_dict(), "backbone_kw": designer.template.config.model_kwargs()},
                                on_epoch=(lambda h, m: on_epoch(StreamsProgress(h))) if on_epoch else None)
                result.update(history=r["history"], test=r["result"]["test"]["fused"], stream_fusion=fusion)
                try:
                    val = r["history"]["val_acc"]["fused"][-1]
                except (KeyError, IndexError, TypeError):
                    val = None
            else:
                _, history, test = train_strategy(
                    s, out, dataset=spec["dataset"], root=spec.get("root"), data_kw=spec["data_kw"],
                    model_kw=designer.template.config.model_kwargs(), train_config=cfg, resume=resume,
                    inherit_from=designer.run if inherit else None,
                    on_epoch=(lambda h, m: on_epoch(h)) if on_epoch else None)
                result.update(history=history, test=test)
                val = history.val_acc[-1]
        result["status"] = "done"
        if stop.is_set():  # the cancel came after the last step: the training is whole, say so
            result["cancel_too_late"] = True
        try:  # a training that finished stays finished, whatever happens to its record
            record_training(designer, s, job["estimate"], val, result["test"], cfg, out, inherit, fusion)
            result["recorded"] = True
        except Exception as e:
            result["record_error"] = e
    except Cancelled as e:
        result.update(status="cancelled", cancelled=str(e))
    except Exception as e:  # reported in the widget and kept for the caller
        result.update(status="error", error=e)
    finally:
        with designer.jobs_lock:
            designer.last_training = result
            designer.finished.append(result)
            if end is not None:
                _safe(end, result)(result)
            if designer.queue:  # the next queued design starts as this thread ends
                _launch(designer, designer.queue.pop(0))
            else:
                designer.running = False


def record_training(designer, s: Strategy, estimate: tuple[float, tuple[float, float]], val_top1, test: dict, cfg, out,
            inherit: bool, fusion: str) -> None:
    """The finished training beside its estimate, in the run's records (``RUN/records.json``)."""
    from workbench.runs import add_record

    add_record(designer.run, {
        "strategy": s.to_dict(), "code": s.code, "estimate": estimate[0], "estimate_interval": list(estimate[1]),
        "recalibrate_batches": designer.recalibrate_batches, "standalone_test_top1": test["top1"],
        "standalone_val_top1": val_top1, "test_clips": test.get("n"), "train_config": cfg.to_dict(),
        "inherited_weights": inherit, "stream_fusion": fusion, "out": str(out), "source": "designer",
    })


class StreamsProgress:
    """A stream-fusion history as the designer's progress bar and curves read a stand-alone one:
    the fused head's numbers after each epoch (its epoch 0, before training, left out)."""

    def __init__(self, history: dict) -> None:
        head = "fused" if "fused" in history["val_acc"] else next(iter(history["val_acc"]))
        self.val_acc = history["val_acc"][head][1:]
        self._curves = {"epoch": list(history["epoch"][1:]), "val_acc": self.val_acc,
                        **{k: history[k][head][1:] for k in ("train_loss", "val_loss", "train_acc")}}

    def __len__(self) -> int:
        return len(self.val_acc)

    def to_dict(self) -> dict:
        return dict(self._curves)


def free_name(folder: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first with none of a design's files in ``folder``."""
    def taken(n: str) -> bool:
        return any((folder / f"{n}{suffix}").exists() for suffix in (".json", ".py", "-weights.safetensors"))

    if not taken(name):
        return name
    i = 2
    while taken(f"{name}-{i}"):
        i += 1
    return f"{name}-{i}"
