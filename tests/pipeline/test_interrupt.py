"""SIGTERM/SIGHUP handling of the CLI and the wait for threads that finish outputs after an interrupt."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from stip_rt.interrupt import Interrupted, install_stop_signals, signal_of, wait_for_threads

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def test_sigterm_raises_interrupted_then_takes_its_default() -> None:
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        install_stop_signals()
        with pytest.raises(Interrupted) as err:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode
        assert isinstance(err.value, KeyboardInterrupt) and signal_of(err.value) == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM ends the process
        assert signal_of(KeyboardInterrupt()) == signal.SIGINT
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_nohup_keeps_ignoring_sighup() -> None:
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        install_stop_signals()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_wait_for_threads_outlasts_an_interrupted_join() -> None:
    """CPython 3.11: a join() interrupted by a signal handler's exception can mark the running thread as
    stopped (join() and interpreter exit no longer wait for it); wait_for_threads still does."""
    release = threading.Event()
    finished = threading.Event()

    def closing_outputs() -> None:
        release.wait(10)
        finished.set()

    worker = threading.Thread(target=closing_outputs, name="stip-rt-sink")
    worker.start()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            worker.join()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    threading.Timer(0.3, release.set).start()
    assert wait_for_threads(timeout=30, prefix="stip-rt-")
    assert finished.is_set()
    assert worker not in threading.enumerate()
