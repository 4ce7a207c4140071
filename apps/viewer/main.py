"""``stip-viewer [SOURCE] [model/detector flags as stip-rt track] [--screenshot OUT.png --quit-after N]``.

The flags have the names and short forms of ``stip-rt track``; what they mean comes from the same
mapping (:func:`apps.viewer.options.run_config` → :func:`stip_rt.run_load.load_run_config`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


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


def _options_from_args(args: argparse.Namespace, base):
    changes = {k: v for k, v in {
        "model": args.model, "weights": args.weights, "detector": args.detector, "detections": args.detections,
        "backend": args.backend, "device": args.device, "precision": args.precision, "tracker": args.tracker,
        "det_every": args.det_every, "smoothing": args.smooth, "kpt_threshold": args.kpt_threshold,
    }.items() if v is not None}
    return dataclasses.replace(base, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window; with ``--quit-after N`` run headless-friendly and exit 0 after N frames."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.screenshot and not args.quit_after:
        build_parser().error("--screenshot needs --quit-after N")
    if args.quit_after and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PyQt6.QtCore import QSettings, QTimer
    from PyQt6.QtWidgets import QApplication

    from .options import ViewerOptions, load_options
    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings("stip-rt", "stip-viewer")
    base = ViewerOptions() if args.fresh else load_options(settings)
    window = MainWindow(_options_from_args(args, base), settings)
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
    app.exec()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
