"""RTMDetDetector: letterbox geometry, decoding back to frame pixels, batching, a real random-weight run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stip_rt.detect.base import Detector
from stip_rt.detect.config import RTMDetDetectorConfig
from stip_rt.detect.rtmdet import RTMDetDetector, letterbox_batch, letterbox_size
from stip_rt.errors import DataError
from stip_rt.nn.rtmdet import PIXEL_MEAN, PIXEL_STD, build_rtmdet
from stip_rt.runtime.torch_backend import TorchBackend


def test_letterbox_follows_mmcv_rounding_and_pads_with_114():
    assert letterbox_size(576, 768, 640) == (480, 640, 640 / 768, 480 / 576)
    assert letterbox_size(333, 500, 640)[:2] == (426, 640)  # int(333 * 1.28 + 0.5)
    frames = [np.full((576, 768, 3), 7, np.uint8), np.full((100, 50, 3), 9, np.uint8)]
    canvas, geom = letterbox_batch(frames, 640)
    assert canvas.shape == (2, 640, 640, 3)
    assert (canvas[0, :480] == 7).all() and (canvas[0, 480:] == 114).all()
    assert (canvas[1, :, :320] == 9).all() and (canvas[1, :, 320:] == 114).all()
    np.testing.assert_allclose(geom[1], [320, 640, 6.4, 6.4])


class _Scripted:
    """A backend returning a fixed output and recording its input."""

    name, device, precision = "scripted", "cpu", "fp32"

    def __init__(self, out: torch.Tensor) -> None:
        self.out = out
        self.seen: torch.Tensor | None = None

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self.seen = batch
        return self.out[: batch.shape[0]]


def _out(rows_per_frame: list[list[list[float]]], points: int = 50) -> torch.Tensor:
    """(N, points, 4 + 2) with the given rows [x1, y1, x2, y2, person, other] and zeros elsewhere."""
    out = torch.zeros(len(rows_per_frame), points, 6)
    for i, rows in enumerate(rows_per_frame):
        for j, r in enumerate(rows):
            out[i, j] = torch.tensor(r)
    return out


def test_decoding_maps_boxes_back_to_frame_pixels_person_only():
    out = _out(
        [
            [
                [64, 32, 128, 160, 0.9, 0.1],  # person
                [66, 33, 128, 160, 0.8, 0.1],  # duplicate → NMS
                [300, 300, 400, 400, 0.1, 0.95],  # another class only → dropped
                [500, 10, 700, 200, 0.6, 0.0],  # crosses the resized width 640 → clipped
            ],
            [[10, 10, 20, 20, 0.2, 0.0]],  # below threshold
        ]
    )
    backend = _Scripted(out)
    det = RTMDetDetector(backend, RTMDetDetectorConfig(input_size=640, score_threshold=0.3))
    assert isinstance(det, Detector)
    frames = [np.zeros((576, 768, 3), np.uint8), np.zeros((320, 320, 3), np.uint8)]
    d0, d1 = det.detect(frames, [0, 1])
    scale = 768 / 640
    np.testing.assert_allclose(d0.boxes, np.array([[64, 32, 128, 160], [500, 10, 640, 200]]) * scale, rtol=1e-6)
    np.testing.assert_allclose(d0.scores, [0.9, 0.6], rtol=1e-6)
    assert d0.boxes.dtype == np.float32 and len(d1) == 0 and d1.boxes.shape == (0, 4)
    # normalised BGR input: the 114 padding of frame 0 below row 480
    mean, std = np.array(PIXEL_MEAN), np.array(PIXEL_STD)
    np.testing.assert_allclose(backend.seen[0, :, 600, 10].numpy(), (114 - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(backend.seen[0, :, 10, 10].numpy(), (0 - mean) / std, rtol=1e-5)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((576, 768, 3), np.uint8), r"takes a sequence of images; got one \(576, 768, 3\) array"),
        ([np.zeros((0, 0, 3), np.uint8)], r"frames\[0\] must be an \(H, W, 3\) image, H, W > 0; got shape \(0, 0, 3\)"),
    ],
    ids=["one-image", "empty-image"],
)
def test_detect_refuses_one_image_or_an_empty_one(frames: object, message: str) -> None:
    backend = _Scripted(_out([[]]))
    det = RTMDetDetector(backend, RTMDetDetectorConfig(), name="rtmdet-tiny")
    with pytest.raises(DataError, match=r"detector rtmdet-tiny: detect\(\) " + message):
        det.detect(frames)  # type: ignore[arg-type]
    assert backend.seen is None


def test_max_per_image_keeps_the_best():
    rows = [[i * 20, 0, i * 20 + 10, 10, 0.4 + i * 0.01, 0] for i in range(20)]
    det = RTMDetDetector(_Scripted(_out([rows])), RTMDetDetectorConfig(max_per_image=5))
    (d,) = det.detect([np.zeros((640, 640, 3), np.uint8)])
    np.testing.assert_allclose(d.scores, [0.59, 0.58, 0.57, 0.56, 0.55], rtol=1e-6)


def test_config_is_checked():
    with pytest.raises(ValueError, match="multiple of 32"):
        RTMDetDetectorConfig(input_size=500)


def test_random_weight_detector_runs_end_to_end(data_dir):
    import cv2

    img = cv2.imread(str(data_dir / "opencv_samples" / "basketball1.png"))
    assert img is not None
    torch.manual_seed(0)
    det = RTMDetDetector(
        TorchBackend(build_rtmdet("rtmdet-tiny")),
        RTMDetDetectorConfig(input_size=160, score_threshold=0.0, max_per_image=7),
        name="rtmdet-tiny",
    )
    assert det.detect([]) == []
    out = det.detect([img, img[:, ::-1].copy(), img[:120]])
    assert [len(d) for d in out] == [7, 7, 7]
    h, w = img.shape[:2]
    for d, height in zip(out, (h, h, 120)):
        assert (d.boxes[:, [0, 2]] >= 0).all() and (d.boxes[:, [0, 2]] <= w + 1e-3).all()
        assert (d.boxes[:, [1, 3]] >= 0).all() and (d.boxes[:, [1, 3]] <= height + 1e-3).all()
        assert np.all(np.diff(d.scores) <= 0)


def test_factory_fetches_zoo_weights_on_first_use(tmp_path, monkeypatch):
    from stip_rt import weights
    from stip_rt.detect.config import IntervalConfig
    from stip_rt.detect.factory import create_detector
    from stip_rt.detect.interval import every_n

    torch.manual_seed(1)
    src = build_rtmdet("rtmdet-tiny")
    ckpt = tmp_path / "rtmdet_tiny.pth"
    torch.save({"meta": {}, "state_dict": src.state_dict()}, ckpt)
    asked = []
    monkeypatch.setattr(weights, "weights_path", lambda name, fetch=True: asked.append(name) or ckpt)
    det = create_detector("rtmdet-tiny", "cpu", backend="torch", config=RTMDetDetectorConfig(input_size=64))
    assert asked == ["rtmdet-tiny"] and det.name == "rtmdet-tiny"
    from stip_rt.nn.fold import prepare_inference

    want, got = prepare_inference(src).state_dict(), det.backend.model.state_dict()  # served: BatchNorm folded
    assert list(want) == list(got) and len(want) > 0
    for key in want:
        assert torch.equal(want[key], got[key]), key
    every = every_n(create_detector("rtmdet-tiny", "cpu", backend="torch", random_weights=True), IntervalConfig(5))
    assert every.name == "rtmdet-tiny/every5"


@pytest.mark.slow
def test_onnxruntime_backend_matches_torch():
    from stip_rt.detect.factory import create_detector

    cfg = RTMDetDetectorConfig(input_size=128, score_threshold=0.0, max_per_image=20)
    torch.manual_seed(2)
    frames = [np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)]
    from stip_rt.runtime.factory import create_backend

    a = create_detector("rtmdet-tiny", "cpu", backend="torch", config=cfg, random_weights=True)
    ort = create_backend(a.backend.model, backend="onnxruntime", device="cpu", input_size=(128, 128))
    b = RTMDetDetector(ort, cfg)  # the same random weights through ONNX Runtime
    (da,), (db,) = a.detect(frames), b.detect(frames)
    np.testing.assert_allclose(da.scores, db.scores, atol=1e-4)
    np.testing.assert_allclose(da.boxes, db.boxes, atol=1e-2)


def test_kept_boxes_cross_to_the_host_once(monkeypatch):
    """postprocess packs boxes, scores, frame indices and the per-frame finite flags into one tensor
    before the host copy."""
    out = _out([[[64, 32, 128, 160, 0.9, 0.1]], [[10, 10, 50, 60, 0.8, 0.0]]])
    copies = []
    real_cpu = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        copies.append(tuple(self.shape))
        return real_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    det = RTMDetDetector(_Scripted(out), RTMDetDetectorConfig(input_size=640))
    dets = det.postprocess(out, np.array([[640, 640, 1.0, 1.0], [640, 640, 2.0, 2.0]], np.float32))
    # one copy: per frame the max_per_image (box, score) slots, the count, "finite", "NMS settled"
    assert copies == [(2, 5 * 100 + 3)]
    np.testing.assert_allclose(dets[0].boxes, [[64, 32, 128, 160]])
    np.testing.assert_allclose(dets[1].boxes, [[5, 5, 25, 30]])
    np.testing.assert_allclose(dets[1].scores, [0.8], rtol=1e-6)


def test_a_suppression_chain_longer_than_the_fixed_steps_is_finished_exactly(monkeypatch):
    """Boxes each overlapping the next: greedy keeps every other one. The device steps stop before
    the chain is resolved; the frame is reported unsettled and finished on a second copy."""
    from stip_rt.detect import rtmdet
    from stip_rt.detect.nms import KEEP_STEPS

    monkeypatch.setattr(rtmdet, "fixed_shapes", lambda device: True)  # the GPU's way, on the CPU

    n = 2 * KEEP_STEPS + 3
    rows = [[i * 4.0, 0, i * 4.0 + 10, 10, 0.9 - 0.01 * i, 0] for i in range(n)]  # IoU of neighbours 0.43
    out = _out([rows, rows[:3]])
    copies = []
    real_cpu = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: copies.append(1) or real_cpu(self, *a, **k))
    det = RTMDetDetector(_Scripted(out), RTMDetDetectorConfig(iou_threshold=0.4))
    geometry = np.array([[640, 640, 1.0, 1.0]] * 2, np.float32)
    long, short = det.postprocess(out, geometry)
    assert len(copies) == 2
    np.testing.assert_allclose(long.boxes[:, 0], [i * 4.0 for i in range(0, n, 2)])
    np.testing.assert_allclose(short.boxes[:, 0], [0.0, 8.0])
    copies.clear()
    det.postprocess(out[1:], geometry[1:])  # the short chain alone settles on the device: one copy
    assert len(copies) == 1
    monkeypatch.setattr(rtmdet, "fixed_shapes", lambda device: False)
    copies.clear()
    cpu_long, _ = det.postprocess(out, geometry)  # the CPU's way: the same boxes, one copy
    assert len(copies) == 1 and np.array_equal(cpu_long.boxes, long.boxes)


@pytest.mark.gpu
def test_postprocess_never_waits_for_the_gpu_before_its_copy():
    """Top-k, threshold, clipping, NMS and packing run with fixed shapes: under CUDA's sync debug
    mode "error", any synchronising call before the one host copy would raise."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (2, 300, 2))
    out = torch.from_numpy(np.concatenate([xy, xy + rng.uniform(20, 120, (2, 300, 2)),
                                           rng.uniform(0, 1, (2, 300, 2))], axis=2).astype(np.float32))  # fmt: skip
    geometry = np.array([[640, 480, 1.2, 1.2], [640, 640, 1.0, 1.0]], np.float32)
    det = RTMDetDetector(_Scripted(out), RTMDetDetectorConfig())
    want = det.postprocess(out, geometry)
    gpu = out.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rows = det.on_device(gpu, geometry).rows
    finally:
        torch.cuda.set_sync_debug_mode("default")
    got = det.postprocess(gpu, geometry)
    assert rows.shape == (2, 5 * 100 + 3)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.boxes, b.boxes, rtol=1e-6)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


