"""The STIP refinement's blur: OpenCV's 7×7 Gaussian (σ = 0) of every heatmap, and the statistics the
refinement reads from it (STIP_SPEC §1.6).

``cv2.GaussianBlur(map, (7, 7), 0)`` is the fixed separable kernel [1, 3.5, 7, 9, 7, 3.5, 1]/32 with
border reflect-101. The refinement needs each blurred map's minimum and maximum (its rescale) and
the 3×3 blurred values around the argmax (its Newton step), so every map is blurred in full, also
maps with no clear peak.

Two implementations, equal to OpenCV's numbers (tested against each other and against OpenCV):

* ``torch`` (any device; the CUDA path): a separable sum of shifted slices, rows first as OpenCV
  does, after padding each map by 3 reflected pixels — plain elementwise kernels (no cuDNN, so
  no TF32), capturable in a CUDA graph;
* ``opencv`` (CPU tensors): one OpenCV call on up to 256 maps read in place as one tall image,
  then a second, small call that redoes each map's first and last 3 rows (the only rows whose
  taps reach a neighbouring map) from its first and last 6 rows, each block padded by its own
  3 reflected rows with numpy; through buffers each thread keeps.
  OpenCV spreads a blur over its threads only for large images (about 1 M pixels: the 136 maps of
  8 people yes, 64 maps not); smaller chunks that stay in cache measured slower. torch's CPU
  copies run on its OpenMP threads, whose spinning afterwards slowed OpenCV's blur down 1.7×, and
  its strided reductions are several times slower than numpy's here, hence numpy for the padding
  and the minimum and maximum. This blur is the floor of the CPU decode: the 136 maps (128×96) of
  8 people take about 1.2 ms in OpenCV on one core.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import cv2
import numpy as np
import torch

BlurImpl = Literal["auto", "torch", "opencv"]
_CPU_CHUNK = 256  # maps per OpenCV call (13 MB per buffer at 128×96): OpenCV splits only large images over its threads
_buffers = threading.local()  # each decoding thread's blur buffers, kept between calls
# cv2.GaussianBlur((7, 7), sigma=0): OpenCV's fixed 7-tap kernel (exact in float32)
GAUSS7 = (1 / 32, 3.5 / 32, 7 / 32, 9 / 32, 7 / 32, 3.5 / 32, 1 / 32)


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


def blur_impl(maps: torch.Tensor, impl: BlurImpl) -> str:
    """``torch`` or ``opencv``: the implementation ``impl`` means for these maps.

    Raises:
        ValueError: ``opencv`` asked for maps that are not on the CPU, or an unknown ``impl``.
    """
    if impl == "auto":
        return "opencv" if maps.device.type == "cpu" else "torch"
    if impl == "opencv" and maps.device.type != "cpu":
        raise ValueError(f"gaussian_blur7: impl 'opencv' needs CPU maps, got {maps.device}")
    if impl not in ("torch", "opencv"):
        raise ValueError(f"gaussian_blur7: unknown impl '{impl}' (use 'auto', 'torch' or 'opencv')")
    return impl


def _opencv_blur_padded(maps: np.ndarray, tall: np.ndarray, out: np.ndarray) -> np.ndarray:
    """OpenCV blur of (c, H, W) float32 maps, each padded by its own 3 reflected rows, through the
    caller's (≥ c·(H+6), W) float32 buffers.

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


