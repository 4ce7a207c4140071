"""runtime.stage_streams: the detect and pose threads each queue their GPU work on a CUDA stream of their own."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from fake_stages import FakeDetector, FakeEstimator, FakeSource, make_parts
from load_script import load_script

import stip_rt.runtime.cuda_fast as cuda_fast
from stip_rt.pipeline import Pipeline
from stip_rt.run_load import load_run_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_HRNET


class _OnDevice:
    """A fake stage's ``backend.device``, as RTMDet and the pose estimator have."""

    def __init__(self, device: str) -> None:
        self.backend = SimpleNamespace(device=device)


class GpuNamedDetector(FakeDetector, _OnDevice):
    def __init__(self, device: str) -> None:
        FakeDetector.__init__(self)
        _OnDevice.__init__(self, device)


class GpuNamedEstimator(FakeEstimator, _OnDevice):
    def __init__(self, device: str) -> None:
        FakeEstimator.__init__(self)
        _OnDevice.__init__(self, device)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_detect_and_pose_threads_enter_their_stream_only_when_asked(monkeypatch, enabled: bool) -> None:
    entered: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def recording(device: str) -> Iterator[None]:
        entered.append((str(device), threading.current_thread().name))
        yield

    monkeypatch.setattr(cuda_fast, "stage_stream", recording)
    parts = make_parts(FakeSource(6), detector=GpuNamedDetector("cuda:1"), estimator=GpuNamedEstimator("cuda:0"))
    config = load_run_config(source="fake.mp4", overrides=[f"runtime.stage_streams={str(enabled).lower()}"])
    results = list(Pipeline(config, parts=parts))
    assert [r.index for r in results] == list(range(6))
    want = [("cuda:1", "stip-rt-detect"), ("cuda:0", "stip-rt-pose")] if enabled else []
    assert sorted(entered) == sorted(want)


def test_stages_without_a_backend_get_no_stream(monkeypatch) -> None:
    monkeypatch.setattr(cuda_fast, "stage_stream", lambda device: pytest.fail("no stage has a device"))
    config = load_run_config(source="fake.mp4", overrides=["runtime.stage_streams=true"])
    assert len(list(Pipeline(config, parts=make_parts(FakeSource(3))))) == 3


def test_stage_stream_waits_for_the_default_stream_then_makes_its_stream_current(monkeypatch) -> None:
    calls: list[str] = []

    class Stream:
        def __init__(self, device: torch.device) -> None:
            calls.append(f"new {device}")

        def wait_stream(self, other: str) -> None:
            calls.append(f"wait {other}")

    @contextlib.contextmanager
    def current(stream: Stream) -> Iterator[None]:
        calls.append("enter")
        yield
        calls.append("exit")

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "default_stream", lambda device: f"default {device}")
    monkeypatch.setattr(torch.cuda, "stream", current)
    with cuda_fast.stage_stream("cuda:1") as stream:
        calls.append("body")
    assert isinstance(stream, Stream)
    assert calls == ["new cuda:1", "wait default cuda:1", "enter", "body", "exit"]
    calls.clear()
    for device in ("cpu", None):
        with cuda_fast.stage_stream(device) as stream:
            assert stream is None
    assert calls == []


@pytest.mark.gpu
def test_cuda_pipeline_with_stage_streams_equals_the_shared_stream(vtest: Path, pets_gt: Path, tmp_path: Path) -> None:
    """RTMDet (for its cost; the ground truth gives the boxes) and the pose network on the GPU, each
    thread on a stream of its own, their graphs captured lazily on those threads while the other
    thread works: then the same networks (the same graphs) on the shared stream give the same poses."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from stip_rt.detect.files import read_detections_file
    from stip_rt.pipeline_build import build_parts

    bench = load_script("bench_pipeline")
    tiny = tmp_path / "tiny-hrnet.yaml"  # 4 branches, cheap to capture
    tiny.write_text(yaml.safe_dump({**TINY_HRNET, "input_size": [256, 192]}))
    networks = None
    runs = {}
    for enabled in (True, False):
        config = load_run_config(
            source=str(vtest),
            max_frames=16,
            model=str(tiny),
            weights="random",
            detector="rtmdet-tiny",
            detector_weights="random",
            backend="cuda-fast",
            device="cuda",
            overrides=[f"runtime.stage_streams={str(enabled).lower()}", "pose.batch_frames=4"],
        )
        parts = build_parts(config)
        if networks is None:
            networks = bench.CostOnlyDetector(parts.detector, read_detections_file(str(pets_gt))), parts.estimator
        parts = dataclasses.replace(parts, detector=networks[0], estimator=networks[1])
        results = Pipeline(config, parts=parts)
        runs[enabled] = [(r.index, r.tracks.ids.copy(), r.tracks.keypoints.copy()) for r in results]
    assert networks[0].network_calls == 32  # RTMDet ran on every frame of both runs
    assert [r[0] for r in runs[True]] == [r[0] for r in runs[False]] == list(range(16))
    for (_, ids_a, kps_a), (_, ids_b, kps_b) in zip(runs[True], runs[False], strict=True):
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(kps_a, kps_b)  # the same captured graphs: bit for bit