@pytest.mark.gpu
def test_the_cuda_detector_synchronises_once_per_call():
    """Letterbox upload, network (cuda-fast graphs), top-k, NMS and packing queue on the GPU: the
    boxes' copy to the host is the one synchronisation of a call (CUDA's sync debug mode warns at
    every synchronising call)."""
    import warnings

    from stip_rt.runtime.factory import create_backend

    torch.manual_seed(0)
    fast = create_backend(build_rtmdet("rtmdet-tiny"), backend="cuda-fast", device="cuda", precision="fp16",
                          input_size=(320, 320))  # fmt: skip
    det = RTMDetDetector(fast, RTMDetDetectorConfig(input_size=320, score_threshold=0.05))
    frames = [np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)]
    det.detect(frames)  # the first call captures the graph
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            det.detect(frames)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchronizing CUDA operation" in str(w.message)]
    assert len(syncs) == 1, syncs


@pytest.mark.gpu
def test_cuda_fast_detector_matches_fp32_torch():
    """RTMDet through cuda-fast (folded, FP16, CUDA graphs) finds the boxes of fp32 eager."""
    torch.manual_seed(0)
    model = build_rtmdet("rtmdet-tiny")
    from stip_rt.runtime.factory import create_backend

    cfg = RTMDetDetectorConfig(input_size=320)
    fast = create_backend(model, backend="cuda-fast", device="cuda", precision="fp16", input_size=(320, 320))
    ref = TorchBackend(model, device="cuda", precision="fp32", fold=False)
    x = torch.randn(2, 3, 320, 320, device="cuda")
    a, b = fast.infer(x), ref.infer(x)
    assert a.dtype == torch.float32 and a.shape == b.shape
    assert (a[..., :4] - b[..., :4]).abs().max().item() < 2.0  # px at 320, fp16 network
    assert (a[..., 4:] - b[..., 4:]).abs().max().item() < 2e-2
    det = RTMDetDetector(fast, cfg)
    frames = [np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)]
    assert len(det.detect(frames)) == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_network_output_is_an_error_naming_the_detector(value: float) -> None:
    from stip_rt.errors import BackendError

    out = _out([[[64, 32, 128, 160, 0.9, 0.1]], [[10, 10, 50, 50, 0.8, 0.0]]])
    out[1, 7, 2] = value  # a point of frame 1 that would not even pass the score threshold
    det = RTMDetDetector(_Scripted(out), RTMDetDetectorConfig(), name="rtmdet-tiny", weights="/w/nan.pth")
    frames = [np.zeros((64, 64, 3), np.uint8)] * 2
    with pytest.raises(BackendError, match=r"detector rtmdet-tiny \(weights /w/nan\.pth\): .*frame 1 of a batch of 2"):
        det.detect(frames)
    with pytest.raises(BackendError, match=r"rtmdet-tiny \(weights /w/nan\.pth\): the network output is not finite"):
        det.postprocess(out[1:], np.array([[640, 640, 1, 1]], np.float32))  # one frame: no batch position
    (d,) = det.detect(frames[:1])  # frame 0 alone is fine
    assert len(d) == 1
