"""Training checkpoints: exact-resume state, RNG states, atomic writes, and the model record.

``checkpoint.pth`` (written every epoch, and on SIGTERM mid-epoch) holds everything a resumed
run needs to continue bit for bit on the CPU: ``state_dict``, ``optimizer``, ``scheduler``,
``scaler``, ``epoch`` (the epoch to continue), ``epoch_step`` (optimiser steps already done in
it), ``step`` (total), ``rng`` (python, numpy, torch and CUDA states of every rank), ``best``
(validation bookkeeping), and the model record: ``model`` (``ModelSpec.to_dict()``) and ``schema``
(the keypoint set's fields), so that ``stip-rt eval`` / ``export`` / :func:`stip_rt.models.load_spec`
can rebuild the network from the file alone. Everything is plain data and tensors, so the files
load with ``torch.load(weights_only=True)``.

A run that does not resume moves the files of an earlier run in the same folder (:data:`RUN_OUTPUTS`)
into ``previous-N/`` first (:func:`set_aside_outputs`), so that its log, TensorBoard events and
``best.pth`` are its own and nothing is lost.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import random
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SinkError, WeightsError
from ..models import ModelSpec
from ..schemas import get_schema, schema_to_dict

FORMAT = "stip-rt-train/1"

#: What a run writes in its folder (``train.log`` is the CLI's: it keeps the lines of every invocation).
RUN_OUTPUTS = ("checkpoint.pth", "best.pth", "model.pth", "final_state.pth", "log.csv", "tb")


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch and CUDA RNG states of this process (weights-only loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_record(spec: ModelSpec) -> dict[str, Any]:
    """``model`` and ``schema`` entries for a checkpoint (the spec names its schema by name)."""
    schema = get_schema(spec.schema)
    return {"model": {**spec.to_dict(), "schema": schema.name}, "schema": schema_to_dict(schema)}


def _describe(record: Mapping[str, Any]) -> str:
    """``name (arch, input 256x192, heatmap 64x48, 17 keypoints coco17)`` of a recorded model."""
    net = record.get("net") or {}
    size = [int(v) for v in record.get("input_size") or (0, 0)]
    up = int(net.get("up_scale", 1))
    k = (net.get("hrnet") or net).get("num_joints", "?")
    return (f"{record.get('name', '?')} ({record.get('arch', '?')}, input {size[0]}x{size[1]}, heatmap "
            f"{size[0] // 4 * up}x{size[1] // 4 * up}, {k} keypoints {record.get('schema', '?')})")


#: Fields of the model record that must match for a run to resume from a checkpoint.
_SAME_MODEL = ("name", "arch", "schema", "input_size", "net")


def check_same_model(state: Mapping[str, Any], spec: ModelSpec, path: str | Path) -> None:
    """Check that a training checkpoint was written for the model ``spec`` (name, sizes, keypoints, network).

    A checkpoint that records no model (older format) passes; its tensors are checked on loading.

    Raises:
        WeightsError: the checkpoint records another model (one line naming both and ``path``).
    """
    old, new = state.get("model"), model_record(spec)["model"]
    if not isinstance(old, Mapping):
        return
    if any(_plain(old.get(k)) != _plain(new.get(k)) for k in _SAME_MODEL):
        raise WeightsError(f"{path} is a checkpoint of model {_describe(old)}, not of {_describe(new)}; "
                           "use --no-resume or another --out")


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (a record compares equal whether it was saved or built)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_resume_state(module: Any, saved: Mapping[str, Any], what: str, path: str | Path) -> None:
    """``module.load_state_dict(saved)`` with a failure as one :class:`WeightsError` naming ``path``.

    Args:
        module: the model, optimiser, scheduler or gradient scaler.
        saved: its state in the checkpoint.
        what: its name in the message (``model``, ``optimizer`` ...).
        path: the checkpoint.
    """
    try:
        module.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError) as e:
        lines = str(e).split("\n")  # torch: "Error(s) in loading state_dict for X:" then one line per kind
        detail = " ".join(" ".join(lines[1:] if len(lines) > 1 else lines).split())
        detail = detail if len(detail) <= 200 else detail[:200] + "..."
        raise WeightsError(f"{path}: its {what} state does not fit this run ({detail}); "
                           "use --no-resume or another --out") from None


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename (no half-written checkpoint).

    A failed write (a full disk, a quota) keeps the previous ``path`` as it was and removes the
    partial temporary file, which would otherwise hold on to the space that is missing.

    Raises:
        SinkError: the file could not be written (one line naming it and the reason).
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, p)
    except (OSError, RuntimeError) as e:  # torch's file writer reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = e.strerror if isinstance(e, OSError) and e.strerror else (str(e).splitlines() or [""])[0][:120]
        with contextlib.suppress(OSError):
            reason += f"; {shutil.disk_usage(p.parent).free / 2**20:.1f} MiB free there"
        kept = "; the previous one is kept" if p.exists() else ""
        raise SinkError(f"{p}: cannot write it ({reason}){kept}") from e
    return p


def set_aside_outputs(out_dir: str | Path) -> Path | None:
    """Move the :data:`RUN_OUTPUTS` of an earlier run in ``out_dir`` into ``out_dir/previous-N`` (first free N).

    Returns:
        The folder they were moved to, or None when there was nothing to move.
    """
    out = Path(out_dir)
    found = [out / name for name in RUN_OUTPUTS if (out / name).exists()]
    if not found:
        return None
    n = 1
    while (out / f"previous-{n}").exists():
        n += 1
    target = out / f"previous-{n}"
    target.mkdir()
    for path in found:
        os.replace(path, target / path.name)
    return target


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``checkpoint.pth`` written by the trainer (weights-only, on the CPU).

    Raises:
        WeightsError: unreadable file or not a resumable training checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f"checkpoint {path}: cannot resume from it ({first[:200]})") from None
    missing = [k for k in ("state_dict", "optimizer", "scheduler", "epoch", "step") if k not in state]
    if missing:
        raise WeightsError(f"checkpoint {path}: not a training checkpoint (missing {', '.join(missing)})")
    return state


def apply_schedule(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.MultiStepLR, lr: float,
                   milestones: Sequence[int], gamma: float) -> float | None:
    """Make a resumed run follow its own learning-rate schedule.

    A scheduler's saved state holds the milestones, ``gamma`` and base lr of the run that wrote it,
    and the optimiser's the lr it had reached, so loading them alone would ignore a new ``lr``,
    ``milestones`` or ``gamma`` (e.g. a run extended with later milestones). When they differ, the
    schedule is replaced and the lr set to what the new one gives at the scheduler's epoch:
    ``lr × gamma^(milestones ≤ epoch)``, as :class:`~torch.optim.lr_scheduler.MultiStepLR` computes it.

    Args:
        optimizer / scheduler: with the checkpoint's state loaded.
        lr / milestones / gamma: the resumed run's settings.

    Returns:
        The lr now in effect when the schedule changed, None when it was the same (nothing touched,
        so that an unchanged resume stays bit-exact).
    """
    same = (sorted(scheduler.milestones.elements()) == sorted(milestones) and scheduler.gamma == gamma
            and all(b == lr for b in scheduler.base_lrs))
    if same:
        return None
    scheduler.milestones = Counter(milestones)
    scheduler.gamma = gamma
    scheduler.base_lrs = [lr for _ in scheduler.base_lrs]
    now = lr * gamma ** bisect.bisect_right(sorted(milestones), scheduler.last_epoch)
    for group in optimizer.param_groups:
        group["initial_lr"], group["lr"] = lr, now
    scheduler._last_lr = [now for _ in optimizer.param_groups]
    return now
