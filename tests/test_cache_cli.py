"""The ONNX / engine cache: seeded random weights (one export), size limit with least-recently-used
eviction, ``stip-rt cache list|prune``, and no export for a run that fails on a typo."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from stip_rt.cli import main
from stip_rt.models import RANDOM_SEED, build_model
from stip_rt.runtime import engine_cache as ec
from stip_rt.runtime import onnx_export
from stip_rt.runtime.onnx_export import ExportConfig, cached_onnx, model_fingerprint, model_input_shape

TINY = {
    "name": "tiny-hrnet",
    "arch": "hrnet",
    "schema": "coco17",
    "input_size": [64, 64],
    "net": {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1},
}
DAY = 86400.0
DIGEST = "0123456789abcdef01234567"  # an EngineKey.digest(): engine cache files are named by it


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ec.CACHE_MAX_ENV, raising=False)
    return tmp_path / "home" / "cache"


def _entry(folder: Path, name: str, size: int, age_days: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(b"x" * size)
    t = time.time() - age_days * DAY
    os.utime(p, (t, t))
    return p


def _fake_export(monkeypatch: pytest.MonkeyPatch, calls: list[Path], size: int = 1000) -> None:
    def export(model: object, path: Path, config: object = None, input_size: object = None) -> Path:
        calls.append(Path(path))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"o" * size)
        return Path(path)

    monkeypatch.setattr(onnx_export, "export_onnx", export)


def test_random_weights_are_seeded_so_one_export_serves_every_run() -> None:
    a, b = build_model(TINY, seed=RANDOM_SEED), build_model(TINY, seed=RANDOM_SEED)
    assert model_fingerprint(a) == model_fingerprint(b)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    build_model(TINY, seed=RANDOM_SEED)  # the global generator is left as it was
    assert torch.equal(torch.rand(3), before)
    assert model_fingerprint(build_model(TINY)) != model_fingerprint(build_model(TINY))  # unseeded: as before


def test_random_detector_is_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    import stip_rt.detect.factory as factory

    seen: list[str] = []

    def backend(model: torch.nn.Module, **kw: object) -> object:
        seen.append(model_fingerprint(model))
        return type("B", (), {"device": "cpu", "name": "fake", "precision": "fp32"})()

    monkeypatch.setattr("stip_rt.runtime.factory.create_backend", backend)
    for _ in range(2):
        factory.create_detector("rtmdet-tiny", device="cpu", backend="torch", random_weights=True)
    assert len(seen) == 2 and seen[0] == seen[1]


def test_prune_evicts_least_recently_used_first_and_keeps_what_is_in_use(home: Path) -> None:
    onnx, engines = home / "onnx", home / "engines"
    old = _entry(onnx, "hrnet-old.onnx", 400, 3)
    mid = _entry(engines, f"{DIGEST}.engine", 300, 2)
    mid_meta = _entry(engines, f"{DIGEST}.json", 10, 2)
    new = _entry(onnx, "hrnet-new.onnx", 400, 1)
    in_use = _entry(onnx, "hrnet-in-use.onnx", 50, 5)
    stale = _entry(onnx, "x.123.tmp.onnx", 999, 1)  # a killed export
    fresh_tmp = _entry(onnx, "y.456.tmp.onnx", 999, 0)  # an export running now
    weights = _entry(home / "weights", "rtmdet.pth", 5000, 9)  # never part of this cache
    removed = ec.prune_cache(500, keep=[in_use])
    assert [e.name for e in removed] == ["x.123.tmp.onnx", "hrnet-old.onnx", f"{DIGEST}.engine"]
    assert not old.exists() and not mid.exists() and not mid_meta.exists() and not stale.exists()
    assert new.exists() and in_use.exists() and fresh_tmp.exists() and weights.exists()


def test_cached_onnx_touches_on_use_and_enforces_the_limit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    _fake_export(monkeypatch, calls, size=1000)
    model = build_model(TINY, seed=RANDOM_SEED).eval()
    shape = model_input_shape(model)
    name = f"hrnet-{model_fingerprint(model, ExportConfig(), shape)}.onnx"
    cached = _entry(home / "onnx", name, 1000, 10)  # the oldest entry, but used again now
    other = _entry(home / "onnx", "rtmdet-other.onnx", 1000, 1)
    assert cached_onnx(model) == cached and calls == []  # no export: the cached file
    assert time.time() - cached.stat().st_mtime < 60  # touched
    monkeypatch.setenv(ec.CACHE_MAX_ENV, "0.0000025")  # 2,500 bytes
    new = cached_onnx(build_model(TINY, seed=RANDOM_SEED + 1).eval())
    assert len(calls) == 1 and new.exists() and cached.exists() and not other.exists()
    assert not list((home / "onnx").glob("*.tmp*"))


def test_malformed_limit_fails_before_exporting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stip_rt.errors import ConfigError

    calls: list[Path] = []
    _fake_export(monkeypatch, calls)
    monkeypatch.setenv(ec.CACHE_MAX_ENV, "4 gigs")
    with pytest.raises(ConfigError, match="STIP_RT_CACHE_MAX_GB='4 gigs'"):
        cached_onnx(build_model(TINY, seed=RANDOM_SEED).eval())
    assert calls == []


def test_engine_store_enforces_the_limit_and_load_touches(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _entry(home / "onnx", "old.onnx", 5000, 4)
    key = ec.EngineKey("a" * 64, "10", "gpu", "fp16", (1, 8, 64), False)
    cache = ec.EngineCache()
    monkeypatch.setenv(ec.CACHE_MAX_ENV, "0.000004")  # 4,000 bytes: the plan stays, the old export goes
    plan = cache.store(key, b"p" * 3000)
    assert plan.exists() and not old.exists()
    t = time.time() - 5 * DAY
    os.utime(plan, (t, t))
    assert cache.load(key) == b"p" * 3000 and time.time() - plan.stat().st_mtime < 60


def test_cli_list_and_prune(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _entry(home / "onnx", "hrnet-a.onnx", 3_000_000, 3)
    _entry(home / "onnx", "hrnet-b.onnx", 2_000_000, 1)
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert out.index("hrnet-b.onnx") < out.index("hrnet-a.onnx")  # most recently used first
    assert "2 entries, 5.0 MB" in out and "limit 4,000.0 MB" in out
    assert main(["cache", "prune", "--max-size", "2.5MB"]) == 0
    out = capsys.readouterr().out
    assert "removed onnx hrnet-a.onnx (3.0 MB)" in out and not (home / "onnx" / "hrnet-a.onnx").exists()
    assert main(["cache", "prune", "--all"]) == 0
    assert "removed onnx hrnet-b.onnx" in capsys.readouterr().out and ec.cache_entries() == []


@pytest.mark.parametrize(
    ("text", "want"), [("2GB", 2_000_000_000), ("500 MB", 500_000_000), ("1.5", 1_500_000_000), ("10k", 10_000)]
)
def test_parse_size(text: str, want: int) -> None:
    from stip_rt.cli.cache import parse_size

    assert parse_size(text) == want


@pytest.mark.parametrize("argv", [["prune", "--max-size", "lots"], ["prune", "--max-size", "2 parsecs"]])
def test_cli_bad_size_is_one_line(home: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", *argv]) == 2
    assert "expected a size such as 2GB" in capsys.readouterr().err


def test_cli_bad_limit_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ec.CACHE_MAX_ENV, "-1")
    assert main(["cache", "prune"]) == 2
    assert "STIP_RT_CACHE_MAX_GB='-1'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "-1", "4 gigs"])
def test_limit_must_be_a_finite_size(home: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from stip_rt.errors import ConfigError

    monkeypatch.setenv(ec.CACHE_MAX_ENV, value)
    with pytest.raises(ConfigError, match=f"STIP_RT_CACHE_MAX_GB={value!r}: expected a size in GB"):
        ec.cache_limit_bytes()


@pytest.mark.parametrize("value", ["none", "unlimited", " 0 ", "2.5"])
def test_limit_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ec.CACHE_MAX_ENV, value)
    assert ec.cache_limit_bytes() == {"none": None, "unlimited": None, " 0 ": 0, "2.5": 2_500_000_000}[value]


def test_cli_list_with_a_malformed_limit_still_lists(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _entry(home / "onnx", "hrnet-a.onnx", 3_000_000, 3)
    monkeypatch.setenv(ec.CACHE_MAX_ENV, "inf")
    assert main(["cache", "list"]) == 2
    captured = capsys.readouterr()
    assert "hrnet-a.onnx" in captured.out and "1 entries, 3.0 MB" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "STIP_RT_CACHE_MAX_GB='inf'" in captured.err


def test_parse_size_refuses_an_infinite_size() -> None:
    from stip_rt.cli.cache import parse_size
    from stip_rt.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-size"):
        parse_size("9" * 400)


def test_files_the_cache_did_not_write_are_left_alone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = _entry(home / "onnx", "README.txt", 100, 30)
    notes = _entry(home / "engines", "notes.tmp.txt", 100, 30)
    settings = _entry(home / "engines", "settings.json", 100, 30)
    export = _entry(home / "onnx", "hrnet-a.onnx", 1000, 1)
    plan = _entry(home / "engines", f"{DIGEST}.engine", 1000, 2)
    assert [e.name for e in ec.cache_entries()] == [f"{DIGEST}.engine", "hrnet-a.onnx"]
    assert main(["cache", "prune", "--all"]) == 0
    assert "README" not in capsys.readouterr().out
    assert readme.exists() and notes.exists() and settings.exists() and not export.exists() and not plan.exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--set", "pose.flip_tset=false"],  # a typo in a key
        ["--set", "tracker.min_hits=-1"],  # a value out of range
        ["-o", "out.jsn"],  # an output format that does not exist
        [],  # control: without the typo the run does export (then fails: the fake file is no ONNX)
    ],
)
def test_run_failing_on_a_typo_exports_nothing(
    home: Path, tmp_path: Path, data_dir: Path, bad: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    _fake_export(monkeypatch, calls)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(__import__("yaml").safe_dump(TINY))
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    argv = ["track", str(data_dir / "opencv_samples" / "vtest.avi"), "--model", "tiny.yaml", "--weights", "random",
            "--backend", "onnxruntime", "--detections", str(gt), *bad]  # fmt: skip
    assert main(argv) == 2
    if bad:
        assert calls == [] and not (home / "onnx").exists()
    else:
        assert len(calls) == 1


def test_external_data_is_part_of_its_export_and_temp_folders_are_partial(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``<x>.onnx`` + ``<x>.onnx.data`` are one entry (listed, sized and pruned together); an export's temp
    folder ``<x>.<pid>.<thread>.tmp/`` is a partial entry, removed once stale, left alone while fresh."""
    onnx = home / "onnx"
    big, big_data = _entry(onnx, "big-a.onnx", 100, 3), _entry(onnx, "big-a.onnx.data", 2_000_000, 3)
    small = _entry(onnx, "small-b.onnx", 1000, 1)
    stale_dir, fresh_dir = onnx / "x.1.2.tmp", onnx / "y.3.4.tmp"
    stale = _entry(stale_dir, "x.onnx.data", 500, 2)  # a killed export
    _entry(fresh_dir, "y.onnx", 500, 0)  # an export running now
    t = time.time() - 2 * DAY
    os.utime(stale_dir, (t, t))
    odd_dir = onnx / "mine"  # a folder the cache did not make
    _entry(odd_dir, "notes.txt", 10, 30)
    entries = {e.name: e for e in ec.cache_entries()}
    assert sorted(entries) == ["big-a.onnx", "small-b.onnx", "x.1.2.tmp", "y.3.4.tmp"]
    assert entries["big-a.onnx"].paths == (big, big_data) and entries["big-a.onnx"].size == 2_000_100
    assert entries["x.1.2.tmp"].kind == "partial" and entries["x.1.2.tmp"].size == 500
    assert main(["cache", "list"]) == 0
    assert "2.0 MB" in capsys.readouterr().out
    removed = ec.prune_cache(5000)
    assert [e.name for e in removed] == ["x.1.2.tmp", "big-a.onnx"]
    assert not big.exists() and not big_data.exists() and not stale.exists() and not stale_dir.exists()
    assert small.exists() and fresh_dir.is_dir() and odd_dir.is_dir()
