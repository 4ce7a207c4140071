import numpy as np
import pytest

from stip_rt.errors import ConfigError
from stip_rt.schemas import COCO17, CROWDPOSE14, get_schema, schema_for_joints


@pytest.mark.parametrize("schema", [COCO17, CROWDPOSE14])
def test_schema_consistent(schema):
    k = schema.num_keypoints
    assert len(schema.sigmas) == len(schema.nms_sigmas) == len(schema.keypoint_colors) == k
    assert len(schema.link_colors) == len(schema.links)
    perm = schema.flip_index()
    assert sorted(perm.tolist()) == list(range(k))
    assert np.array_equal(perm[perm], np.arange(k))  # an involution
    for a, b in schema.flip_pairs:
        assert schema.keypoints[a].replace("left", "right") == schema.keypoints[b]
    assert sorted(schema.upper_body + schema.lower_body) == list(range(k))
    for a, b in schema.links:
        assert 0 <= a < k and 0 <= b < k and a != b


def test_crowdpose_sigmas_differ_for_head_and_neck():
    assert CROWDPOSE14.sigmas[12] == pytest.approx(0.079)
    assert CROWDPOSE14.nms_sigmas[12] == pytest.approx(0.035)
    assert CROWDPOSE14.sigmas[:12] == CROWDPOSE14.nms_sigmas[:12]
    assert COCO17.sigmas == COCO17.nms_sigmas


def test_lookup():
    assert get_schema("coco") is COCO17
    assert schema_for_joints(14) is CROWDPOSE14
    with pytest.raises(ConfigError, match="did you mean 'coco17'"):
        get_schema("coco71")
    with pytest.raises(ConfigError):
        schema_for_joints(21)
