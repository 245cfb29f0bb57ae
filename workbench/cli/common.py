"""Argument helpers every command group shares, and ``validate_args``: every argument checked
before any work starts (one readable line naming the flag as typed)."""

from __future__ import annotations

import argparse
import json


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def nonnegative_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="a named model (see `workbench info`)")
    g.add_argument("--strategy", help="a preset name, a strategy code 'backbone:units' or a JSON file")
    p.add_argument("--backbone", default=None, help="backbone for a preset given with --strategy (default resnet18)")
    p.add_argument("--num-classes", type=positive_int, default=None, help="classifier size (model default if omitted)")
    p.add_argument("--tiny", action="store_true", help="the tiny configuration (tests, CPU demos)")


def build_from_args(args):
    from workbench.models import build_model, create_model

    kw = {}
    if args.num_classes:
        kw["num_classes"] = args.num_classes
    if args.model:
        return args.model, create_model(args.model, tiny=args.tiny, **kw)
    from workbench.strategy import parse_strategy

    strategy = parse_strategy(args.strategy, args.backbone)
    from workbench.models import clip_kwargs

    kw = {**clip_kwargs(strategy, args.frames, args.size), **kw}
    return strategy.label, build_model(strategy, tiny=args.tiny, **kw)


def on_meta():
    """Build models on the meta device for counting: no memory, no initialisation cost."""
    import torch

    return torch.device("meta")




def add_data_args(q: argparse.ArgumentParser, default: str = "synthetic-mixed") -> None:
    g = q.add_argument_group("data")
    g.add_argument("--dataset", default=default, help=f"dataset name (default {default}; see `workbench info`)")
    g.add_argument("--root", default=None, help="dataset root folder (real datasets)")
    g.add_argument("--frames", type=positive_int, default=None, help="clip length (synthetic default 8)")
    g.add_argument("--size", type=positive_int, default=None, help="frame size (synthetic default 32)")
    g.add_argument("--clips-per-class", type=positive_int, default=None, help="synthetic: training clips per class")
    g.add_argument("--data-seed", type=int, default=None, help="synthetic: generator seed")
    g.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="any other dataset argument (JSON value), repeatable")


def data_kw_from_args(args) -> dict:
    kw = {}
    if args.frames:
        kw["frames"] = args.frames
    if args.size:
        kw["size"] = args.size
    if args.clips_per_class:
        kw["train_per_class"] = args.clips_per_class
    if args.data_seed is not None:
        kw["seed"] = args.data_seed
    kw.update(parse_data_args(args.data_arg))
    return kw


def parse_data_args(items) -> dict:
    """``--data-arg KEY=VALUE`` items as a dict (values read as JSON where they parse)."""
    kw = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--data-arg expects KEY=VALUE, got {item!r}")
        try:
            kw[key] = json.loads(value)
        except json.JSONDecodeError:
            kw[key] = value
    return kw


