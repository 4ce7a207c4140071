"""The one interface every inference backend implements.

``Backend.infer(batch) -> outputs``: a float32 NCHW batch in, the network's output
out (pose models: heatmaps N×K×h×w). Implementations live one per module in this
package (``torch_backend``, ``onnxruntime_backend``, ``tensorrt_backend``, ...).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Backend(Protocol):
    """An inference engine for one network.

    Attributes:
        name: backend id (``torch``, ``cuda-fast``, ``onnxruntime``, ``tensorrt``).
        device: ``cpu`` or ``cuda[:i]``.
        precision: ``fp32``, ``fp16`` or ``bf16``.
    """

    name: str
    device: str
    precision: str

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """Run the network.

        Args:
            batch: (N, 3, H, W) float32, normalised; on any device (moved if needed). N may be 0.

        Returns:
            (N, K, h, w) float32 tensor on ``self.device``.
        """
        ...
