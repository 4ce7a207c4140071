"""create_backend: what auto picks, describe(), and one clear BackendError per impossible request."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from stip_rt.errors import BackendError
from stip_rt.models import build_model
from stip_rt.runtime import factory
from stip_rt.runtime.base import Backend
from stip_rt.runtime.onnx_export import export_onnx

TINY = {
    "name": "tiny-stip",
    "arch": "stip",
    "schema": "crowdpose14",
    "num_joints": 14,
    "input_size": (128, 96),
    "heatmap_size": (64, 48),
    "widths": (8, 16, 32, 64),
    "num_modules": (1, 1, 1),
    "num_blocks": 1,
    "stem_blocks": 1,
}
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return build_model(TINY).eval()


@pytest.fixture(autouse=True)
def _cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path_factory.getbasetemp() / "stip_home"))


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU choice")
def test_auto_on_cpu_picks_onnxruntime_and_says_so(tiny, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="stip_rt.runtime.factory"):
        backend = factory.create_backend(tiny)
    assert isinstance(backend, Backend)
    assert (backend.name, backend.device, backend.precision) == ("onnxruntime", "cpu", "fp32")
    assert "onnxruntime fp32 on cpu" in backend.describe() and "picked by auto" in caplog.text
    x = torch.randn(3, 3, 128, 96)
    with torch.no_grad():
        ref = tiny(x)
    out = backend.infer(x)
    assert out.shape == (3, 14, 64, 48)
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU choice")
def test_auto_falls_back_to_torch_without_onnxruntime(tiny, monkeypatch) -> None:
    real = factory._has
    monkeypatch.setattr(factory, "_has", lambda m: False if m == "onnxruntime" else real(m))
    backend = factory.create_backend(tiny)
    assert backend.name == "torch" and factory.describe_backend(backend) == "torch eager fp32 on cpu"


def test_explicit_torch_backend(tiny) -> None:
    backend = factory.create_backend(tiny, backend="torch", device="cpu", precision="fp32")
    assert backend.name == "torch" and backend.infer(torch.zeros(0, 3, 128, 96)).shape[0] == 0


def test_prebuilt_onnx_file(tiny, tmp_path) -> None:
    path = export_onnx(tiny, tmp_path / "tiny.onnx")
    backend = factory.create_backend(path, backend="onnxruntime", device="cpu")
    assert backend.infer(torch.randn(2, 3, 128, 96)).shape == (2, 14, 64, 48)
    same = factory.create_backend(tiny, backend="onnxruntime", device="cpu", onnx=path)
    assert same.path == path


def test_onnx_file_that_does_not_match_the_model(tiny, tmp_path) -> None:
    other = build_model({**TINY, "num_joints": 17, "schema": "coco17"}).eval()
    path = export_onnx(other, tmp_path / "coco.onnx")
    with pytest.raises(BackendError, match=r"coco\.onnx.*17 heatmaps.*14 joints"):
        factory.create_backend(tiny, backend="onnxruntime", device="cpu", onnx=path)
    bigger = build_model({**TINY, "input_size": (160, 128), "heatmap_size": (80, 64)}).eval()
    with pytest.raises(BackendError, match=r"coco\.onnx.*expects \(3, 160, 128\)"):
        factory.create_backend(bigger, backend="onnxruntime", device="cpu", onnx=path)


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without a GPU")
@pytest.mark.parametrize("backend", ["tensorrt", "cuda-fast"], ids=["trt", "fast"])  # no 'tensorrt' keyword
def test_gpu_backends_without_a_gpu(tiny, backend: str) -> None:
    with pytest.raises(BackendError, match=f"backend '{backend}' needs an NVIDIA GPU"):
        factory.create_backend(tiny, backend=backend)


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without a GPU")
def test_cuda_device_without_a_gpu(tiny) -> None:
    with pytest.raises(BackendError, match=r"device 'cuda:1'.*no CUDA GPU"):
        factory.create_backend(tiny, backend="torch", device="cuda:1")


def test_tensorrt_missing(monkeypatch) -> None:
    real = factory._has
    monkeypatch.setattr(factory, "_has", lambda m: False if m == "tensorrt" else real(m))
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        factory.resolve_backend("tensorrt", "cuda")
    assert factory.resolve_backend("auto", "cuda") in ("cuda-fast", "torch")


def test_auto_on_cuda_prefers_tensorrt_then_cuda_fast(monkeypatch) -> None:
    monkeypatch.setattr(factory, "_has", lambda m: True)
    assert factory.resolve_backend("auto", "cuda") == "tensorrt"
    monkeypatch.setattr(factory, "_has", lambda m: m != "tensorrt")
    assert factory.resolve_backend("auto", "cuda:0") == "cuda-fast"
    monkeypatch.setattr(factory, "_has", lambda m: False)
    assert factory.resolve_backend("auto", "cuda") == "torch"
    assert factory.resolve_backend("auto", "cpu") == "torch"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "onnxrt"}, "backend 'onnxrt' is unknown (did you mean 'onnxruntime'?)"),
        ({"device": "gpu"}, "device 'gpu'"),
        ({"precision": "fp61"}, "precision 'fp61' is unknown (did you mean 'fp16'?)"),
        ({"backend": "onnxruntime", "device": "cpu", "precision": "fp16"}, "fp32 only"),
    ],
)
def test_bad_requests(tiny, kwargs: dict, message: str) -> None:
    with pytest.raises(BackendError) as info:
        factory.create_backend(tiny, **kwargs)
    assert message in str(info.value)


def test_file_model_needs_a_file_backend(tmp_path) -> None:
    with pytest.raises(BackendError, match="needs a PyTorch model"):
        factory.create_backend(tmp_path / "m.onnx", backend="torch", device="cpu")


def test_resolve_precision() -> None:
    assert factory.resolve_precision("auto", "cpu") == "fp32"
    assert factory.resolve_precision("auto", "cuda:0") == "fp16"
    assert factory.resolve_precision("bf16", "cuda") == "bf16"
