"""RTMDet as a person :class:`~stip_rt.detect.base.Detector`: letterbox → backend → decode → NMS.

Pre-processing follows mmdetection's RTMDet test pipeline: keep-ratio resize (bilinear) so the
frame fits ``input_size``², padding at the bottom/right with 114, BGR kept, then
(x − mean) / std with the BGR mean/std of :mod:`stip_rt.nn.rtmdet`. Post-processing keeps the
person class only: score threshold, the ``nms_pre`` best points per frame, boxes clipped to the
resized frame, NMS (IoU 0.65 as in the official ``test_cfg``), at most ``max_per_image`` boxes,
mapped back to frame pixels. All frames of a call go through the backend as one batch.

On a GPU everything up to the final boxes stays on the device: the uint8 canvas is uploaded once
and normalised there, the backend (``cuda-fast`` by default on CUDA: the prepared graph with
BatchNorm folded, FP16, one CUDA graph per batch bucket and input size) runs, and the top-k,
score filter, clipping and NMS run as tensor ops; the kept boxes, scores and frame indices
cross to the host as one (K, 6) array, together with one "output finite" flag per frame: a frame
whose network output holds a NaN or an infinity (broken weights) fails with a
:class:`~stip_rt.errors.BackendError` naming the detector and its weights, never boxes made up
from it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from ..errors import BackendError
from ..nn.rtmdet import PAD_VALUE, PIXEL_MEAN, PIXEL_STD
from ..runtime.base import Backend
from ..types import Detections
from .config import RTMDetDetectorConfig
from .nms import nms

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

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        """Letterboxed, normalised batch (N, 3, S, S) float32 on the backend's device, and the geometry."""
        canvas, geometry = letterbox_batch(frames, self.config.input_size)
        device = self._mean.device
        x = torch.from_numpy(canvas)
        if device.type == "cuda":
            x = x.pin_memory()
        x = x.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
        return (x - self._mean) / self._std, geometry

    def postprocess(self, out: torch.Tensor, geometry: np.ndarray) -> list[Detections]:
        """Person boxes in frame pixels from the network output (N, P, 4 + classes).

        Raises:
            BackendError: the output of a frame is not finite (NaN or inf), naming the detector,
                its weights and the frame's position in the batch.
        """
        cfg = self.config
        n = out.shape[0]
        if n == 0:
            return []
        finite = torch.isfinite(out.flatten(1)).all(dim=1)  # on the device; crosses with the boxes
        scores = out[..., 4 + cfg.class_index]
        k = min(cfg.nms_pre, scores.shape[1])
        top, idx = scores.topk(k, dim=1)  # (N, k)
        boxes = torch.gather(out[..., :4], 1, idx[..., None].expand(n, k, 4))
        limits = torch.as_tensor(geometry[:, :2], device=out.device)  # resized (w, h) per frame
        boxes = torch.minimum(boxes.clamp(min=0), limits.repeat(1, 2)[:, None, :])
        frame = torch.arange(n, device=out.device)[:, None].expand(n, k)
        sel = top > cfg.score_threshold
        boxes, top, frame = boxes[sel], top[sel], frame[sel]
        keep = nms(boxes, top, cfg.iou_threshold, groups=frame)
        kept = torch.cat((boxes[keep], top[keep, None], frame[keep, None].to(boxes.dtype)), dim=1)
        # the one device → host copy: (K, 6) boxes, score, frame, then the N finite flags
        host = torch.cat((kept.reshape(-1), finite.to(kept.dtype))).cpu().numpy()
        if not (host[-n:] > 0.5).all():
            raise self._non_finite(host[-n:] > 0.5)
        rows = host[:-n].reshape(-1, 6)
        host_boxes, host_scores, host_frame = rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)
        result = []
        for i in range(n):
            m = np.flatnonzero(host_frame == i)[: cfg.max_per_image]  # already by decreasing score
            b = host_boxes[m] / np.tile(geometry[i, 2:], 2)
            result.append(Detections(b.astype(np.float32), host_scores[m].astype(np.float32)))
        return result

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
        """
        if len(frames) == 0:
            return []
        batch, geometry = self.preprocess(frames)
        out = self.backend.infer(batch)
        return self.postprocess(out.float(), geometry)
