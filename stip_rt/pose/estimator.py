"""Top-down pose estimation: ``PoseEstimator(frame, detections) -> Poses``.

One call = crop all boxes (one batch of at most ``max_crops`` people, 64 by default: a crowd runs
in several; on CUDA the frame is uploaded once per batch as uint8 and warped by one ``grid_sample``)
→ ``backend.infer`` once (the mirrored crops ride in the same batch
when the flip test is on) → flip-average, official decoding, frame pixels and person scores,
all on the backend's device → one copy of the (N, K, 3) keypoints, (N,) scores and (N,) "heatmaps
finite" flags to the host (the stage's only synchronisation). A person whose heatmaps hold a NaN
or an infinity (broken weights, an overflow) fails the call with a :class:`BackendError` naming
the model and its weights, never keypoints made up from them. :meth:`PoseEstimator.estimate_frames` does the same for
the people of several frames in one network batch. A box no crop can be cut from (zero or negative
width or height, a NaN or an infinity: :func:`~stip_rt.geometry.valid_boxes`) is left out of the
output, as the tracker leaves it out (logged: a warning the first time, then at debug level).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import BackendError, ConfigError
from ..geometry import valid_boxes
from ..models import ModelSpec
from ..runtime.base import Backend
from ..runtime.transfer import to_device
from ..schemas import get_schema
from ..types import Detections, Poses
from .crops import affine_matrices, boxes_to_center_scale, crop_boxes_cv2, crop_boxes_torch
from .decode_graph import DecodeGraphs, pack_poses
from .flip import flip_average
from .postprocess import IN_VIS_THRE

log = logging.getLogger(__name__)

#: Default people per network call (``pose.max_crops``): cuda-fast's largest bucket and TensorRT's
#: largest profile batch, which split bigger batches into chunks of 64 anyway.
MAX_CROPS = 64


def crop_chunks(counts: Sequence[int], limit: int) -> list[list[tuple[int, int, int]]]:
    """Cut the people of several frames into network calls of at most ``limit`` people, in order.

    Args:
        counts: people per frame (F,).
        limit: people per call at most (>= 1).

    Returns:
        One list per call of ``(frame position, first person, end person)`` pieces; a frame with
        more than ``limit`` people spans several calls, a call may hold pieces of several frames.

    Example:
        >>> crop_chunks([3, 0, 2], 4)
        [[(0, 0, 3), (2, 0, 1)], [(2, 1, 2)]]
    """
    chunks: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    room = limit
    for i, n in enumerate(counts):
        start = 0
        while start < n:
            take = min(room, n - start)
            current.append((i, start, start + take))
            start += take
            room -= take
            if room == 0:
                chunks.append(current)
                current, room = [], limit
    if current:
        chunks.append(current)
    return chunks


class NonFiniteOutputError(BackendError):
    """The pose network gave NaN or inf heatmaps.

    Attributes:
        frame_offset: in a several-frame call (:meth:`PoseEstimator.estimate_frames`), the position
            of the first frame concerned (0 otherwise).
    """

    def __init__(self, message: str, frame_offset: int = 0) -> None:
        super().__init__(message)
        self.frame_offset = frame_offset


@dataclass(frozen=True, slots=True)
class Crops:
    """The crops of one frame as the network sees them.

    Attributes:
        batch: (N, 3, h, w) float32 normalised RGB on the crop device.
        center: (N, 2) float32 crop centres, frame pixels.
        scale: (N, 2) float32 padded box size / 200.
    """

    batch: torch.Tensor
    center: np.ndarray
    scale: np.ndarray


class PoseEstimator:
    """Keypoints for every detected person in a frame, through any :class:`Backend`.

    Args:
        backend: runs the pose network: ``infer((N, 3, h, w) float32) -> (N, K, h', w')``.
        spec: the model's :class:`~stip_rt.models.ModelSpec` (input size, decoding, normalisation).
        flip_test: also run the mirrored crops and average (official FLIP_TEST + SHIFT_HEATMAP).
        crop_device: where crops are warped: ``None`` = on the backend's device when it is CUDA
            (one ``grid_sample`` for all boxes), else OpenCV ``warpAffine`` on the CPU; or ``cpu`` /
            ``cuda[:i]`` to force the torch warp on that device.
        in_vis_thre: keypoint scores above this count in the person score (official 0.2).
        score_from: ``keypoints``: person score = box score × mean keypoint score above
            ``in_vis_thre`` (official); ``box``: the box score alone (for random weights, whose
            keypoint scores mean nothing).
        weights: how to name the weights in error messages (a checkpoint path, ``random weights``);
            None: the model name alone.
        decode_graphs: on CUDA, replay the post-processing (flip average, decode, person scores)
            from one CUDA graph per bucket of people (:class:`~stip_rt.pose.decode_graph.DecodeGraphs`)
            instead of ~240 eager ops. Off until a GPU run measures it (``bench_pose_stage.py``).
        max_crops: people per network call at most: a call with more (a crowd, several frames of
            :meth:`estimate_frames`) is cropped, run and decoded in chunks of this many, so that the
            crops and the network's activations stay bounded whatever the number of people (with
            the flip test the network sees twice as many). See docs/pipeline.md.

    Example:
        >>> est = PoseEstimator.from_model(build_model("stip-w32-coco-256x192", weights))
        >>> poses = est(frame, detections)  # Poses with keypoints (N, 17, 3) in frame pixels
    """

    def __init__(
        self,
        backend: Backend,
        spec: ModelSpec,
        flip_test: bool = True,
        crop_device: str | None = None,
        in_vis_thre: float = IN_VIS_THRE,
        score_from: str = "keypoints",
        weights: str | None = None,
        decode_graphs: bool = False,
        max_crops: int = MAX_CROPS,
    ) -> None:
        if max_crops < 1:
            raise ConfigError(f"max_crops must be >= 1, got {max_crops}")
        if spec.decode not in ("hrnet", "stip"):
            raise ConfigError(f"model '{spec.name}': unknown decode '{spec.decode}' (use 'hrnet' or 'stip')")
        if score_from not in ("keypoints", "box"):
            raise ConfigError(f"score_from '{score_from}': use 'keypoints' or 'box'")
        self.score_from = score_from
        self.max_crops = int(max_crops)
        self.backend = backend
        self.spec = spec
        self.schema = get_schema(spec.schema)
        self.flip_test = flip_test
        self.in_vis_thre = in_vis_thre
        self.weights = weights
        self._flip_index = self.schema.flip_index()
        self._flip_index_on: dict[torch.device, torch.Tensor] = {}  # uploaded once per device
        self._skipped = 0  # boxes left out so far (warned about once)
        dev = str(getattr(backend, "device", "cpu"))
        self.crop_device = crop_device if crop_device is not None else (dev if dev.startswith("cuda") else None)
        self._graphs = (
            DecodeGraphs(lambda r, n, m, b: self._pack(r, n, m, b, flip_test), copies=2 if flip_test else 1)
            if decode_graphs
            else None
        )

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        flip_test: bool = True,
        spec: ModelSpec | None = None,
    ) -> PoseEstimator:
        """Wrap a network from :func:`stip_rt.models.build_model` in a :class:`TorchBackend`.

        Args:
            model: the pose network (its ``model.spec`` is used unless ``spec`` is given).
            device: ``cpu`` or ``cuda[:i]``.
            precision: ``fp32``, ``fp16`` or ``bf16``.
            flip_test: see the class.
            spec: the model's spec when the module has no ``spec`` attribute.

        Raises:
            ConfigError: no spec given and the model carries none.
            BackendError: the device or precision is unavailable.
        """
        from ..runtime.torch_backend import TorchBackend

        spec = spec if spec is not None else getattr(model, "spec", None)
        if not isinstance(spec, ModelSpec):
            raise ConfigError("PoseEstimator.from_model: the model has no 'spec'; pass spec=ModelSpec(...)")
        return cls(TorchBackend(model, device=device, precision=precision), spec, flip_test=flip_test)

    @classmethod
    def from_name(
        cls,
        model: str,
        weights: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        flip_test: bool = True,
        backend: str = "torch",
    ) -> PoseEstimator:
        """Build a zoo model (or a model YAML) with its weights on a backend.

        Args:
            model: zoo name (``stip-w32-coco-256x192``) or a model YAML path.
            weights: checkpoint path; ``random`` for random weights (tests, demos); None = the
                zoo's cached weights of ``model`` (downloaded when the zoo can fetch them).
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
            flip_test: see the class.
            backend: ``torch`` (default), ``auto``, ``cuda-fast``, ``onnxruntime`` or ``tensorrt``
                (:func:`stip_rt.runtime.factory.create_backend`).

        Raises:
            ConfigError: unknown model.
            WeightsError: missing or mismatching weights.
            BackendError: the backend, device or precision cannot be used here.
        """
        from .. import weights as zoo
        from ..models import RANDOM_SEED, build_model, load_spec
        from ..runtime.factory import create_backend

        spec = load_spec(model)
        random, path = zoo.checkpoint_arg(weights)
        if random:
            log.warning("pose model %s has random weights: keypoints are meaningless (test mode)", spec.name)
        elif path is None:
            path = str(zoo.weights_path(spec.name))
        net = build_model(spec, path, seed=RANDOM_SEED if random else None).eval()
        named = "random weights" if random else path
        return cls(
            create_backend(net, backend=backend, device=device, precision=precision), spec, flip_test, weights=named
        )

    @property
    def num_keypoints(self) -> int:
        return self.spec.num_joints

    def crop(self, frame: np.ndarray, boxes: np.ndarray) -> Crops:
        """Crop and normalise every box of a frame (one batch).

        Args:
            frame: (H, W, 3) uint8 BGR.
            boxes: (N, 4) xyxy frame pixels.

        Returns:
            :class:`Crops`.
        """
        center, scale = boxes_to_center_scale(boxes, self.spec.aspect_ratio, self.spec.box_padding)
        h, w = self.spec.input_size
        size = (h, w)
        mean, std = tuple(self.spec.pixel_mean), tuple(self.spec.pixel_std)
        if self.crop_device is None:
            batch = crop_boxes_cv2(frame, center, scale, size, mean, std)
        else:
            batch = crop_boxes_torch(frame, center, scale, size, mean, std, device=self.crop_device)
        return Crops(batch, center, scale)

    def heatmaps(self, crops: torch.Tensor) -> torch.Tensor:
        """Network heatmaps of a crop batch, flip-averaged when the flip test is on.

        Args:
            crops: (N, 3, h, w) float32 normalised.

        Returns:
            (N, K, h', w') float32 on the backend's device.
        """
        n = crops.shape[0]
        out = self._infer(crops)
        if not self.flip_test:
            return out
        return flip_average(out[:n], out[n:], self._flip_index_for(out.device), shift=True)

    def _infer(self, crops: torch.Tensor) -> torch.Tensor:
        """The network's raw output: of the crops, then (flip test) of their mirrors, in one batch."""
        return self.backend.infer(torch.cat([crops, crops.flip(3)], dim=0) if self.flip_test else crops)

    def _flip_index_for(self, device: torch.device) -> torch.Tensor:
        """The schema's flip permutation on ``device``, uploaded once."""
        idx = self._flip_index_on.get(device)
        if idx is None:
            idx = self._flip_index_on[device] = to_device(np.asarray(self._flip_index, np.int64), device)
        return idx

    def _pack(
        self, raw: torch.Tensor, n: int, matrices: torch.Tensor, box_scores: torch.Tensor, mirrored: bool
    ) -> torch.Tensor:
        """:func:`pack_poses` with this estimator's settings (``mirrored``: ``raw`` also holds the mirrored crops)."""
        flip = self._flip_index_for(raw.device) if mirrored else None
        return pack_poses(raw, n, matrices, box_scores, flip, self.spec.decode, self.score_from, self.in_vis_thre)

    def decode(
        self, heatmaps: torch.Tensor, center: np.ndarray, scale: np.ndarray, box_scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps → keypoints and person scores on the heatmaps' device, then one copy to the host.

        Args:
            heatmaps: (N, K, h', w') heatmaps (flip-averaged), any device.
            center, scale: (N, 2) crop geometry (:class:`Crops`).
            box_scores: (N,) detector scores.

        Returns:
            keypoints (N, K, 3) float32 (x, y, score) frame pixels, person scores (N,) float32.

        Raises:
            NonFiniteOutputError: a person's heatmaps are not finite (NaN or inf), naming the model and weights.
        """
        kps, scores, finite = self._decode(heatmaps, center, scale, box_scores, mirrored=False)
        if not finite.all():
            raise self._non_finite(finite)
        return kps, scores

    def _decode(
        self, raw: torch.Tensor, center: np.ndarray, scale: np.ndarray, box_scores: np.ndarray, mirrored: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network output → keypoints, scores and (N,) bool "all heatmaps finite", without the check.

        ``raw`` holds N heatmaps, or (``mirrored``) the N crops' then their mirrors' raw heatmaps
        (flip-averaged here). One device → host copy.
        """
        n, k = int(center.shape[0]), int(raw.shape[1])
        raw = raw.detach()
        h, w = raw.shape[2:]
        mats = affine_matrices(center, scale, (w, h), inverse=True)
        box = np.asarray(box_scores, np.float32)
        if self._graphs is not None and raw.is_cuda and mirrored == self.flip_test:
            host = self._graphs(raw, n, mats, box).cpu().numpy()
        else:
            dev = raw.device
            host = self._pack(raw, n, to_device(mats, dev), to_device(box, dev), mirrored).cpu().numpy()
        kps = host[:, : 3 * k].reshape(n, k, 3).astype(np.float32)
        return kps, host[:, 3 * k].astype(np.float32), host[:, 3 * k + 1] > 0.5

    def _non_finite(self, finite: np.ndarray, frame_offset: int = 0) -> NonFiniteOutputError:
        """The error for (N,) "heatmaps finite" flags with at least one False."""
        weights = f" (weights {self.weights})" if self.weights else ""
        return NonFiniteOutputError(
            f"pose model {self.spec.name}{weights}: the network output is not finite (NaN or inf) for "
            f"{int((~finite).sum())} of {len(finite)} people; the weights (or the input) are broken, "
            "no keypoints are made up from it",
            frame_offset,
        )

    def estimate_frames(self, frames: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Poses]:
        """Keypoints of every detected person in several frames, all crops in ONE backend batch.

        Each frame is cropped on its own (uploaded once on CUDA); the crops of all frames are
        concatenated, run through the network (and its flip test) once, decoded once, copied
        to the host once and split back per frame. Equal to one :meth:`estimate` per frame.
        More than ``max_crops`` people in all run as several such calls of at most ``max_crops``
        (:func:`crop_chunks`), so memory does not grow with the crowd.

        Args:
            frames: F frames, (H, W, 3) uint8 BGR (sizes may differ).
            detections: F :class:`Detections`, one per frame (may be empty).

        Returns:
            F :class:`Poses`, in the order of ``frames`` (see :meth:`estimate`).

        Raises:
            ValueError: ``frames`` and ``detections`` differ in length.
            NonFiniteOutputError: non-finite heatmaps (see :meth:`decode`), with the position in
                ``frames`` of the first frame concerned.
        """
        if len(frames) != len(detections):
            raise ValueError(f"estimate_frames: {len(frames)} frames but {len(detections)} detections")
        detections = [self._croppable(d) for d in detections]
        counts = [len(d) for d in detections]
        if sum(counts) == 0:
            return [Poses.empty(self.num_keypoints) for _ in counts]
        box_scores = np.concatenate([np.asarray(d.scores, np.float32) for d in detections if len(d)])
        parts = [self._estimate_chunk(frames, detections, chunk) for chunk in crop_chunks(counts, self.max_crops)]
        kps = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        finite = np.concatenate([p[2] for p in parts])
        if not finite.all():  # name the frame of the first broken person (frames without people have no crops)
            first = int(np.flatnonzero(~finite)[0])
            raise self._non_finite(finite, int(np.searchsorted(np.cumsum(counts), first, side="right")))
        out, start = [], 0
        for d, n in zip(detections, counts, strict=True):
            if n == 0:
                out.append(Poses.empty(self.num_keypoints))
                continue
            sl = slice(start, start + n)
            out.append(Poses(np.asarray(d.boxes, np.float32), box_scores[sl], kps[sl], scores[sl]))
            start += n
        return out

    def _estimate_chunk(
        self, frames: Sequence[np.ndarray], detections: Sequence[Detections], chunk: list[tuple[int, int, int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crop, infer and decode one chunk ``[(frame position, first box, end box), ...]`` (one network call)."""
        crops = [self.crop(frames[i], np.asarray(detections[i].boxes)[a:b]) for i, a, b in chunk]
        batch = crops[0].batch if len(crops) == 1 else torch.cat([c.batch for c in crops])
        center = np.concatenate([c.center for c in crops])
        scale = np.concatenate([c.scale for c in crops])
        box_scores = np.concatenate([np.asarray(detections[i].scores, np.float32)[a:b] for i, a, b in chunk])
        return self._decode(self._infer(batch), center, scale, box_scores, self.flip_test)

    def _croppable(self, dets: Detections) -> Detections:
        """``dets`` without the boxes no crop can be cut from (their affine matrix is singular, their
        keypoints would be NaN); logged."""
        keep = valid_boxes(dets.boxes)
        if keep.all():
            return dets
        bad = int((~keep).sum())
        first = np.asarray(dets.boxes)[~keep][0].tolist()
        first_time = self._skipped == 0
        self._skipped += bad
        log.log(
            logging.WARNING if first_time else logging.DEBUG,
            "pose model %s: skipped %d of %d boxes with a zero or negative width or height or a non-finite "
            "coordinate (e.g. %s): they get no pose%s",
            self.spec.name, bad, len(keep), first, " (later ones are logged at debug level)" if first_time else "",
        )  # fmt: skip
        return Detections(np.asarray(dets.boxes)[keep], np.asarray(dets.scores)[keep])

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        """Keypoints of every detected person.

        Args:
            frame: (H, W, 3) uint8 BGR.
            detections: person boxes (N, 4) xyxy px and scores (N,).

        Returns:
            :class:`Poses`, one row per box a crop can be cut from, in the order of ``detections``
            (boxes with a zero or negative width or height or a non-finite coordinate are left out,
            logged; ``np.flatnonzero(valid_boxes(detections.boxes))`` maps the rows back):
            keypoints (N, K, 3) float32 (x, y, score) in frame pixels; ``scores`` = box score × mean
            of keypoint scores above 0.2 (0 when none), or the box score when ``score_from`` is
            ``box``. Zero boxes → ``Poses.empty(K)``.
        """
        return self.estimate_frames([frame], [detections])[0]

    __call__ = estimate

    def warm_up(self, width: int, height: int) -> None:
        """Make the first calls now: one person on a black (height, width) frame, then, for a backend
        that captures CUDA graphs per batch bucket (``cuda-fast``), every bucket.

        A network's first calls are slow (lazy allocations, cuDNN and Triton autotuning, one graph
        capture per bucket the first time as many people are seen); before a live source is read,
        they would make its first frames (or a frame with more people than before) late and dropped.
        """
        frame = np.zeros((height, width, 3), np.uint8)
        self.estimate(frame, Detections(np.array([[0, 0, width, height]], np.float32), np.ones(1, np.float32)))
        capture = getattr(self.backend, "warmup", None)
        if callable(capture):
            capture((3, *self.spec.input_size))
