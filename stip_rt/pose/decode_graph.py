"""The pose stage's post-processing as tensor ops, and on CUDA as one graph replay per batch bucket.

:func:`pack_poses` is everything between the network's output and the host: the flip average,
the official decode (:func:`~stip_rt.pose.decode.decode_with_matrices`), the person scores and
the "heatmaps finite" flags, packed into one float64 block (N, 3·K + 2) = per person the K
(x, y, score) keypoints, the person score and the flag. It reads no host data and never
synchronises, so it runs the same eagerly on any device (the CPU path and the reference) and
inside a CUDA graph.

On a GPU the eager form is launch-bound: about 240 small torch ops (≈ 130 kernels) for 8 people,
measured at 3.8–4.3 ms per frame on an H200 whatever the number of people (issue 13), while the
arithmetic takes microseconds. :class:`DecodeGraphs` captures :func:`pack_poses` once per bucket
of people (1, 2, 4, … 64, as the network's buckets) on static buffers: per call one copy of the
network output, two small uploads (the crops' affine matrices and the box scores, pinned and
non-blocking) and one replay. Rows past N hold the previous call's values; every op is
per-person, so they cannot reach the first N rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..runtime.config import DEFAULT_BUCKETS
from ..runtime.cuda_fast import bucket_for, capture_graph, warm_up_on_side_stream
from .blur import BlurImpl
from .decode import DecodeKind, decode_with_matrices
from .flip import flip_average
from .postprocess import rescore

log = logging.getLogger(__name__)


def pack_poses(
    raw: torch.Tensor,
    n: int,
    matrices: torch.Tensor,
    box_scores: torch.Tensor,
    flip_index: torch.Tensor | None,
    kind: DecodeKind,
    score_from: str = "keypoints",
    in_vis_thre: float = 0.2,
    blur: BlurImpl = "auto",
) -> torch.Tensor:
    """Network output → (N, 3·K + 2) float64 keypoints, person scores and finite flags, tensor ops only.

    Args:
        raw: (N, K, H, W) float32 heatmaps, or (2N, K, H, W) = the crops then their mirrors when
            ``flip_index`` is given.
        n: N, the number of people.
        matrices: (N, 2, 3) float64 heatmap → frame affine maps on ``raw``'s device.
        box_scores: (N,) detector scores on ``raw``'s device.
        flip_index: (K,) int64 joint permutation on ``raw``'s device for the flip average, or None.
        kind: ``hrnet`` or ``stip`` decoding.
        score_from: ``keypoints`` (official rescoring) or ``box`` (the box score alone).
        in_vis_thre: keypoint scores above this count in the person score.
        blur: the STIP blur implementation (:func:`~stip_rt.pose.blur.gaussian_blur7`).

    Returns:
        (N, 3·K + 2) float64 on ``raw``'s device: x, y, score per joint, then the person score and
        1.0 where every heatmap value of the person is finite (0.0 otherwise).
    """
    hm = flip_average(raw[:n], raw[n : 2 * n], flip_index, shift=True) if flip_index is not None else raw[:n]
    k = hm.shape[1]
    dec = decode_with_matrices(hm, matrices, kind, blur)
    box = box_scores.double()
    scores = rescore(box, dec.maxvals, in_vis_thre) if score_from == "keypoints" else box
    packed = torch.cat([dec.coords, dec.maxvals.double()[..., None]], dim=-1).reshape(n, 3 * k)
    return torch.cat([packed, scores[:, None], dec.finite.double()[:, None]], dim=1)


class _Bucket:
    """Static buffers and the captured graph of one bucket."""

    def __init__(
        self, graph: torch.cuda.CUDAGraph, raw: torch.Tensor, mats: torch.Tensor, box: torch.Tensor, out: torch.Tensor
    ) -> None:
        self.graph, self.raw, self.mats, self.box, self.out = graph, raw, mats, box, out


class DecodeGraphs:
    """:func:`pack_poses` replayed from one CUDA graph per bucket of people.

    Args:
        post: ``post(raw, n, matrices, box_scores) -> (n, C)``: :func:`pack_poses` with the
            model's settings bound; it must be capturable (tensor ops on the given tensors only).
        copies: 2 when ``raw`` holds the mirrored crops after the crops (flip test), else 1.
        buckets: ascending people counts that get a graph; more people than the largest run eagerly.
        warmup: eager runs on a side stream before each capture.
    """

    def __init__(
        self,
        post: Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor], torch.Tensor],
        copies: int,
        buckets: tuple[int, ...] = DEFAULT_BUCKETS,
        warmup: int = 2,
    ) -> None:
        self.post = post
        self.copies = copies
        self.buckets = buckets
        self.warmup = warmup
        self._graphs: dict[tuple[int, tuple[int, ...], torch.device], _Bucket] = {}
        self._pool: Any = None  # torch.cuda.graph_pool_handle(), once

    def _capture(self, nb: int, raw: torch.Tensor) -> _Bucket:
        dev = raw.device
        static_raw = torch.zeros((self.copies * nb, *raw.shape[1:]), dtype=raw.dtype, device=dev)
        mats = torch.zeros((nb, 2, 3), dtype=torch.float64, device=dev)
        box = torch.zeros((nb,), dtype=torch.float32, device=dev)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        with torch.inference_mode():
            warm_up_on_side_stream(lambda: self.post(static_raw, nb, mats, box), dev, self.warmup)
            graph = torch.cuda.CUDAGraph()
            with capture_graph(graph, self._pool, dev):
                out = self.post(static_raw, nb, mats, box)
        log.info("pose decode: captured the CUDA graph for %d people", nb)
        return _Bucket(graph, static_raw, mats, box, out)

    @torch.inference_mode()
    def __call__(self, raw: torch.Tensor, n: int, matrices: np.ndarray, box_scores: np.ndarray) -> torch.Tensor:
        """(n, C) float64 on ``raw``'s device, a view valid until the next call (copy it to the host first).

        Args:
            raw: the network output for ``n`` people (``copies``·n rows), on a CUDA device.
            n: people.
            matrices: (n, 2, 3) float64 host affine maps.
            box_scores: (n,) float32 host detector scores.
        """
        dev = raw.device
        mats_t = torch.from_numpy(np.ascontiguousarray(matrices, np.float64))
        box_t = torch.from_numpy(np.ascontiguousarray(box_scores, np.float32))
        if n == 0 or n > self.buckets[-1]:
            return self.post(raw, n, mats_t.to(dev), box_t.to(dev))
        nb = bucket_for(n, self.buckets)
        key = (nb, tuple(raw.shape[1:]), dev)
        g = self._graphs.get(key)
        if g is None:
            g = self._graphs[key] = self._capture(nb, raw)
        g.raw[:n].copy_(raw[:n])
        if self.copies == 2:
            g.raw[nb : nb + n].copy_(raw[n : 2 * n])
        g.mats[:n].copy_(mats_t.pin_memory(), non_blocking=True)
        g.box[:n].copy_(box_t.pin_memory(), non_blocking=True)
        g.graph.replay()
        return g.out[:n]
