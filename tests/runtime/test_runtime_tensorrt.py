"""TensorRT backend: config checks everywhere; engines only where TensorRT and a GPU exist."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from stip_rt.errors import BackendError
from stip_rt.runtime import tensorrt_backend as tb

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.mark.parametrize("profile", [(0, 8, 64), (8, 1, 64), (1, 128, 64)])
def test_bad_profiles(profile: tuple[int, int, int]) -> None:
    with pytest.raises(BackendError, match="min <= opt <= max"):
        tb.TensorRTConfig(profile=profile)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_import_without_tensorrt_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        tb.import_tensorrt()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_backend_without_gpu(tmp_path) -> None:
    with pytest.raises(BackendError, match="needs an NVIDIA GPU"):
        tb.TensorRTBackend(tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory):
    from stip_rt.models import build_model
    from stip_rt.runtime.onnx_export import ExportConfig, export_onnx

    torch.manual_seed(0)
    model = build_model("stip-w32-coco-256x192").eval()
    folder = tmp_path_factory.mktemp("trt")
    plugin = export_onnx(model, folder / "plugin.onnx", ExportConfig(flavour="plugin", fp16=True))
    standard = export_onnx(model, folder / "standard.onnx", ExportConfig(fp16=True))
    return model, plugin, standard


@pytest.mark.tensorrt
@pytest.mark.parametrize("flavour", ["plugin", "standard"])
def test_engine_matches_fp32_eager(onnx_pair, flavour: str, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path))
    model, plugin, standard = onnx_pair
    backend = tb.TensorRTBackend(plugin if flavour == "plugin" else standard, fallback_onnx=None)
    assert backend.plugin == (flavour == "plugin")
    ref_model = model.to("cuda")
    for n in (1, 7, 64, 65):
        x = torch.randn(n, 3, 256, 192, device="cuda")
        with torch.inference_mode():
            ref = ref_model(x)
        out = backend.infer(x)
        assert out.shape == ref.shape
        assert ((out - ref).abs().max() / ref.abs().max()).item() < 2e-2
    # second construction loads the cached plan
    again = tb.TensorRTBackend(plugin if flavour == "plugin" else standard)
    assert again.describe().startswith("tensorrt")
