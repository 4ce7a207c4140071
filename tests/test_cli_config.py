"""``stip-rt config`` as a validator: YAML errors in one line with their position, binary files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from stip_rt.cli import main


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("track:\n  min_hits: 3\n\tmax_age: 5\n", "line 3, column 1"),  # a tab
        ("track:\n  min_hits: 3\n max_age: 5\n", "line 3, column 2"),  # a mis-indented key
        ("track:\n  min_hits: [1, 2\n  max_age: 5\n", "line 3, column 10"),  # an unclosed list
    ],
)
def test_invalid_yaml_is_one_line_naming_the_file_and_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    f = tmp_path / "run.yaml"
    f.write_text(text)
    assert main(["config", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert f"config {f}: invalid YAML at {where}: " in err
    assert "<unicode string>" not in err


def test_a_binary_file_given_as_config_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"\x08\x0a\x12\x07pytorch\xeb\xf8\x4f\x0a")
    assert main(["config", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"config {f}: not a YAML text file" in err


def test_unknown_keys_suggest_the_right_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("trak:\n  min_hits: 3\n")
    assert main(["config", "--config", str(f)]) == 2
    assert "unknown key 'trak' (did you mean 'track'?)" in capsys.readouterr().err
    f.write_text("track:\n  min_hit: 3\n")
    assert main(["config", "--config", str(f)]) == 2
    assert "unknown key 'track.min_hit' (did you mean 'track.min_hits'?)" in capsys.readouterr().err
