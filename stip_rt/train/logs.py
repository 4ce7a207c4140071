"""What a training run reports: progress events (for the caller), a CSV log and TensorBoard events.

The library reports progress through a callback receiving :class:`TrainEvent`; the CLI draws a
progress bar on a terminal and writes periodic lines to ``OUT/train.log``. Rank 0 writes
``OUT/log.csv`` (one row per epoch: mean losses, learning rate, validation metrics) and, when the
``tensorboard`` package is installed (``pip install stip-rt[train]``), TensorBoard events under ``OUT/tb``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainEvent:
    """One progress report.

    Attributes:
        kind: ``step`` (after an optimiser step), ``epoch`` (an epoch finished), ``val`` (validated),
            ``checkpoint`` (``checkpoint.pth`` written, e.g. on SIGTERM).
        epoch: 0-based epoch.
        step: optimiser steps done in total.
        epoch_step: steps done in this epoch; ``steps_per_epoch`` of them make an epoch.
        loss: the step's loss (mean over ranks and accumulation), or the epoch mean.
        terms: loss terms (same averaging).
        lr: learning rate.
        metrics: validation metrics (``val``).
        path: the file written (``checkpoint``).
    """

    kind: Literal["step", "epoch", "val", "checkpoint"]
    epoch: int
    step: int
    epoch_step: int = 0
    steps_per_epoch: int = 0
    loss: float = float("nan")
    terms: dict[str, float] = field(default_factory=dict)
    lr: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    path: str = ""


def _epoch_of(row: dict[str, str]) -> int | None:
    try:
        return int(row.get("epoch") or "")
    except ValueError:
        return None


def _resume_csv(path: Path, columns: list[str], epochs_done: int | None) -> list[str]:
    """Make ``path`` fit a resumed run: the columns of ``path`` followed by those of ``columns`` it
    lacks, and (``epochs_done`` given) only the rows of the epochs the checkpoint holds; rewrites the
    file (atomically) when anything changed and returns the columns.

    A resumed run that validates when the first part did not (or the reverse) keeps one parseable table:
    earlier rows get empty cells in the new columns. A run killed after an epoch's row and before that
    epoch's checkpoint redoes the epoch: its row (or a row cut short) is dropped, so each epoch is logged once.
    """
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        old = list(reader.fieldnames or [])
        rows = list(reader)
    union = old + [c for c in columns if c not in old]
    kept = rows
    if epochs_done is not None:
        kept = [r for r in rows if (e := _epoch_of(r)) is not None and e <= epochs_done and None not in r.values()]
    if union != old or len(kept) != len(rows):
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, union, restval="")
            writer.writeheader()
            writer.writerows(kept)
        tmp.replace(path)
        if union != old:
            log.info("%s: added the columns %s", path, [c for c in union if c not in old])
        if len(kept) != len(rows):
            log.warning("%s: dropped %d row(s) of epochs after the checkpoint's epoch %d (redone now)", path,
                        len(rows) - len(kept), epochs_done)
    return union


class RunLog:
    """CSV and TensorBoard output of rank 0 (appends on resume).

    A resumed run whose columns differ (validation added or removed) rewrites ``log.csv`` with the
    union of both sets of columns, so every row matches the header; it drops the rows of epochs
    its checkpoint does not hold (written before a kill that came before that epoch's checkpoint),
    so each epoch has one row.

    Args:
        out_dir: the run folder.
        terms: loss term names (CSV columns).
        metrics: validation metric names (CSV columns; empty when nothing is validated).
        tensorboard: write TensorBoard events when the package is installed.
        epochs_done: a resumed run's epochs finished in its checkpoint (rows of later epochs are
            dropped); None keeps every row.
    """

    def __init__(self, out_dir: str | Path, terms: Sequence[str], metrics: Sequence[str], tensorboard: bool = True,
                 epochs_done: int | None = None):
        self.path = Path(out_dir) / "log.csv"
        self.columns = ["epoch", "step", "lr", "loss", *terms, *(f"val_{m}" for m in metrics)]
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            self.columns = _resume_csv(self.path, self.columns, epochs_done)
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._file, self.columns, restval="", extrasaction="ignore")
        if new:
            self._csv.writeheader()
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed (pip install stip-rt[train]): no TensorBoard events")
            else:
                self._tb = SummaryWriter(str(Path(out_dir) / "tb"))

    def step(self, event: TrainEvent) -> None:
        """Per-step scalars (TensorBoard only)."""
        if self._tb is not None:
            self._tb.add_scalar("train/loss", event.loss, event.step)
            for k, v in event.terms.items():
                self._tb.add_scalar(f"train/{k}", v, event.step)
            self._tb.add_scalar("train/lr", event.lr, event.step)

    def epoch(self, event: TrainEvent, metrics: dict[str, float] | None = None) -> None:
        """One CSV row for a finished epoch (with its validation metrics, if any)."""
        row: dict[str, Any] = {"epoch": event.epoch + 1, "step": event.step, "lr": event.lr, "loss": event.loss,
                               **event.terms}
        for k, v in (metrics or {}).items():
            row[f"val_{k}"] = v
            if self._tb is not None:
                self._tb.add_scalar(f"val/{k}", v, event.epoch + 1)
        self._csv.writerow(row)
        self._file.flush()
        if self._tb is not None:
            self._tb.add_scalar("epoch/loss", event.loss, event.epoch + 1)
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
