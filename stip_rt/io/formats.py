"""The one table of output formats: kind → file name suffixes → sink class.

Used by :func:`stip_rt.io.sinks.open_sink` / :func:`~stip_rt.io.sinks.sink_kind` (``stip-rt track --out``,
the viewer) and by ``stip-rt batch`` (``stip_rt.batch.FORMATS``, the file names it gives each video's
outputs). The sink classes are named, not imported, so that reading the table loads no writer (PyAV,
OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One output format.

    Attributes:
        kind: its name (``open_sink(kind=...)``, ``batch --format``).
        suffixes: file name endings that select it in :func:`~stip_rt.io.sinks.sink_kind`, lower case;
            empty for a folder format.
        name_suffix: what is appended to a stem to name an output of this kind (``batch``).
        sink: ``module:Class`` of its writer inside ``stip_rt.io``.
        description: what it writes (messages, docs).
        needs_keypoints: it holds keypoints only, so a box-only run (``pose.model: none``) cannot
            write it.
    """

    kind: str
    suffixes: tuple[str, ...]
    name_suffix: str
    sink: str
    description: str
    needs_keypoints: bool = False

    @property
    def is_folder(self) -> bool:
        """True for a format written as a folder of files (OpenPose)."""
        return not self.suffixes


_TABLE = (
    OutputFormat("json", (".json",), ".json", "json_sink:JsonSink", "stip-rt.tracks JSON document"),
    OutputFormat("jsonl", (".jsonl",), ".jsonl", "json_sink:JsonlSink", "stip-rt.tracks JSON Lines"),
    OutputFormat("csv", (".csv",), ".csv", "csv_sink:CsvSink", "one row per person per frame"),
    OutputFormat("coco", (".coco.json",), ".coco.json", "coco_sink:CocoSink", "COCO keypoint results", True),
    OutputFormat("mot", (".txt",), ".txt", "mot:MotSink", "MOT challenge text"),
    OutputFormat(
        "openpose", (), "_openpose", "openpose_sink:OpenPoseSink", "OpenPose per-frame JSON files (a folder)", True
    ),
    OutputFormat("video", (".mp4", ".mkv", ".mov", ".avi"), ".mp4", "video_sink:VideoSink", "annotated video"),
)

#: kind → :class:`OutputFormat`, in the order messages list them.
OUTPUT_FORMATS: dict[str, OutputFormat] = {f.kind: f for f in _TABLE}

#: Container suffixes the annotated-video sink writes (not the videos a source can read).
OUTPUT_VIDEO_EXTENSIONS: tuple[str, ...] = OUTPUT_FORMATS["video"].suffixes


def format_for_name(name: str) -> OutputFormat | None:
    """The file format whose suffix ends ``name`` (the longest such suffix wins), or None.

    Args:
        name: a file name or path (compared in lower case).
    """
    lower = name.lower()
    best: OutputFormat | None = None
    best_len = 0
    for f in _TABLE:
        for s in f.suffixes:
            if len(s) > best_len and lower.endswith(s):
                best, best_len = f, len(s)
    return best
