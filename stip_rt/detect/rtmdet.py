"""RTMDet as a person :class:`~stip_rt.detect.base.Detector`: letterbox → backend → decode → NMS.

Pre-processing follows mmdetection's RTMDet test pipeline: keep-ratio resize (bilinear) so the
frame fits ``input_size``², padding at the bottom/right with 114, BGR kept, then
(x − mean) / std with the BGR mean/std of :mod:`stip_rt.nn.rtmdet`. Post-processing keeps the
person class only: score threshold, the ``nms_pre`` best points per frame, boxes clipped to the
resized frame, NMS (IoU 0.65 as in the official ``test_cfg``), at most ``max_per_image`` boxes,
mapped back to frame pixels. All frames of a call go through the backend as one batch.

On a GPU everything up to the final boxes stays on the device: the uint8 canvas is uploaded once
(pinned, without blocking) and normalised there, the backend (``cuda-fast`` by default on CUDA:
the prepared graph with BatchNorm folded, FP16, one CUDA graph per batch bucket and input size)
runs, and the top-k, score filter, clipping and NMS run as tensor ops of fixed shapes (no
boolean indexing, no data-dependent loop: nothing waits for the GPU); the first
``max_per_image`` kept boxes and scores of each frame cross to the host as one (N, 5·M + 3)
array, together with one "output finite" flag per frame: a frame
whose network output holds a NaN or an infinity (broken weights) fails with a
:class:`~stip_rt.errors.BackendError` naming the detector and its weights, never boxes made up
from it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import BackendError
from ..nn.rtmdet import PAD_VALUE, PIXEL_MEAN, PIXEL_STD
from ..runtime.base import Backend
from ..runtime.transfer import to_device
from ..types import Detections
from .base import check_frames
from .config import RTMDetDetectorConfig
from .nms import greedy_keep, settle, suppression

log = logging.getLogger(__name__)


def letterbox_size(height: int, width: int, size: int) -> tuple[int, int, float, float]:
    """Resized (h, w) and the (x, y) scale factors of mmcv's keep-ratio ``imrescale`` into ``size``²."""
    scale = min(size / height, size / width)
    new_w, new_h = int(width * scale + 0.5), int(height * scale + 0.5)
    return new_h, new_w, new_w / width, new_h / height


