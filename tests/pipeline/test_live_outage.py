"""A live stream's outage reaches the tracker and the exports: the frame numbers after a reconnect
skip the frames it lasted and the times keep the gap, so tracks age through it (the tracker
counts in frames), and a gap is coasted through, not taken for a one-frame jump."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_stages import FakeDetector, make_parts
from fake_streams import FakeStream, reset, serve_streams

from stip_rt.io.sinks import open_sink
from stip_rt.io.source_config import SourceConfig
from stip_rt.io.sources import open_source
from stip_rt.pipeline import Pipeline
from stip_rt.run_load import load_run_config
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker
from stip_rt.types import Poses


def test_tracks_age_through_an_outage_and_the_exports_keep_its_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The stream (10 fps) is away for at least 0.5 s, the tracks' max age is 0.2 s: the people
    after the reconnect are new tracks. The outage once looked like one frame (frame 4 at 0.4 s):
    the tracks went on as if nobody could have left."""
    serve_streams(monkeypatch, [FakeStream(4, reset(), paced=True), FakeStream(3, paced=True)])
    source = open_source("rtsp://cam.local/live", config=SourceConfig(reconnect_retries=1, reconnect_backoff_s=0.5))
    tracker = Tracker(TrackerConfig(min_hits=1, max_age_s=0.2), fps=source.info.fps)
    parts = make_parts(source, detector=FakeDetector(), tracker=tracker, box_only=True)  # type: ignore[arg-type]
    out = tmp_path / "tracks.jsonl"
    results = list(Pipeline(load_run_config(source="rtsp://cam.local/live"), [open_sink(out)], parts=parts))
    (k,) = [k for k in range(1, len(results)) if results[k].time - results[k - 1].time > 0.3]
    before, after = results[:k], results[k:]
    gap_s = after[0].time - before[-1].time
    assert gap_s > 0.45 and after[0].index - before[-1].index == round(gap_s * 10) >= 5
    assert {int(i) for r in before for i in r.tracks.ids} == {1, 2}
    assert {int(i) for r in after for i in r.tracks.ids} == {3, 4}  # the old tracks were removed
    rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert [r["frame"] for r in rows] == [r.index for r in results]
    assert rows[k]["time"] - rows[k - 1]["time"] == pytest.approx(gap_s, abs=1e-3)


def _person(x: float) -> Poses:
    boxes = np.array([[x, 50.0, x + 40.0, 150.0]], np.float32)
    return Poses(boxes, np.ones(1, np.float32), None, np.ones(1, np.float32))


def test_the_tracker_coasts_through_a_gap_in_the_frame_numbers() -> None:
    """Someone walks 3 px per frame (10 fps); the stream is away for 0.9 s (frames 10-18 missing).
    Seen as a gap, the track predicts across it and keeps its id and its speed; seen as the next
    frame (what the numbers once said), the 27 px step breaks the track: a new id."""
    for skip, first_after in ((True, 19), (False, 10)):
        tracker = Tracker(TrackerConfig(min_hits=1), fps=10)
        for f in range(10):
            tracker.update(_person(3.0 * f), f)
        errors, ids = [], set()
        for k in range(3):
            x = 3.0 * (19 + k)  # where the person is, in wall-clock time
            out = tracker.update(_person(x), first_after + k)
            ids |= set(out.ids.tolist())
            errors.append(abs(float(out.boxes[0, 0]) - x))
        if skip:
            assert ids == {1} and max(errors) < 0.5, errors
        else:
            assert ids == {2}
    tracker = Tracker(TrackerConfig(min_hits=1, max_age_s=0.5), fps=10)  # a gap longer than the max age
    for f in range(10):
        tracker.update(_person(3.0 * f), f)
    assert tracker.update(_person(57.0), 19).ids.tolist() == [2]
