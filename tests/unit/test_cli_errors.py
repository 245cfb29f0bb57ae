"""Every bad input through the command line: a non-zero exit, one error line on stderr (argparse's
usage line may precede a usage error), no traceback, and nothing written."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from workbench.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "synthetic-mixed" / "template"
TINY = ["--clips-per-class", "2", "--data-arg", "val_per_class=1", "--data-arg", "test_per_class=1",
        "--epochs", "1", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A copy of the shipped template run, a finished stand-alone run, a real-layout folder, a file."""
    base = tmp_path_factory.mktemp("runs")
    shutil.copytree(SHIPPED, base / "template")
    assert main(["train", "--strategy", "st", "--backbone", "resnet18", "--tiny", "--out", str(base / "standalone"),
                 *TINY]) == 0
    (base / "ucf").mkdir()
    (base / "file").write_text("not a folder")
    (base / "empty").mkdir()
    (base / "strategy.json").write_text(json.dumps({"backbone": "resnet18", "units": ["ST"] * 8, "colour": "red"}))
    tampered = base / "tampered"
    shutil.copytree(base / "standalone", tampered)
    w = tampered / "last.safetensors"
    blob = bytearray(w.read_bytes())
    i = blob.find(b'\\"epoch\\": 0')
    assert i > 0
    blob[i + 10:i + 11] = b"5"  # the epoch in the metadata, edited by hand
    w.write_bytes(bytes(blob))
    return base


CASES = [
    # (argv with {base} for the fixture folder, needle in the error line)
    (["train", "--strategy", "st", "--dataset", "ucf101", "--root", "{base}/ucf", "--clips-per-class", "3",
      "--out", "{base}/new"], "--clips-per-class applies to the synthetic datasets only"),
    (["template", "train", "--dataset", "ucf101", "--root", "{base}/ucf", "--data-seed", "1", "--out", "{base}/new"],
     "--data-seed applies to the synthetic datasets only"),
    (["train", "--strategy", "st", "--dataset", "ucf101", "--root", "{base}/ucf", "--data-arg", "bogus=1",
      "--out", "{base}/new"], "--data-arg bogus: ucf101 has no argument 'bogus'"),
    (["train", "--strategy", "st", "--data-arg", "bogus=1", "--out", "{base}/new"],
     "--data-arg bogus: synthetic-mixed has no argument 'bogus'"),
    (["train", "--strategy", "st", "--dataset", "ucf101", "--out", "{base}/new"], "give --root"),
    (["train", "--strategy", "st", "--dataset", "ucf101", "--root", "{base}/missing", "--out", "{base}/new"],
     "is not a folder"),
    (["train", "--strategy", "st", "--dataset", "nope", "--out", "{base}/new"], "unknown --dataset 'nope'"),
    (["train", "--strategy", "st", "--root", "{base}/ucf", "--out", "{base}/new"], "--root applies to real datasets"),
    (["train", "--strategy", "st", "--device", "cuda", "--out", "{base}/new"], "--device cuda: "),
    (["train", "--strategy", "st", "--device", "gpu0", "--out", "{base}/new"], "is not a device"),
    (["train", "--strategy", "st", "--out", "{base}/file"], "is a file, not a folder"),
    (["train", "--strategy", "st", "--out", "{base}/file/run"], "is a file, so no folder can be made under it"),
    (["train", "--strategy", "resnet18:33333333", "--backbone", "densenet-tiny", "--out", "{base}/new"],
     "--backbone densenet-tiny contradicts the strategy code"),
    (["train", "--strategy", "st", "--inherit-from", "{base}/template", "--backbone", "resnet18", "--out",
      "{base}/new"], "--backbone does not apply with --inherit-from"),
    (["train", "--strategy", "st", "--inherit-from", "{base}/template", "--tiny", "--out", "{base}/new"],
     "--tiny does not apply with --inherit-from"),
    (["train", "--strategy", "st", "--milestones", "3", "--out", "{base}/new"],
     "--milestones apply to --schedule step, not --schedule cosine"),
    (["train", "--strategy", "st", "--data-arg", "val_per_class=0", "--out", "{base}/new"],
     "--data-arg val_per_class=0 leaves the val split empty"),
    (["train", "--strategy", "st", "--data-arg", "test_per_class=0", "--out", "{base}/new"],
     "leaves the test split empty"),
    (["train", "--strategy", "{base}/strategy.json", "--out", "{base}/new"], "unknown key(s) 'colour'"),
    (["train", "--strategy", "st", "--out", "{base}/template"], "already holds a template run stopped after epoch"),
    (["train", "--strategy", "st", "--out", "{base}/standalone"],
     "already holds a finished standalone run: pass --resume"),
    (["template", "train", "--out", "{base}/standalone"], "already holds a finished standalone run"),
    (["train", "--strategy", "st", "--resume", "--out", "{base}/template"],
     "holds a template run, not a standalone run"),
    (["template", "train", "--resume", "--out", "{base}/standalone"], "holds a standalone run, not a template run"),
    (["template", "train", "--resume", "--out", "{base}/empty"], "nothing to resume"),
    # the command's earlier name still works, with the same checks
    (["supernet", "train", "--resume", "--out", "{base}/standalone"], "holds a standalone run, not a template run"),
    (["supernet", "sample", "--run", "{base}/template", "-n", "0"], "must be a positive integer"),
    (["train", "--strategy", "st", "--resume", "--overwrite", "--out", "{base}/standalone"], "exclude each other"),
    (["template", "show", "--run", "{base}/nonexistent"], "does not exist: expected a template run folder"),
    (["template", "show", "--run", "{base}/standalone"], "is not a template run"),
    (["template", "sample", "--run", "{base}/standalone", "-n", "2"], "is not a template run"),
    (["template", "show", "--run", "{base}/tampered"], "corrupt or was changed"),
    (["template", "sample", "--run", "{base}/template", "-n", "0"], "must be a positive integer"),
    (["template", "sample", "--run", "{base}/template", "-n", "-5"], "must be a positive integer"),
    (["streams", "train", "--fusion", "late", "--out", "{base}/template"], "already holds a template run"),
    (["streams", "train", "--fusion", "late", "--dataset", "synthetic-mixed", "--root", "{base}/ucf",
      "--out", "{base}/new"], "--root applies to real datasets"),
]


