"""summarize() / summary.csv: per-track values worked out by hand from synthetic tracks with known motion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_synth import coco_walk, person, pose, write_tracks

from stip_rt.analysis import movement, summarize, write_analysis
from stip_rt.analysis.angles import ANGLE_NAMES
from stip_rt.analysis.summary import INT_COLUMNS, longest_table, summary_columns
from stip_rt.cli import main
from stip_rt.schemas import COCO17

FPS = 25.0
ANGLE_STATS = ("min", "max", "range", "mean", "s_peak")


def _row(summary: pd.DataFrame, tid: int) -> pd.Series:
    rows = summary[summary["track_id"] == tid]
    assert len(rows) == 1
    return rows.iloc[0]


def _knee_pose(x: float, knee_deg: float, score: float = 0.9) -> np.ndarray:
    """:func:`pose` with the left knee at ``knee_deg``: the ankle turned about the knee, 50 px from it."""
    kp = pose(COCO17, x, score=score)
    knee = kp[COCO17.keypoints.index("left_knee"), :2]
    a = math.radians(knee_deg)  # thigh points up from the knee (0, -1); the shin at knee_deg from it
    kp[COCO17.keypoints.index("left_ankle"), :2] = knee + 50 * np.array([math.sin(a), -math.cos(a)])
    return kp


def test_steady_walker_smoothed(tmp_path: Path) -> None:
    # track 1: 150 px/s for 50 frames, left knee 90°, trunk upright; track 2: still from frame 10, leaning 45°
    df = movement(coco_walk(tmp_path / "t.jsonl", n=50, fps=FPS, px_per_s=150.0), scale=0.01)
    s = summarize(df)
    assert s.attrs["smoothed"] is True and s["track_id"].tolist() == [1, 2]
    assert list(s.columns) == summary_columns(df.columns)
    walker = _row(s, 1)
    assert walker[["first_frame", "last_frame", "frames_observed", "frames_filled", "frames_missing"]].tolist() == [
        0, 49, 50, 0, 0]  # fmt: skip
    assert walker["start_time_s"] == 0.0 and walker["duration_s"] == pytest.approx(49 / FPS)
    assert walker["distance_px"] == pytest.approx(150.0 * 49 / FPS)
    assert walker["distance_m"] == pytest.approx(1.5 * 49 / FPS)
    for stat in ("mean", "median", "max"):
        assert walker[f"speed_px_s_{stat}"] == pytest.approx(150.0)
        assert walker[f"speed_m_s_{stat}"] == pytest.approx(1.5)
    assert walker["accel_px_s2_peak"] == pytest.approx(0.0, abs=1e-6)
    assert [walker[f"left_knee_deg_{s}"] for s in ANGLE_STATS] == pytest.approx([90, 90, 0, 90, 0], abs=1e-6)
    assert walker["trunk_lean_deg_mean"] == pytest.approx(0.0, abs=1e-6)
    still = _row(s, 2)
    assert still["first_frame"] == 10 and still["duration_s"] == pytest.approx(39 / FPS)
    assert still["distance_px"] == pytest.approx(0.0, abs=1e-9) and still["speed_px_s_max"] == pytest.approx(
        0, abs=1e-9
    )
    assert still["trunk_lean_deg_mean"] == pytest.approx(45.0)


def test_speed_change_and_knee_sweep_raw(tmp_path: Path) -> None:
    """Without smoothing the statistics are those of the raw central differences, worked out by hand.

    Steps of 4 px (100 px/s) for frames 0-19, then 8 px (200 px/s): speeds 19 × 100, one 150 (frame 19,
    the central difference across the change), 20 × 200; accelerations 625, 1250, 625 px/s² at frames
    18-20. The left knee opens 2° a frame from 100°; its ankle is below the threshold on frames 25-29
    (NaN angles, left out).
    """
    xs = np.r_[100.0, 100.0 + np.cumsum([4.0] * 19 + [8.0] * 20)]
    frames = []
    for f, x in enumerate(xs):
        kp = _knee_pose(x, 100.0 + 2 * f)
        if f >= 25:
            kp[COCO17.keypoints.index("left_ankle"), 2] = 0.1
        frames.append([person(1, (x, 400.0), kp)])
    df = movement(write_tracks(tmp_path / "t.jsonl", frames, fps=FPS, schema=COCO17), smooth=False)
    r = _row(summarize(df), 1)
    assert r["frames_observed"] == 40 and r["frames_filled"] == 0
    assert r["distance_px"] == pytest.approx(19 * 4 + 20 * 8)
    assert r["speed_px_s_mean"] == pytest.approx((19 * 100 + 150 + 20 * 200) / 40)
    assert r["speed_px_s_median"] == pytest.approx((150 + 200) / 2)
    assert r["speed_px_s_max"] == pytest.approx(200.0)
    assert r["accel_px_s2_peak"] == pytest.approx(1250.0)
    # frames 0-24: 100° ... 148°; angular velocity 2° × 25 fps (NaN next to the missing frames). The file's
    # keypoints have 3 decimals: 0.001 px on a 50 px limb is ~0.001°, ~0.03°/s over a 2-frame difference
    knee = [r[f"left_knee_deg_{s}"] for s in ANGLE_STATS[:4]]
    assert knee == pytest.approx([100.0, 148.0, 48.0, 124.0], abs=0.01)
    assert r["left_knee_deg_s_peak"] == pytest.approx(50.0, abs=0.1)
    assert "distance_m" not in r.index and "speed_m_s_mean" not in r.index


def test_statistics_skip_filled_rows_and_count_gaps() -> None:
    """A hand-made movement table: filled rows (with wild values) count in the distance only; a long gap
    counts as missing frames and adds no distance."""
    inf = math.inf
    df = pd.DataFrame({
        "track_id": [3] * 6,
        "frame": [0, 1, 2, 3, 7, 8],
        "time": [0.0, 0.1, 0.2, 0.3, 0.7, 0.8],
        "observed": [True, False, True, True, True, True],
        "x_px": [0.0, math.nan, 2.0, 3.0, 50.0, 50.0],
        "y_px": [0.0] * 6,
        "x_px_smooth": [0.0, 1.0, 2.0, 3.0, 50.0, 53.0],
        "y_px_smooth": [0.0, 0.0, 0.0, 0.0, 0.0, 4.0],
        "speed_px_s_smooth": [10.0, 999.0, 10.0, 10.0, math.nan, 50.0],
        "accel_px_s2_smooth": [0.0, -999.0, -3.0, 2.0, math.nan, inf],
        "left_knee_deg_smooth": [100.0, 0.0, 120.0, 110.0, math.nan, 170.0],
        "left_knee_deg": [math.nan] * 6,
        "left_knee_deg_s_smooth": [5.0, -999.0, -40.0, 30.0, math.nan, math.nan],
    })  # fmt: skip
    s = summarize(df)
    r = _row(s, 3)
    assert r[["first_frame", "last_frame", "frames_observed", "frames_filled", "frames_missing"]].tolist() == [
        0, 8, 5, 1, 3]  # fmt: skip
    assert r["duration_s"] == pytest.approx(0.8)
    assert r["distance_px"] == pytest.approx(1 + 1 + 1 + 5)  # 0→1→2→3, the gap 3→7 not counted, then a 3-4-5 step
    assert r["speed_px_s_mean"] == pytest.approx(20.0) and r["speed_px_s_median"] == 10.0
    assert r["speed_px_s_max"] == 50.0
    assert r["accel_px_s2_peak"] == 3.0  # |−3|; inf is not finite, −999 is on a filled row
    assert [r[f"left_knee_deg_{s}"] for s in ANGLE_STATS] == pytest.approx([100, 170, 70, 125, 40])
    assert s.attrs["smoothed"] is True
    assert "trunk_lean_deg_min" not in s.columns  # only the angles the table has


def test_track_with_every_joint_missing_and_a_one_frame_track(tmp_path: Path) -> None:
    frames = []
    for f in range(30):
        people = [person(1, (100 + 4 * f, 400), pose(COCO17, 100 + 4 * f, score=0.05))]  # all below threshold
        if f == 12:
            people.append(person(2, (300, 400), pose(COCO17, 300)))
        frames.append(people)
    df = movement(write_tracks(tmp_path / "t.jsonl", frames, fps=FPS, schema=COCO17), scale=0.01)
    s = summarize(df)
    blind = _row(s, 1)
    angle_cols = [f"{a}_deg_{st}" for a in ANGLE_NAMES for st in ANGLE_STATS]
    assert len(angle_cols) == 45 and set(angle_cols) <= set(s.columns)
    assert blind[angle_cols].isna().all()
    assert blind["speed_px_s_median"] == pytest.approx(100.0) and blind["distance_m"] == pytest.approx(29 * 0.04)
    single = _row(s, 2)
    assert single[["first_frame", "last_frame", "frames_observed", "frames_filled", "frames_missing"]].tolist() == [
        12, 12, 1, 0, 0]  # fmt: skip
    assert single["start_time_s"] == pytest.approx(12 / FPS) and single["duration_s"] == 0.0
    motion = ["distance_px", "speed_px_s_mean", "speed_px_s_median", "speed_px_s_max", "accel_px_s2_peak",
              "distance_m", "speed_m_s_max", "accel_m_s2_peak"]  # fmt: skip
    assert single[motion].isna().all()  # one position: no distance, no speed (NaN, not 0)
    assert [single[f"left_knee_deg_{st}"] for st in ANGLE_STATS[:4]] == pytest.approx([90, 90, 0, 90], abs=0.01)
    assert math.isnan(single["left_knee_deg_s_peak"])


def test_box_only_file_has_no_angle_columns(tmp_path: Path) -> None:
    frames = [[person(7, (200 + 2 * f, 300))] for f in range(20)]
    df = movement(write_tracks(tmp_path / "b.jsonl", frames, fps=FPS))
    s = summarize(df)
    assert list(s.columns) == ["track_id", "first_frame", "last_frame", "start_time_s", "end_time_s", "duration_s",
                               "frames_observed", "frames_filled", "frames_missing", "distance_px", "speed_px_s_mean",
                               "speed_px_s_median", "speed_px_s_max", "accel_px_s2_peak"]  # fmt: skip
    assert _row(s, 7)["speed_px_s_mean"] == pytest.approx(50.0) and _row(s, 7)["distance_px"] == pytest.approx(38.0)


def test_empty_file_gives_the_columns_and_no_rows(tmp_path: Path) -> None:
    df = movement(write_tracks(tmp_path / "e.jsonl", [[], []], fps=FPS, schema=COCO17))
    s = summarize(df)
    assert s.empty and list(s.columns) == summary_columns(df.columns) and "left_knee_deg_min" in s.columns
    assert longest_table(s) == "no tracks"


def test_summary_csv_reads_back_with_float_dtypes(tmp_path: Path) -> None:
    """Whole numbers (a still person's 0 px, a 90° knee) and NaN (a one-frame track) still read back as float."""
    frames = [[person(1, (100, 400), pose(COCO17, 100))]] + [[person(2, (300, 400), pose(COCO17, 300))]] * 20
    tracks = write_tracks(tmp_path / "t.jsonl", frames, fps=FPS, schema=COCO17)
    written = write_analysis(tracks, tmp_path / "o", plots=False, scale=0.01)
    assert written["summary"] == tmp_path / "o" / "summary.csv"
    back = pd.read_csv(written["summary"])
    assert {c: str(t) for c, t in back.dtypes.items() if c in INT_COLUMNS} == dict.fromkeys(INT_COLUMNS, "int64")
    assert not [c for c, t in back.dtypes.items() if c not in INT_COLUMNS and t != np.float64]
    assert back["distance_px"].isna().tolist() == [True, False]
    expected = summarize(movement(tracks, scale=0.01))
    assert list(back.columns) == list(expected.columns)
    floats = [c for c in back.columns if c not in INT_COLUMNS]
    assert np.allclose(back[floats].to_numpy(), expected[floats].to_numpy(), rtol=1e-7, atol=1e-12, equal_nan=True)


def test_cli_writes_summary_and_prints_the_longest_tracks(tmp_path: Path, capsys) -> None:
    tracks = coco_walk(tmp_path / "t.jsonl", n=30)
    out = tmp_path / "o"
    assert main(["analyze", str(tracks), "--scale", "0.01", "--no-plots", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[:2] == [f"csv          {out / 'movement.csv'}", f"summary      {out / 'summary.csv'}"]
    assert "longest tracks (2 of 2):" in printed and "speed_m_s_median" in printed
    table = lines[lines.index("longest tracks (2 of 2):") + 1 :]
    assert table[1].split()[:5] == ["1", "1.16", "30", "0", "1.74"]  # 29 frames at 1.5 m/s, 25 fps
    assert table[2].split()[:4] == ["2", "0.76", "20", "0"]
    back = pd.read_csv(out / "summary.csv")
    assert back["track_id"].tolist() == [1, 2] and back["distance_m"].iloc[0] == pytest.approx(1.5 * 29 / 25)


def test_longest_table_orders_by_duration_and_limits_rows() -> None:
    s = pd.DataFrame({"track_id": [1, 2, 3], "duration_s": [1.0, 3.0, 2.0], "frames_observed": [5, 9, 7],
                      "frames_filled": [0, 0, 1], "distance_px": [1.0, math.nan, 2.0],
                      "speed_px_s_median": [1.0, 2.0, 3.0], "speed_px_s_max": [1.5, 2.5, 3.5]})  # fmt: skip
    lines = longest_table(s, n=2).splitlines()
    assert lines[0] == "longest tracks (2 of 3):" and len(lines) == 4
    assert [ln.split()[0] for ln in lines[2:]] == ["2", "3"] and lines[2].split()[4] == "-"
