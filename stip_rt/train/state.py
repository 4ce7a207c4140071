"""Training checkpoints: exact-resume state, RNG states, atomic writes, and the model record.

``checkpoint.pth`` (written every epoch, and on SIGTERM mid-epoch) holds everything a resumed
run needs to continue bit for bit on the CPU: ``state_dict``, ``optimizer``, ``scheduler``,
``scaler``, ``epoch`` (the epoch to continue), ``epoch_step`` (optimiser steps already done in
it), ``step`` (total), ``rng`` (python, numpy, torch and CUDA states of every rank), ``best``
(validation bookkeeping), and the model record: ``model`` (``ModelSpec.to_dict()``) and ``schema``
(the keypoint set's fields), so that ``stip-rt eval`` / ``export`` / :func:`stip_rt.models.load_spec`
can rebuild the network from the file alone. Everything is plain data and tensors, so the files
load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..models import ModelSpec
from ..schemas import get_schema, schema_to_dict

FORMAT = "stip-rt-train/1"


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


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename (no half-written checkpoint)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, p)
    return p


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
