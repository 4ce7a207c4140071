"""pack_poses (the pose stage's post-processing as tensor ops) and its CUDA graphs (DecodeGraphs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_pose_estimator import DETS, DETS2, FRAME, FRAME2, SPEC, ConvBackend

from stip_rt.pose.crops import affine_matrices, boxes_to_center_scale
from stip_rt.pose.decode import decode_heatmaps
from stip_rt.pose.decode_graph import pack_poses
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.pose.flip import flip_average
from stip_rt.pose.postprocess import rescore
from stip_rt.types import Detections


@pytest.mark.parametrize("kind", ["stip", "hrnet"])
@pytest.mark.parametrize("flip", [True, False])
def test_pack_poses_equals_the_steps_one_by_one(kind: str, flip: bool) -> None:
    n, k, h, w = 3, 17, 32, 24
    gen = torch.Generator().manual_seed(0)
    raw = torch.rand(2 * n if flip else n, k, h, w, generator=gen)
    raw[1, 4, 5, 6] = float("nan")  # person 1 has a broken map
    center, scale = boxes_to_center_scale(DETS2.boxes)
    flip_index = torch.from_numpy(np.r_[0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
    mats = torch.from_numpy(affine_matrices(center, scale, (w, h), inverse=True))
    box = torch.from_numpy(DETS2.scores)
    got = pack_poses(raw, n, mats, box, flip_index if flip else None, kind)
    hm = flip_average(raw[:n], raw[n:], flip_index) if flip else raw
    dec = decode_heatmaps(hm, center, scale, kind)
    assert got.shape == (n, 3 * k + 2) and got.dtype == torch.float64
    kps = got[:, : 3 * k].reshape(n, k, 3)
    torch.testing.assert_close(kps[..., :2], dec.coords, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(kps[..., 2], dec.maxvals.double(), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(got[:, 3 * k], rescore(box, dec.maxvals), rtol=0, atol=0, equal_nan=True)
    assert got[:, 3 * k + 1].tolist() == [1.0, 0.0, 1.0]
    by_box = pack_poses(raw, n, mats, box, flip_index if flip else None, kind, score_from="box")
    torch.testing.assert_close(by_box[:, 3 * k], box.double())


def test_decode_graphs_off_cuda_run_the_eager_ops() -> None:
    """On the CPU an estimator asked for decode graphs computes exactly what the eager one does."""
    eager = PoseEstimator(ConvBackend(17, SPEC.heatmap_size, "cpu"), SPEC, crop_device="cpu")
    graphs = PoseEstimator(eager.backend, SPEC, crop_device="cpu", decode_graphs=True)
    frames, dets = [FRAME, FRAME2], [DETS, DETS2]
    for a, b in zip(eager.estimate_frames(frames, dets), graphs.estimate_frames(frames, dets), strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.scores, b.scores)


def _boxes(n: int, seed: int) -> Detections:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 200, n), rng.uniform(0, 100, n)
    boxes = np.stack([x, y, x + rng.uniform(20, 60, n), y + rng.uniform(60, 130, n)], axis=1).astype(np.float32)
    return Detections(boxes, rng.uniform(0.3, 1.0, n).astype(np.float32))


@pytest.mark.gpu
@pytest.mark.parametrize("flip", [True, False])
def test_cuda_decode_graphs_equal_the_eager_stage(flip: bool) -> None:
    backend = ConvBackend(17, SPEC.heatmap_size, "cuda")
    eager = PoseEstimator(backend, SPEC, flip_test=flip)
    graphs = PoseEstimator(backend, SPEC, flip_test=flip, decode_graphs=True)
    # 8 after 3 and 3 after 8: stale rows of a bucket's buffers must not reach the result; 70 > 64 runs eagerly
    for seed, n in enumerate((3, 8, 3, 1, 70, 5)):
        det = _boxes(n, seed)
        want, got = eager(FRAME, det), graphs(FRAME, det)
        np.testing.assert_array_equal(got.keypoints, want.keypoints)
        np.testing.assert_array_equal(got.scores, want.scores)
    assert graphs(FRAME, Detections.empty()).keypoints.shape == (0, 17, 3)
    assert {key[0] for key in graphs._graphs._graphs} == {1, 4, 8}
    hm = eager.heatmaps(eager.crop(FRAME, DETS.boxes).batch)  # the public decode of averaged heatmaps
    center, scale = boxes_to_center_scale(DETS.boxes)
    np.testing.assert_array_equal(
        graphs.decode(hm, center, scale, DETS.scores)[0], eager.decode(hm, center, scale, DETS.scores)[0]
    )


@pytest.mark.gpu
@pytest.mark.parametrize("graphs", [True, False])
def test_the_cuda_stage_synchronises_once_per_call(graphs: bool) -> None:
    """Upload, crops, network, flip average, decoding and scores queue on the GPU without waiting:
    the keypoints' copy to the host is the stage's one synchronisation (counted by CUDA's sync
    debug mode, which warns at every synchronising call)."""
    import warnings

    est = PoseEstimator(ConvBackend(17, SPEC.heatmap_size, "cuda"), SPEC, flip_test=True, decode_graphs=graphs)
    det = _boxes(5, 0)
    est(FRAME, det)  # the first call captures the graphs and fills the caches
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            est(FRAME, det)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchronizing CUDA operation" in str(w.message)]
    assert len(syncs) == 1, syncs
