"""The threaded pipeline's machinery with small fake stages: order, back-pressure, detect-every-N,
timings, stats, callbacks, start/stop, no thread leaks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_stages import FakeDetector, FakeEstimator, FakeSource, FakeTracker, ListSink, make_parts, stip_threads

from stip_rt.errors import ConfigError
from stip_rt.pipeline import Pipeline
from stip_rt.run_config import RunConfig
from stip_rt.run_load import load_run_config
from stip_rt.track.tracker import Tracker
from stip_rt.types import Detections


def cfg(**kw: object) -> RunConfig:
    return load_run_config(source="fake.mp4", **kw)


def test_every_frame_in_order_with_results_and_sinks() -> None:
    sink = ListSink()
    parts = make_parts(FakeSource(30))
    with Pipeline(cfg(), [sink], parts=parts) as p:
        results = list(p)
    assert [r.index for r in results] == list(range(30))
    assert [r.index for r in sink.results] == list(range(30))
    assert sink.closed == 1 and parts.source.closed >= 1  # type: ignore[attr-defined]
    r = results[3]
    assert r.tracks.ids.tolist() == [1, 2]
    assert r.tracks.keypoints is not None and r.tracks.keypoints.shape == (2, 4, 3)
    assert set(r.timings) >= {"decode", "detect", "pose", "track", "sink", "latency"}
    assert r.image is None  # no sink asked for pictures
    s = p.stats()
    assert s.frames == 30 and s.people == 60 and s.tracks == 2 and s.detector_runs == 30
    assert set(s.stage_fps) >= {"detect", "pose", "track"} and s.latency_ms["p95"] >= s.latency_ms["p50"] > 0
    assert stip_threads() == []


def test_box_only_and_images_for_drawing_sinks() -> None:
    sink = ListSink(needs_image=True)
    results = list(Pipeline(cfg(), [sink], parts=make_parts(FakeSource(5), box_only=True)))
    assert all(r.tracks.keypoints is None for r in results)
    assert all(r.image is not None and r.image.shape == (24, 32, 3) for r in sink.results)
    assert int(sink.results[4].image[0, 0, 0]) == 4  # the frame's own picture


def test_detect_every_n_uses_previous_tracks_between_detections() -> None:
    det = FakeDetector()
    parts = make_parts(FakeSource(10), detector=det)
    results = list(Pipeline(cfg(det_every=3), parts=parts))
    assert det.seen == [0, 3, 6, 9]
    assert len(results) == 10
    # frames 1, 2 reuse frame 0's boxes (the fake detector moves box 0 with the frame index)
    assert results[1].tracks.boxes[0, 0] == results[0].tracks.boxes[0, 0] == 1
    assert results[3].tracks.boxes[0, 0] == 4
    assert p_stats_runs(parts) == 4


def test_detect_every_n_detects_at_once_while_nobody_is_tracked() -> None:
    det = FakeDetector(empty_until=2)
    p = Pipeline(cfg(det_every=5), parts=make_parts(FakeSource(12), detector=det))
    assert len(list(p)) == 12
    assert sorted(det.seen) == [0, 1, 2, 5, 10]  # 1, 2 on the pose thread, 5, 10 on schedule
    assert p.stats().detector_runs == 5


def p_stats_runs(parts: object) -> int:
    return len(parts.detector.seen)  # type: ignore[attr-defined]


def test_det_every_needs_box_source() -> None:
    parts = make_parts(FakeSource(3))
    parts = type(parts)(parts.source, parts.detector, parts.estimator, parts.tracker, parts.run, None)
    with pytest.raises(ConfigError, match="boxes_from_tracks"):
        Pipeline(cfg(det_every=2), parts=parts).start()


def test_stages_overlap_throughput_near_slowest_stage() -> None:
    # detect, pose and track each sleep 10 ms per frame: one after another that is >= 30 ms per
    # frame, so the run's wall time would be at least the sum of the stages' busy times; running
    # side by side it approaches the slowest stage's (a third of the sum). Structural, not a speed:
    # the wall time must be well below the sum of the busy times measured in the same run.
    parts = make_parts(
        FakeSource(30),
        detector=FakeDetector(delay=0.01),
        estimator=FakeEstimator(delay=0.01),
        tracker=FakeTracker(delay=0.01),
    )
    stats = Pipeline(cfg(), parts=parts).run()
    assert stats.frames == 30
    busy_s = sum(stats.stage_ms[k] for k in ("detect", "pose", "track")) * stats.frames / 1e3
    assert min(stats.stage_ms[k] for k in ("detect", "pose", "track")) >= 10.0
    assert stats.wall_s < 0.7 * busy_s, (stats.wall_s, busy_s)


def test_back_pressure_bounds_the_queues() -> None:
    # a slow sink: the source must not run ahead by more than the queues can hold
    class SlowSink(ListSink):
        def write(self, result):  # type: ignore[no-untyped-def]
            time.sleep(0.02)
            super().write(result)

    decoded: list[int] = []

    class CountingSource(FakeSource):
        def __iter__(self):  # type: ignore[no-untyped-def]
            for f in super().__iter__():
                decoded.append(f.index)
                yield f

    sink = SlowSink()
    config = load_run_config(overrides=["source.buffer_size=2"], source="fake.mp4", queue_size=2)
    p = Pipeline(config, [sink], parts=make_parts(CountingSource(40)))
    p.start()
    time.sleep(0.2)
    ahead = len(decoded) - len(sink.results)
    p.stop()
    # the source's buffer of 2 + the frame its reader holds, 3 queues of 2, one pose batch
    # (pose.batch_frames 4) and one frame in each other stage (detect, track, sink): far fewer than 40
    assert ahead <= 2 + 1 + 3 * 2 + 4 + 3
    assert stip_threads() == []


def test_callback_mode_and_on_end() -> None:
    got: list[int] = []
    ended: list[object] = []
    done = threading.Event()

    def on_end(err: object) -> None:
        ended.append(err)
        done.set()

    p = Pipeline(cfg(), parts=make_parts(FakeSource(12)), on_result=lambda r: got.append(r.index), on_end=on_end)
    p.start()
    p.start()  # idempotent
    assert p.wait(timeout=10)
    assert done.wait(5) and ended == [None]
    assert got == list(range(12))
    with pytest.raises(ConfigError, match="on_result"):
        iter(p).__next__()
    p.stop()
    p.stop()  # idempotent
    assert stip_threads() == []


def test_stop_midway_keeps_what_was_written_and_leaves_no_threads() -> None:
    sink = ListSink()
    parts = make_parts(FakeSource(1000, delay=0.002))
    p = Pipeline(cfg(), [sink], parts=parts)
    it = iter(p)
    first = [next(it) for _ in range(5)]
    it.close()  # the caller stops iterating (same path as Ctrl-C in the main thread)
    assert [r.index for r in first] == list(range(5))
    assert sink.closed == 1 and parts.source.closed >= 1  # type: ignore[attr-defined]
    assert 5 <= len(sink.results) < 1000
    assert [r.index for r in sink.results] == list(range(len(sink.results)))
    assert stip_threads() == []


def test_run_stops_when_the_thread_reading_it_ends_with_the_iterator_kept() -> None:
    # a script that keeps the iterator, leaves its loop and ends: the interpreter's exit waits for
    # the (non-daemon) stage threads, so they must stop once the reader's thread is gone
    sink = ListSink()
    parts = make_parts(FakeSource(1000, delay=0.002))
    p = Pipeline(cfg(), [sink], parts=parts)
    kept: list[object] = []

    def reader() -> None:
        it = iter(p)
        kept.extend([it, *(next(it) for _ in range(4))])

    t = threading.Thread(target=reader)
    t.start()
    t.join()
    try:
        ended = p.wait(timeout=10)
    finally:
        p.stop()
    assert ended
    assert sink.closed == 1 and parts.source.closed >= 1  # type: ignore[attr-defined]
    assert 4 <= len(sink.results) < 1000
    assert [r.index for r in sink.results] == list(range(len(sink.results)))
    assert stip_threads() == []


def test_keyboard_interrupt_while_iterating_closes_sinks() -> None:
    sink = ListSink()
    p = Pipeline(cfg(), [sink], parts=make_parts(FakeSource(1000, delay=0.002)))
    with pytest.raises(KeyboardInterrupt):
        for r in p:
            if r.index == 3:
                raise KeyboardInterrupt
    assert sink.closed == 1 and len(sink.results) >= 4
    assert stip_threads() == []


def test_stop_before_start_and_live_queue_size() -> None:
    p = Pipeline(cfg(), parts=make_parts(FakeSource(3, live=True)))
    p.stop()  # nothing started: no-op
    p2 = Pipeline(cfg(), parts=make_parts(FakeSource(3, live=True)))
    assert len(list(p2)) + p2.stats().dropped == 3  # live: a frame may be replaced by a newer one
    assert all(q.maxsize == 1 for q in p2._queues[:-1])
    with pytest.raises(ConfigError, match="stopped"):
        p2.start()


@pytest.mark.parametrize("det_every", [1, 3])
def test_live_input_drops_old_frames_before_the_slow_stage(det_every: int) -> None:
    # frames arrive every 2 ms, pose takes 20 ms: latency first, so waiting frames are replaced
    parts = make_parts(FakeSource(120, delay=0.002, live=True), estimator=FakeEstimator(delay=0.02))
    p = Pipeline(cfg(det_every=det_every), parts=parts)
    got = [r.index for r in p]
    s = p.stats()
    assert got == sorted(got) and len(got) < 120 and s.dropped == 120 - len(got) > 0
    assert stip_threads() == []


def test_live_frames_are_taken_just_in_time_for_the_pose_stage() -> None:
    # Live, latency first, drops only at the source: the detect thread takes a frame from the
    # source so that its detection ends about when the pose stage becomes free. A frame taken
    # earlier would wait in the detect → pose queue for the rest of a pose time (then its age at
    # the start of its pose estimate is >= one pose time, structurally); just in time, it is about
    # one detect time. Ages are measured from the moment the source produced the frame.
    pose_s, detect_s = 0.04, 0.004
    produced: dict[int, float] = {}
    ages: list[float] = []

    class Clocked(FakeSource):
        def __iter__(self):  # type: ignore[no-untyped-def]
            for f in super().__iter__():
                produced[f.index] = time.perf_counter()
                yield f

    class Timing(FakeEstimator):
        def __call__(self, image, detections):  # type: ignore[no-untyped-def]
            ages.append(time.perf_counter() - produced[int(image[0, 0, 0])])
            return super().__call__(image, detections)

    source = Clocked(250, delay=0.002, live=True)  # frame i has pixel value i (< 256)
    parts = make_parts(source, detector=FakeDetector(delay=detect_s), estimator=Timing(delay=pose_s))
    got = [r.index for r in Pipeline(cfg(), parts=parts)]
    assert got == sorted(got) and len(ages) == len(got) >= 5
    assert float(np.median(ages[2:])) < pose_s / 2, ages  # the first frames calibrate the timing


def test_sinks_only_mode_needs_no_reader() -> None:
    # start() without iterating (the viewer's way): results go to the sinks only, nothing blocks
    sink = ListSink()
    p = Pipeline(cfg(queue_size=1), [sink], parts=make_parts(FakeSource(40)))
    p.start()
    assert p.wait(timeout=20)
    assert len(sink.results) == 40 and sink.closed == 1


def test_with_block_prepares_without_running() -> None:
    sink = ListSink()
    parts = make_parts(FakeSource(5))
    with Pipeline(cfg(), [sink], parts=parts) as p:
        assert sink.run is not None and p.parts is parts  # opened, ready to read parts.run
        assert stip_threads() == []
    assert sink.closed == 1 and parts.source.closed == 1  # type: ignore[attr-defined]


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"det_every=0: 'detect\.interval'"):
        cfg(det_every=0)
    with pytest.raises(ConfigError, match=r"max_frames=0: 'source\.max_frames' = 0"):
        cfg(max_frames=0)
    with pytest.raises(ConfigError, match=r"queue_size=-1: 'queues\.size' = -1"):
        cfg(queue_size=-1)


def test_python_api_rejects_unknown_option_with_suggestion() -> None:
    import stip_rt

    with pytest.raises(ConfigError, match="did you mean 'det_every'"):
        next(stip_rt.track_frames("x.mp4", det_evry=2))


def test_pipeline_without_config_takes_the_defaults() -> None:
    p = Pipeline(parts=make_parts(FakeSource(3)))
    assert p.config == RunConfig() and [r.index for r in p] == [0, 1, 2]


def test_tracks_are_numpy() -> None:
    r = next(iter(Pipeline(cfg(), parts=make_parts(FakeSource(1), tracker=FakeTracker()))))
    assert r.tracks.ids.dtype == np.int64


@pytest.mark.slow
def test_soak_short_run_no_growth_no_thread_leak() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "soak_pipeline.py"
    # the allocator's arenas grow for the first 15-20 s of a box-only run (4 stage threads and the
    # source's): measured from 10 s, a 30 s run read 5-10 % growth on a plateau, a false alarm
    # (a sample a second: growth compares the saw-tooth's crests in the two halves after warm-up)
    args = ["--minutes", "1", "--warm-up-s", "25", "--restart-s", "10", "--sample-s", "1", "--model", "none",
            "--no-video"]  # fmt: skip
    res = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "leaked: none" in res.stdout



class _Walkers:
    """A person standing still from frame 0, and one who enters at frame 7 walking right at 3 px per
    frame (x1 = 100 + 3·i): the detections of a box-only run."""

    name = "walkers"

    def __init__(self) -> None:
        self.seen: list[int] = []

    @staticmethod
    def walker_x1(i: int) -> float:
        return 100.0 + 3.0 * i

    def detect(self, frames: object, indices: list[int]) -> list[Detections]:
        out = []
        for i in indices:
            self.seen.append(i)
            boxes = [[10.0, 10.0, 40.0, 90.0]]
            if i >= 7:
                boxes.append([self.walker_x1(i), 20.0, self.walker_x1(i) + 30, 100.0])
            out.append(Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32)))
        return out


def test_detect_every_n_confirms_newcomers_and_follows_motion_between_detections() -> None:
    """With the real tracker, box-only, detect every 5: a person entering at frame 7 is found at
    detection frame 10 and kept (the frames after a detection frame get boxes for tentative tracks
    too), and the boxes between detections follow each person's motion (Kalman prediction)."""
    det = _Walkers()
    parts = make_parts(FakeSource(30), detector=det, box_only=True, tracker=Tracker(fps=25.0))  # type: ignore[arg-type]
    results = list(Pipeline(cfg(det_every=5), parts=parts))
    assert det.seen == [0, 5, 10, 15, 20, 25]  # no fallback detection: someone is always tracked
    walker = [r.tracks.boxes[r.tracks.ids == 2] for r in results]
    assert all(len(w) == 0 for w in walker[:10]) and all(len(w) == 1 for w in walker[10:])
    error = {i: abs(float(w[0, 0]) - _Walkers.walker_x1(i)) for i, w in enumerate(walker) if i >= 10}
    # the velocity is learnt from the detection frames: a frozen box would be 3, 6, 9, 12 px behind
    assert max(error[i] for i in range(20, 25)) < 3.0 and max(error[i] for i in range(25, 30)) < 1.0, error


