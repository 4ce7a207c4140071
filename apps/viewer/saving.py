"""Keeping what was seen: save the frame on screen, export the run's tracks, record from now on.

The window's File ▸ Save frame / Export run and Record menu call these with the window; errors go to
its status line (they never close it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
from PyQt6.QtWidgets import QFileDialog

from stip_rt.errors import StipError
from stip_rt.io.sinks import open_sink

from .dialogs import VIDEO_FILTER
from .history import SessionHistory

if TYPE_CHECKING:
    from .window import MainWindow

TRACKS_FILTER = "Tracks (*.jsonl *.csv *.json *.txt);;All files (*)"
IMAGE_FILTER = "PNG (*.png);;JPEG (*.jpg)"


def export_tracks(history: SessionHistory, path: Path) -> int:
    """Write every frame in ``history`` to the tracks file ``path`` (format from the suffix); returns the frame count.

    Raises:
        StipError: nothing seen yet, a suffix that needs pictures (video), or a writer's error.
        OSError: the file cannot be written.
    """
    if history.run is None:
        raise StipError("nothing seen yet")
    sink = open_sink(path)
    if sink.needs_image:
        raise StipError(f"{path}: export writes tracks files (.jsonl, .csv, .json, .txt); "
                        "Record ▸ Start recording writes the annotated video")  # fmt: skip
    sink.open(history.run)
    try:
        for result in history.results():
            sink.write(result)
    finally:
        sink.close()
    return len(history.frame_indices)


def recording_paths(video: Path, tracks: list[Path] | None = None) -> list[Path]:
    """The files a recording writes: ``video`` and ``tracks`` (default: ``<video>.jsonl`` and ``<video>.csv``),
    each once (a name given twice, e.g. a tracks file typed as the video, is one file)."""
    tracks = tracks if tracks is not None else [video.with_suffix(".jsonl"), video.with_suffix(".csv")]
    return list(dict.fromkeys([video, *tracks]))


def save_frame_dialog(window: MainWindow) -> None:
    if window.last_image is None:
        window.show_error("save frame: no frame shown yet")
        return
    name = f"frame_{max(window.last_index, 0):06d}.png"
    path, _ = QFileDialog.getSaveFileName(window, "Save frame", name, IMAGE_FILTER)
    if path:
        save_frame(window, Path(path))


def save_frame(window: MainWindow, path: Path) -> bool:
    """Write the frame on screen, with its overlays, as an image (format from the suffix; none: PNG)."""
    if window.last_image is None:
        window.show_error("save frame: no frame shown yet")
        return False
    if not path.suffix:
        path = path.with_suffix(".png")
    try:
        written = cv2.imwrite(str(path), window.last_image)
    except cv2.error:  # OpenCV raises for a suffix it has no writer for
        window.show_error(f"save frame: {path}: not an image format OpenCV can write (use .png or .jpg)")
        return False
    if not written:
        window.show_error(f"save frame: cannot write {path}")
        return False
    window.status_line.show(f"Saved frame {window.last_index} to {path}")
    return True


def export_run_dialog(window: MainWindow) -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Export the run", "run.jsonl", TRACKS_FILTER)
    if path:
        export_run(window, Path(path))


def export_run(window: MainWindow, path: Path) -> bool:
    """Write every frame seen so far (a frame seen again after a seek: its latest pass) to a tracks file.

    The format follows the suffix (``.jsonl``, ``.csv``, ``.json`` COCO, MOT ``.txt``...); video
    needs the pictures, which are not kept: use Record for that.
    """
    try:
        frames = export_tracks(window.history, path)
    except (StipError, OSError) as e:
        window.show_error(f"export: {e}")
        return False
    window.status_line.show(f"Exported {frames} frames to {path}")
    return True


def toggle_recording(window: MainWindow) -> None:
    """Stop the recording, or ask where to record and start."""
    if window.session is None or not window.running:
        window.show_error("start a run before recording")
        return
    if window.session.sink.recording:
        window.session.sink.stop_recording()
        window.status_line.show("Recording saved")
    else:
        path, _ = QFileDialog.getSaveFileName(window, "Record annotated video", "session.mp4", VIDEO_FILTER)
        if path:
            start_recording(window, Path(path))
    window.update_controls()


def start_recording(window: MainWindow, video: Path, tracks: list[Path] | None = None) -> None:
    """Record the annotated video and the tracks (default: ``<video>.jsonl`` and ``<video>.csv``) from now on."""
    if window.session is None:
        raise StipError("nothing is running to record")
    try:
        window.session.sink.start_recording(recording_paths(video, tracks))
    except StipError as e:
        window.show_error(str(e))
        return
    window.status_line.show(f"Recording to {video}")
    window.status_line.rec_label.setToolTip(str(video))
    window.update_controls()
