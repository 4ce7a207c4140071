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
    torch.backends.cuda.matmul.allow_tf32 = False  # exact fp32 tl.dot ("ieee")


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
    if upsample:
        e = F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)
    return iap_reference(e, f, weight, bias)


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
    ref_leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    ref = _literal(*ref_leaves, upsample)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    want = torch.autograd.grad(ref, ref_leaves, grad, allow_unused=True)
    leaves = [t.clone().requires_grad_() for t in (e, f, weight, bias)]
    with use_iap_impl("triton"):
        out = iap(*leaves, upsample=upsample)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(out, leaves, grad)
    for name, a, b in zip(("de", "df", "dW", "db"), got, want):
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=name)


def test_triton_weight_grad_uses_several_splits():
    e, f, weight, bias = _inputs(3, 16, 14, 9, 15, False)  # 3 images x 3 tiles of 64 px, split in 2 (interpret)
    grad = torch.randn(3, 14, 9, 15).to(DEVICE)
    _, _, dw, db = iap_triton.iap_backward_triton(grad, e, f, weight, bias)
    leaves = [t.clone().requires_grad_() for t in (weight, bias)]
    _, _, want_dw, want_db = torch.autograd.grad(
        iap_reference(e.requires_grad_(), f.requires_grad_(), *leaves), (e, f, *leaves), grad
    )
    torch.testing.assert_close(dw, want_dw, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(db, want_db, rtol=1e-4, atol=1e-4)


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
