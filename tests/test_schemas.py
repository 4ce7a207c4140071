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


# -- custom keypoint sets from YAML ------------------------------------------------------------------
import stip_rt.schemas as schemas_mod  # noqa: E402
from stip_rt.schemas import schema_from_dict, schema_to_dict  # noqa: E402

BODY7 = """
name: body7-test
keypoints: [nose, left_shoulder, right_shoulder, left_hip, right_hip, left_ankle, right_ankle]
flip_pairs: [[left_shoulder, right_shoulder], [3, 4], [left_ankle, right_ankle]]
links: [[nose, left_shoulder], [nose, right_shoulder], [left_shoulder, left_hip], [left_hip, left_ankle]]
sigmas: [0.026, 0.079, 0.079, 0.107, 0.107, 0.089, 0.089]
lower_body: [left_hip, right_hip, left_ankle, right_ankle]
"""


@pytest.fixture
def registry(monkeypatch):
    """Custom schemas registered by a test do not outlive it."""
    monkeypatch.setattr(schemas_mod, "SCHEMAS", dict(schemas_mod.SCHEMAS))


def test_custom_schema_from_yaml(tmp_path, registry):
    path = tmp_path / "body7.yaml"
    path.write_text(BODY7)
    s = get_schema(str(path))
    assert s.name == "body7-test" and s.num_keypoints == 7
    assert s.flip_pairs == ((1, 2), (3, 4), (5, 6)) and s.links[2] == (1, 3)
    assert s.upper_body == (0, 1, 2) and s.lower_body == (3, 4, 5, 6) and s.nms_sigmas == s.sigmas
    assert s.keypoint_colors[1] != s.keypoint_colors[2]  # left / right colours from the names
    test_schema_consistent(s)
    assert get_schema("body7-test") is s and get_schema(path) is s  # registered by name, idempotent
    assert schema_for_joints(7) is s
    assert schema_from_dict(schema_to_dict(s)) == s


@pytest.mark.parametrize("edit,match", [
    (("sigmas: [0.026, 0.079, 0.079, 0.107", "sigmas: [0.1, 0.1]  #"), "'sigmas' must be a list of 7"),
    (("flip_pairs:", "flip_pair:"), "unknown key 'flip_pair' \\(did you mean 'flip_pairs'\\?\\)"),
    (("[nose, left_shoulder], [nose", "[nose, left_shouldr], [nose"), "unknown keypoint 'left_shouldr'.*left_shoulder"),
    (("[3, 4]", "[3, 9]"), "'flip_pairs'\\[1\\]: index 9 is out of range"),
    (("[3, 4]", "[1, 4]"), "more than one pair"),
    (("name: body7-test", "name: coco17"), "built-in schema"),
    (("right_ankle]\nflip", "nose]\nflip"), "unique, repeated: \\['nose'\\]"),
])  # fmt: skip
def test_custom_schema_errors_name_the_file_and_key(tmp_path, registry, edit, match):
    path = tmp_path / "bad.yaml"
    path.write_text(BODY7.replace(*edit))
    with pytest.raises(ConfigError, match=match) as err:
        get_schema(str(path))
    assert "bad.yaml" in str(err.value)


def test_custom_schema_missing_file_and_name_clash(tmp_path, registry):
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        get_schema(str(tmp_path / "nope.yaml"))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(BODY7)
    b.write_text(BODY7.replace("0.026", "0.03"))
    get_schema(str(a))
    with pytest.raises(ConfigError, match="another schema named 'body7-test'"):
        get_schema(str(b))
