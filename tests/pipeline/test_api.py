"""``track_frames``'s run object: breaking out of the loop, ``close()`` and ``with`` stop the run, the
outputs written so far are complete, and a script that keeps the object after its loop still ends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_stages import stip_threads

import stip_rt
from stip_rt.api import TrackRun
from stip_rt.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _frames(jsonl: Path) -> list[int]:
    """The frame indices of a complete JSONL output (every line parses; the first is the header)."""
    return [json.loads(x)["frame"] for x in jsonl.read_text().splitlines()[1:]]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".lock", ".tmp")))


def _run(script: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the repository (and ``paths``) importable; a hang fails after 60 s."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (REPO, *paths))}
    return subprocess.run(
        [sys.executable, str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "loop",
    [
        "it = track_frames(*args, **kw)\nfor r in it:\n    if r.index == 3:\n        break",
        "with track_frames(*args, **kw) as it:\n    for r in it:\n        if r.index == 3:\n            break",
    ],
    ids=["kept-iterator", "with-block"],
)
def test_a_script_that_breaks_out_of_the_loop_ends(tmp_path: Path, vtest: Path, pets_gt: Path, loop: str) -> None:
    # the kept iterator (the audit's script) used to keep the stage threads alive, and the
    # interpreter's exit waited for them forever
    out = tmp_path / "v.jsonl"
    script = tmp_path / "script.py"
    script.write_text(
        "from stip_rt import track_frames\n"
        f"args, kw = [{str(vtest)!r}], {{'detections': {str(pets_gt)!r}, 'pose': 'none', 'sinks': [{str(out)!r}]}}\n"
        f"{loop}\n"
        "print('script ends now', r.index, flush=True)\n"
    )
    res = _run(script)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "script ends now 3\n"
    frames = _frames(out)
    assert len(frames) >= 4 and frames == list(range(len(frames))) and len(frames) < 795
    assert _leftovers(tmp_path) == []


def test_close_stops_the_run_at_once_and_with_prepares_it(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    out = tmp_path / "v.jsonl"
    frames = stip_rt.track_frames(str(vtest), detections=str(pets_gt), pose="none", sinks=[out])
    assert isinstance(frames, TrackRun) and iter(frames) is frames
    assert not out.exists() and stip_threads() == []  # nothing opened or started before the first next()
    got = [next(frames).index for _ in range(3)]
    frames.close()  # the object is still referenced: close() alone stops the run
    assert got == [0, 1, 2] and stip_threads() == [] and not frames.pipeline.running
    assert list(frames) == [] and _leftovers(tmp_path) == []
    written = _frames(out)
    assert len(written) >= 3 and written == list(range(len(written)))
    frames.close()  # idempotent

    with stip_rt.track_frames(str(vtest), detections=str(pets_gt), pose="none", sinks=[out]) as frames:
        assert frames.pipeline.parts is not None
        assert frames.pipeline.parts.run.source.width == 768 and stip_threads() == []  # prepared, not started
        assert next(frames).index == 0
    assert stip_threads() == [] and _leftovers(tmp_path) == [] and _frames(out)[0] == 0


def test_a_dropped_run_that_never_started_closes_what_with_opened(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    out = tmp_path / "v.jsonl"
    frames = stip_rt.track_frames(str(vtest), detections=str(pets_gt), pose="none", sinks=[out])
    frames.__enter__()  # opened (a .lock next to the output), then forgotten
    assert _leftovers(tmp_path) == ["v.jsonl.lock"]
    del frames
    assert _leftovers(tmp_path) == [] and stip_threads() == []


def test_a_script_that_ends_while_the_pipeline_is_held_ends(tmp_path: Path) -> None:
    # the same for a Pipeline iterated directly (fake stages: no data needed)
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            from fake_stages import FakeSource, ListSink, make_parts
            from stip_rt.pipeline import Pipeline

            sink = ListSink()
            it = iter(Pipeline(sinks=[sink], parts=make_parts(FakeSource(100000))))
            print([next(it).index for _ in range(3)], flush=True)
            """
        )
    )
    res = _run(script, REPO / "tests")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "[0, 1, 2]\n"


class _Partial:
    """A sink lacking what ``lacks`` names."""

    def __init__(self, lacks: str) -> None:
        self.lacks = lacks

    def __getattr__(self, name: str) -> object:
        if name == self.lacks or name not in ("needs_image", "open", "write", "close"):
            raise AttributeError(name)
        return False if name == "needs_image" else (lambda *a: None)


@pytest.mark.parametrize("lacks", ["open", "needs_image", "write", "close"])
def test_a_sink_object_lacking_an_attribute_is_refused_by_the_call_naming_it(vtest: Path, lacks: str) -> None:
    with pytest.raises(ConfigError, match=rf"track_frames\(\) sinks\[1\] = .*it lacks {lacks} "):
        stip_rt.track_frames(str(vtest), pose="none", sinks=["t.jsonl", _Partial(lacks)])


