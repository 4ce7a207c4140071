"""TrackerConfig: defaults (listed in the ``track:`` branch of defaults.yaml), YAML files, errors."""

from __future__ import annotations

import pytest
import yaml

from stip_rt.config import from_dict, to_dict
from stip_rt.errors import ConfigError
from stip_rt.run_load import defaults_text
from stip_rt.track.config import TrackerConfig, load_tracker_config


def test_shipped_yaml_equals_defaults_in_code():
    data = yaml.safe_load(defaults_text())["track"]  # the one commented listing of the tracker defaults
    assert from_dict(TrackerConfig, data) == TrackerConfig()
    assert set(data) == set(to_dict(TrackerConfig()))  # every key is documented in the file
    assert to_dict(load_tracker_config(None, data)) == data  # a tracker YAML of every key loads as is


def test_load_with_overrides(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("min_hits: 3\nsmoothing:\n  beta: 0.1\n")
    cfg = load_tracker_config(p, {"smoothing": {"enabled": False}})
    assert cfg.min_hits == 3 and cfg.smoothing.beta == 0.1 and not cfg.smoothing.enabled


def test_unknown_key_suggests(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("max_age: 2\n")
    with pytest.raises(ConfigError, match=r"t.yaml: unknown key 'max_age' \(did you mean 'max_age_s'\?\)"):
        load_tracker_config(p)


@pytest.mark.parametrize(
    "data,msg",
    [
        ({"low_score": 0.8}, "low_score"),
        ({"min_hits": 0}, "min_hits"),
        ({"oks_weight": 2}, "oks_weight"),
        ({"coast_buffer_per_s": -0.1}, "coast_buffer_per_s"),
        ({"coast_buffer": 0.2}, r"unknown key 'coast_buffer' \(did you mean 'coast_buffer_per_s'\?\)"),
        ({"box_similarity": "dist"}, "is not one of"),
        ({"kalman": {"std_position": 0}}, "std_position"),
    ],
)
def test_invalid_values(data, msg):
    with pytest.raises(ConfigError, match=msg):
        load_tracker_config(None, data)
