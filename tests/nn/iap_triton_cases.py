"""Triton IaP kernels vs the reference. Not collected directly: ``test_iap_triton.py`` runs this file
in a subprocess, with ``TRITON_INTERPRET=1`` on the CPU (so the flag never leaks into other tests)
or with ``STIP_RT_IAP_DEVICE=cuda`` on a GPU."""

from __future__ import annotations

import os

DEVICE = os.environ.get("STIP_RT_IAP_DEVICE", "cpu")
if DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"  # before stip_rt.nn.iap_triton (and its @triton.jit) is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stip_rt.nn import iap_triton  # noqa: E402
from stip_rt.nn.iap import iap, iap_reference, use_iap_impl  # noqa: E402

if DEVICE == "cuda":
    # The references (conv2d through cuDNN, bmm through cuBLAS) must be exact fp32 too: cuDNN
    # convolutions default to TF32 (torch.backends.cudnn.conv.fp32_precision == "tf32"), which is
    # what made the fp32 cases fail on the GPU with TF32-sized errors while the kernels were IEEE.
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    # One autotune config for the equality cases: autotuning compiles every config for every new
    # (K, C, H, W) key, about 50 compiles for the cases below (over a minute on a cold Triton cache,
    # seen on an H200). test_every_autotune_config_equals_reference checks each config once.
    ALL_CONFIGS = list(iap_triton._iap_fwd_tuned.configs)
    iap_triton._iap_fwd_tuned.configs = ALL_CONFIGS[1:2]


