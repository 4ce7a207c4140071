"""STIPNet's inference forward (IaP with ``upsample=True``) equals the official fixture with each
IaP implementation (the Triton one runs interpreted in ``iap_triton_cases.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stip_rt.models import build_model
from stip_rt.nn.iap import use_iap_impl

TOL = 1e-4  # of the fixture's max |value| (fixtures README)


@pytest.fixture(scope="module")
def stipnet(fixtures_dir: Path):
    prefix = fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14"
    ref = dict(np.load(f"{prefix}.io.npz"))
    model = build_model(f"{prefix}.json", weights=f"{prefix}.state_dict.pt").eval()
    return model, torch.from_numpy(ref["input"]), ref["keypoint_0"]


@pytest.mark.parametrize("impl", ["reference", "cpu", "auto"])
def test_iap_stipnet_forward_equals_official_keypoint_0(stipnet, impl: str) -> None:
    model, x, want = stipnet
    with torch.no_grad(), use_iap_impl(impl):
        out = model(x).numpy()
    assert out.shape == want.shape
    err = np.abs(out - want).max() / np.abs(want).max()
    assert err <= TOL, f"impl {impl}: relative error {err:.2e}"


def test_iap_stipnet_inference_calls_the_fused_op(stipnet, monkeypatch) -> None:
    from stip_rt.nn import iap as iap_mod

    seen = []
    real = iap_mod.iap_forward_cpu
    monkeypatch.setattr(iap_mod, "iap_forward_cpu", lambda *a: seen.append(a[4]) or real(*a))
    model, x, _ = stipnet
    with torch.no_grad():
        model(x[:1])
    assert seen == [True]  # one call, with the upsample folded into the op
