"""PyTorch eager backend (CPU or CUDA, fp32 / fp16 / bf16), serving the prepared inference graph."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BackendError

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend:
    """Runs the prepared copy of an ``nn.Module`` (:func:`stip_rt.nn.fold.prepare_inference`) under
    ``torch.inference_mode``.

    Args:
        model: a network whose ``forward(batch)`` returns the output tensor (inference mode); not modified.
        device: ``cpu`` or ``cuda[:i]``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (weights and activations; output is float32).
        fold: fold BatchNorm into the convolutions (``False``: the eval-mode copy as it is, for comparisons).

    Raises:
        BackendError: CUDA requested without a GPU, or an unknown precision.
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: str = "cpu", precision: str = "fp32", fold: bool = True) -> None:
        from ..nn.fold import prepare_inference

        if precision not in _DTYPES:
            raise BackendError(f"torch backend: unknown precision '{precision}' (use fp32, fp16 or bf16)")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"torch backend: device '{device}' requested but no CUDA GPU is available")
        self.device = device
        self.precision = precision
        self.fold = fold
        self._dtype = _DTYPES[precision]
        self.model = prepare_inference(model, fold=fold).to(device=device, dtype=self._dtype)

    def describe(self) -> str:
        """One line for run summaries."""
        return f"torch eager {self.precision} on {self.device}{'' if self.fold else ' (BatchNorm unfolded)'}"

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(device=self.device, dtype=self._dtype, non_blocking=True)
        return self.model(x).float()