def _inputs(n, c, k, h, w, upsample, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hl, wl = (h // 2, w // 2) if upsample else (h, w)
    tensors = (
        torch.randn(n, c, hl, wl, generator=gen),
        torch.randn(n, c, h, w, generator=gen),
        torch.randn(k * c, c, generator=gen) / c**0.5,
        torch.randn(k * c, generator=gen),
    )
    return [t.to(device=DEVICE, dtype=dtype) for t in tensors]


def _literal(e, f, weight, bias, upsample):
    """The literal formula computed in float64 (exact whatever the device's TF32 settings), in e's dtype."""
    e64, f64, w64, b64 = (t.double() for t in (e, f, weight, bias))
    if upsample:
        e64 = F.interpolate(e64, scale_factor=2, mode="bilinear", align_corners=False)
    return iap_reference(e64, f64, w64, b64).to(e.dtype)


def test_fp32_dot_precision_is_ieee_whatever_the_tf32_flags():
    """fp32 kernels are exact whether or not PyTorch's global TF32 switches are on (old or new API)."""
    matmul = torch.backends.cuda.matmul
    new_api = hasattr(matmul, "fp32_precision")
    before = matmul.fp32_precision if new_api else matmul.allow_tf32
    try:
        if new_api:
            matmul.fp32_precision = "tf32"  # reading matmul.allow_tf32 now raises (mixed APIs)
        else:
            matmul.allow_tf32 = True
        assert iap_triton.input_precision(torch.float32) == "ieee"
    finally:
        if new_api:
            matmul.fp32_precision = before
        else:
            matmul.allow_tf32 = before
    assert iap_triton.input_precision(torch.float16) == iap_triton.input_precision(torch.bfloat16) == "tf32"


def test_every_kernel_launch_passes_the_dtype_precision(monkeypatch):
    """Forward and both backward kernels get INPUT_PRECISION from input_precision(e.dtype)."""
    seen = []
    real = iap_triton.input_precision

    def spy(dtype):
        seen.append(real(dtype))
        return seen[-1]

    monkeypatch.setattr(iap_triton, "input_precision", spy)
    e, f, weight, bias = _inputs(1, 16, 2, 4, 4, False)
    iap_triton.iap_forward_triton(e, f, weight, bias, False)
    iap_triton.iap_backward_triton(torch.ones(1, 2, 4, 4, device=DEVICE), e, f, weight, bias)
    assert seen and set(seen) == {"ieee"}


FWD = [  # n, c, k, h, w, upsample
    (1, 32, 17, 9, 7, False),
    (3, 48, 14, 5, 11, False),
    (3, 16, 17, 13, 3, False),
    (0, 32, 14, 5, 7, False),
    (1, 32, 14, 10, 14, True),
    (3, 16, 17, 6, 10, True),
    (1, 48, 17, 14, 6, True),
    (0, 16, 14, 4, 6, True),
]


@pytest.mark.skipif(DEVICE != "cuda", reason="the interpreter runs one fixed BLOCK_P, not the autotuned configs")
@pytest.mark.parametrize("config", range(len(iap_triton._FWD_CONFIGS)))
def test_every_autotune_config_equals_reference(config, monkeypatch):
    monkeypatch.setattr(iap_triton._iap_fwd_tuned, "configs", [iap_triton._FWD_CONFIGS[config]])
    for upsample in (False, True):
        e, f, weight, bias = _inputs(2, 32, 17, 12, 10, upsample)
        out = iap_triton.iap_forward_triton(e, f, weight, bias, upsample)
        torch.testing.assert_close(out, _literal(e, f, weight, bias, upsample), rtol=1e-5, atol=1e-5)


def test_interpret_mode_matches_device():
    assert (DEVICE == "cpu") == iap_triton.INTERPRET


@pytest.mark.parametrize(("n", "c", "k", "h", "w", "upsample"), FWD)
def test_triton_forward_equals_reference(n, c, k, h, w, upsample):
    e, f, weight, bias = _inputs(n, c, k, h, w, upsample)
    out = iap_triton.iap_forward_triton(e, f, weight, bias, upsample)
    ref = _literal(e, f, weight, bias, upsample)
    assert out.shape == (n, k, h, w) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_half_inputs(dtype):
    if dtype == torch.bfloat16 and DEVICE == "cpu":
        pytest.skip("Triton 3.9's interpreter runs tl.dot on bf16 as raw uint16 (np.matmul); checked on CUDA")
    e, f, weight, bias = _inputs(2, 32, 17, 8, 10, True)
    ref = _literal(e, f, weight, bias, True)
    out = iap_triton.iap_forward_triton(e.to(dtype), f.to(dtype), weight.to(dtype), bias.to(dtype), True)
    assert out.dtype == dtype
    tol = (2e-2 if dtype == torch.bfloat16 else 2e-3) * ref.abs().max().item()
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=tol)


@pytest.mark.parametrize(("n", "c", "k", "h", "w", "upsample"), [FWD[0], FWD[1], FWD[3], FWD[4], FWD[5]])
def test_triton_gradients_equal_reference(n, c, k, h, w, upsample):
    e, f, weight, bias = _inputs(n, c, k, h, w, upsample)
    ref_leaves = [t.double().requires_grad_() for t in (e, f, weight, bias)]  # float64 reference
    ref = _literal(*ref_leaves, upsample)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    grads = torch.autograd.grad(ref, ref_leaves, grad.double(), allow_unused=True)
    want = [None if g is None else g.float() for g in grads]
    leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    with use_iap_impl("triton"):
        out = iap(*leaves, upsample=upsample)
    torch.testing.assert_close(out, ref.detach().float(), rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(out, leaves, grad)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=name)


def test_triton_weight_grad_uses_several_splits():
    e, f, weight, bias = _inputs(3, 16, 14, 9, 15, False)  # 3 images x 3 tiles of 64 px, split in 2 (interpret)
    grad = torch.randn(3, 14, 9, 15).to(DEVICE)
    _, _, dw, db = iap_triton.iap_backward_triton(grad, e, f, weight, bias)
    leaves = [t.double().requires_grad_() for t in (e, f, weight, bias)]  # float64 reference
    _, _, want_dw, want_db = torch.autograd.grad(iap_reference(*leaves), leaves, grad.double())
    torch.testing.assert_close(dw, want_dw.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(db, want_db.float(), rtol=1e-4, atol=1e-4)


def test_launch_grid_helper():
    assert iap_triton.iap_fwd_grid(3, 9, 7, 32) == (2, 3, 1)
    assert iap_triton.block_c(48) == 64 and iap_triton.block_c(14) == 16


def test_stipnet_parity_fixture_with_triton(fixtures_dir, monkeypatch):
    from stip_rt.models import build_model

    monkeypatch.setattr(iap_triton, "INTERPRET_BLOCK_P", 1024)  # fewer interpreted programs
    prefix = fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14"
    ref = dict(np.load(f"{prefix}.io.npz"))
    model = build_model(f"{prefix}.json", weights=f"{prefix}.state_dict.pt").eval().to(DEVICE)
    with torch.no_grad(), use_iap_impl("triton"):
        out = model(torch.from_numpy(ref["input"]).to(DEVICE)).cpu().numpy()
    want = ref["keypoint_0"]
    assert np.abs(out - want).max() <= 1e-4 * np.abs(want).max()