def _opencv_blur(maps: np.ndarray, out: np.ndarray, edges: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """OpenCV blur of (c, H, W) contiguous float32 maps into the caller's (≥ c·H, W) float32 buffer.

    The maps are blurred in place as one tall (c·H, W) image, without a copy. Only each map's first
    and last 3 rows then differ from a blur of the map on its own (the vertical taps reach into the
    neighbouring maps), so those rows are blurred again from each map's first and last 6 rows, padded
    as :func:`_opencv_blur_padded` does (reflect-101 at the map's own edge, exactly OpenCV's border):
    one call blurs every map exactly as one call per map, reading the maps once.

    Args:
        maps: (c, H, W) contiguous float32.
        out: (≥ c·H, W) float32 buffer for the result.
        edges: two (≥ 24·c, W) float32 buffers for the edge rows (allocated when None).

    Returns:
        (c, H, W) view of ``out`` (of new buffers for maps under 12 rows, padded in full).
    """
    c, h, w = maps.shape
    if h < 12:  # the edge rows would overlap: pad every map
        tall = np.empty((c * (h + 6), w), np.float32)
        return _opencv_blur_padded(maps, tall, np.empty_like(tall))
    res = out[: c * h]
    cv2.GaussianBlur(maps.reshape(c * h, w), (7, 7), 0, dst=res, borderType=cv2.BORDER_REFLECT_101)
    blurred = res.reshape(c, h, w)
    ends = np.concatenate([maps[:, :6], maps[:, h - 6 :]])  # (2c, 6, W): top then bottom blocks
    if edges is None:
        edges = (np.empty((24 * c, w), np.float32), np.empty((24 * c, w), np.float32))
    fixed = _opencv_blur_padded(ends, *edges)
    blurred[:, :3] = fixed[:c, :3]
    blurred[:, h - 3 :] = fixed[c:, 3:]
    return blurred


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
    if blur_impl(maps, impl) == "opencv":
        return torch.from_numpy(_opencv_blur(maps.detach().contiguous().numpy(), np.empty((m * h, w), np.float32)))
    across = _sym7(_pad3(maps, 2), 2, w)  # along rows first, as OpenCV's separable filter
    return _sym7(_pad3(across, 1), 1, h)


def _blur_buffers(maps: int, height: int, width: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """This thread's blur buffers for up to ``maps`` maps of (height, width), allocated once and kept:
    the (≥ maps·height, width) result and the two (≥ 24·maps, width) edge-row buffers, float32.

    Fresh multi-MB buffers may be mapped and page-faulted anew on every call (glibc maps blocks
    above its mmap threshold, and :mod:`stip_rt.malloc` returns freed pages to the system).
    """
    have = getattr(_buffers, "set", None)
    if have is None or have[0].shape[1] != width or have[0].shape[0] < maps * height or have[1][0].shape[0] < 24 * maps:
        edge = (np.empty((24 * maps, width), np.float32), np.empty((24 * maps, width), np.float32))
        have = _buffers.set = (np.empty((maps * height, width), np.float32), edge)
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


def blur_stats(
    maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, impl: BlurImpl
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimum, maximum and the 3×3 values around (x, y) (edge-clamped) of every blurred map.

    Args:
        maps: (M, H, W) float32 on any device.
        x, y: (M,) int64 columns and rows on the maps' device.
        impl: the blur implementation (:func:`gaussian_blur7`).

    Returns:
        minima (M,), maxima (M,) and patches (M, 3, 3), float32 on the maps' device.
    """
    m, h, w = maps.shape
    if blur_impl(maps, impl) == "torch":
        b = gaussian_blur7(maps, "torch")
        ys, xs = _patch_index(y, x, h, w)
        return b.amin(dim=(1, 2)), b.amax(dim=(1, 2)), b[torch.arange(m, device=maps.device)[:, None, None], ys, xs]
    stats = opencv_blur_stats(maps.detach().contiguous().numpy(), y.numpy(), x.numpy())
    return tuple(torch.from_numpy(a) for a in stats)  # type: ignore[return-value]


def opencv_blur_stats(maps: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`blur_stats` of (M, H, W) contiguous float32 numpy maps through OpenCV, ``_CPU_CHUNK`` maps
    per call, through the thread's kept buffers (:func:`_blur_buffers`)."""
    m, h, w = maps.shape
    out, edges = _blur_buffers(min(m, _CPU_CHUNK), h, w)
    lo, hi, patch = np.empty(m, np.float32), np.empty(m, np.float32), np.empty((m, 3, 3), np.float32)
    for s in range(0, m, _CPU_CHUNK):
        e = min(s + _CPU_CHUNK, m)
        lo[s:e], hi[s:e], patch[s:e] = _reduce_blurred(_opencv_blur(maps[s:e], out, edges), y[s:e], x[s:e])
    return lo, hi, patch
