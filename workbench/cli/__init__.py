"""The ``workbench`` command (also ``python -m workbench``): argument handling only.

One module per command group (``info``, ``template``, ``streams``, ``studies``, ``bench``,
``data``), the shared argument helpers and ``validate_args`` in ``common``. Light at import: no
torch until a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.cli.common import command_name, one_line, validate_args

__all__ = ["build_parser", "main", "validate_args"]


def build_parser() -> argparse.ArgumentParser:
    from workbench.cli import bench, data, info, streams, studies, template

    p = argparse.ArgumentParser(prog="workbench", description="Spatiotemporal fusion workbench for 3D CNNs.")
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info.add_commands(sub)
    template.add_commands(sub)
    streams.add_commands(sub)
    studies.add_commands(sub)
    data.add_commands(sub)
    bench.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import errno
    import os
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun only the first process reports
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    prog = f"workbench {command_name(args)}"

    def warn_line(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {one_line(message)}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = warn_line
    try:
        validate_args(args)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, IsADirectoryError,
            PermissionError) as e:
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and friends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
        if e.errno == errno.ENOSPC:
            again = " with --resume (its last complete checkpoint is kept)" if hasattr(args, "resume") else ""
            print(f"{prog}: error: no space left on the device{where}: free space and run the command "
                  f"again{again}", file=sys.stderr)
        else:
            print(f"{prog}: error: {e.strerror or one_line(e)}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous
        dist = sys.modules.get("torch.distributed")  # never imported just to be closed
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
