"""ONNX export: both flavours, ONNX Runtime parity with torch, the plugin node, fp16, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from stip_rt.errors import BackendError
from stip_rt.models import build_model
from stip_rt.nn.iap import iap
from stip_rt.runtime.onnx_export import ExportConfig, cached_onnx, export_onnx, model_fingerprint
from stip_rt.runtime.onnxruntime_backend import OnnxRuntimeBackend

TOL = 1e-4  # of each tensor's max-abs, as the official fixtures


def _parity_model(fixtures_dir, name: str) -> tuple[nn.Module, dict]:
    prefix = fixtures_dir / "official_parity" / name
    model = build_model(prefix.with_suffix(".json"))
    model.load_state_dict(torch.load(prefix.with_suffix(".state_dict.pt"), weights_only=True))
    return model.eval(), dict(np.load(prefix.with_suffix(".io.npz")))


class TinyIaP(nn.Module):
    """Conv stem + the IaP op at half resolution (upsample=True), like STIPNet's head."""

    def __init__(self, c: int = 8, k: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.gen = nn.Conv2d(c, k * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.stem(x))
        return iap(nn.functional.avg_pool2d(f, 2), f, self.gen.weight, self.gen.bias, upsample=True)


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.fixture(scope="module")
def stip(fixtures_dir, tmp_path_factory):
    model, io = _parity_model(fixtures_dir, "stipnet_c16_crowdpose14")
    folder = tmp_path_factory.mktemp("stip_onnx")
    standard = export_onnx(model, folder / "standard.onnx")
    plugin = export_onnx(model, folder / "plugin.onnx", ExportConfig(flavour="plugin"))
    return model, io, standard, plugin


def test_stip_standard_flavour_matches_torch_and_the_official_output(stip) -> None:
    model, io, standard, _ = stip
    proto = onnx.load(str(standard))
    assert not [n for n in proto.graph.node if n.domain not in ("", "ai.onnx")]
    x = torch.from_numpy(io["input"])
    out = OnnxRuntimeBackend(standard).infer(x).numpy()
    with torch.no_grad():
        ref = model(x).numpy()
    assert out.shape == (3, 14, 64, 48)
    assert _rel_err(out, ref) < TOL
    assert _rel_err(out, io["keypoint_0"]) < TOL


def test_dynamic_batch_axis(stip) -> None:
    model, io, standard, plugin = stip
    for path in (standard, plugin):
        dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
        assert dim[0].dim_param and [d.dim_value for d in dim[1:]] == [3, 128, 96]
    backend = OnnxRuntimeBackend(standard)
    x = torch.from_numpy(io["input"])
    with torch.no_grad():
        ref = model(x[:1]).numpy()
    assert _rel_err(backend.infer(x[:1]).numpy(), ref) < TOL
    five = torch.cat([x, x[:2]])
    assert backend.infer(five).shape[0] == 5
    assert backend.infer(x[:0]).shape == (0, 14, 64, 48)


def test_stip_plugin_flavour_has_one_iap_node_with_the_plugin_attributes(stip) -> None:
    _, _, standard, plugin = stip
    proto = onnx.load(str(plugin))
    onnx.checker.check_model(proto)
    nodes = [n for n in proto.graph.node if n.op_type == "IaP"]
    assert len(nodes) == 1
    node = nodes[0]
    assert node.domain == "stip_rt"
    assert ("stip_rt", 1) in {(o.domain, o.version) for o in proto.opset_import}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {"upsample": 1, "channels": 16, "joints": 14, "plugin_namespace": b"stip_rt", "aot": 1}
    assert len(node.input) == 4

    # the decomposed IaP (its ReduceMean over C) is gone; the rest of the graph is the same
    def count(p: onnx.ModelProto, op: str) -> int:
        return sum(1 for n in p.graph.node if n.op_type == op)

    std = onnx.load(str(standard))
    assert count(std, "ReduceMean") - count(proto, "ReduceMean") == 1
    assert count(std, "Conv") - count(proto, "Conv") == 1


def test_plugin_flavour_in_onnxruntime_is_a_clear_error(stip) -> None:
    with pytest.raises(BackendError, match="standard"):
        OnnxRuntimeBackend(stip[3])


def test_hrnet_standard_flavour_matches_torch(fixtures_dir, tmp_path) -> None:
    model, io = _parity_model(fixtures_dir, "hrnet_c16_coco17")
    path = export_onnx(model, tmp_path / "hrnet.onnx")
    x = torch.from_numpy(io["input"])
    out = OnnxRuntimeBackend(path).infer(x).numpy()
    with torch.no_grad():
        ref = model(x).numpy()
    assert out.shape == (3, 17, 32, 24)
    assert _rel_err(out, ref) < TOL
    assert _rel_err(out, io["keypoint_0"]) < TOL


def test_fp16_export_has_fp16_graph_and_fp32_io(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyIaP().eval()
    path = export_onnx(model, tmp_path / "tiny16.onnx", ExportConfig(flavour="plugin", fp16=True), input_size=(16, 12))
    proto = onnx.load(str(path))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == f32
    assert proto.graph.output[0].type.tensor_type.elem_type == f32
    assert {t.data_type for t in proto.graph.initializer if t.dims and len(t.dims) > 1} == {f16}
    (node,) = [n for n in proto.graph.node if n.op_type == "IaP"]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}["joints"] == 5
    assert model.gen.weight.dtype == torch.float32  # the caller's model is untouched


def test_fp16_standard_export_runs_close_to_fp32(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyIaP().eval()
    path = export_onnx(model, tmp_path / "tiny16s.onnx", ExportConfig(fp16=True), input_size=(16, 12))
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        ref = model(x).numpy()
    out = OnnxRuntimeBackend(path, precision="fp16").infer(x).numpy()
    assert _rel_err(out, ref) < 1e-2  # FP16 tolerance


def test_export_errors(tmp_path) -> None:
    model = TinyIaP()
    with pytest.raises(BackendError, match="flavour 'plugins'"):
        export_onnx(model, tmp_path / "x.onnx", ExportConfig(flavour="plugins"), input_size=(16, 12))
    with pytest.raises(BackendError, match="input size unknown"):
        export_onnx(model, tmp_path / "x.onnx")

    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(BackendError, match="export of Broken failed"):
        export_onnx(Broken(), tmp_path / "x.onnx", input_size=(16, 12))


def test_generic_module_without_iap_exports(tmp_path) -> None:
    """The detector path: any module, several outputs, no IaP."""

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.conv(x)
            return y, y.flatten(1).sigmoid()

    model = TwoHeads().eval()
    path = export_onnx(model, tmp_path / "det.onnx", ExportConfig(output_names=("a", "b")), input_size=(32, 32))
    backend = OnnxRuntimeBackend(path)
    x = torch.randn(3, 3, 32, 32)
    a, b = backend.infer_all(x)
    with torch.no_grad():
        ra, rb = model(x)
    assert torch.allclose(a, ra, atol=1e-5) and torch.allclose(b, rb, atol=1e-5)


def test_cached_onnx_reuses_and_refreshes(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyIaP().eval()
    first = cached_onnx(model, input_size=(16, 12), cache_dir=tmp_path)
    assert cached_onnx(model, input_size=(16, 12), cache_dir=tmp_path) == first
    before = model_fingerprint(model)
    with torch.no_grad():
        model.gen.bias.add_(1.0)
    assert model_fingerprint(model) != before
    assert cached_onnx(model, input_size=(16, 12), cache_dir=tmp_path) != first


def test_export_hides_only_the_torchvision_notices(tmp_path) -> None:
    import logging

    from stip_rt.runtime.onnx_export import _REGISTRATION_LOGGER, _not_torchvision_notice

    registration = logging.getLogger(_REGISTRATION_LOGGER)

    def record(msg: str) -> logging.LogRecord:
        return registration.makeRecord(registration.name, logging.WARNING, __file__, 1, msg, (), None)

    assert not _not_torchvision_notice(record("torchvision is not installed. Skipping torchvision::nms"))
    assert _not_torchvision_notice(record("something else the exporter says"))
    seen: list[str] = []

    class Collect(logging.Handler):  # torch.onnx does not propagate to the root logger: listen on the logger
        def emit(self, r: logging.LogRecord) -> None:
            seen.append(r.getMessage())

    handler = Collect(logging.DEBUG)
    registration.addHandler(handler)
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16))
        assert not [m for m in seen if "torchvision" in m], seen
        registration.warning("torchvision is not installed. Skipping torchvision::nms")  # outside an export
        assert seen == ["torchvision is not installed. Skipping torchvision::nms"]  # shown again
    finally:
        registration.removeHandler(handler)
