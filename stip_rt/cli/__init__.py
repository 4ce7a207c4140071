"""The ``stip-rt`` command: argparse subcommands, each a thin call into the library.

Each verb lives in its own module of this package and exposes ``add_parser(subparsers)``
(which sets ``func``); :func:`main` parses, calls ``func(args)`` and turns a
:class:`~stip_rt.errors.StipError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import StipError
from ..weights import progress_reporter
from .weights import download_bar

# verb → module in this package that defines add_parser(subparsers)
VERBS: dict[str, str] = {
    "info": "info",
    "track": "track",
    "config": "config",
    "batch": "batch",
    "predict": "predict",
    "eval": "evaluate",
    "eval-track": "eval_track",
    "export": "export",
    "bench": "bench",
    "weights": "weights",
    "train": "train",
    "analyze": "analyze",
    "cache": "cache",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stip-rt",
        description="Real-time multi-person pose tracking with STIP.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in dict.fromkeys(VERBS.values()):
        mod = importlib.import_module(f"{__name__}.{module}")
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stip-rt``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        with progress_reporter(download_bar):  # downloads anywhere below draw a bar on a terminal
            return int(args.func(args) or 0)
    except StipError as e:
        print(f"stip-rt {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stip-rt {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
