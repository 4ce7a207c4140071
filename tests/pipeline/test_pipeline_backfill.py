"""Back-filled first frames through the threaded pipeline: files hold each frame until its
tentative tracks are decided, live sources pass frames straight on; every frame is written once,
in order, also when the run fails or is stopped midway."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
from fake_stages import FakeSource, ListSink, make_parts, stip_threads

from stip_rt.errors import StipError
from stip_rt.pipeline import Pipeline
from stip_rt.pipeline_stats import StatsRecorder
from stip_rt.run_load import load_run_config
from stip_rt.stages import make_steps
from stip_rt.track.tracker import Tracker
from stip_rt.types import Detections, FrameResult, Poses, Tracks

STARTS = (0, 3, 7)  # the frames the fake people enter at


class EnteringDetector:
    """Person k enters at frame ``starts[k]`` and walks right 2 px per frame (boxes far apart)."""

    name = "entering"

    def __init__(self, starts: Sequence[int] = STARTS) -> None:
        self.starts = starts

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        assert indices is not None
        out = []
        for i in indices:
            boxes = [
                [200.0 * k + 2 * i, 50.0, 200.0 * k + 2 * i + 60, 200.0] for k, s in enumerate(self.starts) if i >= s
            ]
            b = np.asarray(boxes, np.float32).reshape(-1, 4)
            out.append(Detections(b, np.full(len(b), 0.9, np.float32)))
        return out


class RecordingTracker(Tracker):
    """The real tracker; records the frames it tracked, optionally fails at frame ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(fps=25.0)
        self.frames: list[int] = []
        self.fail_at = fail_at

    def update(self, poses: Poses, frame_index: int, time: float | None = None) -> Tracks:
        if frame_index == self.fail_at:
            raise ValueError("matrix contains NaN")
        tracks = super().update(poses, frame_index, time)
        self.frames.append(frame_index)
        return tracks


def _parts(source: FakeSource, tracker: Tracker):  # type: ignore[no-untyped-def]
    parts = make_parts(source, box_only=True)
    return type(parts)(parts.source, EnteringDetector(), None, tracker, parts.run, parts.boxes_from_tracks)


def _first_frames(results: Sequence[FrameResult]) -> list[int]:
    first: dict[int, int] = {}
    for r in results:
        for i in r.tracks.ids.tolist():
            first.setdefault(i, r.index)
    return sorted(first.values())


def test_file_source_outputs_every_track_from_its_first_frame() -> None:
    tracker = RecordingTracker()
    sink = ListSink()
    results = list(Pipeline(load_run_config(source="fake.mp4"), [sink], parts=_parts(FakeSource(20), tracker)))
    assert [r.index for r in results] == [r.index for r in sink.results] == list(range(20))
    assert tracker.backfill_frames > 0 and _first_frames(results) == list(STARTS)
    assert all(len(r.tracks) == sum(r.index >= s for s in STARTS) for r in results)  # nobody missing on any frame
    assert stip_threads() == []


def test_live_source_has_no_delay_and_outputs_tracks_from_confirmation() -> None:
    tracker = RecordingTracker()
    results = list(
        Pipeline(load_run_config(source="cam"), parts=_parts(FakeSource(20, delay=0.005, live=True), tracker))
    )
    taken = [r.index for r in results]
    assert taken == tracker.frames  # every frame taken from the source is tracked and written, in order
    # min_hits 2: the person of the tracker's first frame at once, the others from their second frame
    want = [taken[0]] + [[f for f in taken if f >= s][1] for s in STARTS[1:]]
    assert _first_frames(results) == want


@pytest.mark.parametrize("live", [False, True])
def test_track_step_holds_frames_only_for_files(live: bool) -> None:
    tracker = Tracker(fps=25.0)
    parts = _parts(FakeSource(3, live=live), tracker)
    steps = make_steps(parts, load_run_config(source="x"), [], False, StatsRecorder())
    assert steps.track.delay == (0 if live else tracker.backfill_frames) and tracker.backfill_frames == 2


