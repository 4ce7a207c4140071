"""Which backends can run here, and why not."""

from __future__ import annotations

import importlib.util


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def backend_availability() -> dict[str, tuple[bool, str]]:
    """Map backend name → (usable here, reason)."""
    import torch

    cuda = torch.cuda.is_available()
    out: dict[str, tuple[bool, str]] = {"torch": (True, "PyTorch eager (cpu" + (", cuda)" if cuda else ")"))}
    if not cuda:
        out["cuda-fast"] = (False, "needs a CUDA GPU")
    elif not _has("triton"):
        out["cuda-fast"] = (False, "needs triton (pip install 'stip-rt[triton]')")
    else:
        out["cuda-fast"] = (True, "FP16 + fused Triton IaP + CUDA graphs")
    if _has("onnxruntime"):
        import onnxruntime as ort

        providers = ort.get_available_providers()
        out["onnxruntime"] = (True, "providers: " + ", ".join(providers))
    else:
        out["onnxruntime"] = (False, "needs onnxruntime (pip install 'stip-rt[onnx]')")
    if not _has("tensorrt"):
        out["tensorrt"] = (False, "tensorrt not installed (pip install 'stip-rt[trt]' on an NVIDIA GPU machine)")
    elif not cuda:
        out["tensorrt"] = (False, "tensorrt installed but no CUDA GPU")
    else:
        out["tensorrt"] = (True, "TensorRT FP16 engines with the IaP plugin")
    return out
