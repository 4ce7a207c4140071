"""SIGTERM / SIGHUP close the viewer as the user would: the run stops, the settings are saved, and the
exit code is 128 + the signal (a real signal to a real ``stip-viewer`` child process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _wait_until_reading(child: subprocess.Popen, path: Path, timeout: float = 90.0) -> None:
    """Until the child has the video open (its run started; on a loaded machine start-up takes a while)."""
    fds = Path(f"/proc/{child.pid}/fd")
    end = time.monotonic() + timeout
    while time.monotonic() < end and child.poll() is None:
        try:
            if any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir()):
                time.sleep(1.0)  # a few frames in
                return
        except OSError:  # a descriptor closed while listing
            pass
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_closes_the_window_and_exits_with_128_plus_signal(
    tmp_path: Path, data_dir: Path, sig: signal.Signals
) -> None:
    if signal.getsignal(sig) is signal.SIG_IGN:  # inherited by the child, which keeps it ignored (as under nohup)
        pytest.skip(f"{sig.name} is ignored in this process (run under nohup?)")
    config = tmp_path / "config"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(config),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    video = data_dir / "opencv_samples" / "vtest.avi"
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    argv = [sys.executable, "-m", "apps.viewer.main", str(video), "--pose", "none", "-D", str(gt)]
    child = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_reading(child, video)  # the window is up and the run is going
        assert child.poll() is None, child.communicate()
        child.send_signal(sig)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + sig, err
    assert f"interrupted ({sig.name})" in err
    assert (config / "stip-rt" / "stip-viewer.conf").is_file()  # closeEvent ran: the settings were saved


def test_a_signal_received_during_start_up_closes_the_window_once_the_loop_runs(qtbot) -> None:
    """``app.quit()`` before ``app.exec()`` does nothing: the close must be queued for the loop.

    A nested QEventLoop stands in for the application's loop (quitting the test's QApplication
    would end the loops of the tests after this one)."""
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QWidget

    from apps.viewer.main import _close_on_stop_signals

    loop = QEventLoop()
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _close_on_stop_signals([signal.SIGTERM], window, loop, QTimer)  # came while the window was built
        assert window.isVisible()  # nothing happens before the loop runs
        guard: list[bool] = []
        QTimer.singleShot(10_000, lambda: (guard.append(True), loop.quit()))  # fails the test instead of hanging
        loop.exec()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert not window.isVisible()
    assert not guard  # the loop ended by the queued close, not by the guard
