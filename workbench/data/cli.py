"""`workbench data ...` subcommands."""

from __future__ import annotations

import argparse


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets: export the synthetic benchmark to real formats, check a dataset")
    p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
