"""Stopping a run from outside: SIGTERM/SIGHUP as Ctrl-C, and letting the threads finish their outputs.

The CLI (:mod:`stip_rt.cli`) installs :func:`install_stop_signals`: SIGTERM (``timeout``, ``docker
stop``, systemd, Slurm) and SIGHUP (a closed terminal) then raise :class:`Interrupted`, a
``KeyboardInterrupt``, in the main thread, exactly where Ctrl-C would, so every code path that
stops cleanly on Ctrl-C does so on these signals too.

:func:`wait_for_threads` works around a CPython 3.11 flaw: a ``Thread.join()`` interrupted by a
signal handler's exception can mark the still-running thread as stopped, after which neither
``join()`` nor interpreter exit waits for it — the process would end while the sink thread is
still finishing the outputs (the annotated video unplayable). ``threading.enumerate()`` still
lists such a thread until it really ends.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

#: Signals that stop a run as Ctrl-C does (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A stop signal other than Ctrl-C (SIGTERM, SIGHUP), raised like Ctrl-C's ``KeyboardInterrupt``.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one while stopping: its default effect
    raise Interrupted(signum)


def install_stop_signals() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread (no-op in other threads).

    A signal that is ignored (SIGHUP under ``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _raise_interrupted)


def signal_of(e: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: its ``signum``, else SIGINT (Ctrl-C)."""
    return int(getattr(e, "signum", signal.SIGINT))


def wait_for_threads(timeout: float = 60.0, prefix: str = "") -> bool:
    """Wait until every other non-daemon thread (named ``prefix...``) has really ended; True if they have.

    Call it after an interrupt, before the process exits, so that threads still closing outputs
    finish (see the module docstring for why ``join()`` is not enough).
    """
    end = time.monotonic() + timeout
    me = threading.current_thread()
    while True:
        alive = [t for t in threading.enumerate() if t is not me and not t.daemon and t.name.startswith(prefix)]
        if not alive:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
