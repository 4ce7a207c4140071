"""What ``track_frames`` / ``track_config`` accept, the one clear error for what they do not, their help,
and the types a user's script sees (mypy)."""

from __future__ import annotations

import ast
import pydoc
import sys
from pathlib import Path

import numpy as np
import pytest

import stip_rt
from stip_rt.errors import ConfigError, SourceError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (np.zeros((2, 24, 32, 3), np.uint8), "numpy.ndarray"),
        (["a.jpg", "b.jpg"], "list"),
        ((np.zeros((24, 32, 3), np.uint8) for _ in range(2)), "generator"),
        (True, "bool"),
    ],
    ids=["array", "image-list", "generator", "bool"],
)
def test_a_source_that_is_not_a_path_is_one_config_error_naming_its_type(source: object, kind: str) -> None:
    # an array was a raw OSError ("File name too long" with the array printed), a list or a generator
    # "file not found" / "no image files match this pattern" naming its repr; True was camera 1
    for call, origin in ((stip_rt.track_frames, "track_frames"), (stip_rt.track_config, "track_config")):
        expected = rf"^stip_rt\.{origin}\(\) source: expected a video file.*, got a {kind};"
        with pytest.raises(ConfigError, match=expected):
            call(source, pose="none")


def test_paths_and_camera_indices_are_sources(tmp_path: Path) -> None:
    assert stip_rt.track_config(tmp_path / "v.mp4").source.uri == str(tmp_path / "v.mp4")
    assert stip_rt.track_config(0).source.uri == "0"


def test_a_missing_source_file_is_refused_by_the_call(tmp_path: Path) -> None:
    # it used to surface only at the first next(), far from the line that named it (a notebook's later cell)
    missing = tmp_path / "vidoe.mp4"
    with pytest.raises(SourceError, match=rf"^{missing}: file not found$"):
        stip_rt.track_frames(missing, pose="none")
    assert stip_rt.track_config(missing).source.uri == str(missing)  # the configuration alone checks no file


def test_one_override_string_is_one_item() -> None:
    # a str is a Sequence[str]: it was read letter by letter ("--set t: expected KEY=VALUE")
    assert stip_rt.track_config("v.mp4", overrides="track.min_hits=1").track.min_hits == 1
    assert stip_rt.track_config("v.mp4", overrides=["track.min_hits=1"]).track.min_hits == 1


def test_track_config_names_itself_in_its_messages() -> None:
    with pytest.raises(ConfigError, match=r"^stip_rt\.track_config\(\) max_frame=3: unknown key 'max_frame' "
                                          r"\(did you mean 'max_frames'\?\)"):  # fmt: skip
        stip_rt.track_config("v.mp4", max_frame=3)


@pytest.mark.parametrize(
    ("given", "meant"),
    [("stip-w32", "stip-w32-coco-256x192"), ("hrnet-w33", "hrnet-w32-coco-256x192")],
)
def test_a_zoo_model_name_cut_short_or_mistyped_gets_a_suggestion(given: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=rf"pose='{given}': 'pose.model' = {given}: not a zoo model.*"
                                          rf"\(did you mean '{meant}'\?\)$"):  # fmt: skip
        stip_rt.track_config("v.mp4", pose=given)


def test_a_name_like_no_zoo_model_lists_them() -> None:
    with pytest.raises(ConfigError, match=r"zoo models: hrnet-w32-coco-256x192, .*stip-w32-coco-256x192"):
        stip_rt.track_config("v.mp4", pose="xq")


def test_help_of_track_frames_names_its_options() -> None:
    text = pydoc.render_doc(stip_rt.track_frames, renderer=pydoc.plaintext)
    for word in ("source:", "sinks:", "overrides:", "**options:", "pose", "detections", "max_frames", "OPTIONS"):
        assert word in text, word


def test_every_lazy_name_of_the_package_is_typed() -> None:
    # stip_rt's names are imported on first use (a module __getattr__ returning Any): without the
    # TYPE_CHECKING imports mypy and IDEs saw stip_rt.track_frames(...) as Any, and checked nothing
    tree = ast.parse((REPO / "stip_rt" / "__init__.py").read_text())
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                typed.update({a.name: f"stip_rt.{imp.module}" for a in imp.names})
    assert typed == stip_rt._LAZY  # type: ignore[attr-defined]
    assert set(stip_rt.__all__) == {*typed, "StipError"} and "TrackRun" in stip_rt.__all__


USER_SCRIPT = '''
import stip_rt

run = stip_rt.track_frames("v.mp4", pose="none", detections="gt.txt", sinks="out.jsonl")
reveal_type(run)
for result in run:
    reveal_type(result.index)
    reveal_type(result.tracks.ids)
    reveal_type(result.tracks.keypoints)
    reveal_type(result.image)
reveal_type(run.info.schema)
reveal_type(stip_rt.track_config("v.mp4", overrides="track.min_hits=1"))
with stip_rt.track_frames("v.mp4") as frames:
    reveal_type(frames)
run.stats().fps + 1
'''


@pytest.mark.slow  # mypy from cold: ~30 s
def test_a_users_script_type_checks_with_the_types_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mypy import api

    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    monkeypatch.setenv("MYPYPATH", str(REPO))
    out, err, code = api.run(
        ["--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}", str(script)]
    )  # fmt: skip
    types = [line.split('Revealed type is "')[1].rstrip('"') for line in out.splitlines() if "Revealed" in line]
    assert code == 0 and "error" not in out, out + err
    array = "numpy.ndarray[tuple[Any, ...], numpy.dtype[Any]]"
    assert types == [
        "stip_rt.api.TrackRun",
        "int",
        array,
        f"{array} | None",
        f"{array} | None",
        "stip_rt.schemas.KeypointSchema | None",
        "stip_rt.run_config.RunConfig",
        "stip_rt.api.TrackRun",
    ]
