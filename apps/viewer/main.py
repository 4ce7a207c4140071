"""``stip-viewer [SOURCE] [model/detector flags as stip-rt track] [--screenshot OUT.png --quit-after N]``.

The flags have the names and short forms of ``stip-rt track``; what they mean comes from the same
mapping (:func:`apps.viewer.options.run_config` → :func:`stip_rt.run_load.load_run_config`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stip-viewer", description="Live pose tracking viewer for stip-rt.")
    p.add_argument("source", nargs="?", help="video file, camera index or device, stream URL, image folder")
    p.add_argument("-m", "--model", "--pose", dest="model", help="pose model name or YAML, or 'none' for boxes only")
    p.add_argument("-w", "--weights", help="pose checkpoint, or 'random'")
    p.add_argument("-d", "--detector", help="detector name (rtmdet-tiny, rtmdet-s, rtmdet-m, rtmdet-l)")
    p.add_argument("-D", "--detections", help="detections file (COCO results JSON or MOT det.txt), no detector")
    p.add_argument("-b", "--backend", help="auto, torch, cuda-fast, onnxruntime, tensorrt")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", help="auto, fp32, fp16, bf16")
    p.add_argument("-t", "--tracker", help="tracker config YAML")
    p.add_argument("-n", "--det-every", type=int, help="run the detector every N frames")
    p.add_argument("-N", "--max-frames", type=int, help="stop after N frames")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None, help="keypoint smoothing")
    p.add_argument("--kpt-threshold", type=float, help="draw keypoints with at least this score (default 0.3)")
    p.add_argument("--screenshot", type=Path, help="save a picture of the window (with --quit-after)")
    p.add_argument("--quit-after", type=int, metavar="N", help="render N frames, (save the screenshot,) exit")
    p.add_argument("--fresh", action="store_true", help="ignore remembered settings for this run")
    return p


INSTALL_HINT = "stip-viewer needs the viewer extra (PyQt6, pyqtgraph): pip install 'stip-rt[viewer]'"


def _cli_changes(args: argparse.Namespace) -> dict:
    """The options given on the command line (they win over the remembered ones, and are not remembered)."""
    return {k: v for k, v in {
        "model": args.model, "weights": args.weights, "detector": args.detector, "detections": args.detections,
        "backend": args.backend, "device": args.device, "precision": args.precision, "tracker": args.tracker,
        "det_every": args.det_every, "smoothing": args.smooth, "kpt_threshold": args.kpt_threshold,
    }.items() if v is not None}  # fmt: skip


def _missing_qt() -> str | None:
    """The pip command to print when the viewer's packages are missing (None: all there)."""
    import importlib.util

    for module in ("PyQt6", "pyqtgraph"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{INSTALL_HINT} ({module} is not installed)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window; with ``--quit-after N`` run headless-friendly and exit 0 after N frames."""
    args = build_parser().parse_args(argv)
    stopped_by = _record_stop_signals()  # from here on: a SIGTERM/SIGHUP during start-up is not lost
    hint = _missing_qt()
    if hint:
        print(f"stip-viewer: error: {hint}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.screenshot and not args.quit_after:
        build_parser().error("--screenshot needs --quit-after N")
    if args.quit_after and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    try:  # Qt is imported here, so that a missing extra is one line, not a traceback
        from PyQt6.QtCore import QSettings, QTimer
        from PyQt6.QtWidgets import QApplication
    except ImportError as e:
        print(f"stip-viewer: error: {INSTALL_HINT} ({e})", file=sys.stderr)
        return 2

    from stip_rt.malloc import start_trimming

    from .options import ViewerOptions, absolute_paths, remembered_options
    from .window import MainWindow

    start_trimming()  # a long viewer session: see stip_rt/malloc.py
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings("stip-rt", "stip-viewer")
    base, remembered = (ViewerOptions(), set()) if args.fresh else remembered_options(settings)
    cli = _cli_changes(args)
    options = absolute_paths(dataclasses.replace(base, **cli))
    # with --fresh nothing of this launch is remembered unless the user changes it in the window
    given = {f.name for f in dataclasses.fields(ViewerOptions)} if args.fresh else set(cli)
    window = MainWindow(options, settings, remembered=remembered - set(cli), cli=given)
    window.show()
    status = {"code": 0}

    if args.quit_after:
        def finish(message: str = "") -> None:
            if args.screenshot:
                app.processEvents()
                if not window.grab().save(str(args.screenshot)):
                    print(f"stip-viewer: error: cannot write screenshot {args.screenshot}", file=sys.stderr)
                    status["code"] = 2
            if message:
                print(f"stip-viewer: error: {message}", file=sys.stderr)
                status["code"] = 2
            window.close()
            app.quit()

        def on_frame(_index: int) -> None:
            if window.frames_shown >= args.quit_after:
                window.frame_shown.disconnect(on_frame)
                QTimer.singleShot(300, finish)  # let the panels refresh once

        window.frame_shown.connect(on_frame)
        window.run_ended.connect(lambda msg: QTimer.singleShot(300, lambda: finish(msg)))
    if args.source:
        QTimer.singleShot(0, lambda: window.open_source(args.source, max_frames=args.max_frames))
    _close_on_stop_signals(stopped_by, window, app, QTimer)
    # Python runs signal handlers only between bytecodes; a light timer lets them in while Qt waits
    pulse = QTimer()
    pulse.setInterval(200)
    pulse.timeout.connect(lambda: None)
    pulse.start()
    app.exec()
    if stopped_by:
        name = signal.Signals(stopped_by[0]).name
        print(f"stip-viewer: interrupted ({name}); the run was stopped and any recording finished", file=sys.stderr)
        return 128 + stopped_by[0]
    return status["code"]


def _record_stop_signals() -> list[int]:
    """Handle SIGTERM and SIGHUP from the start: the first one's number goes into the returned list
    (the window, once it exists, closes on it: :func:`_close_on_stop_signals`). A signal ignored at
    start (``nohup``) stays ignored."""
    got: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if not got:
            got.append(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, on_signal)
    return got


def _close_on_stop_signals(got: list[int], window: Any, app: Any, timer: Any) -> None:
    """SIGTERM and SIGHUP close the window as the user would (the run stops, recordings are finished,
    settings saved). The close is queued for the event loop: ``app.quit()`` before ``app.exec()`` has
    started does nothing, so a signal that came during start-up (already in ``got``) or before the
    loop runs would otherwise leave the viewer open for good."""

    def close() -> None:
        window.close()
        app.quit()

    def on_signal(signum: int, _frame: object) -> None:
        if not got:
            got.append(signum)
            timer.singleShot(0, close)

    if got:
        timer.singleShot(0, close)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, on_signal)


if __name__ == "__main__":
    sys.exit(main())