def test_one_sink_object_not_in_a_list_is_accepted(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    from stip_rt.io.sinks import open_sink

    out = tmp_path / "one.jsonl"
    with stip_rt.track_frames(
        str(vtest), detections=str(pets_gt), pose="none", max_frames=2, sinks=open_sink(out)
    ) as it:
        assert [r.index for r in it] == [0, 1]
    assert _frames(out) == [0, 1]


def test_info_prepares_the_run_and_repr_and_stats_tell_its_state(vtest: Path, pets_gt: Path) -> None:
    run = stip_rt.track_frames(vtest, detections=str(pets_gt), pose="none", max_frames=3)
    assert repr(run) == f"<TrackRun {str(vtest)!r}: not started, 0 frames>"
    assert run.info.source.width == 768 and run.info.schema is None  # box-only
    assert stip_threads() == []  # prepared, not started
    assert [r.index for r in run] == [0, 1, 2]
    assert repr(run) == f"<TrackRun {str(vtest)!r}: ended, 3 frames>" and run.stats().frames == 3
    run.close()
    assert repr(run).endswith(": closed, 3 frames>") and run.info.source.height == 576  # still readable
    closed = stip_rt.track_frames(vtest, detections=str(pets_gt), pose="none")
    closed.close()
    with pytest.raises(ConfigError, match="stopped"):
        _ = closed.info


def _cell(namespace: dict[str, object]) -> None:
    """A notebook cell, re-run: the run kept in a global, the loop left early."""
    exec(
        "it = stip_rt.track_frames(src, detections=gt, pose='none')\nfor r in it:\n    if r.index == 2:\n        break",
        namespace,
    )


def test_a_notebook_cell_rerun_20_times_leaves_one_run_and_close_ends_it(vtest: Path, pets_gt: Path) -> None:
    namespace: dict[str, object] = {"stip_rt": stip_rt, "src": str(vtest), "gt": str(pets_gt)}
    for _ in range(20):
        _cell(namespace)
        assert len(stip_threads()) == 4  # each re-run drops the run before it: one run's stage threads
    run = namespace["it"]
    assert isinstance(run, TrackRun)
    run.close()
    assert stip_threads() == [] and [t for t in threading.enumerate() if t.name.startswith("source:")] == []


def test_an_exception_in_the_loop_body_stops_the_run_and_completes_the_output(
    tmp_path: Path, vtest: Path, pets_gt: Path
) -> None:
    out = tmp_path / "v.jsonl"
    for exc in (ValueError, KeyboardInterrupt):
        with pytest.raises(exc):
            for r in stip_rt.track_frames(vtest, detections=str(pets_gt), pose="none", sinks=out):
                if r.index == 4:
                    raise exc
        assert stip_threads() == [] and _leftovers(tmp_path) == []
        written = _frames(out)
        assert len(written) >= 5 and written == list(range(len(written)))
        out.unlink()


def test_two_runs_at_once_and_kept_results_are_not_overwritten(
    vtest: Path, pets_gt: Path, fixtures_dir: Path
) -> None:
    # a tiny random-weight STIP model; every person tracked from the first frame
    pose = {"pose": str(fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14.json"), "weights": "random",
            "device": "cpu", "backend": "torch",
            "track": {"min_hits": 1, "high_score": 0.0, "low_score": 0.0, "new_track_score": 0.0}}  # fmt: skip
    a = stip_rt.track_frames(vtest, detections=str(pets_gt), max_frames=12, with_images=True, **pose)
    b = stip_rt.track_frames(vtest, detections=str(pets_gt), pose="none", max_frames=12)
    kept = []
    for ra, rb in zip(a, b, strict=True):
        assert ra.index == rb.index and ra.image is not None and ra.tracks.keypoints is not None
        arrays = (ra.image, ra.tracks.ids, ra.tracks.boxes, ra.tracks.keypoints, ra.tracks.scores, rb.tracks.boxes)
        kept.append((arrays, [x.copy() for x in arrays]))
    assert len(kept) == 12 and len(kept[-1][0][1]) > 0  # more frames than a queue holds (8)
    for arrays, copies in kept:
        for x, y in zip(arrays, copies, strict=True):
            np.testing.assert_array_equal(x, y)
    assert stip_threads() == []


def test_the_documented_python_snippets_run_as_written(
    tmp_path: Path, vtest: Path, pets_gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two whole box-only runs of vtest (795 frames), one drawing every frame: ~3 s. docs/pipeline.md's
    # block needs a zoo model's weights (a download): not here
    for name in ("vtest.avi", "video.mp4"):
        (tmp_path / name).symlink_to(vtest)
    (tmp_path / "gt.txt").symlink_to(pets_gt)
    monkeypatch.chdir(tmp_path)
    blocks = [
        block
        for doc in (REPO / "README.md", REPO / "docs" / "analysis.md")
        for block in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
        if "track_frames(" in block
    ]
    assert len(blocks) == 2
    for block in blocks:
        namespace: dict[str, object] = {"print": lambda *a: None}
        exec(block, namespace)
        assert namespace["result"].index == 794  # type: ignore[attr-defined]
    assert stip_threads() == []


class _SlowClose:
    """A sink whose close() takes a while (a big file being finished)."""

    needs_image = False

    def __init__(self) -> None:
        self.closing, self.closed = threading.Event(), threading.Event()

    def open(self, run: object) -> None:
        pass

    def write(self, result: object) -> None:
        pass

    def close(self) -> None:
        self.closing.set()
        time.sleep(0.5)
        self.closed.set()


def test_a_loop_ended_by_close_on_another_thread_ends_once_the_outputs_are_finished(
    vtest: Path, pets_gt: Path
) -> None:
    # the loop's next() saw the closed flag and ended while the other thread was still finishing the sinks
    sink = _SlowClose()
    run = stip_rt.track_frames(vtest, detections=str(pets_gt), pose="none", sinks=sink)
    closer = threading.Thread(target=run.close)
    for r in run:
        if r.index == 2:
            closer.start()
            assert sink.closing.wait(30)
    assert sink.closed.is_set()
    closer.join(30)
    assert stip_threads() == []