def add_train_args(q: argparse.ArgumentParser, epochs: int, warmup: int | None, lr: float = 3e-3,
                    batch_size: int = 32, run_folder: bool = True) -> None:
    g = q.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=epochs)
    if warmup is not None:
        g.add_argument("--warmup", type=int, default=warmup, help="epochs without gates before gating")
    g.add_argument("--batch-size", type=positive_int, default=batch_size)
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default="adamw")
    g.add_argument("--lr", type=float, default=lr)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--schedule", choices=("cosine", "step", "constant"), default="cosine")
    g.add_argument("--milestones", type=int, nargs="*", default=[])
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    g.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    if run_folder:  # studies cache and resume each of their runs by themselves
        g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        g.add_argument("--overwrite", action="store_true", help="replace the run that --out holds (its files only)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


#: every training flag (its argparse dest) and the :class:`~workbench.engine.config.TrainConfig`
#: field it sets: one table, so that a flag and its field cannot drift apart (tests/unit/test_cli.py)
TRAIN_FIELDS = {
    "epochs": "epochs", "warmup": "warmup_epochs", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "lr",
    "weight_decay": "weight_decay", "schedule": "schedule", "milestones": "milestones", "seed": "seed",
    "workers": "num_workers", "device": "device", "amp": "amp", "no_progress": "progress", "gate_lr": "gate_lr",
    "tau_start": "tau_start", "sandwich": "sandwich", "warmup_uniform": "warmup_uniform",
}
#: TrainConfig fields no command sets (their defaults serve every command)
TRAIN_FIELDS_NOT_ON_CLI = ("momentum", "gamma", "n_train", "grad_clip")
#: the template's flags and the :class:`~workbench.template.network.TemplateConfig` fields they set
TEMPLATE_FIELDS = {
    "backbone": "backbone", "unit_set": "unit_set", "growth": "growth", "bn_size": "bn_size",
    "base_width": "base_width", "temporal_reduction": "temporal_reduction", "scaffold": "scaffold", "tau": "tau",
    "p_init": "p_init", "k": "length_scale", "regularizer": "regularizer", "prior": "prior",
}
#: TemplateConfig fields no flag sets (the class count comes from the dataset)
TEMPLATE_FIELDS_NOT_ON_CLI = ("num_classes", "stem_width", "dropout")


def train_config_from_args(args, gate_lr: float | None = None):
    """The :class:`~workbench.engine.config.TrainConfig` the parsed flags describe (:data:`TRAIN_FIELDS`);
    flags a command does not have keep the field's default."""
    from workbench.engine.config import TrainConfig

    kw = {}
    for dest, name in TRAIN_FIELDS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "no_progress":
            value = not value
        elif dest == "milestones":
            value = tuple(value)
        kw[name] = value
    if gate_lr is not None:
        kw["gate_lr"] = gate_lr
    return TrainConfig(**kw)


def template_fields_from_args(args) -> dict:
    """The :class:`~workbench.template.network.TemplateConfig` fields the parsed flags set (:data:`TEMPLATE_FIELDS`)."""
    return {name: getattr(args, dest) for dest, name in TEMPLATE_FIELDS.items() if getattr(args, dest, None) is not None}




#: commands' earlier names that keep working: ``workbench supernet ...`` is ``workbench template ...``
ALIASES = {"supernet": "template"}

SPLITS_READ = {"train": ("train", "val", "test"), "streams train": ("train", "val", "test"),
                "template train": ("train", "val")}


def command_name(args) -> str:
    sub = next((v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)), None)
    command = ALIASES.get(args.command, args.command)
    return " ".join(x for x in (command, sub) if x)


def validate_args(args) -> None:
    """Every argument checked before any work starts: one ``ValueError`` line that names the flag
    as typed (conflicting or meaningless flags are errors; harmless ones a one-line warning)."""
    import warnings

    name = command_name(args)
    if getattr(args, "dataset", None) is not None and hasattr(args, "data_arg") and name != "data export":
        from workbench.data import check_data_args

        check_data_args(args.dataset, args.root, data_kw_from_args(args), splits=SPLITS_READ.get(name, ("train", "val")))
    if hasattr(args, "schedule"):
        if args.milestones and args.schedule != "step":
            raise ValueError(f"--milestones apply to --schedule step, not --schedule {args.schedule}")
        device = str(args.device)
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
                raise ValueError(f"--device {device}: {why} (torch {torch.__version__}); use --device cpu "
                                 "or install a CUDA build of torch (README)")
        elif device != "cpu" and not device.startswith(("mps", "xpu")):
            raise ValueError(f"--device {device!r} is not a device; expected cpu, cuda, cuda:N")
        if args.amp and not device.startswith("cuda"):
            warnings.warn(f"--amp has no effect on --device {device} (mixed precision runs on CUDA); ignored",
                          UserWarning, stacklevel=2)
    if name == "train":
        if args.inherit_from is not None and (args.backbone is not None or args.tiny):
            given = "--backbone" if args.backbone is not None else "--tiny"
            raise ValueError(f"{given} does not apply with --inherit-from: the template decides the architecture")
        if args.backbone is not None and ":" in args.strategy and not args.strategy.endswith(".json"):
            coded = args.strategy.split(":", 1)[0].split("[", 1)[0]
            if coded != args.backbone:
                raise ValueError(f"--backbone {args.backbone} contradicts the strategy code {args.strategy!r} "
                                 f"(backbone {coded}); drop --backbone")
    out = getattr(args, "out", None)
    if out is not None and hasattr(args, "resume"):
        from workbench.runs import Run

        kind = {"train": "standalone", "template train": "supernet", "streams train": "streams"}.get(name)
        Run(out).precheck(kind, resume=args.resume, overwrite=args.overwrite)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


