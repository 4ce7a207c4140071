"""The ``stip-rt`` command: argparse subcommands, each a thin call into the library.

Each verb lives in its own module of this package and exposes ``add_parser(subparsers)``
(which sets ``func``); :func:`main` parses, calls ``func(args)`` and turns a
:class:`~stip_rt.errors.StipError` into one line on stderr and exit code 2.

SIGTERM (``timeout``, ``docker stop``, systemd, Slurm) and SIGHUP (closed terminal) are handled like
Ctrl-C: they raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so the verb
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
from types import FrameType

from ..errors import StipError

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
}


class Interrupted(KeyboardInterrupt):
    """A stop signal other than Ctrl-C (SIGTERM, SIGHUP), raised like Ctrl-C's ``KeyboardInterrupt``.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Signals that stop a run as Ctrl-C does (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one while stopping: its default effect
    raise Interrupted(signum)


def install_stop_signals() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread (no-op elsewhere)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup: keep ignoring SIGHUP
            signal.signal(sig, _raise_interrupted)


def interrupted_exit(verb: str, e: KeyboardInterrupt) -> int:
    """Print the one line of an interrupted verb; the exit code 128 + signal number."""
    signum = getattr(e, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    print(f"stip-rt {verb}: interrupted ({name}); the outputs hold every frame finished before it", file=sys.stderr)
    return 128 + int(signum)


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
    try:
        return int(args.func(args) or 0)
    except StipError as e:
        print(f"stip-rt {args.verb}: error: {_message(args.verb, e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return interrupted_exit(args.verb, e)


if __name__ == "__main__":
    sys.exit(main())
