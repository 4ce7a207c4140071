"""The IaP op: reference vs the tiled path, gradients, op registration, dispatch and export flavours."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stip_rt.errors import BackendError, ConfigError
from stip_rt.nn import iap as iap_mod
from stip_rt.nn.iap import get_iap_impl, iap, iap_reference, set_iap_impl, use_iap_impl
from stip_rt.nn.iap_cpu import iap_backward_cpu, iap_forward_cpu


def _inputs(n, c, k, h, w, upsample=False, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hl, wl = (h // 2, w // 2) if upsample else (h, w)
    e = torch.randn(n, c, hl, wl, generator=gen, dtype=dtype)
    f = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(k * c, c, generator=gen, dtype=dtype) / c**0.5
    bias = torch.randn(k * c, generator=gen, dtype=dtype)
    return e, f, weight, bias


def _literal(e, f, weight, bias, upsample):
    """Upsample-then-generate with the reference (what the network computes)."""
    if upsample:
        e = F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)
    return iap_reference(e, f, weight, bias)


SHAPES = [  # n, c, k, h, w, upsample
    (1, 32, 17, 7, 9, False),
    (3, 48, 14, 11, 5, False),
    (0, 16, 17, 5, 7, False),
    (2, 32, 14, 10, 14, True),
    (1, 16, 17, 6, 18, True),
    (0, 32, 14, 4, 6, True),
]


@pytest.mark.parametrize(("n", "c", "k", "h", "w", "upsample"), SHAPES)
@pytest.mark.parametrize("tile_bytes", [3000, 2 << 20])
def test_iap_cpu_forward_equals_reference(n, c, k, h, w, upsample, tile_bytes):
    e, f, weight, bias = _inputs(n, c, k, h, w, upsample)
    out = iap_forward_cpu(e, f, weight, bias, upsample, tile_bytes=tile_bytes)
    ref = _literal(e, f, weight, bias, upsample)
    assert out.shape == (n, k, h, w) and out.dtype == e.dtype
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n", "c", "k", "h", "w"), [(2, 32, 17, 7, 9), (1, 16, 14, 5, 3)])
def test_iap_cpu_backward_equals_reference_gradients(n, c, k, h, w):
    e, f, weight, bias = _inputs(n, c, k, h, w)
    leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    out = iap_reference(*leaves)
    grad = torch.randn_like(out)
    want = torch.autograd.grad(out, leaves, grad)
    got = iap_backward_cpu(grad, e, f, weight, bias, tile_bytes=5000)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11, msg=name)


@pytest.mark.parametrize("upsample", [False, True])
def test_iap_reference_gradcheck(upsample):
    e, f, weight, bias = _inputs(2, 3, 2, 4, 6, upsample)
    args = [t.requires_grad_() for t in (e, f, weight, bias)]
    with use_iap_impl("reference"):
        assert torch.autograd.gradcheck(lambda *a: iap(*a, upsample=upsample), args)


@pytest.mark.parametrize("upsample", [False, True])
def test_iap_op_gradcheck_cpu_path(upsample):
    e, f, weight, bias = _inputs(1, 3, 2, 4, 4, upsample)
    args = [t.requires_grad_() for t in (e, f, weight, bias)]
    with use_iap_impl("cpu"):
        assert torch.autograd.gradcheck(lambda *a: iap(*a, upsample=upsample), args)


@pytest.mark.parametrize("impl", ["reference", "cpu", "auto"])
@pytest.mark.parametrize("upsample", [False, True])
def test_iap_op_grads_equal_reference(impl, upsample):
    e, f, weight, bias = _inputs(2, 32, 17, 8, 10, upsample, dtype=torch.float32)
    ref_leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    ref = _literal(*ref_leaves, upsample)
    grad = torch.randn_like(ref)
    want = torch.autograd.grad(ref, ref_leaves, grad)
    leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    with use_iap_impl(impl):
        out = iap(*leaves, upsample=upsample)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(out, leaves, grad)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("layout", ["e", "f", "e+f+grad"])
def test_iap_op_grads_on_channels_last_inputs(impl, upsample, layout):
    # training runs the network channels-last: e, f (and the incoming gradient) arrive in that layout
    cl = torch.channels_last
    e, f, weight, bias = _inputs(2, 8, 3, 6, 10, upsample)
    ref_leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    ref = _literal(*ref_leaves, upsample)
    grad = torch.randn_like(ref)
    want = torch.autograd.grad(ref, ref_leaves, grad)
    e_in = e.contiguous(memory_format=cl) if "e" in layout else e.clone()
    f_in = f.contiguous(memory_format=cl) if "f" in layout else f.clone()
    g_in = grad.contiguous(memory_format=cl) if "grad" in layout else grad
    leaves = [e_in, f_in, weight.clone(), bias.clone()]
    for t in leaves:
        t.requires_grad_()
    with use_iap_impl(impl):
        out = iap(*leaves, upsample=upsample)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(out, leaves, g_in)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11, msg=name)


@pytest.mark.parametrize("layout", ["grad", "e", "f", "grad+e+f"])
def test_iap_cpu_backward_takes_channels_last_tensors(layout):
    e, f, weight, bias = _inputs(1, 16, 14, 5, 7)
    grad = torch.randn(1, 14, 5, 7, dtype=e.dtype)
    want = iap_backward_cpu(grad, e, f, weight, bias, tile_bytes=5000)
    args = {"grad": grad, "e": e, "f": f}
    args = {k: t.contiguous(memory_format=torch.channels_last) if k in layout else t for k, t in args.items()}
    got = iap_backward_cpu(args["grad"], args["e"], args["f"], weight, bias, tile_bytes=5000)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_iap_half_inputs_keep_their_dtype(dtype):
    e, f, weight, bias = _inputs(2, 16, 14, 6, 8, True, dtype=torch.float32)
    ref = _literal(e, f, weight, bias, True)
    out = iap(e.to(dtype), f.to(dtype), weight, bias, upsample=True)
    assert out.dtype == dtype
    tol = 2e-2 if dtype == torch.bfloat16 else 3e-3
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol * ref.abs().max().item())


def test_iap_accepts_conv_weight_and_no_bias():
    e, f, weight, _ = _inputs(1, 8, 3, 5, 5)
    out = iap(e, f, weight.reshape(24, 8, 1, 1), None)
    torch.testing.assert_close(out, iap_reference(e, f, weight, None))


def test_iap_op_registration_opcheck():
    e, f, weight, bias = _inputs(2, 8, 3, 4, 6, dtype=torch.float32)
    torch.library.opcheck(torch.ops.stip_rt.iap.default, (e, f, weight, bias, False))
    el, f2, _, _ = _inputs(2, 8, 3, 4, 6, upsample=True, dtype=torch.float32)
    torch.library.opcheck(torch.ops.stip_rt.iap.default, (el.requires_grad_(), f2, weight, bias, True))


def test_iap_torch_export_sees_one_node_and_reference_none():
    e, f, _, _ = _inputs(2, 8, 3, 4, 6, upsample=True, dtype=torch.float32)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = torch.nn.Conv2d(8, 24, 1)

        def forward(self, q, g):
            return iap(q, g, self.gen.weight, self.gen.bias, upsample=True)

    def targets(impl):
        with use_iap_impl(impl):
            prog = torch.export.export(Head(), (e, f))
        return [str(node.target) for node in prog.graph.nodes if node.op == "call_function"]

    plugin = targets("auto")
    assert plugin.count("stip_rt.iap.default") == 1, plugin
    assert all("stip_rt" not in t for t in targets("reference"))


def test_iap_torch_compile_fullgraph():
    e, f, weight, bias = _inputs(2, 8, 3, 4, 6, upsample=True, dtype=torch.float32)
    e.requires_grad_()
    fn = torch.compile(lambda *a: iap(*a, upsample=True), backend="aot_eager", fullgraph=True)
    out = fn(e, f, weight, bias)
    torch.testing.assert_close(out, _literal(e, f, weight, bias, True), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert e.grad is not None and e.grad.shape == e.shape


def test_iap_impl_selection_and_errors():
    assert get_iap_impl() == "auto"
    with use_iap_impl("cpu"):
        assert get_iap_impl() == "cpu"
        with use_iap_impl("reference"):
            assert get_iap_impl() == "reference"
        assert get_iap_impl() == "cpu"
    assert get_iap_impl() == "auto"
    set_iap_impl("reference")
    try:
        assert get_iap_impl() == "reference"
    finally:
        set_iap_impl("auto")
    with pytest.raises(ConfigError, match="did you mean 'triton'"), use_iap_impl("tritn"):
        pass
    with pytest.raises(ConfigError, match="unknown IaP implementation 'gpu'"):
        set_iap_impl("gpu")


def test_iap_auto_on_cpu_uses_tiled_path(monkeypatch):
    calls = []
    monkeypatch.setattr(iap_mod, "iap_forward_cpu", lambda *a: calls.append(a) or iap_forward_cpu(*a))
    e, f, weight, bias = _inputs(1, 8, 3, 4, 6, dtype=torch.float32)
    iap(e, f, weight, bias)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((1, 8, 4, 6), (1, 8, 4, 6), (24, 8), (24,), True), "expected \\(1, 8, 2, 3\\)"),
        (((1, 8, 4, 6), (1, 8, 4, 6), (24, 7), (24,), False), "weight must be"),
        (((1, 8, 4, 6), (1, 8, 4, 6), (24, 8), (23,), False), "bias must be"),
        (((1, 8, 2, 3), (1, 8, 5, 6), (24, 8), (24,), True), "expected"),
    ],
)
def test_iap_rejects_bad_shapes(shapes, match):
    args = [torch.zeros(s) for s in shapes[:4]]
    for impl in ("reference", "cpu"):
        with pytest.raises(ValueError, match=match), use_iap_impl(impl):
            iap(*args, upsample=shapes[4])


def test_iap_triton_on_cpu_without_interpreter_is_a_backend_error(monkeypatch):
    triton_mod = pytest.importorskip("stip_rt.nn.iap_triton")
    monkeypatch.setattr(triton_mod, "INTERPRET", False)
    e, f, weight, bias = _inputs(1, 8, 3, 4, 6, dtype=torch.float32)
    with pytest.raises(BackendError, match="needs CUDA"), use_iap_impl("triton"):
        iap(e, f, weight, bias)


def test_iap_reference_flavour_exports_to_standard_onnx():
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    e, f, weight, bias = _inputs(2, 8, 3, 4, 6, upsample=True, dtype=torch.float32)

    class Head(torch.nn.Module):
        def forward(self, q, g):
            return iap(q, g, weight, bias, upsample=True)

    with use_iap_impl("reference"):
        program = torch.onnx.export(Head(), (e, f), dynamo=True, verbose=False)
    model = program.model_proto
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    (out,) = session.run(None, dict(zip(names, (e.numpy(), f.numpy()))))
    torch.testing.assert_close(torch.from_numpy(out), _literal(e, f, weight, bias, True), rtol=1e-5, atol=1e-5)