@pytest.mark.parametrize("argv,needle", CASES, ids=[" ".join(c[0][:3]) + f" #{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_clear_line(argv, needle, runs, capsys):
    argv = [a.replace("{base}", str(runs)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("usage:") and not ln.startswith("  ")]
    assert code not in (0, None), err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert needle in lines[0], err
    assert not (runs / "new").exists(), "a refused command left a run folder behind"


def test_a_refused_command_leaves_the_runs_it_names_untouched(runs, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (runs / "standalone").iterdir()}
    assert main(["train", "--strategy", "st", "--out", str(runs / "standalone")]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in (runs / "standalone").iterdir()} == before


def test_amp_on_cpu_is_a_one_line_warning(runs, capsys):
    from workbench.cli import build_parser, validate_args

    args = build_parser().parse_args(["train", "--strategy", "st", "--amp", "--out", str(runs / "x")])
    with pytest.warns(UserWarning, match="--amp has no effect on --device cpu"):
        validate_args(args)


def test_a_full_disk_is_one_line(runs, capsys, monkeypatch):
    import workbench.engine.checkpoint as ck
    import workbench.runs as runs_module

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(ck, "write_temp", full)  # the checkpoint's two files
    monkeypatch.setattr(runs_module, "write_temp", full)  # every other file written atomically
    code = main(["train", "--strategy", "st", "--backbone", "resnet18", "--tiny", "--out", str(runs / "full"), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no space left on the device" in err[0], err