def test_sinks_may_be_output_paths_or_one_sink_not_in_a_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stip_rt.io.sinks import open_sink

    out, single = tmp_path / "t.jsonl", tmp_path / "one.jsonl"
    Pipeline(cfg(), [str(out), ListSink()], parts=make_parts(FakeSource(4))).run()
    Pipeline(cfg(), open_sink(single), parts=make_parts(FakeSource(3))).run()
    Pipeline(cfg(), tmp_path / "p.csv", parts=make_parts(FakeSource(2))).run()
    assert len(out.read_text().splitlines()) == 1 + 4 and len(single.read_text().splitlines()) == 1 + 3
    assert len((tmp_path / "p.csv").read_text().splitlines()) > 1


class _NoOpen:
    needs_image = False

    def write(self, result: object) -> None: ...

    def close(self) -> None: ...


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        ([ListSink(), _NoOpen()], r"Pipeline sinks\[1\] = .*_NoOpen.*: not an output path or a sink: it lacks open "),
        ([object()], r"sinks\[0\] = .*it lacks needs_image, open, write, close "),
        (42, r"Pipeline sinks = 42: expected a sink, an output path or a list of them"),
    ],
    ids=["no-open", "not-a-sink", "a-number"],
)
def test_what_is_not_a_sink_is_one_config_error_naming_what_it_lacks(sinks: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Pipeline(cfg(), sinks, parts=make_parts(FakeSource(2)))  # type: ignore[arg-type]


class _ConstantWalkers:
    """Three people walking at constant speeds (5, -6 and 4 px per frame) on separate rows, in view from
    frame 0: the detections of a box-only run."""

    name = "constant-walkers"
    SPEEDS = (5.0, -6.0, 4.0)
    STARTS = (60.0, 560.0, 200.0)

    @classmethod
    def boxes(cls, i: int) -> np.ndarray:
        return np.array(
            [[x + v * i, 40.0 + 150 * k, x + v * i + 30, 120.0 + 150 * k] for k, (x, v) in
             enumerate(zip(cls.STARTS, cls.SPEEDS))],
            np.float32,
        )  # fmt: skip

    def detect(self, frames: object, indices: list[int]) -> list[Detections]:
        return [Detections(self.boxes(i), np.full(3, 0.9, np.float32)) for i in indices]


def test_box_only_detect_every_5_keeps_one_id_per_walker() -> None:
    """Box-only, detect every 5: between detections the tracker coasts (Kalman prediction, nothing
    measured), so each walker keeps its id and its box follows it on every frame. Tracking the guide
    boxes as if measured damped the speed, and each walker got a new id every few detections."""
    parts = make_parts(FakeSource(40), detector=_ConstantWalkers(), box_only=True, tracker=Tracker(fps=10.0))  # type: ignore[arg-type]
    results = list(Pipeline(cfg(det_every=5), parts=parts))
    assert [r.tracks.ids.tolist() for r in results] == [[1, 2, 3]] * 40
    error = np.array([np.abs(r.tracks.boxes - _ConstantWalkers.boxes(r.index)).max() for r in results])
    cycles = error.reshape(8, 5).max(axis=1)  # worst error between two detections
    assert (np.diff(cycles) < 0).all() and cycles[-2:].max() < 2.0, error  # the speed is learnt, not damped


def test_coasted_people_are_marked_predicted_in_the_json_outputs(tmp_path: Path) -> None:
    """A box no detection measured (the tracker coasted it through a frame the detector skipped) is
    written with "predicted": true in JSONL and JSON, and read back with det_index -1."""
    from stip_rt.io.read import read_tracks
    from stip_rt.io.sinks import open_sink
    from stip_rt.io.tracks_format import validator

    parts = make_parts(FakeSource(12), detector=_ConstantWalkers(), box_only=True, tracker=Tracker(fps=10.0))  # type: ignore[arg-type]
    sinks = [open_sink(tmp_path / "t.jsonl"), open_sink(tmp_path / "t.json")]
    list(Pipeline(cfg(det_every=3), sinks, parts=parts))
    validator("document").validate(json.loads((tmp_path / "t.json").read_text()))
    for line in (tmp_path / "t.jsonl").read_text().splitlines()[1:]:
        validator("frame").validate(json.loads(line))
    for name in ("t.jsonl", "t.json"):
        frames = read_tracks(tmp_path / name).frames
        predicted = {f.frame: bool((f.tracks.det_index < 0).all()) for f in frames if len(f.tracks)}
        assert predicted and all(p == (frame % 3 != 0) for frame, p in predicted.items()), predicted
    first = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()[1:3]]
    assert all("predicted" not in p for p in first[0]["people"])  # frame 0: detected, no key at all
