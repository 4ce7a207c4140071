"""Run statistics of the threaded pipeline: per-stage speed, end-to-end latency, people, tracks.

The recorder is written to from every stage thread and read from any thread (the CLI, the
viewer), so every method takes one lock; its memory is bounded (latency percentiles come from
the most recent frames only), which keeps long live runs flat.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Stages in flow order; ``FrameResult.timings`` uses these keys (seconds) plus ``latency``.
STAGES: tuple[str, ...] = ("decode", "detect", "pose", "track", "sink")

_RECENT = 2048  # frames kept for latency percentiles


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """A snapshot of a run.

    Attributes:
        frames: frames that reached the sinks.
        people: person rows written over all frames (a person in 10 frames counts 10).
        tracks: distinct track ids seen.
        detector_runs: frames the detector ran on (fewer than ``frames`` with detect-every-N).
        dropped: frames the source dropped because downstream was slower (live input only: its
            buffer keeps the newest frame); 0 for files.
        wall_s: seconds since the pipeline started (to its end when finished).
        fps: frames per second end to end (``frames / wall_s``).
        stage_fps: per stage, frames per second of busy time (what the stage alone could do).
        stage_ms: per stage, mean milliseconds per frame.
        latency_ms: capture-to-result milliseconds: ``mean``, ``p50``, ``p95``, ``max`` (recent frames).
    """

    frames: int = 0
    people: int = 0
    tracks: int = 0
    detector_runs: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    fps: float = 0.0
    stage_fps: dict[str, float] = field(default_factory=dict)
    stage_ms: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def slowest_stage(self) -> str | None:
        """Name of the stage with the lowest frames per second, or None before the first frame."""
        if not self.stage_fps:
            return None
        return min(self.stage_fps, key=lambda k: self.stage_fps[k])


class StatsRecorder:
    """Thread-safe accumulator behind :meth:`Pipeline.stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._t_end: float | None = None
        self._busy = dict.fromkeys(STAGES, 0.0)
        self._count = dict.fromkeys(STAGES, 0)
        self._frames = 0
        self._people = 0
        self._ids: set[int] = set()
        self._det_runs = 0
        self._lat_sum = 0.0
        self._lat_max = 0.0
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._dropped = 0

    def start(self) -> None:
        with self._lock:
            self._t0 = time.perf_counter()
            self._t_end = None

    def finish(self) -> None:
        with self._lock:
            if self._t_end is None:
                self._t_end = time.perf_counter()

    def stage(self, name: str, seconds: float) -> None:
        """Add one frame's busy time of stage ``name``."""
        with self._lock:
            self._busy[name] += seconds
            self._count[name] += 1

    def detector_ran(self) -> None:
        with self._lock:
            self._det_runs += 1

    def set_dropped(self, dropped: int) -> None:
        """The source's own count of dropped frames."""
        with self._lock:
            self._dropped = int(dropped)

    def result(self, ids: np.ndarray, latency_s: float) -> None:
        """Count one frame delivered to the sinks with track ``ids`` and its capture-to-result latency."""
        with self._lock:
            self._frames += 1
            self._people += int(ids.shape[0])
            self._ids.update(int(i) for i in ids)
            self._lat_sum += latency_s
            self._lat_max = max(self._lat_max, latency_s)
            self._recent.append(latency_s)

    def snapshot(self) -> PipelineStats:
        """The current figures (safe to call from any thread at any time)."""
        with self._lock:
            if self._t0 is None:
                return PipelineStats()
            end = self._t_end if self._t_end is not None else time.perf_counter()
            wall = max(end - self._t0, 1e-9)
            stage_fps = {k: self._count[k] / self._busy[k] for k in STAGES if self._count[k] and self._busy[k] > 0}
            stage_ms = {k: 1e3 * self._busy[k] / self._count[k] for k in STAGES if self._count[k]}
            latency: dict[str, float] = {}
            if self._frames:
                recent = np.asarray(self._recent, np.float64)
                latency = {
                    "mean": 1e3 * self._lat_sum / self._frames,
                    "p50": 1e3 * float(np.percentile(recent, 50)),
                    "p95": 1e3 * float(np.percentile(recent, 95)),
                    "max": 1e3 * self._lat_max,
                }
            return PipelineStats(
                frames=self._frames,
                people=self._people,
                tracks=len(self._ids),
                detector_runs=self._det_runs,
                dropped=self._dropped,
                wall_s=wall,
                fps=self._frames / wall,
                stage_fps=stage_fps,
                stage_ms=stage_ms,
                latency_ms=latency,
            )


def format_stats(stats: PipelineStats, *, live: bool = False) -> str:
    """A few human-readable lines for the end of a run (CLI summary, batch logs).

    Args:
        stats: the run's figures.
        live: also report dropped frames (they only happen with live sources).
    """
    lines = [
        f"frames {stats.frames}  people {stats.people}  tracks {stats.tracks}  "
        f"detector runs {stats.detector_runs}  {stats.fps:.1f} fps end to end ({stats.wall_s:.1f} s)"
    ]
    if stats.stage_fps:
        parts = [
            f"{k} {stats.stage_fps[k]:.1f} fps ({stats.stage_ms[k]:.1f} ms)" for k in STAGES if k in stats.stage_fps
        ]
        lines.append("stages: " + ", ".join(parts))
    if stats.latency_ms:
        lat = stats.latency_ms
        lines.append(f"latency: mean {lat['mean']:.0f} ms, p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms")
    if live:
        lines.append(f"dropped frames: {stats.dropped}")
    return "\n".join(lines)
