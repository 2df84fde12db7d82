"""The ``xami`` command line: argparse subcommands, each a few lines over one library call.

One module per family of commands (`xami.cli.data`: simulate, preprocess, dataset;
`xami.cli.train`; `xami.cli.predict`: predict, flag-sources, evaluate, report, demo;
`xami.cli.weights`). An option left unset is not passed on, so the library's default applies
(as SAM's ``scripts/amg.py``). Exit codes: 0 success, 1 when some inputs failed (the rest done),
2 for usage errors (a bad option or config file) and for a feature whose optional extra is not
installed (``xami[train]``, ``xami[dask]``). Heavy imports happen inside the command functions
so that ``xami --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from xami import __version__
from xami.cli import data, predict, train, weights
from xami.cli.common import EXIT_FAILED, EXIT_USAGE
from xami.errors import MissingExtraError, UsageError, XamiError
from xami.extras import missing_extra


class XamiParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit 2), like xami's own."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with the problem on one line."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} "
                              f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``xami`` argument parser with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Each subcommand's parser sets ``func``, the function that runs it.

    Examples
    --------
    >>> build_parser().parse_args(["report", "run"]).max_images is None  # write_report's default
    True
    """
    parser = XamiParser(
        prog="xami", description="Find and mask instrumental artefacts in XMM-OM images.")
    parser.add_argument("--version", action="version", version=f"xami {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (data, train, predict, weights):
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xami`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0, 1 (some inputs failed) or 2 (usage error, missing extra).
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, MissingExtraError) as err:
        print(f"xami {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:  # a command module that imports an extra's package
        missing = missing_extra(err, "this command")
        if missing is None:
            raise
        print(f"xami {args.command}: error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    except XamiError as err:
        print(f"xami {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILED
