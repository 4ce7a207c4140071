"""Triton kernels of the IaP op (forward and backward); CUDA, or CPU under ``TRITON_INTERPRET=1``.

Forward, one program per (tile of ``BLOCK_P`` pixels, image ``n``): the tile of ``e``
(C × P) and ``f`` (C × P) is loaded once; for every joint ``k`` the generator rows
``W_k`` (C × C) multiply it on the tensor cores, ``Z = tl.dot(W_k, E)`` (fp32
accumulation), and the epilogue ``Σ_c f·(Z + b_k) / C`` runs in registers, so the
N×K×C×H×W kernels are never written anywhere. Looping ``k`` inside the program is the
GEMM (K·C × C) · (C × P) in M-slices of C rows, one per joint group that the epilogue
reduces.

``UPSAMPLE``: ``e`` is given at (H/2, W/2) and each pixel's embedding is interpolated
×2 (bilinear, align_corners=False, edge clamp) while loading, i.e. upsample-then-generate
fused into the load. Generating at low resolution instead would save 3/4 of the MACs,
but those run on tensor cores, while upsampling Z would add K·C-channel elementwise work
on the CUDA cores and cross-pixel shuffles Triton cannot express (docs/iap.md).

The TensorRT plugin compiles :func:`iap_fwd_kernel` ahead of time: its arguments,
constexprs and :func:`iap_fwd_grid` are the contract (``iap_fwd_kernel.fn`` is the
undecorated source function, also in interpret mode). All tensors are contiguous NCHW;
``w`` is (K·C, C) in the dtype of ``e``; ``b`` is (K·C,) (any float dtype; read as fp32).

Interpret mode: set ``TRITON_INTERPRET=1`` *before this module is imported* (Triton reads
it when ``@triton.jit`` runs); autotuning is skipped there and :data:`INTERPRET_BLOCK_P`
is used.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

INTERPRET: bool = (
    bool(triton.knobs.runtime.interpret)
    if hasattr(triton, "knobs")
    else (os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes"))
)
"""True when ``@triton.jit`` built interpreter kernels (Triton < 3.4 has no ``knobs``: read the variable)."""
INTERPRET_BLOCK_P = 64
"""Pixels per program in interpret mode (bigger = fewer, faster interpreted programs)."""

_FWD_CONFIGS = [
    triton.Config({"BLOCK_P": bp}, num_warps=nw, num_stages=ns)
    for bp, nw, ns in [(32, 2, 2), (64, 4, 2), (128, 4, 2), (128, 8, 3), (256, 8, 2)]
]


@triton.jit
def iap_fwd_kernel(
    e_ptr,
    f_ptr,
    w_ptr,
    b_ptr,
    out_ptr,
    K,
    C,
    H,
    W,
    UPSAMPLE: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """out[n,k,p] = (1/C)·Σ_c f[n,c,p]·(b[kC+c] + Σ_c' w[kC+c,c']·e[n,c',p]).

    Args:
        e_ptr: (N, C, H, W) embeddings, or (N, C, H//2, W//2) with UPSAMPLE; fp16/bf16/fp32.
        f_ptr: (N, C, H, W) refined features, same dtype as e.
        w_ptr: (K·C, C) generator weight, same dtype as e.
        b_ptr: (K·C,) generator bias.
        out_ptr: (N, K, H, W) output; its element type sets the stored dtype.
        K, C, H, W: joints, channels, output height and width (pixels).
        UPSAMPLE: read e at half resolution through a ×2 bilinear interpolation.
        BLOCK_C: next power of two ≥ max(C, 16) (tl.dot needs ≥ 16).
        BLOCK_P: pixels per program (autotuned).
        INPUT_PRECISION: tl.dot precision, "ieee" for fp32 inputs, "tf32" otherwise (ignored for fp16/bf16).

    Grid: :func:`iap_fwd_grid` = (cdiv(H·W, BLOCK_P), N, 1).
    """
    pid_p = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    hw = H * W
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_c = tl.arange(0, BLOCK_C)
    mask_p = offs_p < hw
    mask_c = offs_c < C
    mask_cp = mask_c[:, None] & mask_p[None, :]
    ft = tl.load(f_ptr + n * C * hw + offs_c[:, None] * hw + offs_p[None, :], mask=mask_cp, other=0.0)
    ft = ft.to(tl.float32)
    if UPSAMPLE:
        hl = H // 2
        wl = W // 2
        y = offs_p // W
        x = offs_p % W
        y0 = y // 2
        x0 = x // 2
        y1 = tl.minimum(tl.maximum(tl.where(y % 2 == 0, y0 - 1, y0 + 1), 0), hl - 1)
        x1 = tl.minimum(tl.maximum(tl.where(x % 2 == 0, x0 - 1, x0 + 1), 0), wl - 1)
        base = e_ptr + n * C * hl * wl + offs_c[:, None] * (hl * wl)
        e00 = tl.load(base + (y0 * wl + x0)[None, :], mask=mask_cp, other=0.0).to(tl.float32)
        e01 = tl.load(base + (y0 * wl + x1)[None, :], mask=mask_cp, other=0.0).to(tl.float32)
        e10 = tl.load(base + (y1 * wl + x0)[None, :], mask=mask_cp, other=0.0).to(tl.float32)
        e11 = tl.load(base + (y1 * wl + x1)[None, :], mask=mask_cp, other=0.0).to(tl.float32)
        et = (0.75 * (0.75 * e00 + 0.25 * e01) + 0.25 * (0.75 * e10 + 0.25 * e11)).to(e_ptr.dtype.element_ty)
    else:
        et = tl.load(e_ptr + n * C * hw + offs_c[:, None] * hw + offs_p[None, :], mask=mask_cp, other=0.0)
    w_offs = offs_c[:, None] * C + offs_c[None, :]
    w_mask = mask_c[:, None] & mask_c[None, :]
    out_base = out_ptr + n * K * hw + offs_p
    for k in range(K):
        wk = tl.load(w_ptr + k * C * C + w_offs, mask=w_mask, other=0.0)
        bk = tl.load(b_ptr + k * C + offs_c, mask=mask_c, other=0.0).to(tl.float32)
        z = tl.dot(wk, et, input_precision=INPUT_PRECISION) + bk[:, None]
        s = tl.sum(z * ft, axis=0) / C
        tl.store(out_base + k * hw, s.to(out_ptr.dtype.element_ty), mask=mask_p)


@triton.jit
def iap_bwd_input_kernel(
    g_ptr,
    e_ptr,
    f_ptr,
    w_ptr,
    b_ptr,
    de_ptr,
    df_ptr,
    K,
    C,
    HW,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """de and df of the plain op (full-resolution e), Z recomputed. Grid (cdiv(HW, BLOCK_P), N).

    With ``g = dY/C``: ``df[c,p] = Σ_k g[k,p]·Z[k,c,p]``, ``de[:,p] = Σ_k W_kᵀ (g[k,p]·f[:,p])``.
    """
    pid_p = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_c = tl.arange(0, BLOCK_C)
    mask_p = offs_p < HW
    mask_c = offs_c < C
    mask_cp = mask_c[:, None] & mask_p[None, :]
    tile = n * C * HW + offs_c[:, None] * HW + offs_p[None, :]
    et = tl.load(e_ptr + tile, mask=mask_cp, other=0.0)
    ft = tl.load(f_ptr + tile, mask=mask_cp, other=0.0).to(tl.float32)
    w_mask = mask_c[:, None] & mask_c[None, :]
    w_offs = offs_c[:, None] * C + offs_c[None, :]
    wt_offs = offs_c[None, :] * C + offs_c[:, None]  # W_kᵀ: rows c', columns c
    de = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    df = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    for k in range(K):
        g = tl.load(g_ptr + n * K * HW + k * HW + offs_p, mask=mask_p, other=0.0).to(tl.float32) / C
        wk = tl.load(w_ptr + k * C * C + w_offs, mask=w_mask, other=0.0)
        bk = tl.load(b_ptr + k * C + offs_c, mask=mask_c, other=0.0).to(tl.float32)
        z = tl.dot(wk, et, input_precision=INPUT_PRECISION) + bk[:, None]
        df += z * g[None, :]
        dz = (ft * g[None, :]).to(et.dtype)
        wkt = tl.load(w_ptr + k * C * C + wt_offs, mask=w_mask, other=0.0)
        de = tl.dot(wkt, dz, de, input_precision=INPUT_PRECISION)
    tl.store(de_ptr + tile, de.to(de_ptr.dtype.element_ty), mask=mask_cp)
    tl.store(df_ptr + tile, df.to(df_ptr.dtype.element_ty), mask=mask_cp)


@triton.jit
def iap_bwd_weight_kernel(
    g_ptr,
    e_ptr,
    f_ptr,
    dw_ptr,
    db_ptr,
    N,
    K,
    C,
    HW,
    TILES_PER_SPLIT,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """Partial dW, db per (joint k, split s) over pixel tiles. Grid (K, S).

    Writes ``dw[s, kC+c, c'] = Σ dZ[k,c,p]·e[c',p]`` and ``db[s, kC+c] = Σ dZ[k,c,p]`` (fp32) over
    the split's tiles of all N·cdiv(HW, BLOCK_P) tiles; the caller sums over s.
    """
    k = tl.program_id(0)
    s = tl.program_id(1)
    offs_c = tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    tiles_img = tl.cdiv(HW, BLOCK_P)
    t0 = s * TILES_PER_SPLIT
    t1 = tl.minimum(t0 + TILES_PER_SPLIT, N * tiles_img)
    dw = tl.zeros((BLOCK_C, BLOCK_C), dtype=tl.float32)
    db = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for t in range(t0, t1):
        n = (t // tiles_img).to(tl.int64)
        offs_p = (t % tiles_img) * BLOCK_P + tl.arange(0, BLOCK_P)
        mask_p = offs_p < HW
        g = tl.load(g_ptr + n * K * HW + k * HW + offs_p, mask=mask_p, other=0.0).to(tl.float32) / C
        ft = tl.load(
            f_ptr + n * C * HW + offs_c[:, None] * HW + offs_p[None, :],
            mask=mask_c[:, None] & mask_p[None, :],
            other=0.0,
        ).to(tl.float32)
        dz = ft * g[None, :]
        e_t = tl.load(
            e_ptr + n * C * HW + offs_c[None, :] * HW + offs_p[:, None],
            mask=mask_p[:, None] & mask_c[None, :],
            other=0.0,
        )  # (P, C'): eᵀ
        dw = tl.dot(dz.to(e_t.dtype), e_t, dw, input_precision=INPUT_PRECISION)
        db += tl.sum(dz, axis=1)
    rows = k * C + offs_c
    kc = K * C
    tl.store(dw_ptr + s * kc * C + rows[:, None] * C + offs_c[None, :], dw, mask=mask_c[:, None] & mask_c[None, :])
    tl.store(db_ptr + s * kc + rows, db, mask=mask_c)


_iap_fwd_tuned = triton.autotune(configs=_FWD_CONFIGS, key=["K", "C", "H", "W", "UPSAMPLE"])(iap_fwd_kernel)


def block_c(c: int) -> int:
    """BLOCK_C for C channels: next power of two, at least 16."""
    return max(16, triton.next_power_of_2(c))


def iap_fwd_grid(n: int, h: int, w: int, block_p: int) -> tuple[int, int, int]:
    """Launch grid of :func:`iap_fwd_kernel` for N images of H×W output pixels: (cdiv(H·W, BLOCK_P), N, 1)."""
    return (triton.cdiv(h * w, block_p), n, 1)


def input_precision(dtype: torch.dtype) -> str:
    """tl.dot precision of every IaP kernel: ``ieee`` (exact fp32 products) for fp32 inputs, ``tf32`` otherwise.

    Always explicit: without it ``tl.dot`` on fp32 uses ``TRITON_F32_DEFAULT``, i.e. TF32 on
    tensor-core GPUs. It does not follow PyTorch's TF32 switches on purpose: those are global
    settings for cuBLAS/cuDNN (``torch.backends.cuda.matmul.allow_tf32`` is legacy since torch 2.9,
    superseded by ``fp32_precision``, and reading it raises once the new API has been used), and
    the fp32 op is the exact reference path (cuda-fast runs fp16/bf16, where the value is ignored).
    The TensorRT plugin's AOT kernel uses the same rule (:mod:`stip_rt.runtime.trt_plugin`).
    """
    return "ieee" if dtype == torch.float32 else "tf32"


@functools.cache
def available() -> bool:
    """True when the kernels can run on CUDA tensors here (a CUDA device and a Triton driver)."""
    if not torch.cuda.is_available() or INTERPRET:
        return False
    try:
        return triton.runtime.driver.active.get_current_target().backend == "cuda"
    except Exception:
        return False


def _check_device(t: torch.Tensor) -> None:
    """CUDA tensors, or CPU tensors in interpret mode."""
    if t.device.type != "cuda" and not INTERPRET:
        from stip_rt.errors import BackendError

        raise BackendError(
            f"IaP implementation 'triton' got {t.device.type} tensors: it needs CUDA, or TRITON_INTERPRET=1 set "
            "before stip_rt.nn.iap_triton is imported (tests only); use 'auto' or 'cpu'"
        )


def iap_forward_triton(
    e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool = False
) -> torch.Tensor:
    """Launch :func:`iap_fwd_kernel`.

    Args:
        e: (N, C, H, W), or (N, C, H/2, W/2) with ``upsample``; fp16, bf16 or fp32.
        f: (N, C, H, W), same dtype.
        weight: (K·C, C); cast to the dtype of ``e``.
        bias: (K·C,).
        upsample: read ``e`` at half resolution through a ×2 bilinear interpolation.

    Returns:
        (N, K, H, W) in the dtype of ``e``.
    """
    _check_device(e)
    n, c, h, w = f.shape
    k = weight.shape[0] // c
    out = torch.empty((n, k, h, w), dtype=e.dtype, device=e.device)
    if n == 0:
        return out
    args = (e.contiguous(), f.contiguous(), weight.to(e.dtype).contiguous(), bias.contiguous(), out, k, c, h, w)
    meta = {"UPSAMPLE": upsample, "BLOCK_C": block_c(c), "INPUT_PRECISION": input_precision(e.dtype)}
    if INTERPRET:
        iap_fwd_kernel[iap_fwd_grid(n, h, w, INTERPRET_BLOCK_P)](*args, BLOCK_P=INTERPRET_BLOCK_P, **meta)
    else:
        _iap_fwd_tuned[lambda m: iap_fwd_grid(n, h, w, m["BLOCK_P"])](*args, **meta)
    return out


def _splits(tiles: int, k: int, device: torch.device) -> int:
    """Pixel splits of the weight-gradient grid: about 4 programs per SM (2 splits when interpreting)."""
    target = 2 * k if INTERPRET else 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(tiles, triton.cdiv(target, k)))


def iap_backward_triton(
    grad: torch.Tensor, e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the plain op (full-resolution ``e``): two kernels, Z recomputed (STIP_SPEC §6).

    Args:
        grad: (N, K, H, W) output gradient.
        e, f: (N, C, H, W) inputs of the forward.
        weight: (K·C, C); bias: (K·C,).

    Returns:
        ``(de, df, dW, db)`` shaped and typed like ``e, f, weight, bias``.
    """
    _check_device(e)
    n, c, h, w = f.shape
    kc = weight.shape[0]
    k = kc // c
    hw = h * w
    if n == 0:
        return torch.zeros_like(e), torch.zeros_like(f), torch.zeros_like(weight), torch.zeros_like(bias)
    g, e, f = grad.contiguous(), e.contiguous(), f.contiguous()
    wq = weight.to(e.dtype).contiguous()
    de = torch.empty_like(e)
    df = torch.empty_like(f)
    bp = INTERPRET_BLOCK_P if INTERPRET else 64
    prec = input_precision(e.dtype)
    bc = block_c(c)
    iap_bwd_input_kernel[(triton.cdiv(hw, bp), n, 1)](
        g, e, f, wq, bias.contiguous(), de, df, k, c, hw, BLOCK_C=bc, BLOCK_P=bp, INPUT_PRECISION=prec
    )
    tiles = n * triton.cdiv(hw, bp)
    s = _splits(tiles, k, e.device)
    dw = torch.empty((s, kc, c), dtype=torch.float32, device=e.device)
    db = torch.empty((s, kc), dtype=torch.float32, device=e.device)
    iap_bwd_weight_kernel[(k, s, 1)](
        g, e, f, dw, db, n, k, c, hw, triton.cdiv(tiles, s), BLOCK_C=bc, BLOCK_P=bp, INPUT_PRECISION=prec
    )
    return de, df, dw.sum(0).to(weight.dtype), db.sum(0).to(bias.dtype)


SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)

__all__ = [
    "INTERPRET",
    "SUPPORTED_DTYPES",
    "available",
    "block_c",
    "iap_backward_triton",
    "iap_bwd_input_kernel",
    "iap_bwd_weight_kernel",
    "iap_forward_triton",
    "iap_fwd_grid",
    "iap_fwd_kernel",
]
