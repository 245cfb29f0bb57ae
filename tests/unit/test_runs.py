"""The run folder object: refusal to overwrite, resume rules, the lock, the cache key."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.runs import Run, RunError, RunExistsError, RunLockedError, cache_key

SPEC = {"kind": "standalone", "dataset": "synthetic-mixed", "data_kw": {"n": 1}, "train_config": {"lr": 1}}


def _finished(path, spec=SPEC, epochs=2):
    run = Run(path)
    run.begin(spec)
    (path / "last.safetensors").write_bytes(b"x")
    run.write_json("history.json", {"epoch": list(range(epochs))})
    run.write_result({"test": {"top1": 0.5}})
    return run


def test_a_folder_that_holds_a_run_is_never_written_over_in_silence(tmp_path):
    run = _finished(tmp_path / "r")
    assert run.is_finished() and run.kind == "standalone" and run.epochs_done() == 2
    with pytest.raises(RunExistsError, match="already holds a finished standalone run: pass --resume .* --overwrite"):
        run.begin(SPEC)
    # resume: same kind and settings only
    with pytest.raises(RunError, match="holds a standalone run, not a template run"):
        run.begin({**SPEC, "kind": "supernet"}, resume=True)
    with pytest.raises(RunError, match=r"its data_kw differs \(\{\"n\": 1\} saved, \{\"n\": 2\} now\)"):
        run.begin({**SPEC, "data_kw": {"n": 2}}, resume=True)
    assert run.begin({**SPEC, "train_config": {"lr": 2}}, resume=True, same=("kind", "data_kw")) is True
    with pytest.raises(RunError, match="exclude each other"):
        run.begin(SPEC, resume=True, overwrite=True)
    # overwrite removes the run's files and nothing else
    (run.path / "notes.txt").write_text("mine")
    assert run.begin(SPEC, overwrite=True) is False
    assert not run.is_finished() and not run.has_checkpoint() and run.epochs_done() == 0
    assert (run.path / "notes.txt").read_text() == "mine" and run.has_spec()


def test_resume_of_nothing_and_of_a_run_killed_before_its_first_checkpoint(tmp_path):
    with pytest.raises(RunError, match="nothing to resume: .* holds no run"):
        Run(tmp_path / "none").begin(SPEC, resume=True)
    run = Run(tmp_path / "r")
    run.begin(SPEC)  # run.json written, then killed before any checkpoint
    with pytest.warns(RuntimeWarning, match="before its first checkpoint: starting it from the beginning"):
        assert run.begin(SPEC, resume=True) is False
    (run.path / "last.safetensors").write_bytes(b"x")
    assert run.begin(SPEC, resume=True) is True


def test_out_that_cannot_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RunError, match="is a file, not a folder"):
        Run(f).begin(SPEC)
    with pytest.raises(RunError, match="is a file, so no folder can be made under it"):
        Run(f / "sub" / "run").begin(SPEC)


def test_spec_errors_name_the_folder(tmp_path):
    with pytest.raises(RunError, match="does not exist: expected the --out folder"):
        Run(tmp_path / "nope").spec()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="is not a run folder"):
        Run(tmp_path / "empty").spec()
    (tmp_path / "empty" / "run.json").write_text("{broken")
    with pytest.raises(RunError, match="not valid JSON"):
        Run(tmp_path / "empty").spec()


def test_reuse_or_trains_once(tmp_path):
    calls = []

    def train(resume):
        calls.append(resume)
        _finished(tmp_path / "r")

    assert Run(tmp_path / "r").reuse_or(train)["test"]["top1"] == 0.5
    assert Run(tmp_path / "r").reuse_or(train)["test"]["top1"] == 0.5
    assert calls == [False]


def test_the_lock_refuses_a_second_writer_and_names_the_holder(tmp_path):
    run = Run(tmp_path / "r")
    with run.lock():
        with pytest.raises(RunLockedError, match=rf"being written by another process \(pid {os.getpid()}\)"):
            with Run(tmp_path / "r").lock():
                pass
    with run.lock():  # released at the end of the block
        pass


def test_kill_9_releases_the_lock(tmp_path):
    code = ("import sys, time; from workbench.runs import Run\n"
            "with Run(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {p.pid}"):
            with Run(tmp_path / "r").lock():
                pass
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    t0 = time.time()
    with Run(tmp_path / "r").lock():
        assert time.time() - t0 < 1


def test_cache_key_is_stable_and_refuses_non_data(tmp_path):
    a = cache_key({"b": [1, 2], "a": {"y": 1, "x": tmp_path}})
    assert a == cache_key({"a": {"x": str(tmp_path), "y": 1}, "b": (1, 2)})
    # the keys of studies cached before this function existed stay valid
    import hashlib

    obj = {"dataset": "synthetic-mixed", "seeds": [0, 1]}
    assert cache_key(obj) == hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]
    with pytest.raises(TypeError, match="not JSON data"):
        cache_key({"x": object()})
