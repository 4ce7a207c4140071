"""PyTorch eager backend (CPU or CUDA, fp32 / fp16 / bf16)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BackendError

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend:
    """Runs an ``nn.Module`` in eval mode under ``torch.inference_mode``.

    Args:
        model: a network whose ``forward(batch)`` returns the output tensor (inference mode).
        device: ``cpu`` or ``cuda[:i]``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (weights and activations; output is float32).

    Raises:
        BackendError: CUDA requested without a GPU, or an unknown precision.
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: str = "cpu", precision: str = "fp32") -> None:
        if precision not in _DTYPES:
            raise BackendError(f"torch backend: unknown precision '{precision}' (use fp32, fp16 or bf16)")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"torch backend: device '{device}' requested but no CUDA GPU is available")
        self.device = device
        self.precision = precision
        self._dtype = _DTYPES[precision]
        self.model = model.eval().to(device=device, dtype=self._dtype)

    def describe(self) -> str:
        """One line for run summaries."""
        return f"torch eager {self.precision} on {self.device}"

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(device=self.device, dtype=self._dtype, non_blocking=True)
        return self.model(x).float()
