"""PoseEstimator: one backend call per frame, geometry back to frame pixels, scores, zero boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stip_rt.errors import ConfigError
from stip_rt.models import build_model, load_spec
from stip_rt.pose.crops import boxes_to_center_scale
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.types import Detections, Poses

TINY = {"name": "tiny-stip", "arch": "stip", "widths": (8, 16, 32, 64), "num_modules": (1, 1, 1),
        "num_blocks": 1, "stem_blocks": 1, "input_size": (64, 64), "heatmap_size": (32, 32)}  # fmt: skip


class PeakBackend:
    """Stand-in backend: every heatmap has one Gaussian peak at the heatmap centre; records batch sizes."""

    name, device, precision = "fake", "cpu", "fp32"

    def __init__(self, k: int, hw: tuple[int, int], peak: float = 0.8) -> None:
        self.k, self.hw, self.peak, self.calls = k, hw, peak, []
        h, w = hw
        y, x = np.mgrid[0:h, 0:w]
        self.map = torch.from_numpy(peak * np.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / 8.0)).float()

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls.append(int(batch.shape[0]))
        return self.map.expand(batch.shape[0], self.k, *self.hw).clone()


SPEC = load_spec({**TINY, "name": "fake"})
FRAME = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
DETS = Detections(np.array([[10, 20, 70, 140], [150, 30, 300, 200]], np.float32), np.array([0.9, 0.5], np.float32))


@pytest.mark.parametrize("flip", [True, False])
def test_one_batch_per_frame_and_keypoints_at_box_centre(flip: bool) -> None:
    backend = PeakBackend(17, SPEC.heatmap_size)
    est = PoseEstimator(backend, SPEC, flip_test=flip)
    poses = est(FRAME, DETS)
    assert backend.calls == [4 if flip else 2]
    assert isinstance(poses, Poses) and poses.keypoints.shape == (2, 17, 3) and poses.keypoints.dtype == np.float32
    centres = (DETS.boxes[:, :2] + DETS.boxes[:, 2:]) / 2
    _, scale = boxes_to_center_scale(DETS.boxes)
    px = scale[:, 0] * 200 / SPEC.heatmap_size[1]  # one heatmap pixel in frame pixels
    err = np.abs(poses.keypoints[:, :, :2] - centres[:, None]).max(axis=(1, 2))
    assert np.all(err <= 1.01 * px), (err, px)
    np.testing.assert_allclose(poses.keypoints[:, :, 2], 0.8, rtol=1e-5)
    np.testing.assert_allclose(poses.scores, DETS.scores * 0.8, rtol=1e-5)
    np.testing.assert_array_equal(poses.boxes, DETS.boxes)


def test_low_keypoint_scores_give_zero_person_score() -> None:
    est = PoseEstimator(PeakBackend(17, SPEC.heatmap_size, peak=0.1), SPEC)
    assert np.all(est(FRAME, DETS).scores == 0)


def test_zero_boxes_is_empty_not_error() -> None:
    backend = PeakBackend(17, SPEC.heatmap_size)
    poses = PoseEstimator(backend, SPEC)(FRAME, Detections.empty())
    assert len(poses) == 0 and poses.keypoints.shape == (0, 17, 3) and backend.calls == []


def test_torch_crop_path_gives_same_result_on_cpu() -> None:
    a = PoseEstimator(PeakBackend(17, SPEC.heatmap_size), SPEC)(FRAME, DETS)
    b = PoseEstimator(PeakBackend(17, SPEC.heatmap_size), SPEC, crop_device="cpu")(FRAME, DETS)
    np.testing.assert_allclose(a.keypoints, b.keypoints)  # the fake backend ignores pixels: same geometry


def test_from_model_with_real_tiny_network() -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    est = PoseEstimator.from_model(model)
    assert est.backend.device == "cpu" and est.spec.name == "tiny-stip"
    poses = est.estimate(FRAME, DETS)
    assert poses.keypoints.shape == (2, 17, 3) and np.isfinite(poses.keypoints).all()
    assert np.all((poses.scores >= 0) & (poses.scores <= 1))


def test_from_model_without_spec() -> None:
    with pytest.raises(ConfigError, match="spec"):
        PoseEstimator.from_model(torch.nn.Conv2d(3, 17, 1))


@pytest.mark.gpu
def test_cuda_estimator_matches_cpu() -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    cpu = PoseEstimator.from_model(model)(FRAME, DETS)
    gpu = PoseEstimator.from_model(model, device="cuda")(FRAME, DETS)
    np.testing.assert_allclose(gpu.keypoints[..., 2], cpu.keypoints[..., 2], atol=5e-3)
