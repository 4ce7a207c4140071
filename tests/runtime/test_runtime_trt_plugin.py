"""The TensorRT IaP plugin parts that need neither TensorRT nor a GPU: AOT PTX, launch arithmetic."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest

from stip_rt.errors import BackendError
from stip_rt.runtime import trt_plugin as tp


def _entry_params(ptx: str, name: str) -> list[str]:
    """Parameter types of the PTX entry point ``name`` (in order)."""
    m = re.search(rf"\.entry {name}\((.*?)\)", ptx, re.S)
    assert m, "entry point not found in PTX"
    return [p.split()[1] for p in m.group(1).split(",")]


@pytest.mark.parametrize("capability", [80, 90])
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_aot_ptx_for_explicit_targets_without_a_gpu(capability: int, dtype: str) -> None:
    kernel = tp.compile_iap_ptx(dtype, channels=32, upsample=True, tactic=tp.TACTICS[1], capability=capability)
    assert kernel.name == "iap_trt_kernel"
    assert re.search(rf"\.target sm_{capability}a?\b", kernel.ptx)
    assert kernel.target == f"sm_{capability}"
    assert kernel.block_x == tp.TACTICS[1].num_warps * 32
    assert 0 < kernel.shared_mem < 228 * 1024
    params = _entry_params(kernel.ptx, kernel.name)
    # TensorRT's AOT convention: 4 input pointers, 4 int32 extra args (K, C, H, W), 1 output pointer;
    # Triton's two scratch pointers follow and are unused (their sizes are checked to be 0)
    assert params[:9] == [".u64"] * 4 + [".u32"] * 4 + [".u64"]
    assert len(params) in (9, 10, 11)
    if dtype == "fp16":
        assert "mma" in kernel.ptx  # tl.dot on tensor cores


def test_tactics_compile_to_distinct_kernels() -> None:
    ptx = {t: tp.compile_iap_ptx("fp16", 16, False, tactic, capability=90).ptx for t, tactic in tp.TACTICS.items()}
    assert len(set(ptx.values())) == len(tp.TACTICS)
    assert all(isinstance(t, int) and t > 0 for t in tp.TACTICS)


def test_bad_dtype_is_refused() -> None:
    with pytest.raises(BackendError, match="bf16"):
        tp.kernel_signature("bf16")


@pytest.mark.parametrize(
    ("n", "h", "w", "block_p", "warps", "grid_x"),
    [
        (1, 128, 96, 64, 4, 192),
        (64, 128, 96, 128, 4, 96),
        (7, 96, 72, 128, 8, 54),
        (3, 5, 7, 64, 4, 1),
        (2, 9, 15, 64, 2, 3),  # 135 pixels → 3 blocks of 64
    ],
)
def test_launch_dims(n: int, h: int, w: int, block_p: int, warps: int, grid_x: int) -> None:
    dims = tp.launch_dims(n, h, w, tp.Tactic(block_p, warps))
    assert dims == {"grid_x": grid_x, "grid_y": n, "grid_z": 1, "block_x": warps * 32}
    assert (dims["grid_x"] - 1) * block_p < h * w <= dims["grid_x"] * block_p


def test_launch_dims_agrees_with_the_eager_grid() -> None:
    from stip_rt.nn.iap_triton import iap_fwd_grid

    for n, h, w, bp in [(1, 128, 96, 64), (5, 33, 17, 128), (64, 96, 72, 256)]:
        dims = tp.launch_dims(n, h, w, tp.Tactic(bp, 4))
        assert (dims["grid_x"], dims["grid_y"], dims["grid_z"]) == iap_fwd_grid(n, h, w, bp)


def test_launch_dims_accepts_symbolic_cdiv() -> None:
    calls = []

    def cdiv(a, b):
        calls.append((a, b))
        return ("cdiv", a, b)

    dims = tp.launch_dims("N", 4, 6, tp.TACTICS[2], cdiv=cdiv)
    assert dims["grid_x"] == ("cdiv", 24, 128) and dims["grid_y"] == "N" and calls == [(24, 128)]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_register_without_tensorrt_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="TensorRT"):
        tp.register_plugin()


def test_trt_argument_order_wrapper_computes_iap_in_the_interpreter() -> None:
    """Run iap_trt_kernel (TensorRT's argument order) under TRITON_INTERPRET=1 against the reference."""
    code = textwrap.dedent(
        """
        import torch
        from stip_rt.nn.iap import iap_reference
        from stip_rt.runtime.trt_plugin import TACTICS, iap_trt_kernel, launch_dims
        from stip_rt.nn.iap_triton import block_c
        import torch.nn.functional as F
        torch.manual_seed(0)
        n, c, k, h, w = 2, 16, 3, 6, 10
        for up in (False, True):
            e = torch.randn(n, c, h // 2 if up else h, w // 2 if up else w)
            f = torch.randn(n, c, h, w)
            wt = torch.randn(k * c, c) / c
            b = torch.randn(k * c)
            out = torch.empty(n, k, h, w)
            d = launch_dims(n, h, w, TACTICS[1])
            iap_trt_kernel[(d["grid_x"], d["grid_y"], 1)](
                e, f, wt, b, k, c, h, w, out,
                UPSAMPLE=up, BLOCK_C=block_c(c), BLOCK_P=TACTICS[1].block_p, INPUT_PRECISION="ieee")
            ee = F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False) if up else e
            ref = iap_reference(ee, f, wt, b)
            err = (out - ref).abs().max().item() / ref.abs().max().item()
            assert err < 1e-4, (up, err)
        print("ok")
        """
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
