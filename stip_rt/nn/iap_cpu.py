"""Tiled PyTorch implementation of the IaP op (the CPU fast path; works on any device).

Never builds the N×K×C×H×W kernels tensor. For a tile of P pixels of one image the
generator is one GEMM, ``Z = W · E_tile + b`` (K·C × P), and the epilogue multiplies
by ``f`` and reduces each group of C rows. Peak extra memory is one tile of Z
(``tile_bytes``), independent of N, H and W.

With ``upsample=True`` ``e`` is upsampled ×2 (bilinear, ``align_corners=False``) band by
band of rows (C channels, a few KiB) and then generated at full resolution. Generating at
low resolution and upsampling Z saves 3/4 of the GEMM MACs but upsamples K·C channels
instead of C; on the CPU a prototype of that measured ~3.5× slower than the extra GEMM
(docs/iap.md), so this path upsamples ``e``.

All functions take ``weight`` as (K·C, C) and ``bias`` as (K·C,). Half-precision
inputs are computed in float32 and returned in their own dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_TILE_BYTES = 512 << 10
"""Budget for one Z tile (bytes): 512 KiB stays in L2 and was as fast as 1-4 MiB on a 2-core CPU."""


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: float32 for half types, the dtype itself otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _tile(total: int, per_item_bytes: int, tile_bytes: int) -> int:
    """Items per tile so that one tile stays within ``tile_bytes`` (at least 1)."""
    return max(1, min(total, tile_bytes // max(per_item_bytes, 1)))


def iap_forward_cpu(
    e: torch.Tensor,
    f: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    upsample: bool = False,
    tile_bytes: int = DEFAULT_TILE_BYTES,
) -> torch.Tensor:
    """Fused IaP forward, tiled over pixels.

    Args:
        e: (N, C, H, W) kernel embeddings, or (N, C, H/2, W/2) when ``upsample``.
        f: (N, C, H, W) refined features.
        weight: (K·C, C) generator weight, row ``k·C + c``.
        bias: (K·C,) generator bias.
        upsample: ``e`` is at half resolution; it is upsampled ×2 band by band first.
        tile_bytes: budget for one Z tile in bytes.

    Returns:
        (N, K, H, W) scores in the dtype of ``e``.
    """
    n, c, h, w = f.shape
    kc = weight.shape[0]
    k = kc // c
    acc = _acc_dtype(e.dtype)
    out = torch.empty((n, k, h, w), dtype=acc, device=f.device)
    if n == 0:
        return out.to(e.dtype)
    wm = weight.to(acc)
    bm = bias.to(acc)
    fa = f.to(acc)
    ea = e.to(acc)
    if upsample:
        _forward_up(ea, fa, wm, bm, out, tile_bytes)
    else:
        _forward_plain(ea, fa, wm, bm, out, tile_bytes)
    return out.mul_(1.0 / c).to(e.dtype)


def _plain_image(
    e2: torch.Tensor, f2: torch.Tensor, wm: torch.Tensor, b_col: torch.Tensor, o2: torch.Tensor, zbuf: torch.Tensor
) -> None:
    """One image (or band): o2 (K, P) = Σ_c f2·(W e2 + b) (unscaled), in Z tiles of zbuf's width."""
    kc, p = zbuf.shape
    c, total = e2.shape
    for p0 in range(0, total, p):
        p1 = min(p0 + p, total)
        z = zbuf[:, : p1 - p0]
        torch.addmm(b_col, wm, e2[:, p0:p1], out=z)
        z3 = z.view(kc // c, c, p1 - p0).mul_(f2[None, :, p0:p1])
        torch.sum(z3, dim=1, out=o2[:, p0:p1])


def _forward_plain(
    e: torch.Tensor, f: torch.Tensor, wm: torch.Tensor, bm: torch.Tensor, out: torch.Tensor, tile_bytes: int
) -> None:
    """out[n,k,p] = Σ_c f·(W e + b) (unscaled), Z tiles of (K·C, P)."""
    kc = wm.shape[0]
    p = _tile(f.shape[2] * f.shape[3], kc * e.element_size(), tile_bytes)
    zbuf = torch.empty((kc, p), dtype=e.dtype, device=e.device)
    for i in range(f.shape[0]):
        _plain_image(e[i].flatten(1), f[i].flatten(1), wm, bm[:, None], out[i].flatten(1), zbuf)


def _forward_up(
    e: torch.Tensor, f: torch.Tensor, wm: torch.Tensor, bm: torch.Tensor, out: torch.Tensor, tile_bytes: int
) -> None:
    """Upsample form: per band of rows, ×2 bilinear on the C channels of ``e``, then the plain tiles.

    A band of low-res rows [a, b) gives output rows [2a, 2b) and needs rows a-1 and b as halo;
    interpolating the halo-padded slice and cropping is bit-identical to the global upsample.
    """
    h2, w2 = f.shape[-2:]
    hl = e.shape[-2]
    kc = wm.shape[0]
    p = _tile(h2 * w2, kc * e.element_size(), tile_bytes)
    zbuf = torch.empty((kc, p), dtype=e.dtype, device=e.device)
    rows = max(1, (4 * p) // (2 * w2))  # low-res rows per band: about four Z tiles
    for i in range(f.shape[0]):
        for a in range(0, hl, rows):
            b = min(a + rows, hl)
            lo, hi = max(a - 1, 0), min(b + 1, hl)
            band = F.interpolate(e[i : i + 1, :, lo:hi], scale_factor=2, mode="bilinear", align_corners=False)
            band = band[0, :, 2 * (a - lo) : 2 * (b - lo)]
            r0, r1 = 2 * a, 2 * b
            _plain_image(band.flatten(1), f[i, :, r0:r1].flatten(1), wm, bm[:, None], out[i, :, r0:r1].flatten(1), zbuf)


def iap_backward_cpu(
    grad: torch.Tensor,
    e: torch.Tensor,
    f: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    tile_bytes: int = DEFAULT_TILE_BYTES,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the plain (full-resolution) IaP op, chunked over pixels (STIP_SPEC §6).

    Z is recomputed per tile instead of being stored: with ``g = dY/C``,
    ``dZ = g·f``, ``df = Σ_k g·Z``, ``de = Wᵀ dZ``, ``dW = Σ dZ eᵀ``, ``db = Σ dZ``.

    Args:
        grad: (N, K, H, W) gradient of the output (any memory layout, e.g. channels-last, as ``e`` and ``f``).
        e: (N, C, H, W) kernel embeddings (full resolution).
        f: (N, C, H, W) refined features.
        weight: (K·C, C) generator weight.
        bias: (K·C,) generator bias.
        tile_bytes: budget for one Z tile in bytes.

    Returns:
        ``(de, df, dW, db)`` shaped and typed like ``e, f, weight, bias``.
    """
    n, c, h, w = f.shape
    kc = weight.shape[0]
    k = kc // c
    hw = h * w
    acc = _acc_dtype(e.dtype)
    wm = weight.to(acc)
    b_col = bias.to(acc)[:, None]
    # contiguous (N, C, P) rows: a channels-last input would give strided tiles that view() cannot flatten
    dense = torch.contiguous_format
    e2 = e.to(acc, memory_format=dense).view(n, c, hw)
    f2 = f.to(acc, memory_format=dense).view(n, c, hw)
    g2 = grad.to(acc, memory_format=dense).view(n, k, hw) * (1.0 / c)
    de = torch.empty((n, c, hw), dtype=acc, device=e.device)
    df = torch.empty((n, c, hw), dtype=acc, device=e.device)
    dw = torch.zeros((kc, c), dtype=acc, device=e.device)
    db = torch.zeros((kc,), dtype=acc, device=e.device)
    p = _tile(hw, 2 * kc * e2.element_size(), tile_bytes)
    for i in range(n):
        for p0 in range(0, hw, p):
            p1 = min(p0 + p, hw)
            et, ft, gt = e2[i, :, p0:p1], f2[i, :, p0:p1], g2[i, :, None, p0:p1]
            z = torch.addmm(b_col, wm, et).view(k, c, p1 - p0)
            torch.sum(z.mul_(gt), dim=0, out=df[i, :, p0:p1])
            dz = (gt * ft[None]).view(kc, p1 - p0)
            torch.mm(wm.t(), dz, out=de[i, :, p0:p1])
            dw.addmm_(dz, et.t())
            db.add_(dz.sum(dim=1))
    return (
        de.view(e.shape).to(e.dtype),
        df.view(f.shape).to(f.dtype),
        dw.to(weight.dtype),
        db.to(bias.dtype),
    )
