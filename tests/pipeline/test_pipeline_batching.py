"""Cross-frame pose batches through the threaded pipeline with a real (parity-sized, random-weight)
pose network on a video file: fewer estimator calls than frames, the same results as one frame per
call, and one frame per call for live input."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stip_rt.pipeline import Pipeline
from stip_rt.pipeline_build import build_parts
from stip_rt.pipeline_config import PipelineParts
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.run_config import RunConfig
from stip_rt.run_load import load_run_config
from stip_rt.types import Detections, FrameResult, Poses

FRAMES = 12
TINY_STIP = "official_parity/stipnet_c16_crowdpose14.json"  # 128×96, C=16


class Counting:
    """The estimator, counting its calls and the frames of each (what the pose stage asked for)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []  # frames per call

    def __call__(self, image: np.ndarray, detections: Detections) -> Poses:
        self.calls.append(1)
        return self.inner(image, detections)

    def estimate_frames(self, frames: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Poses]:
        self.calls.append(len(frames))
        batched = getattr(self.inner, "estimate_frames", None)
        if batched is not None:
            return list(batched(frames, detections))
        return [self.inner(f, d) for f, d in zip(frames, detections)]


class CountingBackend:
    """The network backend, counting its calls (one per network batch)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.infer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _config(data_dir: Path, fixtures_dir: Path, batch_frames: int) -> RunConfig:
    return load_run_config(
        source=str(data_dir / "opencv_samples" / "vtest.avi"),
        max_frames=FRAMES,
        detections=str(data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"),
        pose=str(fixtures_dir / TINY_STIP),
        weights="random",
        device="cpu",
        backend="torch",
        # random weights give person scores near 0: let every person be tracked
        track={"min_hits": 1, "high_score": 0.0, "low_score": 0.0, "new_track_score": 0.0},
        overrides=[f"pose.batch_frames={batch_frames}"],
    )


@pytest.fixture(scope="module")
def estimator(data_dir: Path, fixtures_dir: Path) -> PoseEstimator:
    """One random-weight network shared by the runs compared (a second build would draw other weights)."""
    parts = build_parts(_config(data_dir, fixtures_dir, 1))
    parts.source.close()
    assert isinstance(parts.estimator, PoseEstimator)
    return parts.estimator


def _run(config: RunConfig, estimator: Any, *, live: bool = False) -> tuple[list[FrameResult], PipelineParts]:
    parts = build_parts(config)
    if live:  # the same file, announced as live input (the pose stage then runs one frame per batch)
        run = dataclasses.replace(parts.run, source=dataclasses.replace(parts.run.source, live=True))
        parts = dataclasses.replace(parts, run=run)
    parts = dataclasses.replace(parts, estimator=estimator)
    return list(Pipeline(config, parts=parts)), parts


def test_file_batches_frames_and_gives_the_same_results(
    estimator: PoseEstimator, data_dir: Path, fixtures_dir: Path
) -> None:
    one, four = Counting(estimator), Counting(estimator)
    single, _ = _run(_config(data_dir, fixtures_dir, 1), one)
    batched, _ = _run(_config(data_dir, fixtures_dir, 4), four)
    assert one.calls == [1] * FRAMES
    assert sum(four.calls) == FRAMES and len(four.calls) < FRAMES and max(four.calls) > 1
    assert [r.index for r in batched] == [r.index for r in single] == list(range(FRAMES))
    assert sum(len(r.tracks) for r in single) >= FRAMES  # people were estimated and tracked
    for a, b in zip(single, batched):
        np.testing.assert_array_equal(a.tracks.ids, b.tracks.ids)
        assert a.tracks.keypoints is not None and b.tracks.keypoints is not None
        np.testing.assert_allclose(a.tracks.keypoints, b.tracks.keypoints, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(a.tracks.scores, b.tracks.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    not hasattr(PoseEstimator, "estimate_frames"), reason="PoseEstimator.estimate_frames (one network batch) missing"
)
def test_file_batches_share_one_network_call(estimator: PoseEstimator, data_dir: Path, fixtures_dir: Path) -> None:
    before = estimator.backend
    backend = estimator.backend = CountingBackend(before)  # type: ignore[assignment]
    try:
        _run(_config(data_dir, fixtures_dir, 4), estimator)
    finally:
        estimator.backend = before
    assert 0 < backend.calls < FRAMES


def test_live_input_runs_one_frame_per_batch(estimator: PoseEstimator, data_dir: Path, fixtures_dir: Path) -> None:
    counting = Counting(estimator)
    results, parts = _run(_config(data_dir, fixtures_dir, 4), counting, live=True)
    assert parts.run.source.live and len(results) >= 1
    assert counting.calls == [1] * len(results)
