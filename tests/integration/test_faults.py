"""Runs survive a crash at every step of a checkpoint write, a real ``kill -9``, a full disk and a
second writer: each resumes to the numbers of an uninterrupted run, or is refused in one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from workbench.engine.checkpoint import FAULT_STEPS, load_checkpoint
from workbench.engine.config import TrainConfig
from workbench.strategy import preset
from workbench.studies.pipeline import train_strategy

DATA = {"train_per_class": 3, "val_per_class": 2, "test_per_class": 2, "size": 16}
EPOCHS = 3
SCRIPT = f"""
import sys, torch
torch.set_num_threads({torch.get_num_threads()})
from workbench.studies.pipeline import train_strategy
from workbench.strategy import preset
from workbench.engine.config import TrainConfig
train_strategy(preset("mc3"), sys.argv[1], data_kw={DATA!r}, model_kw={{"tiny": True}},
               train_config=TrainConfig(epochs={EPOCHS}, batch_size=8, progress=False), resume=sys.argv[2] == "1")
print("done", flush=True)
"""


def _train(out, resume=False):
    return train_strategy(preset("mc3"), out, data_kw=DATA, model_kw={"tiny": True},
                          train_config=TrainConfig(epochs=EPOCHS, batch_size=8, progress=False), resume=resume)


def _child(out, resume=False, **env):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), "1" if resume else "0"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _same_end(a, b):
    sa, ma, _ = load_checkpoint(a / "last", build=False)
    sb, mb, _ = load_checkpoint(b / "last", build=False)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ma["metadata"]["history"]["train_loss"] == mb["metadata"]["history"]["train_loss"]
    assert len(ma["metadata"]["history"]["epoch"]) == EPOCHS


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    _train(out)
    return out


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_a_crash_at_any_step_of_a_checkpoint_write_loses_nothing(step, tmp_path, reference):
    out = tmp_path / "run"
    p = _child(out, WORKBENCH_FAULT=f"checkpoint:{step}:crash", WORKBENCH_FAULT_AT="2")
    _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, err
    _train(out, resume=True)
    _same_end(out, reference)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(tmp_path, reference):
    out = tmp_path / "run"
    p = _child(out, WORKBENCH_FAULT="checkpoint:begin:crash", WORKBENCH_FAULT_AT="1")
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL and (out / "run.json").is_file()
    with pytest.warns(RuntimeWarning, match="starting it from the beginning"):
        _train(out, resume=True)
    _same_end(out, reference)


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path):
    out = tmp_path / "run"
    p = _child(out, WORKBENCH_FAULT="checkpoint:temp-written:pause", WORKBENCH_FAULT_AT="1")
    try:
        line = p.stderr.readline()
        while line and "WORKBENCH_FAULT_PAUSED" not in line:
            line = p.stderr.readline()
        assert "WORKBENCH_FAULT_PAUSED" in line
        t0 = time.time()
        with pytest.raises(ValueError, match=f"being written by another process \\(pid {p.pid}\\)"):
            _train(out, resume=True)
        assert time.time() - t0 < 30
    finally:
        p.kill()
        p.wait()
    _train(out, resume=True)  # the kill released the lock; the run completes


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    import workbench.engine.checkpoint as ck

    real = ck.write_temp
    calls = {"n": 0}

    def full(path, data):
        calls["n"] += path.name == "last.safetensors"
        if calls["n"] == 2 and path.name == "last.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(ck, "write_temp", full)
    with pytest.raises(OSError, match="No space left"):
        _train(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".last")]  # no temporary file left
    meta = ck.read_metadata(out / "last")
    assert meta["metadata"]["epoch"] == 0  # the first epoch's checkpoint is intact
    monkeypatch.setattr(ck, "write_temp", real)
    _train(out, resume=True)
    _same_end(out, reference)


@pytest.mark.faults
def test_real_kill_9_at_each_step_of_the_write(tmp_path, reference):
    """A real external ``kill -9`` aimed at each moment of a checkpoint write (the process pauses
    there), for every epoch's write: every run resumes and ends equal to an uninterrupted one."""
    for at in range(1, EPOCHS + 1):
        for step in FAULT_STEPS:
            if step == "previous-kept" and at == 1:
                continue  # the first checkpoint has no previous one to keep
            out = tmp_path / f"{step}-{at}"
            p = _child(out, WORKBENCH_FAULT=f"checkpoint:{step}:pause", WORKBENCH_FAULT_AT=str(at))
            line = p.stderr.readline()
            while line and "WORKBENCH_FAULT_PAUSED" not in line:
                line = p.stderr.readline()
            assert "WORKBENCH_FAULT_PAUSED" in line, (step, at)
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            r = _child(out, resume=True)
            stdout, err = r.communicate(timeout=300)
            assert r.returncode == 0 and "done" in stdout, err
            _same_end(out, reference)
