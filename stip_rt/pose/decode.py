"""Heatmaps → keypoints as the official code decodes them (STIP_SPEC §1.6), on the heatmaps' device.

Every step is a torch op batched over all crops and joints, so on CUDA nothing but the final
keypoints has to cross to the host:

* argmax: first maximum in row-major order (NaN counts as the maximum, as in numpy;
  numpy's argmax on CPU tensors, a row-wise ``amax`` then the first row and column holding it
  on other devices), coordinates zeroed where the maximum is ≤ 0 (official ``get_max_preds``);
* ``hrnet``: a quarter-pixel step towards the larger neighbour on each axis, only when
  1 < x < W−1 and 1 < y < H−1 (``TEST.POST_PROCESS``);
* ``stip``: the refinement of ``get_final_preds_with_refine``: OpenCV's 7×7 Gaussian blur with
  σ = 0 (the fixed kernel [1, 3.5, 7, 9, 7, 3.5, 1]/32, border reflect-101), rescale to the
  map's maximum, clip to [0.001, 50], log, edge-pad, and one Newton step −H⁻¹·∇ at the argmax.
  Only the blurred map's minimum and maximum and the 3×3 blurred values around the argmax are
  used, so the rescale, clip and log run on 9 values per map, in float32 as the official code
  (the log correctly rounded, via float64), and the 2×2 solve in float64 (offset 0 where the
  float32 determinant is 0; NaN for an all-zero map, as official);
* heatmap pixels → frame pixels with the official inverse crop affine (float64) and the
  keypoint score = the map's maximum.

The full blur is needed for the minimum and maximum. On CUDA it is a separable sum of shifted
slices (plain elementwise kernels: no cuDNN, so no TF32). On the CPU the STIP decode reads the maps
with numpy and OpenCV only (:func:`_cpu_stip_pass`): the argmax and "all finite" flags, then
OpenCV's blur of all maps stacked into one tall image (each map padded by 3 reflected rows first),
then the minimum, maximum and 3×3 patch; it gives OpenCV's own numbers, and the torch blur is
tested against it. Up to 256 maps go through one call, because OpenCV spreads a blur over its
threads only for large images (about 1 M pixels: the 136 maps of 8 people yes, 64 maps not);
smaller chunks that stay in cache measured slower. torch's CPU argmax and strided reductions are
4–8× slower than numpy's at these sizes, and its parallel copies leave OpenMP threads spinning
that slowed OpenCV's blur down 1.7×. The blur is the floor of the CPU decode: the 136 STIP maps
(128×96) of 8 people take about 1.2 ms in OpenCV on one core, and the official refinement needs
every blurred value (its min/max rescale), also of maps with no clear peak.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch

from ..runtime.transfer import to_device
from .crops import affine_matrices

DecodeKind = Literal["hrnet", "stip"]
BlurImpl = Literal["auto", "torch", "opencv"]
_CPU_CHUNK = 256  # maps per OpenCV call (13 MB per buffer at 128×96): OpenCV splits only large images over its threads
_buffers = threading.local()  # each decoding thread's two blur buffers, kept between calls
# cv2.GaussianBlur((7, 7), sigma=0): OpenCV's fixed 7-tap kernel (exact in float32)
GAUSS7 = (1 / 32, 3.5 / 32, 7 / 32, 9 / 32, 7 / 32, 3.5 / 32, 1 / 32)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded keypoints of a batch of crops, on the heatmaps' device.

    Attributes:
        coords: (N, K, 2) float64 (x, y) in frame pixels (float32 values for ``hrnet``, as official).
        maxvals: (N, K) float32 map maxima (keypoint scores).
        hm_coords: (N, K, 2) float64 (x, y) in heatmap pixels before the mapping.
        argmax: (N, K, 2) float32 integer argmax (x, y) in heatmap pixels ((0, 0) where max ≤ 0).
        finite: (N,) bool, True where every heatmap value of the crop is finite (no NaN or inf).
    """

    coords: torch.Tensor
    maxvals: torch.Tensor
    hm_coords: torch.Tensor
    argmax: torch.Tensor
    finite: torch.Tensor

    def cpu(self) -> Decoded:
        """The same result on the host (one copy per field)."""
        return Decoded(*(t.cpu() for t in (self.coords, self.maxvals, self.hm_coords, self.argmax, self.finite)))


