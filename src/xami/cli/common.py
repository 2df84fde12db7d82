"""What the ``xami`` commands share: exit codes, option types, passing on the options given."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""Success; some inputs failed (the rest done); a usage error or a missing optional extra."""

Subcommands = argparse._SubParsersAction
"""What ``add_subparsers`` returns, where each command module adds its commands."""


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` that were given (not None), as keywords for a library call.

    Options default to None so that the library's own defaults apply to those not given.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.
    *names : str
        Option destinations, named as the keywords of the library call.

    Returns
    -------
    dict
        ``{name: value}`` of the options given.

    Examples
    --------
    >>> given(argparse.Namespace(seed=3, n=None), "seed", "n")
    {'seed': 3}
    """
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def count(text: str) -> int:
    """An ``int >= 0`` option value (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value
