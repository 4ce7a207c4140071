"""The README's first-hour path online: ``stip-rt track video`` on an empty cache downloads the
detector and the pose model (here from a local HTTP server serving random-weight checkpoints in
the OpenMMLab layout of the real files), checks them, runs, and says where everything went.

The offline side (one message naming every missing file) is in ``test_pipeline_errors.py``.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from stip_rt.cli import main
from stip_rt.models import build_model
from stip_rt.nn.rtmdet import build_rtmdet
from stip_rt.paths import HOME_ENV, models_dir
from stip_rt.weights import manifest

DETECTOR, POSE = "rtmdet-tiny", "hrnet-w32-coco-256x192"  # what an empty cache gets (AUTO_POSE falls back to HRNet)


class _Logged(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


def _openmmlab_files(folder: Path, zoo: dict) -> None:
    """Random-weight checkpoints under the real file names, keyed as mmdet / mmpose 0.x save them."""
    torch.manual_seed(0)
    det = build_rtmdet(zoo[DETECTOR]["arch"]).state_dict()
    for key in [k for k in det if k.startswith("bbox_head.rtm_cls.") and k.endswith(".bias")]:
        det[key].fill_(-20.0)  # a random head boxes 100 junk "people" a frame (15 s of pose on the CPU): none
    torch.save({"meta": {}, "state_dict": det}, folder / zoo[DETECTOR]["file"])
    pose = build_model(zoo[POSE]["arch"]).state_dict()
    mm = {("keypoint_head." + k if k.startswith("final_layer") else "backbone." + k): v for k, v in pose.items()}
    torch.save({"meta": {}, "state_dict": mm}, folder / zoo[POSE]["file"])


@pytest.fixture
def served_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The real manifest with its two default models served locally (checksums of the served files)."""
    zoo = yaml.safe_load((models_dir() / "zoo.yaml").read_text(encoding="utf-8"))
    files = tmp_path / "server"
    files.mkdir()
    _openmmlab_files(files, zoo["models"])
    requests: list[str] = []
    handler = type("Handler", (_Logged,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(files)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for name in (DETECTOR, POSE):
        entry = zoo["models"][name]
        entry["url"] = f"http://127.0.0.1:{server.server_address[1]}/{entry['file']}"
        entry["sha256"] = hashlib.sha256((files / entry["file"]).read_bytes()).hexdigest()
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo), encoding="utf-8")
    monkeypatch.setattr(manifest, "zoo_file", lambda: tmp_path / "zoo.yaml")
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))  # an empty cache
    monkeypatch.delenv(manifest.MIRROR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        yield requests
    finally:
        server.shutdown()
        server.server_close()


def _outputs(err: str) -> list[Path]:
    return [Path(line.split("output:", 1)[1].strip()) for line in err.splitlines() if line.startswith("output:")]


@pytest.mark.slow
def test_readme_track_command_downloads_both_models_then_runs_from_the_cache(
    served_zoo: list[str],
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    video = str(data_dir / "opencv_samples" / "vtest.avi")
    # the README's command, as written, on a short stretch of the video
    code = main(["track", video, "--out", "tracks.jsonl", "--video", "annotated.mp4", "--max-frames", "3"])
    out = capsys.readouterr()
    err = out.err + out.out
    assert code == 0, err
    assert sorted(p.rsplit("/", 1)[-1] for p in served_zoo) == sorted(
        yaml.safe_load((tmp_path / "zoo.yaml").read_text())["models"][n]["file"] for n in (DETECTOR, POSE)
    )  # each model fetched once
    cached = sorted(p.name for p in (tmp_path / "home").rglob("*.pth"))
    assert len(cached) == 2, cached
    assert {p.name for p in _outputs(err)} == {"tracks.jsonl", "annotated.mp4"}, err
    lines = (tmp_path / "tracks.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # the header and one line per frame
    assert (tmp_path / "annotated.mp4").stat().st_size > 0

    # the next run, without outputs, uses the cache (no request) and saves to runs/track/vtest/
    served_zoo.clear()
    caplog.clear()
    caplog.set_level("WARNING", logger="stip_rt")
    assert main(["track", video, "--max-frames", "2"]) == 0
    out = capsys.readouterr()
    err = out.err + out.out
    said = [r for r in caplog.records if "STIP weights are not cached" in r.getMessage()]
    assert len(said) == 1, caplog.text  # the automatic choice is made and said once
    assert served_zoo == []
    folder = tmp_path / "runs" / "track" / "vtest"
    assert {p.parent.resolve() for p in _outputs(err)} == {folder}, err
    assert sorted(p.suffix for p in folder.iterdir()) == [".jsonl", ".mp4"]
