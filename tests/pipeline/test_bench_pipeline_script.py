"""scripts/bench_pipeline.py: a detector with random weights runs for its cost, the ground truth gives the boxes."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from load_script import load_script

from stip_rt.detect.files import FileDetector
from stip_rt.types import Detections


def _script():
    return load_script("bench_pipeline")


class JunkNetwork:
    """Stands in for a random-weights network: 100 empty boxes per frame; records its calls."""

    name = "rtmdet-tiny"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def detect(self, frames, indices=None):
        self.calls.append(list(indices))
        return [Detections(np.zeros((100, 4), np.float32), np.zeros(100, np.float32)) for _ in frames]


def _gt() -> FileDetector:
    box = Detections(np.array([[10, 20, 50, 120]], np.float32), np.ones(1, np.float32))
    two = Detections(np.array([[0, 0, 5, 9], [30, 30, 60, 90]], np.float32), np.ones(2, np.float32))
    return FileDetector({0: box, 2: two}, "file:gt.txt")


def test_network_runs_on_every_frame_and_gt_boxes_are_handed_on():
    bench = _script()
    net = JunkNetwork()
    det = bench.CostOnlyDetector(net, _gt())
    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    out = det.detect(frames[:2], [0, 1]) + det.detect(frames[2:], [2])
    assert net.calls == [[0, 1], [2]]  # the network saw every frame, with its index
    assert [len(d) for d in out] == [1, 0, 2]  # the ground truth's people, not the network's 100
    np.testing.assert_array_equal(out[2].boxes, [[0, 0, 5, 9], [30, 30, 60, 90]])
    assert det.name == "rtmdet-tiny" and det.network_calls == 2


def test_wrappers_show_the_backend_so_the_pipeline_gives_their_thread_a_stream():
    bench = _script()
    net = JunkNetwork()
    net.backend = "rtmdet backend"
    pose = argparse.Namespace(backend="pose backend")
    assert bench.CostOnlyDetector(net, _gt()).backend == "rtmdet backend"
    assert bench.CountingEstimator(pose).backend == "pose backend"
    assert bench.CostOnlyDetector(JunkNetwork(), _gt()).backend is None


@dataclasses.dataclass(frozen=True)
class _Parts:
    detector: object


def test_wrapped_only_for_random_detector_weights(data_dir, tmp_path):
    bench = _script()
    gt = str(data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt")
    parts = _Parts(JunkNetwork())

    def args(detector, weights):
        return argparse.Namespace(detector=detector, detector_weights=weights, detections=gt)

    wrapped = bench.with_gt_boxes(parts, args("rtmdet-tiny", "random")).detector
    assert isinstance(wrapped, bench.CostOnlyDetector) and wrapped.network is parts.detector
    assert len(wrapped.detect([np.zeros((576, 768, 3), np.uint8)], [0])[0]) > 0  # PETS09 frame 1 has people
    ckpt = tmp_path / "rtmdet.pth"
    ckpt.write_bytes(b"x")
    assert bench.with_gt_boxes(parts, args("rtmdet-tiny", str(ckpt))) is parts  # real weights: unchanged
    assert bench.with_gt_boxes(parts, args(None, "random")) is parts  # no detector network: gt already


def test_breakdown_names_a_detector_without_parts():
    bench = _script()
    assert "no per-part breakdown" in bench.detector_breakdown(JunkNetwork(), [])


def test_breakdown_of_rtmdet_on_cpu():
    from stip_rt.detect.factory import create_detector
    from stip_rt.types import Frame

    bench = _script()
    det = create_detector("rtmdet-tiny", device="cpu", backend="torch", random_weights=True)
    frames = [Frame(i, i / 10, np.full((96, 128, 3), 40 * i, np.uint8)) for i in range(3)]
    line = bench.detector_breakdown(det, frames, repeats=3, warm=1)
    assert line.startswith("detector rtmdet-tiny on cpu: preprocess ") and "(median of 3 frames, batch 1)" in line
    assert "network " in line and "postprocess " in line
