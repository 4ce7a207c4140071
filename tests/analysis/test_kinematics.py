"""movement(): known speeds (px/s, m/s with a scale or a homography), known angles, NaN below threshold, gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from analysis_synth import coco_walk, person, pose, walker, write_tracks

from stip_rt.analysis import fit_homography, movement
from stip_rt.errors import ConfigError, DataError
from stip_rt.io.read import read_tracks
from stip_rt.schemas import COCO17, CROWDPOSE14

FPS = 25.0


def _one(df, tid: int = 1):
    return df[df["track_id"] == tid].reset_index(drop=True)


def test_walking_speed_with_a_scale(tmp_path: Path) -> None:
    # 150 px/s at 0.01 m/px is 1.5 m/s
    df = movement(coco_walk(tmp_path / "t.jsonl", n=50, fps=FPS, px_per_s=150.0), scale=0.01)
    t = _one(df)
    assert len(t) == 50 and t["observed"].all()
    assert t["frame"].tolist() == list(range(50)) and t["time"].iloc[-1] == pytest.approx(49 / FPS)
    assert t["x_px"].iloc[0] == pytest.approx(100.0) and t["y_px"].iloc[0] == pytest.approx(400.0)
    assert t["x_m"].iloc[0] == pytest.approx(1.0) and t["y_m"].iloc[0] == pytest.approx(4.0)
    assert t["speed_px_s"].to_numpy() == pytest.approx(150.0, abs=0.5)
    assert t["speed_m_s"].to_numpy() == pytest.approx(1.5, abs=0.005)
    assert t["speed_m_s_smooth"].to_numpy() == pytest.approx(1.5, abs=0.01)
    assert t["accel_m_s2_smooth"].to_numpy() == pytest.approx(0.0, abs=0.1)
    still = _one(df, 2)
    assert still["frame"].iloc[0] == 10 and still["speed_m_s"].to_numpy() == pytest.approx(0.0, abs=1e-9)


def test_acceleration_of_a_speeding_up_walker(tmp_path: Path) -> None:
    # x = 100 + 0.5 a t² with a = 200 px/s²: speed a·t, acceleration a
    frames = [[person(1, (100 + 100 * (f / FPS) ** 2, 400))] for f in range(60)]
    t = _one(movement(write_tracks(tmp_path / "a.jsonl", frames, fps=FPS)))
    inner = slice(3, -3)  # one-sided differences at the ends
    assert t["speed_px_s"].to_numpy()[inner] == pytest.approx(200 * t["time"].to_numpy()[inner], abs=0.5)
    assert t["accel_px_s2"].to_numpy()[inner] == pytest.approx(200, abs=1)
    assert t["accel_px_s2_smooth"].to_numpy()[10:-10] == pytest.approx(200, rel=0.05)
    assert "speed_m_s" not in t.columns  # no scale, no metres


def test_walking_speed_on_the_ground_plane(tmp_path: Path) -> None:
    # a floor seen in perspective: walking 1.2 m/s along the ground is not uniform in pixels
    img = np.array([[100.0, 460.0], [540.0, 460.0], [420.0, 200.0], [220.0, 200.0]])
    gnd = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 10.0], [0.0, 10.0]])
    g = fit_homography(img, gnd)
    inv = np.linalg.inv(g.matrix)
    ground = np.array([[2.0, 1.2 * f / FPS] for f in range(75)])  # away from the camera
    h = np.c_[ground, np.ones(len(ground))] @ inv.T
    feet = h[:, :2] / h[:, 2:]
    (tmp_path / "h.json").write_text(json.dumps({"image_points": img.tolist(), "ground_points": gnd.tolist()}))
    df = movement(write_tracks(tmp_path / "t.jsonl", [[person(1, p)] for p in feet], fps=FPS),
                  homography=tmp_path / "h.json")  # fmt: skip
    assert df["x_m"].to_numpy() == pytest.approx(2.0, abs=0.01)
    assert df["speed_m_s"].to_numpy() == pytest.approx(1.2, abs=0.02)
    assert df["speed_m_s_smooth"].to_numpy() == pytest.approx(1.2, abs=0.02)
    px = df["speed_px_s"].to_numpy()
    assert px[0] > 1.5 * px[-1]  # far away the same speed covers fewer pixels
    assert df.attrs["ground"].startswith("homography")


@pytest.mark.parametrize("schema", [COCO17, CROWDPOSE14], ids=lambda s: s.name)
def test_joint_angles_and_keypoint_columns(tmp_path: Path, schema) -> None:
    frames = [[person(1, (200, 400), pose(schema, 200.0))] for _ in range(30)]
    df = movement(write_tracks(tmp_path / "t.jsonl", frames, fps=FPS, schema=schema))
    assert df["left_knee_deg"].to_numpy() == pytest.approx(90)
    assert df["left_knee_deg_smooth"].to_numpy() == pytest.approx(90, abs=1e-3)
    assert df["right_knee_deg"].to_numpy() == pytest.approx(180)
    assert df["trunk_lean_deg"].to_numpy() == pytest.approx(0)
    for name in schema.keypoints:
        for suffix in ("_x_px", "_y_px", "_score", "_x_px_smooth", "_y_px_smooth"):
            assert f"{name}{suffix}" in df.columns
    assert df["left_knee_x_px"].to_numpy() == pytest.approx(190.0)
    assert df.attrs["keypoints"] == list(schema.keypoints)


def test_keypoints_below_threshold_are_nan(tmp_path: Path) -> None:
    low = {5, 6, 7}
    ankle = COCO17.keypoints.index("left_ankle")
    frames = []
    for f in range(30):
        kp = pose(COCO17, 200.0)
        if f in low:
            kp[ankle, 2] = 0.1
        frames.append([person(1, (200, 400), kp)])
    df = movement(write_tracks(tmp_path / "t.jsonl", frames, fps=FPS, schema=COCO17), kpt_threshold=0.3)
    is_low = df["frame"].isin(low).to_numpy()
    assert np.isnan(df["left_knee_deg"].to_numpy()[is_low]).all()
    assert np.isnan(df["left_ankle_x_px"].to_numpy()[is_low]).all()
    assert df["left_ankle_score"].to_numpy()[is_low] == pytest.approx(0.1)  # the score itself is kept
    assert df["left_knee_deg"].to_numpy()[~is_low] == pytest.approx(90)
    assert df["right_knee_deg"].to_numpy() == pytest.approx(180)  # other angles untouched
    # the smoother bridges the short gap: smoothed angles exist there
    assert df["left_knee_deg_smooth"].to_numpy()[is_low] == pytest.approx(90, abs=0.01)
    # with a threshold under the low score, nothing is NaN
    df2 = movement(read_tracks(tmp_path / "t.jsonl"), kpt_threshold=0.05)
    assert np.isfinite(df2["left_knee_deg"]).all()


def test_short_gaps_are_filled_long_gaps_split(tmp_path: Path) -> None:
    feet = walker(60, FPS, 100.0)
    missing = {20, 21, 22} | set(range(35, 50))  # 3 frames (filled), 15 frames (> max_gap 10: left open)
    frames = [[] if f in missing else [person(1, feet[f])] for f in range(60)]
    t = _one(movement(write_tracks(tmp_path / "g.jsonl", frames, fps=FPS)))
    assert set(t["frame"]) == set(range(60)) - set(range(35, 50))
    filled = t[~t["observed"]]
    assert filled["frame"].tolist() == [20, 21, 22]
    assert filled["x_px"].isna().all() and filled["speed_px_s"].isna().all()
    assert filled["x_px_smooth"].to_numpy() == pytest.approx([feet[f][0] for f in (20, 21, 22)], abs=0.1)
    assert filled["time"].to_numpy() == pytest.approx([f / FPS for f in (20, 21, 22)])
    # speed is differenced within each run of frames: finite on both sides of the long gap
    for f in (34, 50):
        assert t.loc[t["frame"] == f, "speed_px_s_smooth"].item() == pytest.approx(100.0, abs=3)


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_filled_frames_interpolate_only_joints_good_on_both_sides(tmp_path: Path, threshold: float) -> None:
    # Frames 20-24 are missing (filled). The right hip is never good (a random-weight score below 0),
    # the left wrist is good before the gap only; neither may be invented on the filled frames.
    hip, wrist = COCO17.keypoints.index("right_hip"), COCO17.keypoints.index("left_wrist")
    frames = []
    for f in range(40):
        kp = pose(COCO17, 100.0 + 2 * f)
        kp[hip, 2] = -0.02
        kp[wrist, 2] = 0.9 if f < 20 else -0.02
        frames.append([] if 20 <= f < 25 else [person(1, (100.0 + 2 * f, 400), kp)])
    df = movement(write_tracks(tmp_path / "g.jsonl", frames, fps=FPS, schema=COCO17), kpt_threshold=threshold)
    filled = df[~df["observed"]]
    assert filled["frame"].tolist() == [20, 21, 22, 23, 24]
    for col in ("right_hip_x_px_smooth", "right_hip_y_px_smooth", "left_wrist_x_px_smooth", "trunk_lean_deg_smooth",
                "right_knee_deg_smooth", "right_hip_deg_smooth", "left_elbow_deg_smooth"):  # fmt: skip
        assert filled[col].isna().all(), col
    # joints good on both sides are interpolated, and their angles computed
    assert filled["left_knee_x_px_smooth"].to_numpy() == pytest.approx([90.0 + 2 * f for f in range(20, 25)], abs=0.01)
    assert filled["left_knee_deg_smooth"].to_numpy() == pytest.approx(90, abs=0.01)


@pytest.mark.parametrize(("n", "smoothed"), [(15, False), (16, True)])
def test_runs_within_the_filter_padding_are_not_smoothed(tmp_path: Path, n: int, smoothed: bool) -> None:
    # filtfilt pads by 3 * (order + 1) = 15 samples: a run that short is left as it is (docs/analysis.md)
    jitter = np.random.default_rng(0).normal(0, 3, n)
    frames = [[person(1, (200 + 2 * f + jitter[f], 400), pose(COCO17, 200 + 2 * f + jitter[f]))] for f in range(n)]
    t = _one(movement(write_tracks(tmp_path / "s.jsonl", frames, fps=FPS, schema=COCO17)))
    for col in ("x_px", "left_knee_x_px"):
        same = np.allclose(t[f"{col}_smooth"], t[col], atol=1e-3)
        assert same != smoothed, col


def test_no_smoothing_and_hips_anchor(tmp_path: Path) -> None:
    path = coco_walk(tmp_path / "t.jsonl", n=20)
    df = movement(path, smooth=False, anchor="hips")
    assert not any(c.endswith("_smooth") for c in df.columns)
    t = _one(df)
    assert t["x_px"].to_numpy() == pytest.approx(np.array(walker(20, FPS, 150.0))[:, 0], abs=0.01)
    assert t["y_px"].to_numpy() == pytest.approx(300.0)  # the hips, not the feet
    assert df.attrs["anchor"] == "hips"


def test_empty_file_gives_the_columns(tmp_path: Path) -> None:
    df = movement(write_tracks(tmp_path / "e.jsonl", [[], []], fps=FPS, schema=COCO17), scale=0.1)
    assert len(df) == 0 and {"track_id", "speed_m_s", "left_knee_deg", "nose_x_px"} <= set(df.columns)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": -1.0}, "scale"),
        ({"scale": 0.1, "homography": "h.yaml"}, "not both"),
        ({"kpt_threshold": 2.0}, "kpt_threshold"),
        ({"cutoff_hz": 0.0}, "cutoff_hz"),
        ({"anchor": "head"}, "anchor"),
        ({"max_gap": -1}, "max_gap=-1: must be a number of frames >= 0"),
        ({"order": 0}, "order=0: must be a Butterworth order"),
        ({"fps": 0.0}, "fps=0.0: must be a positive frame rate"),  # not "no frame rate in the header"
        ({"fps": -10.0}, "fps=-10.0: must be a positive frame rate"),
        ({"homography": "missing.yaml"}, "missing.yaml"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict, match: str) -> None:
    path = coco_walk(tmp_path / "t.jsonl", n=5)
    with pytest.raises(ConfigError, match=match):
        movement(path, **kwargs)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl"):
        movement(tmp_path / "nope.jsonl")
    (tmp_path / "x.jsonl").write_text('{"hello": 1}\n')
    with pytest.raises(DataError, match=r"not a stip-rt\.tracks file"):
        movement(tmp_path / "x.jsonl")
    no_fps = write_tracks(tmp_path / "nofps.jsonl", [[person(1, (1, 1))]], fps=None)
    with pytest.raises(ConfigError, match=r"nofps\.jsonl: no frame rate"):
        movement(no_fps)
    assert len(movement(no_fps, fps=10.0)) == 1
    box_only = write_tracks(tmp_path / "box.jsonl", [[person(1, (1, 1))]], fps=FPS)
    with pytest.raises(ConfigError, match=r"box\.jsonl: anchor 'hips' needs keypoints"):
        movement(box_only, anchor="hips")
