"""The ``stip-rt`` command: argparse subcommands, each a thin call into the library.

Each verb lives in its own module of this package and exposes ``add_parser(subparsers)``
(which sets ``func``); :func:`main` parses, calls ``func(args)`` and turns a
:class:`~stip_rt.errors.StipError` into one line on stderr and exit code 2.

SIGTERM (``timeout``, ``docker stop``, systemd, Slurm) and SIGHUP (closed terminal) are handled like
Ctrl-C: they raise :class:`~stip_rt.interrupt.Interrupted` (a ``KeyboardInterrupt``) in the main thread, so the verb
stops reading, finishes the frame in flight and closes every output, then ``stip-rt`` prints one
line and exits with 128 + the signal number (SIGINT 130, SIGTERM 143, SIGHUP 129). A second
signal of the same kind while stopping takes its default effect (SIGTERM/SIGHUP end the process).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from ..errors import StipError
from ..interrupt import install_stop_signals, signal_of, wait_for_threads
from ..malloc import start_trimming
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


def interrupted_exit(verb: str, e: KeyboardInterrupt) -> int:
    """Let the threads finish the outputs, print the one line of an interrupted verb; 128 + signal number."""
    signum = signal_of(e)
    complete = wait_for_threads()
    name = signal.Signals(signum).name
    what = "the outputs hold every frame finished before it" if complete else "some outputs may be incomplete"
    print(f"stip-rt {verb}: interrupted ({name}); {what}", file=sys.stderr)
    return 128 + signum


def _message(verb: str, e: StipError) -> str:
    """The error text without a prefix the CLI adds itself (``stip-rt track: `` or ``track: ``)."""
    text = str(e)
    for prefix in (f"stip-rt {verb}: ", f"{verb}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


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
    install_stop_signals()
    start_trimming()  # long runs: freed per-batch buffers go back to the system (stip_rt/malloc.py)
    try:
        with progress_reporter(download_bar):  # downloads anywhere below draw a bar on a terminal
            return int(args.func(args) or 0)
    except StipError as e:
        print(f"stip-rt {args.verb}: error: {_message(args.verb, e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return interrupted_exit(args.verb, e)


if __name__ == "__main__":
    sys.exit(main())