def first_max_index(flat: torch.Tensor, width: int, impl: Literal["auto", "numpy", "torch"] = "auto") -> torch.Tensor:
    """Flat index of each row's first maximum (NaN counts as the maximum, as numpy's ``argmax``).

    Args:
        flat: (M, H·W) maps, one per row.
        width: W (the ``torch`` way takes the first row of the map holding the maximum, then its column).
        impl: ``numpy`` (CPU tensors; numpy's SIMD argmax, ~8× torch's CPU argmax here), ``torch``
            (any device: a row-wise ``amax``, then two short ``argmax``), ``auto`` = ``numpy`` on the CPU.

    Returns:
        (M,) int64 indices on ``flat``'s device.
    """
    m = flat.shape[0]
    if impl == "numpy" or (impl == "auto" and flat.device.type == "cpu"):
        if flat.shape[1] == 0:
            return torch.zeros(m, dtype=torch.long)
        return torch.from_numpy(flat.contiguous().numpy().argmax(axis=1))
    maps = flat.reshape(m, -1, width)
    row = maps.amax(dim=2).argmax(dim=1)  # first row holding the maximum (argmax returns the first)
    col = maps[torch.arange(m, device=flat.device), row].argmax(dim=1)
    return row * width + col


def argmax_coords(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``get_max_preds``.

    Args:
        heatmaps: (N, K, H, W) float32.

    Returns:
        coords (N, K, 2) float32 (column, row of the first maximum in row-major order; (0, 0)
        where the maximum is ≤ 0 or NaN), maxvals (N, K) float32.
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.detach().reshape(n * k, h * w)
    idx = first_max_index(flat, w)
    maxvals = flat.gather(1, idx[:, None])[:, 0]
    return _coords_at(idx, maxvals, w).reshape(n, k, 2), maxvals.reshape(n, k)


def _coords_at(idx: torch.Tensor, maxvals: torch.Tensor, width: int) -> torch.Tensor:
    """(M, 2) float32 (column, row) of flat indices, (0, 0) where the maximum is ≤ 0 or NaN."""
    coords = torch.stack([idx % width, idx // width], dim=-1).to(torch.float32)
    return coords * (maxvals > 0.0)[:, None].to(torch.float32)


def finite_per_crop(heatmaps: torch.Tensor) -> torch.Tensor:
    """Whether every value of each crop's heatmaps is finite (no NaN or inf), without a host sync.

    Args:
        heatmaps: (N, K, H, W) float32 on any device.

    Returns:
        (N,) bool on the heatmaps' device (numpy's ``isfinite`` on CPU tensors: 25× torch's here).
    """
    flat = heatmaps.detach().flatten(1)
    if flat.device.type == "cpu":
        return torch.from_numpy(np.isfinite(flat.contiguous().numpy()).all(axis=1))
    return torch.isfinite(flat).all(dim=1)


def quarter_offset(heatmaps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """HRNet post-processing: +0.25 px towards the larger neighbour, interior points only.

    Args:
        heatmaps: (N, K, H, W) float32.
        coords: (N, K, 2) float32 argmax coordinates.

    Returns:
        (N, K, 2) float32 shifted coordinates (a new tensor).
    """
    n, k, h, w = heatmaps.shape
    maps = heatmaps.reshape(n * k, h, w)
    px = torch.floor(coords[..., 0] + 0.5).long().reshape(-1)
    py = torch.floor(coords[..., 1] + 0.5).long().reshape(-1)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    pxc = px.clamp(1, max(w - 2, 1))
    pyc = py.clamp(1, max(h - 2, 1))
    m = torch.arange(n * k, device=maps.device)
    xr, xl = (pxc + 1).clamp(max=w - 1), (pxc - 1).clamp(min=0)
    yd, yu = (pyc + 1).clamp(max=h - 1), (pyc - 1).clamp(min=0)
    dx = maps[m, pyc, xr] - maps[m, pyc, xl]
    dy = maps[m, yd, pxc] - maps[m, yu, pxc]
    step = torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * 0.25
    return coords + (step * inside[:, None].to(torch.float32)).reshape(n, k, 2)


def reflect101_index(size: int, pad: int, device: torch.device | str) -> torch.Tensor:
    """Source indices of a row padded by ``pad`` on both sides, OpenCV ``BORDER_REFLECT_101``.

    Args:
        size: length of the row (≥ 1).
        pad: pixels added on each side.
        device: where the index tensor lives.

    Returns:
        (size + 2·pad,) int64 indices into the row (OpenCV's ``borderInterpolate``).
    """
    idx = torch.arange(-pad, size + pad, device=device)  # built on the device: no upload, no sync
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.abs() % period  # reflect-101 is periodic with period 2·(size−1)
    return torch.where(idx >= size, period - idx, idx)


def _pad3(maps: torch.Tensor, dim: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """(M, H, W) padded by 3 on ``dim`` (1 or 2), reflect-101: one copy plus the 2×3 border lines."""
    size = maps.shape[dim]
    idx = reflect101_index(size, 3, maps.device)
    if out is None:
        shape = list(maps.shape)
        shape[dim] = size + 6
        out = maps.new_empty(shape)
    out.narrow(dim, 3, size).copy_(maps)
    out.narrow(dim, 0, 3).copy_(maps.index_select(dim, idx[:3]))
    out.narrow(dim, size + 3, 3).copy_(maps.index_select(dim, idx[size + 3 :]))
    return out


def _sym7(p: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """7-tap symmetric GAUSS7 along ``dim`` of a tensor padded by 3 there; output length ``n``."""
    s = [p.narrow(dim, i, n) for i in range(7)]
    out = s[3] * GAUSS7[3]
    for i in (2, 1, 0):
        out.add_(s[i] + s[6 - i], alpha=GAUSS7[i])
    return out


def _check_impl(maps: torch.Tensor, impl: BlurImpl) -> str:
    if impl == "auto":
        return "opencv" if maps.device.type == "cpu" else "torch"
    if impl == "opencv" and maps.device.type != "cpu":
        raise ValueError(f"gaussian_blur7: impl 'opencv' needs CPU maps, got {maps.device}")
    if impl not in ("torch", "opencv"):
        raise ValueError(f"gaussian_blur7: unknown impl '{impl}' (use 'auto', 'torch' or 'opencv')")
    return impl


def _opencv_blur(maps: np.ndarray, tall: np.ndarray, out: np.ndarray) -> np.ndarray:
    """OpenCV blur of (c, H, W) float32 maps through the caller's (≥ c·(H+6), W) float32 buffers.

    The rows of the tall image are filtered independently, and each map brings its own 3 reflected
    rows above and below (numpy copies: torch's CPU copies run on its OpenMP threads, whose spinning
    afterwards slows OpenCV's threads down), so one call blurs every map exactly as one call per map.

    Returns:
        (c, H, W) view of ``out``.
    """
    c, h, w = maps.shape
    rows = c * (h + 6)
    padded = tall[:rows].reshape(c, h + 6, w)
    edge = reflect101_index(h, 3, "cpu").numpy()
    padded[:, 3 : 3 + h] = maps
    padded[:, :3] = maps[:, edge[:3]]
    padded[:, h + 3 :] = maps[:, edge[h + 3 :]]
    cv2.GaussianBlur(tall[:rows], (7, 7), 0, dst=out[:rows], borderType=cv2.BORDER_REFLECT_101)
    return out[:rows].reshape(c, h + 6, w)[:, 3 : 3 + h]


def gaussian_blur7(maps: torch.Tensor, impl: BlurImpl = "auto") -> torch.Tensor:
    """``cv2.GaussianBlur(map, (7, 7), 0)`` of every map (border reflect-101).

    Args:
        maps: (M, H, W) float32 on any device.
        impl: ``torch`` (separable sum of shifted slices, any device), ``opencv`` (CPU only: one
            OpenCV call on all maps stacked into one tall image), ``auto`` = ``opencv`` for CPU
            tensors, else ``torch``.

    Returns:
        (M, H, W) float32 blurred maps on the maps' device (possibly a strided view).

    Raises:
        ValueError: ``opencv`` asked for maps that are not on the CPU, or an unknown ``impl``.
    """
    m, h, w = maps.shape
    if _check_impl(maps, impl) == "opencv":
        tall = np.empty((m * (h + 6), w), np.float32)
        return torch.from_numpy(_opencv_blur(maps.detach().contiguous().numpy(), tall, np.empty_like(tall)))
    across = _sym7(_pad3(maps, 2), 2, w)  # along rows first, as OpenCV's separable filter
    return _sym7(_pad3(across, 1), 1, h)


def _blur_buffers(rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's two (≥ rows, width) float32 blur buffers, allocated once per shape and kept.

    Fresh multi-MB buffers may be mapped and page-faulted anew on every call (glibc maps blocks
    above its mmap threshold, and :mod:`stip_rt.malloc` returns freed pages to the system).
    """
    have = getattr(_buffers, "pair", None)
    if have is None or have[0].shape[1] != width or have[0].shape[0] < rows:
        have = _buffers.pair = (np.empty((rows, width), np.float32), np.empty((rows, width), np.float32))
    return have


def _patch_index(y: Any, x: Any, h: int, w: int) -> tuple[Any, Any]:
    """(M, 3, 1) rows and (M, 1, 3) columns of the 3×3 neighbourhoods of (x, y), edge-clamped."""
    d = np.arange(-1, 2) if isinstance(y, np.ndarray) else torch.arange(-1, 2, device=y.device)
    return (y[:, None] + d).clip(0, h - 1)[:, :, None], (x[:, None] + d).clip(0, w - 1)[:, None, :]


def _reduce_blurred(blurred: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum, maximum and the 3×3 values around (x, y) of (c, H, W) blurred maps (a strided view)."""
    c, h, w = blurred.shape
    # each map's H·W values are contiguous: reduce them as one row per map (numpy's SIMD min/max;
    # torch's CPU reductions over these strided views are several times slower)
    rows = np.lib.stride_tricks.as_strided(blurred, (c, h * w), (blurred.strides[0], blurred.itemsize), writeable=False)
    ys, xs = _patch_index(y, x, h, w)
    return rows.min(axis=1), rows.max(axis=1), blurred[np.arange(c)[:, None, None], ys, xs]


def _blur_stats(
    maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, impl: BlurImpl
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimum, maximum and the 3×3 values around (x, y) (edge-clamped) of every blurred map."""
    m, h, w = maps.shape
    if _check_impl(maps, impl) == "torch":
        b = gaussian_blur7(maps, "torch")
        ys, xs = _patch_index(y, x, h, w)
        return b.amin(dim=(1, 2)), b.amax(dim=(1, 2)), b[torch.arange(m, device=maps.device)[:, None, None], ys, xs]
    stats = _opencv_blur_stats(maps.detach().contiguous().numpy(), y.numpy(), x.numpy())
    return tuple(torch.from_numpy(a) for a in stats)  # type: ignore[return-value]


def _opencv_blur_stats(maps: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_blur_stats` of (M, H, W) float32 numpy maps through OpenCV, ``_CPU_CHUNK`` maps per call,
    through the thread's two kept buffers (:func:`_blur_buffers`)."""
    m, h, w = maps.shape
    tall, out = _blur_buffers(min(m, _CPU_CHUNK) * (h + 6), w)
    lo, hi, patch = np.empty(m, np.float32), np.empty(m, np.float32), np.empty((m, 3, 3), np.float32)
    for s in range(0, m, _CPU_CHUNK):
        e = min(s + _CPU_CHUNK, m)
        lo[s:e], hi[s:e], patch[s:e] = _reduce_blurred(_opencv_blur(maps[s:e], tall, out), y[s:e], x[s:e])
    return lo, hi, patch


def _cpu_stip_pass(
    maps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything the STIP decode reads from CPU maps, with numpy and OpenCV only.

    The first maximum and its value, the "all finite" flag, then the OpenCV blur's minimum, maximum
    and 3×3 values around the argmax (at (0, 0) where the maximum is ≤ 0, as :func:`argmax_coords`).
    The same values as :func:`first_max_index`, :func:`finite_per_crop` and :func:`_blur_stats` one
    after the other, without their torch steps in between (index arithmetic, gathers) and their
    conversions.

    Args:
        maps: (M, H, W) float32 CPU maps, H·W > 0.

    Returns:
        flat argmax (M,) int64, maxima (M,) float32, finite (M,) bool, blurred minima and maxima
        (M,) float32, 3×3 blurred patches (M, 3, 3) float32.
    """
    m, h, w = maps.shape
    mp = maps.detach().contiguous().numpy()
    flat = mp.reshape(m, h * w)
    idx = flat.argmax(axis=1)
    peak = flat[np.arange(m), idx]
    finite = np.isfinite(flat).all(axis=1)
    at = peak > 0  # NaN: False, as argmax_coords
    stats = _opencv_blur_stats(mp, np.where(at, idx // w, 0), np.where(at, idx % w, 0))
    return tuple(torch.from_numpy(a) for a in (idx, peak, finite, *stats))  # type: ignore[return-value]


def _newton_offsets(patch: torch.Tensor, bmin: torch.Tensor, bmax: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
    """(M, 2) float64 official refinement offsets from the blurred maps' statistics (see :func:`refine_offsets`)."""
    r = (patch - bmin[:, None, None]) / (bmax - bmin)[:, None, None] * peak[:, None, None]
    # the log in float64, rounded to float32: correctly rounded, so the same on every device.
    # torch's float32 log differs from numpy's in ~20 % of values (1 ulp), which the Newton step
    # amplifies on near-flat maps to 2.4e-5 px against the official fixtures; this way 5e-6 px
    lg = torch.log(r.clamp(0.001, 50.0).double()).float()
    c = lg[:, 1, 1]
    xp, xm, yp, ym = lg[:, 1, 2], lg[:, 1, 0], lg[:, 2, 1], lg[:, 0, 1]
    # float32, in the official order of operations
    dx = 0.5 * (xp - xm)
    dy = 0.5 * (yp - ym)
    dxx = xp - 2 * c + xm
    dyy = yp - 2 * c + ym
    dxy = 0.5 * (lg[:, 2, 2] - xp - yp + 2 * c - xm - ym + lg[:, 0, 0])
    singular = (dxx * dyy - dxy * dxy) == 0
    gx, gy, hxx, hyy, hxy = (t.double() for t in (dx, dy, dxx, dyy, dxy))
    det = hxx * hyy - hxy * hxy
    off = torch.stack([-(hyy * gx - hxy * gy) / det, -(hxx * gy - hxy * gx) / det], dim=-1)
    return torch.where(singular[:, None], torch.zeros_like(off), off)


def refine_offsets(
    heatmaps: torch.Tensor, coords: torch.Tensor, maxvals: torch.Tensor | None = None, blur: BlurImpl = "auto"
) -> torch.Tensor:
    """STIP refinement (official ``refine``): Newton step on the log of the blurred map.

    Args:
        heatmaps: (N, K, H, W) float32 (not modified).
        coords: (N, K, 2) float32 integer argmax coordinates from :func:`argmax_coords`.
        maxvals: (N, K) float32 map maxima from :func:`argmax_coords` (computed when None).
        blur: which blur implementation (:func:`gaussian_blur7`).

    Returns:
        (N, K, 2) float64 offsets to add to ``coords`` (0 where the Hessian is singular;
        NaN for an all-zero map, as the official code).
    """
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return torch.zeros((n, k, 2), dtype=torch.float64, device=heatmaps.device)
    maps = heatmaps.reshape(n * k, h, w)
    peak = maps.amax(dim=(1, 2)) if maxvals is None else maxvals.reshape(-1)
    x = coords[..., 0].reshape(-1).long()
    y = coords[..., 1].reshape(-1).long()
    bmin, bmax, patch = _blur_stats(maps, x, y, blur)  # patch: (M, 3, 3), edge-padded as official
    return _newton_offsets(patch, bmin, bmax, peak).reshape(n, k, 2)


def apply_affine_torch(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Per-crop affine maps of points, elementwise (no matmul, so no TF32 on CUDA).

    Args:
        points: (N, K, 2) float64 (x, y).
        matrices: (N, 2, 3) float64 on the points' device.

    Returns:
        (N, K, 2) float64 transformed points.
    """
    px, py = points[..., 0], points[..., 1]
    a = matrices[:, None]  # (N, 1, 2, 3)
    x = a[..., 0, 0] * px + a[..., 0, 1] * py + a[..., 0, 2]
    y = a[..., 1, 0] * px + a[..., 1, 1] * py + a[..., 1, 2]
    return torch.stack([x, y], dim=-1)


def decode_heatmaps(
    heatmaps: torch.Tensor | np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    kind: DecodeKind = "stip",
    blur: BlurImpl = "auto",
) -> Decoded:
    """Official ``get_final_preds`` (``hrnet``: POST_PROCESS; ``stip``: REFINE + POST_PROCESS).

    Runs on the heatmaps' device and does not synchronise it: the crop geometry (host numpy,
    from the boxes) is uploaded without blocking.

    Args:
        heatmaps: (N, K, H, W) float32 tensor (already flip-averaged when the flip test is on),
            or a numpy array (decoded on the CPU).
        center: (N, 2) crop centres, frame pixels.
        scale: (N, 2) crop sizes / 200 (only ``scale[:, 0]`` is used, as official).
        kind: ``hrnet`` or ``stip``.
        blur: the blur implementation for ``stip`` (:func:`gaussian_blur7`).

    Returns:
        :class:`Decoded` on the heatmaps' device.

    Raises:
        ValueError: unknown ``kind`` or a heatmap batch that is not 4-D.
    """
    hm = torch.as_tensor(heatmaps)
    if hm.dtype != torch.float32:
        hm = hm.float()
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(hm.shape)}")
    h, w = hm.shape[2:]
    mats = to_device(affine_matrices(center, scale, (w, h), inverse=True), hm.device)
    return decode_with_matrices(hm, mats, kind, blur)


def decode_with_matrices(
    heatmaps: torch.Tensor, matrices: torch.Tensor, kind: DecodeKind = "stip", blur: BlurImpl = "auto"
) -> Decoded:
    """:func:`decode_heatmaps` with the crop geometry already on the device: tensor ops only.

    Nothing here reads host data or synchronises, so on CUDA it can be captured in a CUDA graph
    with ``heatmaps`` and ``matrices`` as static buffers (:mod:`stip_rt.pose.decode_graph`).

    Args:
        heatmaps: (N, K, H, W) float32.
        matrices: (N, 2, 3) float64 heatmap → frame affine maps
            (``affine_matrices(center, scale, (W, H), inverse=True)``) on the heatmaps' device.
        kind: ``hrnet`` or ``stip``.
        blur: the blur implementation for ``stip`` (:func:`gaussian_blur7`).

    Returns:
        :class:`Decoded` on the heatmaps' device.

    Raises:
        ValueError: unknown ``kind`` or a heatmap batch that is not 4-D.
    """
    hm = heatmaps
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(hm.shape)}")
    if kind not in ("hrnet", "stip"):
        raise ValueError(f"unknown decode kind '{kind}' (use 'hrnet' or 'stip')")
    n, k, h, w = hm.shape
    if kind == "stip" and n * k * h * w > 0 and _check_impl(hm, blur) == "opencv":
        idx, peak, finite, bmin, bmax, patch = _cpu_stip_pass(hm.reshape(n * k, h, w))
        coords, maxvals = _coords_at(idx, peak, w).reshape(n, k, 2), peak.reshape(n, k)
        hm_coords = coords.double() + _newton_offsets(patch, bmin, bmax, peak).reshape(n, k, 2)
        finite = finite.reshape(n, k).all(dim=1)
    else:
        coords, maxvals = argmax_coords(hm)
        if kind == "hrnet":
            hm_coords = quarter_offset(hm, coords).double()
        else:
            hm_coords = coords.double() + refine_offsets(hm, coords, maxvals, blur)
        finite = finite_per_crop(hm)
    if n == 0:
        return Decoded(torch.zeros_like(hm_coords), maxvals, hm_coords, coords, finite)
    out = apply_affine_torch(hm_coords, matrices)
    if kind == "hrnet":  # the official function writes the mapped points into a float32 array
        out = out.float().double()
    return Decoded(out, maxvals, hm_coords, coords, finite)
