"""``xami weights``: the official MobileSAM and XAMI checkpoints, listed and fetched."""

from __future__ import annotations

import argparse
from pathlib import Path

from xami.cli.common import EXIT_OK, Subcommands, given


def add_commands(sub: Subcommands) -> None:
    """Add ``weights`` and its subcommands."""
    p = sub.add_parser("weights", help="official MobileSAM and XAMI checkpoints: list, fetch")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    wsub.add_parser("list", help="the known checkpoints").set_defaults(func=_cmd_weights_list)
    f = wsub.add_parser("fetch", help="download a checkpoint once, checked by its SHA-256")
    f.add_argument("name", help="a name from `xami weights list`, or any name with --url")
    f.add_argument("--url", default=None, help="download from here instead")
    f.add_argument("--sha256", default=None, help="expected SHA-256 (default: the known one)")
    f.add_argument("--out", type=Path, default=None, dest="folder",
                   help="folder (default: $XAMI_CACHE_DIR/weights, ~/.cache/xami/weights)")
    f.set_defaults(func=_cmd_weights_fetch)


def _cmd_weights_list(args: argparse.Namespace) -> int:
    """Print the known checkpoints."""
    from xami.models.fetch import SOURCES

    for source in SOURCES.values():
        print(f"{source.name:22} {source.what}\n{'':22} {source.url}\n{'':22} SHA-256: "
              f"{source.sha256 or 'not known'}")
    return EXIT_OK


def _cmd_weights_fetch(args: argparse.Namespace) -> int:
    """Download a checkpoint (once) and say whether its SHA-256 was checked."""
    from xami.models.fetch import SOURCES, fetch_weights

    path, digest = fetch_weights(args.name, **given(args, "url", "sha256", "folder"))
    known = args.sha256 or getattr(SOURCES.get(args.name), "sha256", None)
    note = "checked" if known else "not checked: none known, --sha256 checks it"
    print(f"xami weights: {path} (SHA-256 {digest}, {note})")
    return EXIT_OK
