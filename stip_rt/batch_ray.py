"""``stip-rt batch --engine ray``: the videos of a batch as Ray tasks, over one machine or a cluster.

Each task runs :func:`stip_rt.batch.process_video`, the unit of work of the process pool, so the
outputs, resumability (``done.json`` written last, compared on resume) and per-video failure
handling are those of ``stip-rt batch``. Ray schedules the tasks over the cluster's nodes and GPUs
(``gpus_per_task=1`` makes Ray pick a GPU and set ``CUDA_VISIBLE_DEVICES`` for the task;
``0.5`` packs two videos per GPU). The output folder must be storage every node can write (NFS,
a mounted bucket...) and the videos must be readable under the same paths on every node.

Ray is an optional dependency: ``pip install "stip-rt[ray]"``. Without an address a local Ray
instance is started in this process (``ray.init()``), which is also how to try it on a laptop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .batch import FORMATS, VideoResult, batch_tasks, process_video
from .errors import ConfigError, SinkError
from .run_config import RunConfig

logger = logging.getLogger(__name__)

RAY_MISSING = '--engine ray needs Ray, which is not installed: pip install "stip-rt[ray]" (or "ray[default]")'


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed (says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def run_batch_ray(
    videos: Sequence[str | Path],
    out_dir: str | Path,
    config: RunConfig,
    formats: Sequence[str] = ("jsonl",),
    *,
    annotate: bool = False,
    address: str | None = None,
    gpus_per_task: float = 0.0,
    cpus_per_task: float = 1.0,
    force: bool = False,
    on_result: Callable[[VideoResult], None] | None = None,
) -> list[VideoResult]:
    """Process ``videos`` as one Ray task each; the same outputs and results as :func:`stip_rt.batch.run_batch`.

    Args:
        videos: video paths (as every node sees them).
        out_dir: output root on shared storage (created).
        config: the run configuration shared by all videos. With ``gpus_per_task`` > 0 and device
            ``auto`` the tasks use ``cuda`` (the GPU Ray assigned); with 0 and ``auto``, ``cpu``.
        formats: output formats per video (keys of :data:`stip_rt.batch.FORMATS`).
        annotate: also write an annotated video per input.
        address: Ray cluster address (``auto``: the cluster this machine belongs to; ``ray://host:10001``);
            None: connect to the Ray instance already initialised in this process, or start a local one.
        gpus_per_task: GPUs each task reserves (fractions pack several videos per GPU).
        cpus_per_task: CPUs each task reserves.
        force: do every video again, also those already done with the same formats and options.
        on_result: called in this process as each video finishes.

    Returns:
        One :class:`~stip_rt.batch.VideoResult` per video, in input order.

    Raises:
        ConfigError: Ray is missing, an unknown format, a negative resource.
        SinkError: ``out_dir`` cannot be created.
        KeyboardInterrupt: after cancelling the tasks (each running one stops cleanly, no ``done.json``).
    """
    ray = import_ray()
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"batch: unknown format '{bad[0]}' (choose from {', '.join(FORMATS)})")
    if gpus_per_task < 0 or cpus_per_task < 0:
        raise ConfigError(
            f"batch: --gpus-per-task and --cpus-per-task must be >= 0, got {gpus_per_task}, {cpus_per_task}"
        )
    root = Path(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"{root}: cannot create the output folder ({e.strerror})") from None
    if config.runtime.device == "auto":
        config = replace(config, runtime=replace(config.runtime, device="cuda" if gpus_per_task > 0 else "cpu"))
    tasks = batch_tasks(videos, root)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    elif address is not None:
        logger.warning("Ray is already initialised in this process; --address %s is not used", address)
    try:
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(process_video)
        refs = {
            remote.remote(src, vdir, config, tuple(formats), annotate, force): i for i, (src, vdir) in enumerate(tasks)
        }
        return _collect(ray, refs, tasks, on_result)
    finally:
        if started:
            ray.shutdown()


def _collect(
    ray: Any,
    refs: dict[Any, int],
    tasks: list[tuple[str, str]],
    on_result: Callable[[VideoResult], None] | None,
) -> list[VideoResult]:
    results: dict[int, VideoResult] = {}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = refs[ready[0]]
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as e:  # a task that died (node lost, out of memory...)
                src, vdir = tasks[i]
                result = VideoResult(src, "failed", out_dir=vdir, error=f"{src}: Ray task failed ({type(e).__name__})")
            results[i] = result
            if on_result is not None:
                on_result(result)
    except BaseException:
        for ref in pending:  # a running task gets KeyboardInterrupt: its pipeline closes the outputs
            ray.cancel(ref)
        raise
    return [results[i] for i in range(len(tasks))]
