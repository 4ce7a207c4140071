"""Keep long runs' native memory flat without slowing allocation: glibc's free memory trimmed periodically.

glibc raises its mmap threshold dynamically (up to 32 MB) once a large block has been freed; after
that the big per-batch buffers of a long run (crops, heatmaps, activations, ONNX Runtime's
outputs: 1–20 MB) come from the per-thread heaps, fragment them, and resident memory climbs in a
saw-tooth: +17.8 % (+1,322 MB/h) in a 12-minute ``scripts/soak_pipeline.py`` run (HRNet-W32 on
ONNX Runtime + annotated video, restarts every 60 s).

A first fix fixed the threshold at 1 MB (``MALLOC_MMAP_THRESHOLD_``): flat memory, but every block
over 1 MB became a fresh mapping, page-faulted in on every allocation (and a fixed threshold also
fixes the heap-trim threshold at 128 KB). It made a CPU forward of STIP 1.7× slower (torch's
activations are such blocks) and the CPU decode 3× slower. Instead, the heaps keep glibc's fast
reuse and a background thread (:func:`start_trimming`) calls ``malloc_trim(0)`` every 10 seconds,
which hands the pages of every free chunk, in every arena, back to the system (``madvise``); a
freed buffer costs its page faults again at most once per period.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_EVERY_S = 10.0
THREAD_NAME = "malloc-trim"  # not "stip-rt-*": it outlives runs (one per process), not a pipeline thread

_lock = threading.Lock()
_thread: threading.Thread | None = None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (None off glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    func.argtypes = [ctypes.c_size_t]
    func.restype = ctypes.c_int
    return func


def trim() -> bool:
    """Return the free memory of every glibc arena to the system now (``malloc_trim(0)``).

    Returns:
        True when memory was released; False when none was, or off glibc.
    """
    func = _malloc_trim()
    return bool(func(0)) if func is not None else False


def start_trimming(every_s: float = TRIM_EVERY_S) -> bool:
    """Start the process's one trimming thread (a daemon calling :func:`trim` every ``every_s`` s).

    Idempotent: later calls return True without starting another. Off glibc it does nothing.

    Returns:
        True when the thread runs (started now or before).
    """
    global _thread
    func = _malloc_trim()
    if func is None:
        return False
    with _lock:
        if _thread is None or not _thread.is_alive():

            def loop() -> None:
                while True:
                    time.sleep(every_s)
                    func(0)

            _thread = threading.Thread(target=loop, name=THREAD_NAME, daemon=True)
            _thread.start()
            log.debug("trimming glibc's free memory every %g s", every_s)
    return True
