"""Progress of a long run on stderr: a live bar on a terminal, a plain line every few seconds otherwise.

Redirected output (``nohup``, Slurm, ``> run.log 2>&1``) gets no bar, whose carriage returns
would fill a log file with one unreadable line; it gets lines such as::

    progress: 120/795 frames (15.1 %)  1.4 frames/s  elapsed 1:25  ETA 8:02

The library reports progress as it goes (``stip-rt track`` iterates the pipeline's results,
``stip-rt batch`` hears of each video through ``on_result``); this module only draws it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

#: Seconds between two progress lines when stderr is not a terminal (``--progress-every``).
DEFAULT_INTERVAL_S = 5.0


def format_seconds(seconds: float) -> str:
    """``75.0`` → ``1:15``, ``3725`` → ``1:02:05``."""
    s = max(round(seconds), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(done: int, total: int | None, elapsed_s: float, unit: str = "frames", extra: str = "") -> str:
    """One progress line: done / total (percent), rate, elapsed, ETA (when the total is known).

    Args:
        done: items done so far.
        total: items in all, or None (a live source).
        elapsed_s: seconds since the start.
        unit: plural name of the items.
        extra: appended as is (e.g. ``people 6``).
    """
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    parts = [f"progress: {done}/{total} {unit} ({100.0 * done / total:.1f} %)" if total else f"progress: {done} {unit}"]
    parts.append(f"{rate:.2f} {unit}/s" if rate < 10 else f"{rate:.1f} {unit}/s")
    parts.append(f"elapsed {format_seconds(elapsed_s)}")
    if total and rate > 0:
        parts.append(f"ETA {format_seconds(max(total - done, 0) / rate)}")
    if extra:
        parts.append(extra)
    return "  ".join(parts)


class Progress:
    """Counts items and shows the count: tqdm on a terminal, else :func:`progress_line` every ``interval_s``.

    Args:
        total: items expected, or None (unknown: a live source).
        unit: plural name of the items (``frames``, ``videos``).
        interval_s: seconds between two lines when ``stream`` is not a terminal; 0 prints none.
        stream: where to draw (default stderr).
        tty: whether ``stream`` is a terminal (default: ``stream.isatty()``).
        clock: seconds, monotonic (tests pass a fake clock).
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "frames",
        interval_s: float = DEFAULT_INTERVAL_S,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.unit = unit
        self.interval_s = interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.n = 0
        self.start = clock()
        self._last_line = self.start
        self._lock = threading.Lock()  # update() and a heartbeat thread may both tick
        self._bar: Any = None
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit.rstrip("s"), dynamic_ncols=True, leave=False, file=self.stream)

    def update(self, n: int = 1, extra: str = "", **postfix: Any) -> None:
        """Count ``n`` more items; ``extra`` (log lines) and ``postfix`` (bar) describe the latest."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(refresh=False, **postfix)
            return
        self.tick(extra)

    def tick(self, extra: str = "") -> None:
        """Off a terminal: print a progress line when ``interval_s`` has passed since the last one."""
        if self._bar is not None or self.interval_s <= 0:
            return
        with self._lock:
            now = self.clock()
            if now - self._last_line < self.interval_s:
                return
            self._last_line = now
        self.line(extra)

    def elapsed_s(self) -> float:
        """Seconds since the start."""
        return self.clock() - self.start

    def skip(self, n: int = 1) -> None:
        """Take ``n`` items out of the total (done earlier: they would make the rate and ETA lie)."""
        if self.total is not None:
            self.total = max(self.total - n, 0)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def line(self, extra: str = "") -> None:
        """Print a progress line now (above the bar on a terminal)."""
        text = progress_line(self.n, self.total, self.clock() - self.start, self.unit, extra)
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def write(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_progress_option(p: Any, default_s: float = DEFAULT_INTERVAL_S) -> None:
    """``--progress-every SECONDS``: the interval of the progress lines written when stderr is not a terminal."""
    p.add_argument(
        "--progress-every",
        type=float,
        default=default_s,
        metavar="SECONDS",
        help="when stderr is not a terminal (a log file, nohup, Slurm), print a progress line every "
        f"SECONDS (0: none; default: {default_s:g}); a terminal shows a live bar instead",
    )


def print_outputs(paths: list[str], stream: TextIO | None = None) -> None:
    """The closing lines of a run: one ``output: PATH`` per file or folder written."""
    out = stream if stream is not None else sys.stdout
    for path in paths:
        print(f"output: {path}", file=out, flush=True)


__all__ = ["DEFAULT_INTERVAL_S", "Progress", "add_progress_option", "format_seconds", "print_outputs", "progress_line"]
