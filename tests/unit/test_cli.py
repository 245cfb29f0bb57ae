import json
import subprocess
import sys

import pytest

from workbench.cli import build_parser, main


def _subcommands(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            yield from action.choices.items()


def test_help_on_every_subcommand(capsys):
    seen = []

    def walk(parser, path):
        for name, sub in _subcommands(parser):
            seen.append(path + [name])
            walk(sub, path + [name])

    walk(build_parser(), [])
    assert ["cost"] in seen and ["info"] in seen and ["data"] in seen and ["demo"] in seen
    for path in seen:
        with pytest.raises(SystemExit) as e:
            main(path + ["--help"])
        assert e.value.code == 0
        assert "usage: workbench" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "workbench" in r.stdout


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "S+ST" in info["units"] and "densenet121" in info["backbones"]
    assert "r2plus1d_18" in info["models"] and "opt" in info["presets"] and "mc5" in info["presets"]
    assert "synthetic-motion" in info["datasets"] and "ucf101" in info["datasets"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["cost", "--model", "nope"], "unknown model 'nope'"),
        (["cost", "--strategy", "mc9"], "unknown preset 'mc9'"),
        (["cost", "--strategy", "p3d", "--backbone", "densenet121"], "not meaningful on backbone"),
        (["cost", "--strategy", "st", "--backbone", "resnet19"], "unknown backbone 'resnet19'"),
        (["cost", "--strategy", "resnet18:333"], "needs 8 units"),
        (["cost", "--strategy", "resnet18:3333333q"], "unknown unit code 'q'"),
        (["strategy", "bogus.json"], "does not exist"),
    ],
)
def test_bad_input_one_readable_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cost_strategy_json_and_layers(capsys):
    assert main(["cost", "--strategy", "r2plus1d", "--tiny", "--frames", "8", "--size", "32", "--json", "--layers"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert isinstance(d["params"], int) and isinstance(d["gmacs"], float)
    assert len(d["layers"]) == 9 and d["layers"][0]["unit"] == "ST(2+1)D"


def test_strategy_command(capsys, tmp_path):
    assert main(["strategy", "opt", "--backbone", "densenet-tiny", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    f = tmp_path / "s.json"
    f.write_text(json.dumps(d))
    assert main(["strategy", str(f)]) == 0
    assert "layer   7" in capsys.readouterr().out
    assert main(["strategy", "--list", "--backbone", "c3d"]) == 0
    listed = capsys.readouterr().out.split()
    assert "mc3" in listed and "ir-csn" not in listed


def test_flags_and_config_fields_cannot_drift():
    """Every flag of the training and template groups sets the field the table names, and every
    field of the two configurations is either a flag or listed as not on the command line."""
    from dataclasses import fields

    from workbench.cli.common import (
        TEMPLATE_FIELDS,
        TEMPLATE_FIELDS_NOT_ON_CLI,
        TRAIN_FIELDS,
        TRAIN_FIELDS_NOT_ON_CLI,
        template_fields_from_args,
        train_config_from_args,
    )
    from workbench.engine.config import TrainConfig
    from workbench.template.network import TemplateConfig

    train_names = {f.name for f in fields(TrainConfig)}
    assert set(TRAIN_FIELDS.values()) <= train_names
    assert train_names == set(TRAIN_FIELDS.values()) | set(TRAIN_FIELDS_NOT_ON_CLI)
    template_names = {f.name for f in fields(TemplateConfig)}
    assert set(TEMPLATE_FIELDS.values()) <= template_names
    assert template_names == set(TEMPLATE_FIELDS.values()) | set(TEMPLATE_FIELDS_NOT_ON_CLI)

    argv = ["template", "train", "--out", "x", "--epochs", "7", "--warmup", "3", "--batch-size", "5",
            "--optimizer", "sgd", "--lr", "0.25", "--weight-decay", "0.5", "--schedule", "step", "--milestones", "2", "4",
            "--seed", "9", "--workers", "1", "--device", "cpu", "--amp", "--no-progress", "--gate-lr", "0.125",
            "--tau-start", "1.5", "--sandwich", "0.25",
            "--backbone", "densenet-small", "--unit-set", "with-t", "--growth", "6", "--bn-size", "3",
            "--base-width", "12", "--temporal-reduction", "8", "--scaffold", "paper", "--tau", "0.3", "--p-init", "0.2",
            "--k", "2.5", "--regularizer", "code", "--prior", "none"]
    args = build_parser().parse_args(argv)
    cfg = train_config_from_args(args)
    assert (cfg.epochs, cfg.warmup_epochs, cfg.batch_size, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.schedule,
            cfg.milestones, cfg.seed, cfg.num_workers, cfg.device, cfg.amp, cfg.progress, cfg.gate_lr, cfg.tau_start,
            cfg.sandwich) == (7, 3, 5, "sgd", 0.25, 0.5, "step", (2, 4), 9, 1, "cpu", True, False, 0.125, 1.5, 0.25)
    assert template_fields_from_args(args) == {
        "backbone": "densenet-small", "unit_set": "with-t", "growth": 6, "bn_size": 3, "base_width": 12,
        "temporal_reduction": 8, "scaffold": "paper", "tau": 0.3, "p_init": 0.2, "length_scale": 2.5,
        "regularizer": "code", "prior": "none"}
    # a flag every training command has reaches its field in each of them
    for cmd in (["train", "--strategy", "st", "--out", "x"], ["streams", "train", "--out", "x"]):
        assert train_config_from_args(build_parser().parse_args([*cmd, "--epochs", "4", "--workers", "2"])).num_workers == 2
