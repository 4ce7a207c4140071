"""Engine cache: keys, atomic store, corrupt/stale entries rebuilt with a warning."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from stip_rt.errors import BackendError
from stip_rt.runtime import engine_cache as ec

KEY = ec.EngineKey(
    onnx_sha256="a" * 64,
    trt_version="10.13.0",
    gpu="NVIDIA H100 sm_90",
    precision="fp16",
    profile=(1, 8, 64),
    plugin=True,
)


def test_digest_is_stable_and_depends_on_every_field() -> None:
    assert KEY.digest() == replace(KEY).digest()
    variants = [
        replace(KEY, onnx_sha256="b" * 64),
        replace(KEY, trt_version="11.1.0"),
        replace(KEY, gpu="NVIDIA A100 sm_80"),
        replace(KEY, precision="fp32"),
        replace(KEY, profile=(1, 16, 64)),
        replace(KEY, plugin=False),
    ]
    digests = {v.digest() for v in variants}
    assert len(digests) == len(variants) and KEY.digest() not in digests


def test_cache_dir_respects_stip_rt_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path))
    assert ec.engine_cache_dir() == tmp_path / "cache" / "engines"
    assert ec.onnx_cache_dir() == tmp_path / "cache" / "onnx"
    monkeypatch.delenv("STIP_RT_HOME")
    assert ec.engine_cache_dir().name == "engines" and "stip-rt" in str(ec.engine_cache_dir())


def test_store_then_load_roundtrip(tmp_path) -> None:
    cache = ec.EngineCache(tmp_path)
    assert cache.load(KEY) is None
    path = cache.store(KEY, b"plan-bytes")
    assert path.read_bytes() == b"plan-bytes"
    assert cache.load(KEY) == b"plan-bytes"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "drop_sidecar", "bad_json", "other_key", "drop_plan"])
def test_corrupt_or_stale_entry_is_removed_with_a_warning(tmp_path, caplog, damage: str) -> None:
    cache = ec.EngineCache(tmp_path)
    plan_path, meta_path = cache.paths(KEY)
    cache.store(KEY, b"0123456789")
    if damage == "flip_byte":
        plan_path.write_bytes(b"0123456780")
    elif damage == "truncate":
        plan_path.write_bytes(b"01234")
    elif damage == "drop_sidecar":
        meta_path.unlink()
    elif damage == "bad_json":
        meta_path.write_text("{not json")
    elif damage == "other_key":
        meta = json.loads(meta_path.read_text())
        meta["key"]["trt_version"] = "10.9.0"
        meta_path.write_text(json.dumps(meta))
    else:
        plan_path.unlink()
    with caplog.at_level(logging.WARNING, logger="stip_rt.runtime.engine_cache"):
        assert cache.load(KEY) is None
    assert "rebuilding" in caplog.text and str(plan_path) in caplog.text
    assert not plan_path.exists() and not meta_path.exists()


def test_load_or_build_rebuilds_an_undeserializable_plan(tmp_path, caplog) -> None:
    cache = ec.EngineCache(tmp_path)
    cache.store(KEY, b"garbage")  # valid sidecar, but the "engine" cannot be deserialized
    builds = []

    def build() -> bytes:
        builds.append(1)
        return b"good"

    def deserialize(plan: bytes) -> str:
        if plan != b"good":
            raise RuntimeError("bad plan")
        return "engine"

    with caplog.at_level(logging.WARNING):
        assert ec.load_or_build(cache, KEY, build, deserialize) == "engine"
    assert builds == [1] and "cannot be deserialized" in caplog.text
    assert cache.load(KEY) == b"good"
    # second call: from the cache, no build
    assert ec.load_or_build(cache, KEY, build, deserialize) == "engine" and builds == [1]


def test_load_or_build_without_cache_and_failing_fresh_plan(tmp_path) -> None:
    assert ec.load_or_build(None, KEY, lambda: b"x", lambda p: p.decode()) == "x"
    with pytest.raises(BackendError, match="cannot be deserialized"):
        ec.load_or_build(ec.EngineCache(tmp_path), KEY, lambda: b"x", lambda p: None)
    assert not list(tmp_path.glob("*.engine"))


def test_unwritable_cache_is_a_backend_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BackendError, match=str(blocker)):
        ec.EngineCache(blocker / "engines").store(KEY, b"plan")


def test_an_unwritable_cache_costs_a_warning_not_the_engine_just_built(tmp_path, caplog) -> None:
    """A read-only cache (here a folder that cannot be created): the build of minutes is used, not lost."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ec.EngineCache(blocker / "engines")
    builds = []
    with caplog.at_level(logging.WARNING):
        engine = ec.load_or_build(cache, KEY, lambda: builds.append(1) or b"plan", lambda p: p.decode())
    assert engine == "plan" and builds == [1]
    assert str(blocker) in caplog.text and "without caching it" in caplog.text
    assert blocker.read_text() == "not a folder"


def test_file_sha256(tmp_path) -> None:
    p = tmp_path / "x.onnx"
    p.write_bytes(b"abc")
    assert ec.file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_stale_entry_in_a_read_only_cache_is_rebuilt_without_an_error(tmp_path, monkeypatch, caplog) -> None:
    """A stale entry that cannot be deleted (read-only cache): load still says "rebuild", nothing raises."""
    import errno
    from pathlib import Path

    cache = ec.EngineCache(tmp_path)
    plan_path, meta_path = cache.paths(KEY)
    cache.store(KEY, b"0123456789")
    meta_path.write_text("{}")  # another key

    def unlink(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", unlink)
    with caplog.at_level(logging.WARNING):
        assert cache.load(KEY) is None
    assert plan_path.exists() and "rebuilding" in caplog.text
