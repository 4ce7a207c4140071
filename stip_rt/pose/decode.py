"""Heatmaps → keypoints as the official code decodes them (STIP_SPEC §1.6), on the heatmaps' device.

Every step is a torch op batched over all crops and joints, so on CUDA nothing but the final
keypoints has to cross to the host:

* argmax: first maximum in row-major order (NaN counts as the maximum, as in numpy;
  numpy's argmax on CPU tensors, a row-wise ``amax`` then the first row and column holding it
  on other devices), coordinates zeroed where the maximum is ≤ 0 (official ``get_max_preds``);
* ``hrnet``: a quarter-pixel step towards the larger neighbour on each axis, only when
  1 < x < W−1 and 1 < y < H−1 (``TEST.POST_PROCESS``);
* ``stip``: the refinement of ``get_final_preds_with_refine``: OpenCV's 7×7 Gaussian blur
  (:mod:`stip_rt.pose.blur`), rescale to the map's maximum, clip to [0.001, 50], log, edge-pad, and
  one Newton step −H⁻¹·∇ at the argmax. Only the blurred map's minimum and maximum and the 3×3
  blurred values around the argmax are used, so the rescale, clip and log run on 9 values per map,
  in float32 as the official code (the log correctly rounded, via float64), and the 2×2 solve in
  float64 (offset 0 where the float32 determinant is 0; NaN for an all-zero map, as official);
* heatmap pixels → frame pixels with the official inverse crop affine (float64) and the
  keypoint score = the map's maximum.

On the CPU the STIP decode reads the maps with numpy and OpenCV only (:func:`_cpu_stip_pass`: the
argmax and "all finite" flags, then the blur's statistics), without torch steps in between: torch's
CPU argmax and strided reductions are 4–8× slower than numpy's at these sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..runtime.transfer import to_device
from .blur import BlurImpl, blur_impl, blur_stats, opencv_blur_stats
from .crops import affine_matrices

DecodeKind = Literal["hrnet", "stip"]


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


def _cpu_stip_pass(
    maps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything the STIP decode reads from CPU maps, with numpy and OpenCV only.

    The first maximum and its value, the OpenCV blur's minimum, maximum and 3×3 values around the
    argmax (at (0, 0) where the maximum is ≤ 0, as :func:`argmax_coords`), and the "all finite" flag
    (read from those statistics, value by value only for the maps they put in doubt).
    The same values as :func:`first_max_index`, :func:`finite_per_crop` and :func:`~stip_rt.pose.blur.blur_stats` one
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
    at = peak > 0  # NaN: False, as argmax_coords
    lo, hi, patch = opencv_blur_stats(mp, np.where(at, idx // w, 0), np.where(at, idx % w, 0))
    # A NaN is the argmax's maximum, +inf too, and -inf makes the blurred minimum -inf (every tap
    # weighs > 0): a map with a value that is not finite is among those whose maximum or blurred
    # minimum or maximum is not finite. Only those (also finite maps whose blur overflowed near
    # float32's largest value) are checked value by value.
    finite = np.isfinite(peak) & np.isfinite(lo) & np.isfinite(hi)
    if not finite.all():
        finite[~finite] = np.isfinite(flat[~finite]).all(axis=1)
    return tuple(torch.from_numpy(a) for a in (idx, peak, finite, lo, hi, patch))  # type: ignore[return-value]


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
        blur: which blur implementation (:func:`~stip_rt.pose.blur.gaussian_blur7`).

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
    bmin, bmax, patch = blur_stats(maps, x, y, blur)  # patch: (M, 3, 3), edge-padded as official
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
        blur: the blur implementation for ``stip`` (:func:`~stip_rt.pose.blur.gaussian_blur7`).

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
        blur: the blur implementation for ``stip`` (:func:`~stip_rt.pose.blur.gaussian_blur7`).

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
    if kind == "stip" and n * k * h * w > 0 and blur_impl(hm, blur) == "opencv":
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
