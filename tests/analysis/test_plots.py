"""Plots: every figure renders to a non-empty PNG with titles and axis units; the still frame comes from the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_synth import coco_walk, person, write_tracks

from stip_rt.analysis import movement, plots
from stip_rt.io.read import read_tracks
from stip_rt.types import SourceInfo


def _labels(fig) -> str:
    texts = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " | ".join(texts)


def _png(fig, path: Path) -> Path:
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    return path


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    path = coco_walk(tmp_path_factory.mktemp("walk") / "t.jsonl", n=40)
    tf = read_tracks(path)
    return tf, movement(tf, scale=0.01)


def test_figures(walk, tmp_path: Path) -> None:
    tf, df = walk
    figs = {
        "trajectories": plots.trajectories(df, tf.source),
        "ground": plots.ground_trajectories(df),
        "speed": plots.speed(df),
        "angles": plots.joint_angles(df, 1),
        "timeline": plots.timeline(df),
    }
    for name, fig in figs.items():
        _png(fig, tmp_path / f"{name}.png")
    assert "x (px)" in _labels(figs["trajectories"]) and "y (px)" in _labels(figs["trajectories"])
    assert "x (m)" in _labels(figs["ground"])
    assert "speed (m/s)" in _labels(figs["speed"]) and "time (s)" in _labels(figs["speed"])
    assert "knee (°)" in _labels(figs["angles"]) and "trunk lean (°)" in _labels(figs["angles"])
    assert "track id" in _labels(figs["timeline"])
    # one panel per track in the speed grid, each with both its raw and smoothed line
    visible = [ax for ax in figs["speed"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["track 1", "track 2"]
    assert all(len(ax.lines) >= 2 for ax in visible)
    # the timeline has one row per track, spanning its frames
    bars = figs["timeline"].axes[0].collections
    assert len(bars) == 2
    x0, _, w, _ = bars[1].get_paths()[0].get_extents().bounds
    assert x0 == pytest.approx(10 / 25) and x0 + w == pytest.approx(40 / 25)


def test_speed_in_pixels_and_track_limit(walk) -> None:
    _, df = walk
    fig = plots.speed(df.drop(columns=[c for c in df.columns if "_m" in c]), max_tracks=1)
    assert "px/s" in _labels(fig) and "1 longest of 2" in fig.get_suptitle()
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["track 1"]  # the longer track


def test_box_only_tables_have_no_angle_or_ground_plots(tmp_path: Path) -> None:
    df = movement(write_tracks(tmp_path / "b.jsonl", [[person(1, (10.0 * f, 100))] for f in range(10)]))
    with pytest.raises(KeyError, match="keypoints"):
        plots.joint_angles(df, 1)
    with pytest.raises(KeyError, match="scale or a homography"):
        plots.ground_trajectories(df)
    assert not plots.has_angles(df, 1)


def test_still_frame(data_dir: Path) -> None:
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    if not vtest.exists():
        pytest.skip("vtest.avi not in the shared data")
    img = plots.still_frame(SourceInfo(str(vtest), 768, 576, 10.0))
    assert img is not None and img.shape == (576, 768, 3) and img.dtype == np.uint8
    folder = data_dir / "posetrack18" / "images" / "val" / "003418_mpii_test"
    if folder.is_dir():
        assert plots.still_frame(SourceInfo(str(folder), 1, 1, 1.0)) is not None
    rel = SourceInfo("opencv_samples/vtest.avi", 768, 576, 10.0)  # relative to the tracks file's folder
    assert plots.still_frame(rel) is None or Path("opencv_samples/vtest.avi").exists()
    assert plots.still_frame(rel, base=data_dir).shape == (576, 768, 3)
    for uri in ("0", "rtsp://example.invalid/stream", "/nonexistent/video.mp4"):  # never opens a camera or stream
        assert plots.still_frame(SourceInfo(uri, 640, 480, 25.0)) is None


def test_lines_break_at_gaps_that_were_not_filled(tmp_path: Path) -> None:
    """A track seen on frames 0–9 and 30–39 (a gap longer than max_gap): its path and speed lines
    stop at the gap instead of drawing a straight segment across it."""
    frames = [[person(1, (100.0 + 5 * f, 300))] if f < 10 or f >= 30 else [] for f in range(40)]
    df = movement(write_tracks(tmp_path / "gap.jsonl", frames), max_gap=5)
    tf = read_tracks(tmp_path / "gap.jsonl")
    path = plots.trajectories(df, tf.source).axes[0].lines[1].get_xydata()  # the coloured line (after the outline)
    assert np.isnan(path[:, 0]).sum() == 1 and np.isnan(path[:, 0]).argmax() == 10
    speed = next(ax for ax in plots.speed(df).axes if ax.get_visible()).lines[0].get_ydata()
    assert np.isnan(np.asarray(speed, float)[10])
