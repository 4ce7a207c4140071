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


class _SlowClosingSink:
    """A sink whose close() takes until ``release`` is set (e.g. a video encoder flushing)."""

    needs_image = False

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.frames = 0
        self.closed = threading.Event()

    def open(self, run: object) -> None:
        pass

    def write(self, result: object) -> None:
        self.frames += 1

    def close(self) -> None:
        self.release.wait(10)
        self.closed.set()


def _interrupt_after(seconds: float) -> object:
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return old


def test_pipeline_wait_interrupted_by_a_signal_still_waits_for_the_sinks() -> None:
    # CPython 3.11: with Thread.join() in wait(), the interrupted join marked the sink thread as
    # stopped and stop() returned while the sink was still closing
    from fake_stages import FakeSource, make_parts, stip_threads

    from stip_rt.pipeline import Pipeline
    from stip_rt.run_load import load_run_config

    release = threading.Event()
    sink = _SlowClosingSink(release)
    p = Pipeline(load_run_config(source="fake.mp4"), [sink], parts=make_parts(FakeSource(5)))
    p.start()
    old = _interrupt_after(0.3)  # while the sink thread is closing the sink
    try:
        threading.Timer(0.8, release.set).start()
        with pytest.raises(KeyboardInterrupt):
            p.wait()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)  # type: ignore[arg-type]
    assert sink.closed.is_set() and sink.frames == 5  # stop() waited for the sink to close
    assert stip_threads() == []


def test_pipeline_iterator_interrupted_at_its_end_still_waits_for_on_end() -> None:
    from fake_stages import FakeSource, make_parts, stip_threads

    from stip_rt.pipeline import Pipeline
    from stip_rt.run_load import load_run_config

    release, ended = threading.Event(), threading.Event()

    def on_end(error: object) -> None:  # e.g. an application saving its own summary
        release.wait(10)
        ended.set()

    p = Pipeline(load_run_config(source="fake.mp4"), parts=make_parts(FakeSource(5)), on_end=on_end)
    got = []
    old = _interrupt_after(0.3)
    try:
        threading.Timer(0.8, release.set).start()
        with pytest.raises(KeyboardInterrupt):
            for r in p:
                got.append(r.index)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)  # type: ignore[arg-type]
    assert got == list(range(5)) and ended.is_set()
    assert stip_threads() == []