def test_stop_midway_writes_every_frame_already_tracked() -> None:
    tracker = RecordingTracker()
    sink = ListSink()
    p = Pipeline(load_run_config(source="fake.mp4"), [sink], parts=_parts(FakeSource(1000, delay=0.002), tracker))
    it = iter(p)
    first = [next(it).index for _ in range(10)]
    it.close()  # the caller stops iterating (as Ctrl-C in the main thread)
    assert first == list(range(10)) and sink.closed == 1
    assert 10 + tracker.backfill_frames <= len(tracker.frames) < 1000
    assert [r.index for r in sink.results] == tracker.frames  # the held frames were written too
    assert stip_threads() == []


def test_stop_from_another_thread_writes_every_frame_already_tracked() -> None:
    tracker = RecordingTracker()
    sink = ListSink()
    seen = threading.Event()

    def on_result(r: FrameResult) -> None:
        if r.index == 10:
            seen.set()

    p = Pipeline(
        load_run_config(source="fake.mp4"), [sink], parts=_parts(FakeSource(1000, delay=0.002), tracker),
        on_result=on_result,
    )  # fmt: skip
    p.start()
    assert seen.wait(30)
    p.stop()
    assert not p.running and sink.closed == 1
    assert [r.index for r in sink.results] == tracker.frames and len(tracker.frames) < 1000
    assert stip_threads() == []


def test_tracker_error_writes_every_frame_tracked_before_it() -> None:
    tracker = RecordingTracker(fail_at=9)
    sink = ListSink()
    p = Pipeline(load_run_config(source="fake.mp4"), [sink], parts=_parts(FakeSource(50), tracker))
    got = []
    with pytest.raises(StipError, match="frame 9") as ei:
        for r in p:
            got.append(r)
    assert "track" in str(ei.value)
    assert [r.index for r in got] == [r.index for r in sink.results] == tracker.frames == list(range(9))
    assert _first_frames(got) == list(STARTS)  # the frames held when it failed still got their back-fill
    assert stip_threads() == []


def test_a_stop_from_the_sink_callback_ends_the_run(caplog: pytest.LogCaptureFixture) -> None:
    tracker = RecordingTracker()
    box: list[Pipeline] = []

    def on_result(r: FrameResult) -> None:
        if r.index == 5:
            box[0].stop()

    config = load_run_config(overrides=["queues.join_timeout_s=2"], source="fake.mp4", queue_size=1)  # full queues
    p = Pipeline(config, parts=_parts(FakeSource(1000, delay=0.002), tracker), on_result=on_result)
    box.append(p)
    p.start()
    assert p.wait(timeout=30)
    assert len(tracker.frames) < 1000
    assert "did not stop" not in caplog.text  # the track stage was not left waiting for the sink stage
    assert stip_threads() == []


def test_stop_from_another_thread_while_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    # a batch's watcher thread may stop a pipeline while start() is still starting its threads
    import stip_rt.pipeline as pipeline_mod

    building, stopping = threading.Event(), threading.Event()
    real = pipeline_mod.make_steps

    def slow_make_steps(*a, **k):  # type: ignore[no-untyped-def]
        building.set()
        stopping.wait(5)  # stop() has been called meanwhile
        return real(*a, **k)

    monkeypatch.setattr(pipeline_mod, "make_steps", slow_make_steps)
    sink = ListSink()
    p = Pipeline(load_run_config(source="fake.mp4"), [sink], parts=_parts(FakeSource(1000, delay=0.002), Tracker()))
    errors: list[BaseException] = []

    def stopper() -> None:
        building.wait(5)
        threading.Timer(0.2, stopping.set).start()
        try:
            p.stop()
        except BaseException as e:  # e.g. "cannot join thread before it is started"
            errors.append(e)

    t = threading.Thread(target=stopper)
    t.start()
    p.start()
    t.join(30)
    assert errors == [] and not p.running and sink.closed == 1
    assert stip_threads() == []
