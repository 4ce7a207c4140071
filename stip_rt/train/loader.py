"""The training DataLoader: worker processes that leave the stop signals to the main process, a worker's
error as the one line it raised (naming the image), and workers ended as soon as an epoch's batches are done
with, or the run fails.

Why the explicit end (:func:`close_batches`): an exception a DataLoader re-raises from a worker is in a
reference cycle (the re-raising frame holds it, its traceback holds that frame), and the traceback keeps the
batch iterator and its workers alive until the garbage collector runs. When ``stip-rt train`` exited first,
multiprocessing's exit handler sent the still-waiting workers SIGTERM, which they ignore
(:func:`_ignore_stop_signals`), then waited for them without end: a run whose worker hit a bad image hung
instead of failing.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from typing import Any, TypeVar

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import StipError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Signals a job scheduler or terminal sends to the whole process group; the main process alone acts on them.
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))

#: Seconds to wait for a killed worker process to go.
_KILL_WAIT = 5.0


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM/SIGINT/SIGHUP, so that a signal to the process group (Slurm's
    ``scancel``, pre-emption, Ctrl-C) leaves the main process to act: it finishes the step and writes the
    checkpoint. Workers still end when the loader shuts them down or the main process dies (their watchdog)."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def train_loader(dataset: Dataset, batch_sampler: Sampler, workers: int, pin_memory: bool,
                 generator: torch.Generator) -> DataLoader:
    """The training DataLoader: ``workers`` processes that ignore the stop signals (:func:`_ignore_stop_signals`).

    Workers are not persistent: each epoch's get a fresh copy of the dataset with its current epoch.
    Samples seed their own augmentation (from seed, epoch and index), so workers need no other seeding.
    Take batches with :func:`next_batch` and end the iterator with :func:`close_batches`.
    """
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, pin_memory=pin_memory,
                      generator=generator, worker_init_fn=_ignore_stop_signals if workers else None)


def worker_message(e: BaseException) -> str | None:
    """The message a worker's exception had, from the DataLoader's re-raised one; None when ``e`` is not one.

    A DataLoader re-raises a worker's exception as its type with the worker's whole traceback as the message
    (``Caught DataError in DataLoader worker process 0.\\nOriginal Traceback ...``), whose last line is
    ``module.Type: message``.
    """
    text = str(e)
    if not text.startswith(f"Caught {type(e).__name__} in DataLoader worker process"):
        return None
    prefix = f"{type(e).__module__}.{type(e).__qualname__}: "
    last = next((line for line in reversed(text.splitlines()) if line.startswith(prefix)), None)
    return None if last is None else last[len(prefix):]


def next_batch(batches: Iterator[T]) -> T:
    """The next batch; an error of a sample in a worker (a :class:`~stip_rt.errors.StipError`, e.g. an
    unreadable image, naming it) raised again with its own one-line message.

    Raises:
        StipError: as the sample raised it (the DataLoader's text is its ``__cause__``).
    """
    try:
        return next(batches)
    except StipError as e:
        message = worker_message(e)
        if message is None:
            raise
        raise type(e)(message) from e


def close_batches(batches: Any) -> None:
    """End the worker processes of a DataLoader iterator now (see the module docstring for why).

    A worker still alive after the DataLoader's own shutdown (stuck in a sample) is killed: it ignores
    SIGTERM. An iterator without workers is left as it is.
    """
    shutdown = getattr(batches, "_shutdown_workers", None)  # torch's multi-process iterator (no public API)
    if shutdown is None:
        return
    shutdown()
    for worker in getattr(batches, "_workers", ()):
        if worker.is_alive():
            log.warning("data loader worker %s did not stop: killing it", worker.pid)
            worker.kill()
            worker.join(_KILL_WAIT)
