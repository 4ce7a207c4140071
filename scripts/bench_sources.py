"""Decode throughput of ``open_source`` (threaded) vs a plain PyAV loop, alone and beside a consumer.

A consumer that spends ``--work-ms`` per frame outside the GIL (``time.sleep``, as inference does)
stands for the rest of the pipeline. The threaded source decodes the next frames meanwhile, so
``open_source / plain loop`` should approach ``min(decode fps, 1000/work_ms) / plain``.

``--seek [N]`` also times opening the file at a late frame N (default: 90 % of its frames) until
that frame arrives: the keyframe seek of ``VideoSource(start=N)`` vs decoding every frame from the
start (``keyframe_seek=False``, the old way), ratio printed.

Usage::

    python scripts/bench_sources.py [VIDEO] [--work-ms 3] [--repeat 3] [--seek [N]]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av

from stip_rt.io.sources import open_source
from stip_rt.io.video_source import VideoSource

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "opencv_samples" / "vtest.avi"


def plain_loop(path: Path, work_s: float, thread_type: str = "AUTO") -> float:
    """Frames per second of decode + consumer work in one loop on one thread."""
    t0, n = time.perf_counter(), 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = thread_type
        for frame in c.decode(stream):
            frame.to_ndarray(format="bgr24")
            n += 1
            if work_s:
                time.sleep(work_s)
    return n / (time.perf_counter() - t0)


def threaded(path: Path, work_s: float) -> float:
    """Frames per second through ``open_source`` (decode on its own thread) with the same consumer."""
    t0, n = time.perf_counter(), 0
    with open_source(path) as src:
        for _ in src:
            n += 1
            if work_s:
                time.sleep(work_s)
    return n / (time.perf_counter() - t0)


def open_at(path: Path, frame: int, keyframe_seek: bool) -> float:
    """Seconds from opening ``path`` at ``frame`` until that frame is delivered."""
    t0 = time.perf_counter()
    with VideoSource(str(path), start=frame, max_frames=1, keyframe_seek=keyframe_seek) as src:
        got = [f.index for f in src]
    if got != [frame]:
        raise SystemExit(f"{path}: asked for frame {frame}, got {got}")
    return time.perf_counter() - t0


def bench_seek(path: Path, frame: int, repeat: int) -> None:
    """Print the best time to open at ``frame`` with the keyframe seek and by decoding from the start."""
    if frame < 0:
        with av.open(str(path)) as c:
            frame = int(c.streams.video[0].frames * 0.9)
    seek = min(open_at(path, frame, True) for _ in range(repeat))
    scan = min(open_at(path, frame, False) for _ in range(repeat))
    print(f"open at frame {frame}: keyframe seek {seek * 1000:.0f} ms, decode from the start {scan * 1000:.0f} ms, "
          f"ratio {scan / seek:.1f}×")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    p.add_argument("--work-ms", type=float, default=3.0, help="consumer time per frame (ms, GIL released)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    p.add_argument("--seek", type=int, nargs="?", const=-1, metavar="N",
                   help="also time opening at frame N (default 90%% of the file): keyframe seek vs decode from start")
    p.add_argument("--seek-only", action="store_true", help="only the --seek comparison")
    a = p.parse_args()
    if a.seek is not None:
        bench_seek(a.video, a.seek, a.repeat)
        if a.seek_only:
            return
    w = a.work_ms / 1000
    best = {k: 0.0 for k in ("slice", "auto", "source", "plain_w", "source_w")}
    for _ in range(a.repeat):
        best["slice"] = max(best["slice"], plain_loop(a.video, 0.0, "SLICE"))
        best["auto"] = max(best["auto"], plain_loop(a.video, 0.0, "AUTO"))
        best["source"] = max(best["source"], threaded(a.video, 0.0))
        best["plain_w"] = max(best["plain_w"], plain_loop(a.video, w))
        best["source_w"] = max(best["source_w"], threaded(a.video, w))
    print(f"video: {a.video.name}  (PyAV {av.__version__})")
    print(f"decode only: plain SLICE {best['slice']:.0f} fps, plain AUTO {best['auto']:.0f} fps, "
          f"open_source {best['source']:.0f} fps")  # fmt: skip
    ratio = best["source_w"] / best["plain_w"]
    ideal = min(best["auto"], 1 / w) / best["plain_w"] if w else 1.0
    print(f"with {a.work_ms:g} ms consumer work/frame: plain loop {best['plain_w']:.0f} fps, "
          f"open_source {best['source_w']:.0f} fps, ratio {ratio:.2f} (ideal {ideal:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
