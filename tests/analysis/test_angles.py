"""Joint angles by name: right angles read 90°, straight limbs 180°, NaN joints give NaN, trunk lean is signed."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synth import pose

from stip_rt.analysis.angles import ANGLE_NAMES, interior_angle, joint_angles, lean_from_vertical
from stip_rt.schemas import COCO17, CROWDPOSE14


def test_interior_angle_values() -> None:
    v = np.array([0.0, 0.0])
    assert interior_angle(np.array([1.0, 0]), v, np.array([0.0, 1])) == pytest.approx(90)
    assert interior_angle(np.array([1.0, 0]), v, np.array([-2.0, 0])) == pytest.approx(180)
    assert interior_angle(np.array([1.0, 0]), v, np.array([1.0, 1])) == pytest.approx(45)
    assert interior_angle(np.array([1.0, 0]), v, np.array([3.0, 0])) == pytest.approx(0)
    assert np.isnan(interior_angle(np.array([np.nan, 0]), v, np.array([0.0, 1])))
    assert np.isnan(interior_angle(v, v, np.array([0.0, 1])))  # a limb of zero length has no direction


def test_lean_is_signed_from_the_image_vertical() -> None:
    hips = np.array([100.0, 300])
    assert lean_from_vertical(hips, np.array([100.0, 200])) == pytest.approx(0)
    assert lean_from_vertical(hips, np.array([150.0, 250])) == pytest.approx(45)  # top to the image right
    assert lean_from_vertical(hips, np.array([50.0, 250])) == pytest.approx(-45)
    assert lean_from_vertical(hips, np.array([200.0, 300])) == pytest.approx(90)


@pytest.mark.parametrize("schema", [COCO17, CROWDPOSE14], ids=lambda s: s.name)
def test_known_pose_in_both_skeletons(schema) -> None:
    kp = np.stack([pose(schema, 200.0), pose(schema, 300.0, lean_right=True)])
    a = joint_angles(kp[..., :2], schema.keypoints)
    assert tuple(a) == ANGLE_NAMES  # every angle, in the documented order
    assert a["left_knee"] == pytest.approx([90, 90])
    assert a["right_knee"] == pytest.approx([180, 180])
    assert a["left_elbow"] == pytest.approx([90, 90])
    assert a["right_elbow"] == pytest.approx([180, 180])
    assert a["right_shoulder"][0] == pytest.approx(0)  # arm hanging along the upright trunk
    assert a["left_hip"][0] == pytest.approx(180)  # upright trunk over a vertical thigh
    assert a["trunk_lean"] == pytest.approx([0, 45])


def test_missing_joint_gives_nan_only_where_used() -> None:
    kp = pose(COCO17, 200.0)[None, :, :2].copy()
    kp[0, COCO17.keypoints.index("left_ankle")] = np.nan
    a = joint_angles(kp, COCO17.keypoints)
    assert np.isnan(a["left_knee"][0])
    assert a["right_knee"][0] == pytest.approx(180)


def test_unknown_skeleton_gives_only_the_angles_it_can() -> None:
    names = ("left_hip", "left_knee", "left_ankle")
    a = joint_angles(np.array([[[0.0, 0], [0, 10], [10, 10]]]), names)
    assert list(a) == ["left_knee"] and a["left_knee"][0] == pytest.approx(90)
