"""PoseEstimator: one backend call per frame, geometry back to frame pixels, scores, zero boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stip_rt.errors import ConfigError, DataError
from stip_rt.models import build_model, load_spec
from stip_rt.pose.crops import boxes_to_center_scale
from stip_rt.pose.decode import decode_heatmaps
from stip_rt.pose.estimator import NonFiniteOutputError, PoseEstimator, crop_chunks
from stip_rt.pose.postprocess import rescore
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


#: boxes no crop can be cut from: empty, inverted, NaN, inf
BAD_BOXES = [[100, 100, 100, 100], [60, 10, 20, 90], [10, 10, np.nan, 50], [0, 0, np.inf, 9]]


@pytest.mark.parametrize("crop_device", [None, "cpu"])
def test_boxes_no_crop_can_be_cut_from_are_left_out_and_logged_once(
    crop_device: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    backend = PeakBackend(17, SPEC.heatmap_size)
    est = PoseEstimator(backend, SPEC, flip_test=False, crop_device=crop_device)
    boxes = np.array([BAD_BOXES[0], DETS.boxes[0], *BAD_BOXES[1:], DETS.boxes[1]], np.float32)
    dets = Detections(boxes, np.linspace(0.3, 0.9, len(boxes), dtype=np.float32))
    with caplog.at_level("DEBUG", logger="stip_rt.pose.estimator"):
        poses = est(FRAME, dets)
        again = est(FRAME, Detections(boxes[:1], dets.scores[:1]))  # only a bad box: nothing to run
    assert backend.calls == [2]  # the two good boxes, one batch
    np.testing.assert_array_equal(poses.boxes, DETS.boxes)
    np.testing.assert_array_equal(poses.box_scores, dets.scores[[1, 5]])
    assert np.isfinite(poses.keypoints).all() and np.isfinite(poses.scores).all()
    np.testing.assert_allclose(poses.keypoints, est(FRAME, DETS).keypoints)
    assert len(again) == 0 and again.keypoints.shape == (0, 17, 3)
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "skipped 4 of 6 boxes" in warned[0].getMessage()
    assert any(r.levelname == "DEBUG" and "skipped 1 of 1" in r.getMessage() for r in caplog.records)


def test_estimate_frames_leaves_out_bad_boxes_per_frame() -> None:
    est = PoseEstimator(PeakBackend(17, SPEC.heatmap_size), SPEC)
    bad = Detections(np.array(BAD_BOXES[:1], np.float32), np.ones(1, np.float32))
    mixed = Detections(np.concatenate([DETS2.boxes[:1], np.float32(BAD_BOXES), DETS2.boxes[1:]]),
                       np.concatenate([DETS2.scores[:1], np.ones(4, np.float32), DETS2.scores[1:]]))  # fmt: skip
    out = est.estimate_frames([FRAME, FRAME2, FRAME2], [bad, mixed, DETS])
    assert [len(p) for p in out] == [0, 3, 2]
    np.testing.assert_array_equal(out[1].boxes, DETS2.boxes)
    np.testing.assert_allclose(out[1].keypoints, est(FRAME2, DETS2).keypoints)
    np.testing.assert_allclose(out[2].keypoints, est(FRAME, DETS).keypoints)


def test_detections_given_as_lists_work_and_bad_shapes_are_one_data_error() -> None:
    est = PoseEstimator(PeakBackend(17, SPEC.heatmap_size), SPEC)
    poses = est(FRAME, Detections(DETS.boxes.tolist(), DETS.scores.tolist()))  # type: ignore[arg-type]
    np.testing.assert_allclose(poses.keypoints, est(FRAME, DETS).keypoints)
    with pytest.raises(DataError, match=r"boxes must be \(N, 4\), got \(4,\)"):
        est(FRAME, Detections(DETS.boxes[0], DETS.scores[:1]))
    with pytest.raises(DataError, match=r"for 2 boxes, got \(3,\)"):
        est(FRAME, Detections(DETS.boxes, np.ones(3, np.float32)))


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


FRAME2 = np.random.default_rng(1).integers(0, 255, (200, 260, 3), dtype=np.uint8)
DETS2 = Detections(
    np.array([[5, 5, 60, 150], [100, 40, 200, 190], [30, 80, 250, 195]], np.float32),
    np.array([0.8, 0.3, 0.6], np.float32),
)


class PerCropBackend:
    """Runs the wrapped backend one crop at a time, so its numbers do not depend on the batch."""

    def __init__(self, inner) -> None:
        self.inner, self.device, self.name, self.precision = inner, inner.device, "per-crop", inner.precision

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.inner.infer(batch[i : i + 1]) for i in range(batch.shape[0])])


@pytest.mark.parametrize("crop_device", [None, "cpu"])
def test_estimate_frames_equals_per_frame_calls(crop_device: str | None) -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    est = PoseEstimator(PerCropBackend(PoseEstimator.from_model(model).backend), model.spec, crop_device=crop_device)
    frames = [FRAME, FRAME2, FRAME, FRAME2]
    dets = [DETS, DETS2, Detections.empty(), Detections(DETS2.boxes[1:2], DETS2.scores[1:2])]
    batched = est.estimate_frames(frames, dets)
    single = [est.estimate(f, d) for f, d in zip(frames, dets, strict=True)]
    assert len(batched) == 4 and [len(p) for p in batched] == [2, 3, 0, 1]
    for b, s in zip(batched, single, strict=True):
        np.testing.assert_array_equal(b.boxes, s.boxes)
        np.testing.assert_array_equal(b.box_scores, s.box_scores)
        np.testing.assert_array_equal(b.keypoints, s.keypoints)
        np.testing.assert_array_equal(b.scores, s.scores)
        assert b.keypoints.dtype == np.float32 and b.scores.dtype == np.float32
    assert batched[2].keypoints.shape == (0, 17, 3) and np.isfinite(batched[1].keypoints).all()


def test_estimate_frames_is_one_backend_batch() -> None:
    backend = PeakBackend(17, SPEC.heatmap_size)
    est = PoseEstimator(backend, SPEC, flip_test=True)
    out = est.estimate_frames([FRAME, FRAME2, FRAME2], [DETS, Detections.empty(), DETS2])
    assert backend.calls == [2 * (2 + 3)]  # all crops and their mirrors in one call
    np.testing.assert_allclose(out[2].keypoints, est(FRAME2, DETS2).keypoints, rtol=0, atol=0)
    assert est.estimate_frames([FRAME], [Detections.empty()])[0].keypoints.shape == (0, 17, 3)
    assert backend.calls == [10, 6]  # no call for a batch without people
    with pytest.raises(ValueError, match="2 frames but 1 detections"):
        est.estimate_frames([FRAME, FRAME], [DETS])


class ConvBackend:
    """Stand-in network that never synchronises: pooled crops through a fixed random 1×1 conv."""

    name, precision = "conv", "fp32"

    def __init__(self, k: int, hw: tuple[int, int], device: str) -> None:
        self.device, self.hw = device, hw
        self.weight = torch.randn(k, 3, 1, 1, generator=torch.Generator().manual_seed(0)).to(device)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.adaptive_avg_pool2d(batch, self.hw), self.weight)


def test_conv_backend_estimate_frames_on_cpu() -> None:
    est = PoseEstimator(ConvBackend(17, SPEC.heatmap_size, "cpu"), SPEC, crop_device="cpu")
    out = est.estimate_frames([FRAME, FRAME2], [DETS, DETS2])
    np.testing.assert_array_equal(out[1].keypoints, est(FRAME2, DETS2).keypoints)  # pooling is per crop: exact


@pytest.mark.gpu
def test_cuda_stage_does_not_synchronise_before_the_download() -> None:
    est = PoseEstimator(ConvBackend(17, SPEC.heatmap_size, "cuda"), SPEC)
    frames, dets = [FRAME, FRAME2], [DETS, DETS2]
    want = est.estimate_frames(frames, dets)  # warm-up: caches, allocator, flip index upload
    crops = [est.crop(f, d.boxes) for f, d in zip(frames, dets, strict=True)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call below raises
    try:
        crops = [est.crop(f, d.boxes) for f, d in zip(frames, dets, strict=True)]
        hm = est.heatmaps(torch.cat([c.batch for c in crops]))
        center = np.concatenate([c.center for c in crops])
        scale = np.concatenate([c.scale for c in crops])
        dec = decode_heatmaps(hm, center, scale, est.spec.decode)
        finite = torch.isfinite(hm.reshape(hm.shape[0], -1)).all(dim=1)  # the NaN/inf check rides the copy
        scores = rescore(
            torch.from_numpy(np.concatenate([DETS.scores, DETS2.scores])).cuda(non_blocking=True), dec.maxvals
        )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    kps = dec.coords.cpu().numpy()
    assert finite.cpu().numpy().all()
    np.testing.assert_allclose(kps[:2], want[0].keypoints[..., :2], atol=1e-3)
    np.testing.assert_allclose(scores.cpu().numpy()[2:], want[1].scores, atol=1e-6)


class BrokenBackend(PeakBackend):
    """Like :class:`PeakBackend`, but crop ``bad`` of every call (before the flip copies) gets ``value``."""

    def __init__(self, k: int, hw: tuple[int, int], bad: int, value: float) -> None:
        super().__init__(k, hw)
        self.bad, self.value = bad, value

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        out = super().infer(batch)
        out[self.bad, 3, 5, 7] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("flip", [True, False])
def test_non_finite_heatmaps_raise_naming_model_and_weights(value: float, flip: bool) -> None:
    est = PoseEstimator(BrokenBackend(17, SPEC.heatmap_size, 1, value), SPEC, flip_test=flip, weights="/w/nan.pth")
    with pytest.raises(NonFiniteOutputError) as ei:
        est(FRAME, DETS)
    msg = str(ei.value)
    assert "pose model fake (weights /w/nan.pth)" in msg and "not finite" in msg and "1 of 2 people" in msg
    assert ei.value.frame_offset == 0
    # a finite output still decodes (the flag does not change the keypoints)
    ok = PoseEstimator(PeakBackend(17, SPEC.heatmap_size), SPEC, flip_test=flip, weights="/w/nan.pth")
    assert np.isfinite(ok(FRAME, DETS).keypoints).all()


def test_non_finite_heatmaps_in_a_batch_name_the_frame_concerned() -> None:
    # frames: 2 people, nobody, 2 people; crop 2 (the first person of the third frame) is broken
    est = PoseEstimator(BrokenBackend(17, SPEC.heatmap_size, 2, float("nan")), SPEC, flip_test=False)
    with pytest.raises(NonFiniteOutputError, match=r"pose model fake: .*1 of 4 people") as ei:
        est.estimate_frames([FRAME, FRAME, FRAME2], [DETS, Detections.empty(), DETS])
    assert ei.value.frame_offset == 2


# ---------------------------------------------------------------------------- crowds: bounded network calls


def test_crop_chunks_cut_people_into_calls_in_order() -> None:
    assert crop_chunks([3, 0, 2], 4) == [[(0, 0, 3), (2, 0, 1)], [(2, 1, 2)]]
    assert crop_chunks([10], 4) == [[(0, 0, 4)], [(0, 4, 8)], [(0, 8, 10)]]
    assert crop_chunks([4, 4], 4) == [[(0, 0, 4)], [(1, 0, 4)]]
    assert crop_chunks([0, 0], 4) == []
    for counts, limit in (([7, 1, 0, 9, 3], 5), ([500, 500, 500, 500], 64), ([1] * 9, 1)):
        chunks = crop_chunks(counts, limit)
        assert all(sum(b - a for _, a, b in c) <= limit for c in chunks)
        flat = [(i, j) for c in chunks for i, a, b in c for j in range(a, b)]
        assert flat == [(i, j) for i, n in enumerate(counts) for j in range(n)]  # every person once, in order


def _crowd(n: int, seed: int) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [280, 160], (n, 2))
    wh = rng.uniform([10, 30], [40, 80], (n, 2))
    return Detections(np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.uniform(0.3, 1, n).astype(np.float32))


@pytest.mark.parametrize("flip", [True, False])
def test_a_crowd_runs_in_network_calls_of_at_most_max_crops(flip: bool) -> None:
    """500 people in 4 frames were one network call of 2000 crops (4000 with the flip test): a
    256×192 model ran out of 23 GB on the CPU. Calls now hold max_crops people at most."""
    backend = PeakBackend(17, SPEC.heatmap_size)
    frames, dets = [FRAME, FRAME2, FRAME], [_crowd(150, 0), Detections.empty(), _crowd(70, 1)]
    out = PoseEstimator(backend, SPEC, flip_test=flip).estimate_frames(frames, dets)
    assert [len(p) for p in out] == [150, 0, 70]
    assert backend.calls == [c * (2 if flip else 1) for c in (64, 64, 64, 28)]
    small = PeakBackend(17, SPEC.heatmap_size)
    again = PoseEstimator(small, SPEC, flip_test=flip, max_crops=7).estimate_frames(frames, dets)
    assert max(small.calls) == 7 * (2 if flip else 1) and sum(small.calls) == sum(backend.calls)
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(ConfigError, match="max_crops"):
        PoseEstimator(backend, SPEC, max_crops=0)


def test_chunked_calls_equal_one_call_on_a_real_network() -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    inner = PoseEstimator.from_model(model).backend
    frames, dets = [FRAME, FRAME2, FRAME2], [_crowd(9, 2), DETS2, _crowd(5, 3)]
    one = PoseEstimator(PerCropBackend(inner), model.spec, max_crops=64).estimate_frames(frames, dets)
    chunked = PoseEstimator(PerCropBackend(inner), model.spec, max_crops=4).estimate_frames(frames, dets)
    for a, b in zip(one, chunked, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_non_finite_heatmaps_in_a_later_chunk_name_the_frame_concerned() -> None:
    # chunks of 3: [f0 p0-1, f2 p0], [f2 p1-2, f3 p0]; crop 1 of every call is broken: f0 p1, f2 p2
    est = PoseEstimator(BrokenBackend(17, SPEC.heatmap_size, 1, float("nan")), SPEC, flip_test=False, max_crops=3)
    frames, dets = [FRAME, FRAME, FRAME2, FRAME2], [DETS, Detections.empty(), DETS2, _crowd(1, 4)]
    with pytest.raises(NonFiniteOutputError, match=r"2 of 6 people") as ei:
        est.estimate_frames(frames, dets)
    assert ei.value.frame_offset == 0
    est = PoseEstimator(BrokenBackend(17, SPEC.heatmap_size, 2, float("nan")), SPEC, flip_test=False, max_crops=3)
    with pytest.raises(NonFiniteOutputError, match=r"2 of 6 people") as ei:  # f2 p0 and f3 p0
        est.estimate_frames(frames, dets)
    assert ei.value.frame_offset == 2


class CapturingBackend(ConvBackend):
    """A backend that captures graphs per bucket (as ``cuda-fast``): records its calls."""

    def __init__(self) -> None:
        super().__init__(17, SPEC.heatmap_size, "cpu")
        self.calls: list[object] = []

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(batch.shape))
        return super().infer(batch)

    def warmup(self, chw: tuple[int, int, int]) -> None:
        self.calls.append(("every bucket", chw))


def test_the_pose_estimator_warms_up_one_person_then_every_bucket() -> None:
    backend = CapturingBackend()
    PoseEstimator(backend, SPEC, crop_device="cpu").warm_up(640, 480)
    h, w = SPEC.input_size
    assert backend.calls == [(2, 3, h, w), ("every bucket", (3, h, w))]  # one person and its mirror, then the graphs