def letterbox_batch(frames: Sequence[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize every frame into a ``size``² canvas of 114s (top-left aligned).

    Args:
        frames: (H, W, 3) uint8 BGR images, any sizes.
        size: canvas side in pixels.

    Returns:
        canvas (N, size, size, 3) uint8 BGR; geometry (N, 4) float32 rows
        ``(resized_w, resized_h, scale_x, scale_y)``.
    """
    canvas = np.full((len(frames), size, size, 3), PAD_VALUE, np.uint8)
    geometry = np.zeros((len(frames), 4), np.float32)
    for i, img in enumerate(frames):
        h, w = img.shape[:2]
        nh, nw, sx, sy = letterbox_size(h, w, size)
        canvas[i, :nh, :nw] = img if (nh, nw) == (h, w) else cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        geometry[i] = (nw, nh, sx, sy)
    return canvas, geometry


@dataclass(frozen=True, slots=True)
class DeviceResults:
    """The detector's post-processing before its copy to the host (:meth:`RTMDetDetector.on_device`).

    Attributes:
        rows: (N, 5·M + 3) float32, M = ``max_per_image``: per frame the first M kept boxes and scores
            (x1, y1, x2, y2 in letterbox pixels, score; zeros past the count), their count, 1.0 where
            the frame's network output is finite, 1.0 where its NMS has settled.
        boxes: (N, k, 4) candidate boxes, clipped to the resized frame, by decreasing score.
        scores: (N, k) their person scores.
        over: (N, k, k) bool suppression matrix (:func:`~stip_rt.detect.nms.suppression`).
        keep: (N, k) bool after the fixed NMS steps.
        valid: (N, k) bool, the candidates above the score threshold.
    """

    rows: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    over: torch.Tensor
    keep: torch.Tensor
    valid: torch.Tensor


def fixed_shapes(device: torch.device) -> bool:
    """Whether the post-processing on ``device`` keeps fixed shapes (no host synchronisation): on
    accelerators. On the CPU reading a value costs nothing, so it drops the top-k columns no frame
    uses and runs the NMS steps to the end."""
    return device.type != "cpu"


class RTMDetDetector:
    """Person detector running an RTMDet through any backend.

    Args:
        backend: runs the network: ``infer((N, 3, S, S) float32) -> (N, P, 4 + classes)`` (e.g.
            :class:`~stip_rt.runtime.torch_backend.TorchBackend` around :func:`~stip_rt.nn.rtmdet.build_rtmdet`).
        config: input size and thresholds.
        name: detector id for run summaries (e.g. ``rtmdet-tiny``).
        weights: how to name the weights in error messages (a checkpoint path, ``random weights``).

    Example:
        >>> from stip_rt.nn.rtmdet import build_rtmdet
        >>> from stip_rt.runtime.torch_backend import TorchBackend
        >>> det = RTMDetDetector(TorchBackend(build_rtmdet("rtmdet-tiny")))
        >>> dets = det.detect([frame])  # one Detections per frame
    """

    def __init__(
        self,
        backend: Backend,
        config: RTMDetDetectorConfig | None = None,
        name: str = "rtmdet",
        weights: str | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or RTMDetDetectorConfig()
        self.name = name
        self.weights = weights
        device = torch.device(backend.device)
        self._mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(PIXEL_STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def warm_up(self, width: int, height: int) -> None:
        """Run the network once on a black (height, width) frame: its first call is slow (lazy
        allocations, autotuning, a CUDA graph capture), which would make a live source's first frames
        late and dropped."""
        self.detect([np.zeros((height, width, 3), np.uint8)])

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        """Letterboxed, normalised batch (N, 3, S, S) float32 on the backend's device, and the geometry."""
        canvas, geometry = letterbox_batch(frames, self.config.input_size)
        x = to_device(canvas, self._mean.device).permute(0, 3, 1, 2).float()
        return (x - self._mean) / self._std, geometry

    def postprocess(self, out: torch.Tensor, geometry: np.ndarray) -> list[Detections]:
        """Person boxes in frame pixels from the network output (N, P, 4 + classes).

        Raises:
            BackendError: the output of a frame is not finite (NaN or inf), naming the detector,
                its weights and the frame's position in the batch.
        """
        n = out.shape[0]
        if n == 0:
            return []
        dev = self.on_device(out, geometry)
        host = dev.rows.cpu().numpy()  # the one device → host copy
        if not (host[:, -2] > 0.5).all():
            raise self._non_finite(host[:, -2] > 0.5)
        if not (host[:, -1] > 0.5).all():  # a chain of suppressions longer than KEEP_STEPS (rare): finish it
            host = self._pack(dev.boxes, dev.scores, settle(dev.over, dev.keep, dev.valid)).cpu().numpy()
        m = self.config.max_per_image
        result = []
        for i in range(n):
            kept = host[i, : 5 * m].reshape(m, 5)[: int(host[i, 5 * m])]  # by decreasing score
            b = kept[:, :4] / np.tile(geometry[i, 2:], 2)
            result.append(Detections(b.astype(np.float32), kept[:, 4].astype(np.float32)))
        return result

    def on_device(self, out: torch.Tensor, geometry: np.ndarray) -> DeviceResults:
        """Everything :meth:`postprocess` computes before its copy to the host, on ``out``'s device,
        with shapes fixed by the config (no host synchronisation on a GPU).

        Per frame: the ``nms_pre`` best person scores (by decreasing score), those above the
        threshold, their boxes clipped to the resized frame, greedy NMS
        (:func:`~stip_rt.detect.nms.greedy_keep`), the first ``max_per_image`` kept.

        Args:
            out: (N, P, 4 + classes) network output.
            geometry: (N, 4) letterbox geometry from :func:`letterbox_batch`.

        Returns:
            :class:`DeviceResults`, on ``out``'s device.
        """
        cfg = self.config
        n = out.shape[0]
        finite = torch.isfinite(out.flatten(1)).all(dim=1)
        scores = out[..., 4 + cfg.class_index]
        k = min(cfg.nms_pre, scores.shape[1])
        top, idx = scores.topk(k, dim=1)  # by decreasing score
        valid = top > cfg.score_threshold  # a prefix of each row
        on_host = not fixed_shapes(out.device)
        if on_host:  # drop the columns no frame uses
            k = int(valid.sum(dim=1).max())
            top, idx, valid = top[:, :k], idx[:, :k], valid[:, :k]
        boxes = torch.gather(out[..., :4], 1, idx[..., None].expand(n, k, 4))
        limits = to_device(geometry[:, :2], out.device)  # resized (w, h) per frame
        boxes = torch.minimum(boxes.clamp(min=0), limits.repeat(1, 2)[:, None, :])
        over = suppression(boxes, cfg.iou_threshold)
        if on_host:
            keep, settled = settle(over, valid, valid), torch.ones(n, dtype=torch.bool)
        else:
            keep, settled = greedy_keep(over, valid)
        flags = torch.stack((finite, settled), dim=1).to(boxes.dtype)
        return DeviceResults(torch.cat((self._pack(boxes, top, keep), flags), dim=1), boxes, top, over, keep, valid)

    def _pack(self, boxes: torch.Tensor, top: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(N, 5·M + 1): the first M kept (box, score) of each frame in their order, then their count."""
        n, m = boxes.shape[0], self.config.max_per_image
        rank = keep.cumsum(dim=1) - 1
        take = keep & (rank < m)
        slot = torch.where(take, rank, m)  # the others all go to slot m, dropped
        values = torch.cat((boxes, top[..., None]), dim=2)
        rows = values.new_zeros((n, m + 1, 5)).scatter_(1, slot[..., None].expand(-1, -1, 5), values)[:, :m]
        return torch.cat((rows.reshape(n, 5 * m), take.sum(dim=1, keepdim=True).to(values.dtype)), dim=1)

    def _non_finite(self, finite: np.ndarray) -> BackendError:
        """The error for (N,) per-frame "output finite" flags with at least one False."""
        weights = f" (weights {self.weights})" if self.weights else ""
        where = "" if len(finite) == 1 else f" of frame {int(np.flatnonzero(~finite)[0])} of a batch of {len(finite)}"
        return BackendError(
            f"detector {self.name}{weights}: the network output{where} is not finite (NaN or inf); the weights "
            "(or the input) are broken, no boxes are made up from it"
        )

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        """Detect people in a batch of frames (``indices`` is ignored: the network needs no frame numbers).

        Args:
            frames: (H, W, 3) uint8 BGR images (sizes may differ).
            indices: unused.

        Returns:
            One :class:`Detections` per frame: boxes (K, 4) float32 xyxy frame pixels, scores (K,).

        Raises:
            DataError: one image instead of a sequence, or a frame that is not (H, W, 3) with H, W > 0.
            BackendError: the network output is not finite.
        """
        check_frames(frames, self.name)
        if len(frames) == 0:
            return []
        batch, geometry = self.preprocess(frames)
        out = self.backend.infer(batch)
        return self.postprocess(out.float(), geometry)
