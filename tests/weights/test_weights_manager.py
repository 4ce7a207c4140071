"""The weights manager against a local HTTP server: every server case of issue 7."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path

import pytest
from weights_http import PAYLOAD, SHA

from stip_rt import weights
from stip_rt.errors import WeightsError
from stip_rt.weights import cache as weights_cache
from stip_rt.weights import importing


def _no_leftovers(home: Path, file: str) -> None:
    assert not (home / "weights" / f"{file}.part").exists()


def test_good_file_is_downloaded_checked_and_stamped(zoo):
    path = weights.fetch("good", timeout=5)
    assert path == zoo.home / "cache" / "weights" / "good.bin"
    assert path.read_bytes() == PAYLOAD
    assert (path.parent / "good.bin.sha256").read_text().split()[0] == SHA
    _no_leftovers(zoo.home, "good.bin")
    # second call: cached, no new request
    n = len(zoo.state.requests)
    assert weights.weights_path("good") == path
    assert len(zoo.state.requests) == n


def test_published_prefix_is_checked_as_prefix(zoo):
    assert weights.fetch("good-prefix", timeout=5).read_bytes() == PAYLOAD


def test_wrong_checksum_deletes_download_and_says_expected_vs_got(zoo):
    with pytest.raises(WeightsError) as e:
        weights.fetch("wrong", timeout=5)
    msg = str(e.value)
    assert "'wrong'" in msg and "0" * 64 in msg and SHA in msg
    _no_leftovers(zoo.home, "wrong.bin")
    assert not (weights.weights_dir() / "wrong.bin").exists()


def test_404_names_model_url_and_import_command(zoo):
    with pytest.raises(WeightsError) as e:
        weights.fetch("missing", timeout=5)
    msg = str(e.value)
    assert "HTTP 404" in msg and f"{zoo.url}/missing.bin" in msg
    assert "stip-rt weights import FILE --name missing" in msg


def test_connection_cut_midway_is_resumed_with_range(zoo):
    path = weights.fetch("cut", timeout=5)
    assert path.read_bytes() == PAYLOAD
    ranges = [r for p, r in zoo.state.requests if p.endswith("cut.bin")]
    assert ranges[0] is None and ranges[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_ignoring_range_restarts_from_zero(zoo):
    assert weights.fetch("norange", timeout=5).read_bytes() == PAYLOAD
    assert [r for p, r in zoo.state.requests if p.endswith("norange.bin")][1] is not None


def test_partial_file_is_kept_and_resumed_by_the_next_fetch(zoo):
    with pytest.raises(WeightsError, match="partial file is kept"):
        weights.fetch("cut", timeout=5, retries=0)
    part = weights.weights_dir() / "cut.bin.part"
    assert part.stat().st_size == len(PAYLOAD) // 2
    assert weights.fetch("cut", timeout=5, retries=0).read_bytes() == PAYLOAD
    assert zoo.state.requests[-1][1] == f"bytes={len(PAYLOAD) // 2}-"


@pytest.mark.parametrize("name", ["slow", "stall"], ids=["before-headers", "mid-body"])  # not "slow": a marker name
def test_timeout_is_honoured_when_the_server_stops_answering(zoo, name):
    # "slow" sends nothing, "stall" stops after half the body; both answer in full 30 s later, so a
    # client that did not honour its timeout would succeed here instead of raising
    with pytest.raises(WeightsError) as e:
        weights.fetch(name, timeout=0.5, retries=0)
    assert "no answer within 0.5 s" in str(e.value) and "weights import" in str(e.value)
    assert f"'{name}'" in str(e.value) and f"{zoo.url}/{name}.bin" in str(e.value)
    assert [p for p, _ in zoo.state.requests] == [f"/{name}.bin"]


def test_progress_reports_bytes_up_to_the_total(zoo):
    seen: list[tuple[int, int | None]] = []
    weights.fetch("good", timeout=5, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    done = [d for d, _ in seen]
    assert done == sorted(done)


def test_progress_of_a_resumed_download_starts_at_the_partial_file(zoo):
    with pytest.raises(WeightsError):
        weights.fetch("cut", timeout=5, retries=0)
    seen: list[tuple[int, int | None]] = []
    weights.fetch("cut", timeout=5, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (len(PAYLOAD) // 2, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_installed_reporter_sees_downloads_started_deeper_down(zoo):
    calls: list[tuple] = []

    @contextlib.contextmanager
    def factory(name):
        calls.append(("open", name))
        try:
            yield lambda done, total: calls.append((done, total))
        finally:
            calls.append(("close", name))

    with weights.progress_reporter(factory):
        weights.weights_path("good")  # no progress argument: the installed factory reports
        with pytest.raises(WeightsError):
            weights.fetch("missing", timeout=5)
    assert calls[0] == ("open", "good") and (len(PAYLOAD), len(PAYLOAD)) in calls
    assert calls[-2:] == [("open", "missing"), ("close", "missing")]  # closed on failure too
    n = len(calls)
    weights.fetch("good-prefix", timeout=5)  # outside the block nothing is reported
    assert len(calls) == n


def test_the_library_draws_no_progress_bar_even_on_a_terminal(zoo, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    weights.fetch("good", timeout=5)
    assert capsys.readouterr().err == ""


def test_no_network_connection_refused(zoo):
    with pytest.raises(WeightsError) as e:
        weights.fetch("offline", timeout=2)
    msg = str(e.value)
    assert "'offline'" in msg and "/offline.bin" in msg and "stip-rt weights import FILE --name offline" in msg


def test_mirror_base_url(zoo, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, zoo.url + "/mirror/")
    weights.fetch("offline", timeout=5)  # the manifest URL is dead; the mirror serves the file
    assert zoo.state.requests[-1][0] == "/mirror/offline.bin"


def test_corrupted_cache_is_caught_by_verify_and_on_load(zoo):
    path = weights.fetch("good", timeout=5)
    assert weights.verify("good")[0].status == "ok"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    res = weights.verify("good")[0]
    assert res.status == "corrupt" and SHA in res.message
    with pytest.raises(WeightsError, match=r"corrupt.*weights fetch good --force"):
        weights.weights_path("good")
    assert weights.fetch("good", timeout=5, force=True).read_bytes() == PAYLOAD
    assert weights.verify("good")[0].status == "ok"


def test_truncated_cache_is_caught_on_load(zoo):
    path = weights.fetch("good", timeout=5)
    path.write_bytes(PAYLOAD[:100])
    with pytest.raises(WeightsError, match="corrupt"):
        weights.weights_path("good", fetch=False)


def test_not_cached_without_fetch_and_unknown_names(zoo):
    with pytest.raises(WeightsError, match="weights fetch good"):
        weights.weights_path("good", fetch=False)
    with pytest.raises(WeightsError, match="did you mean 'good'"):
        weights.weights_path("godo")
    assert weights.verify("good")[0].status == "missing"


def test_manual_model_explains_how_to_import(zoo):
    with pytest.raises(WeightsError) as e:
        weights.weights_path("by-hand")
    msg = str(e.value)
    assert "cannot be downloaded automatically" in msg and "https://example.org/release" in msg
    assert "stip-rt weights import FILE --name by-hand" in msg


def test_import_checks_hash_and_architecture_then_copies(zoo, tmp_path):
    src = tmp_path / "downloaded.bin"
    src.write_bytes(PAYLOAD)
    seen = []
    dest = weights.import_file(src, "good", check=lambda entry, p: seen.append((entry.name, p)))
    assert dest.read_bytes() == PAYLOAD and seen == [("good", src)]
    assert weights.weights_path("good", fetch=False) == dest
    bad = tmp_path / "other.bin"
    bad.write_bytes(b"not it")
    with pytest.raises(WeightsError, match="expected sha256"):
        weights.import_file(bad, "good", check=lambda e, p: None)
    with pytest.raises(WeightsError, match="file not found"):
        weights.import_file(tmp_path / "nope.bin", "good")


def test_import_of_manual_model_runs_the_load_check(zoo, tmp_path):
    src = tmp_path / "stip.pth"
    src.write_bytes(b"anything")

    def refuse(entry, path):
        raise WeightsError(f"{path}: does not load into {entry.arch}")

    with pytest.raises(WeightsError, match="does not load"):
        weights.import_file(src, "by-hand", check=refuse)
    assert not (weights.weights_dir() / "by-hand.pth").exists()
    weights.import_file(src, "by-hand", check=lambda e, p: None)
    assert weights.weights_path("by-hand").read_bytes() == b"anything"


def test_real_manifest_is_valid():
    entries = weights.load_zoo()
    assert {
        "rtmdet-tiny",
        "rtmdet-s",
        "rtmdet-m",
        "rtmdet-l",
        "hrnet-w32-coco-256x192",
        "stip-w32-coco-256x192",
        "stip-w32-crowdpose-256x192",
    } <= set(entries)
    for e in entries.values():
        assert e.manual or (e.url.startswith("https://") and e.sha256 and e.file in e.url)
        if e.sha256_is_prefix:  # OpenMMLab: the prefix is in the file name
            assert f"-{e.sha256}" in e.file


def test_import_of_a_pose_checkpoint_builds_its_architecture(tmp_path, monkeypatch):
    # the real manifest: a hand-downloaded HRNet-W32 CrowdPose file (manual entry) is load-checked
    import torch

    from stip_rt import build_model

    monkeypatch.setenv(weights.HOME_ENV, str(tmp_path / "home"))
    good = tmp_path / "hrnet_w32_256x192.pth"
    torch.save(build_model("hrnet-w32-crowdpose-256x192").state_dict(), good)
    wrong = tmp_path / "coco.pth"
    torch.save({"state_dict": build_model("hrnet-w32-coco-256x192").state_dict()}, wrong)
    with pytest.raises(WeightsError, match="joints"):
        weights.import_file(wrong, "hrnet-w32-crowdpose-256x192")
    dest = weights.import_file(good, "hrnet-w32-crowdpose-256x192")
    assert weights.weights_path("hrnet-w32-crowdpose-256x192", fetch=False) == dest


# ---------------------------------------------------------------- read-only caches, concurrency, bad input


def _refuse_stamp(path: Path, digest: str) -> None:
    raise PermissionError(13, "Permission denied", str(path) + ".sha256")


@pytest.mark.parametrize("stamp", ["missing", "stale"])
def test_unwritable_stamp_still_loads_a_verified_file(zoo, monkeypatch, caplog, stamp):
    path = weights.fetch("good", timeout=5)
    stamp_file = path.parent / "good.bin.sha256"
    if stamp == "missing":
        stamp_file.unlink()
    else:
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # same bytes, new mtime
    monkeypatch.setattr(weights_cache, "write_stamp", _refuse_stamp)
    assert weights.weights_path("good", fetch=False) == path
    assert weights.verify("good")[0].status == "ok"
    assert "cannot record" in caplog.text and "good.bin.sha256" in caplog.text


def test_read_only_cache_loads_fetches_and_imports_with_one_clear_error(zoo, tmp_path, read_only):
    path = weights.fetch("good", timeout=5)
    (path.parent / "good.bin.sha256").unlink()
    read_only(path.parent)
    assert weights.weights_path("good", fetch=False) == path  # verified, the stamp cannot be written: fine
    src = tmp_path / "good2.bin"
    src.write_bytes(PAYLOAD)
    for write in (
        lambda: weights.fetch("good-prefix", timeout=5),
        lambda: weights.import_file(src, "good-prefix", check=lambda e, p: None),
    ):
        with pytest.raises(WeightsError) as e:
            write()
        assert f"weights cache {path.parent}" in str(e.value) and "not writable" in str(e.value)
        assert "by hand" not in str(e.value)


def _blocked_home(zoo, monkeypatch) -> Path:
    """A cache root below a plain file: creating the cache folder fails, even for root."""
    blocker = zoo.home.parent / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(weights.HOME_ENV, str(blocker / "home"))
    return blocker / "home" / "cache" / "weights"


def test_cache_folder_that_cannot_be_created_is_one_clear_error(zoo, tmp_path, monkeypatch):
    folder = _blocked_home(zoo, monkeypatch)
    with pytest.raises(WeightsError, match=f"weights cache {re.escape(str(folder))}: .*not writable"):
        weights.fetch("good", timeout=5)
    src = tmp_path / "good.bin"
    src.write_bytes(PAYLOAD)
    checked: list[str] = []
    with pytest.raises(WeightsError, match=f"weights cache {re.escape(str(folder))}: .*not writable"):
        weights.import_file(src, "good", check=lambda e, p: checked.append(e.name))
    assert checked == []  # fails before the (slow) load check


def test_partial_file_that_cannot_be_written_is_not_a_download_failure(zoo):
    (weights.weights_dir() / "good.bin.part").mkdir(parents=True)  # open() fails here, even for root
    with pytest.raises(WeightsError) as e:
        weights.fetch("good", timeout=5)
    msg = str(e.value)
    assert "good.bin.part" in msg and "by hand" not in msg and "weights import" not in msg


def test_concurrent_imports_of_one_file_both_succeed(zoo, tmp_path, monkeypatch):
    src = tmp_path / "downloaded.bin"
    src.write_bytes(PAYLOAD)
    real = importing.sha256_file
    nested: list[Path] = []
    started: list[bool] = []

    def hash_and_interleave(p: Path) -> str:
        # the first import hashes its copy: a second import of the same file runs to its end right now
        if Path(p) != src and not started:
            started.append(True)
            nested.append(weights.import_file(src, "good", check=lambda e, q: None))
        return real(p)

    monkeypatch.setattr(importing, "sha256_file", hash_and_interleave)
    dest = weights.import_file(src, "good", check=lambda e, p: None)
    assert nested == [dest] and dest.read_bytes() == PAYLOAD
    assert weights.verify("good")[0].status == "ok"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["good.bin", "good.bin.sha256"]  # no temp files left


def test_concurrent_fetch_waits_for_the_running_download(zoo):
    other: list[Path | BaseException] = []
    threads: list[threading.Thread] = []

    def run_other() -> None:
        try:
            other.append(weights.fetch("good", timeout=5))
        except BaseException as e:
            other.append(e)

    def progress(done: int, total: int | None) -> None:
        if done == total and not threads:  # the first download has every byte, not yet installed
            threads.append(threading.Thread(target=run_other))
            threads[0].start()
            threads[0].join(0.5)  # uncoordinated, the second one would finish (or fail) now

    path = weights.fetch("good", timeout=5, progress=progress)
    threads[0].join(10)
    assert other == [path] and path.read_bytes() == PAYLOAD
    assert weights.verify("good")[0].status == "ok"


def test_corrupt_manual_model_points_to_import_not_fetch(zoo, tmp_path):
    src = tmp_path / "stip.pth"
    src.write_bytes(b"anything")
    dest = weights.import_file(src, "by-hand", check=lambda e, p: None)
    dest.write_bytes(b"something else")
    for fetch in (True, False):
        with pytest.raises(WeightsError) as e:
            weights.weights_path("by-hand", fetch=fetch)
        assert "corrupt" in str(e.value) and "stip-rt weights import FILE --name by-hand" in str(e.value)
        assert "weights fetch" not in str(e.value)
    dest.unlink()
    with pytest.raises(WeightsError) as e:
        weights.weights_path("by-hand", fetch=False)
    assert "stip-rt weights import FILE --name by-hand" in str(e.value) and "weights fetch" not in str(e.value)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive_and_finite(zoo, timeout):
    with pytest.raises(WeightsError, match="timeout"):
        weights.fetch("good", timeout=timeout)
    assert zoo.state.requests == []


@pytest.mark.parametrize("mirror", ["/srv/mirror", "mirror.example.org/stip", "htp://mirror.example.org"])
def test_mirror_without_a_known_scheme_is_one_clear_error(zoo, monkeypatch, mirror):
    monkeypatch.setenv(weights.MIRROR_ENV, mirror)
    with pytest.raises(WeightsError) as e:
        weights.fetch("good", timeout=5)
    assert f"STIP_RT_WEIGHTS_URL={mirror!r}" in str(e.value) and "file://" in str(e.value)


def test_mirror_folder_as_file_url(zoo, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "offline.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv(weights.MIRROR_ENV, mirror.as_uri())
    assert weights.fetch("offline", timeout=5).read_bytes() == PAYLOAD
    monkeypatch.setenv(weights.MIRROR_ENV, (tmp_path / "nowhere").as_uri())
    with pytest.raises(WeightsError, match=r"nowhere/good\.bin"):
        weights.fetch("good", timeout=5)
