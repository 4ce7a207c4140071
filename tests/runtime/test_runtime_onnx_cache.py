"""The onnxruntime backend with an ONNX cache that cannot be written: a read-only folder, a full disk
during the export, a read-only folder that already holds the export; weights in external data."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from stip_rt.models import build_model
from stip_rt.runtime import factory, onnx_export
from stip_rt.runtime.onnx_export import CacheWriteError, ExportConfig, cached_onnx, onnx_for_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_STIP

LOGGER = "stip_rt.runtime.onnx_export"


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return build_model(TINY_STIP).eval()


@pytest.fixture
def onnx_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ONNX cache folder of a fresh ``$STIP_RT_HOME``."""
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "cache" / "onnx"


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths ``export_onnx`` is called with (it still exports)."""
    calls: list[Path] = []
    real = onnx_export.export_onnx

    def spy(model: nn.Module, path: str | Path, *args: object, **kw: object) -> Path:
        calls.append(Path(path))
        return real(model, path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx_export, "export_onnx", spy)
    return calls


@pytest.fixture
def chmod_read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Skips where folder permissions are not enforced (root with CAP_DAC_OVERRIDE), as tests/weights does."""
    probe = tmp_path_factory.mktemp("permissions")
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        yield
        return
    finally:
        probe.chmod(0o755)
    pytest.skip("folder permissions are not enforced for this user (root?)")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _check_runs(backend: object, model: nn.Module) -> None:
    x = torch.randn(2, 3, *model.spec.input_size)
    with torch.no_grad():
        ref = model(x)
    out = backend.infer(x)  # type: ignore[attr-defined]
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def _one_fallback_warning(caplog: pytest.LogCaptureFixture, folder: Path, reason: str) -> None:
    (message,) = _warnings(caplog)
    assert str(folder) in message and reason in message
    assert "every run" in message and "STIP_RT_HOME" in message


def test_read_only_cache_folder_exports_to_a_temporary_file(
    tiny, onnx_dir, temp_root, exports, chmod_read_only, caplog
) -> None:
    onnx_dir.mkdir(parents=True)
    onnx_dir.chmod(0o555)
    try:
        with caplog.at_level(logging.WARNING):
            backend = factory.create_backend(tiny, backend="onnxruntime", device="cpu")
    finally:
        onnx_dir.chmod(0o755)
    _check_runs(backend, tiny)
    _one_fallback_warning(caplog, onnx_dir, "Permission denied")
    assert len(exports) == 1 and temp_root in exports[0].parents  # no export tried in the cache first
    assert list(onnx_dir.iterdir()) == [] and list(temp_root.iterdir()) == []


def test_read_only_mount_simulated(tiny, onnx_dir, temp_root, exports, monkeypatch, caplog, read_only_under) -> None:
    """EROFS where the cache folder does not exist yet (a read-only home); runs as root too."""
    read_only_under(onnx_dir.parent)
    with caplog.at_level(logging.WARNING):
        backend = factory.create_backend(tiny, backend="onnxruntime", device="cpu")
    _check_runs(backend, tiny)
    _one_fallback_warning(caplog, onnx_dir, "Read-only file system")
    assert len(exports) == 1 and temp_root in exports[0].parents
    assert not onnx_dir.exists() and list(temp_root.iterdir()) == []
    assert backend.path.name.startswith("stipnet-")  # type: ignore[attr-defined]  # the cache entry's name


def test_full_disk_during_the_export_write(tiny, onnx_dir, temp_root, exports, monkeypatch, caplog) -> None:
    real_save = torch.onnx.ONNXProgram.save

    def save(self: torch.onnx.ONNXProgram, destination: str, **kw: object) -> None:
        if onnx_dir in Path(destination).parents:
            Path(destination).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(self, destination, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", save)
    with caplog.at_level(logging.WARNING):
        backend = factory.create_backend(tiny, backend="onnxruntime", device="cpu")
    _check_runs(backend, tiny)
    _one_fallback_warning(caplog, onnx_dir, "No space left on device")
    assert [temp_root in p.parents for p in exports] == [False, True]  # the cache first, then a temp file
    assert list(onnx_dir.iterdir()) == [] and list(temp_root.iterdir()) == []  # the partial file is gone too


def test_read_only_folder_with_the_export_already_there(
    tiny, onnx_dir, temp_root, exports, monkeypatch, caplog, read_only_under
) -> None:
    cached = cached_onnx(tiny)  # writable: exported into the cache
    assert cached.parent == onnx_dir and len(exports) == 1
    read_only_under(onnx_dir.parent)
    monkeypatch.setattr("os.utime", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with caplog.at_level(logging.WARNING):
        backend = factory.create_backend(tiny, backend="onnxruntime", device="cpu")
    _check_runs(backend, tiny)
    assert backend.path == cached and len(exports) == 1  # type: ignore[attr-defined]  # used, not exported again
    assert _warnings(caplog) == [] and list(temp_root.iterdir()) == []


def test_read_only_folder_with_the_export_already_there_chmod(tiny, onnx_dir, exports, chmod_read_only, caplog):
    cached = cached_onnx(tiny)
    onnx_dir.chmod(0o555)
    cached.chmod(0o444)
    try:
        with caplog.at_level(logging.WARNING):
            backend = factory.create_backend(tiny, backend="onnxruntime", device="cpu")
    finally:
        onnx_dir.chmod(0o755)
    assert backend.path == cached and len(exports) == 1 and _warnings(caplog) == []  # type: ignore[attr-defined]


def test_cached_onnx_still_raises_for_its_other_callers(tiny, onnx_dir, monkeypatch, read_only_under) -> None:
    """``cached_onnx`` itself (no fall-back) says the cache cannot be written, before exporting."""
    read_only_under(onnx_dir.parent)
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported"))
    with pytest.raises(CacheWriteError, match=r"ONNX cache .*onnx: cannot write \(Read-only file system\)") as e:
        cached_onnx(tiny)
    assert e.value.folder == onnx_dir


def test_export_errors_are_not_taken_for_a_full_cache(onnx_dir, temp_root, caplog) -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with (
        pytest.raises(onnx_export.BackendError, match="export of Broken failed") as e,
        onnx_for_session(Broken(), input_size=(16, 12)),
    ):
        pass
    assert not isinstance(e.value, CacheWriteError) and _warnings(caplog) == []
    assert list(onnx_dir.iterdir()) == [] and list(temp_root.iterdir()) == []


def test_external_data_survives_removing_the_temporary_folder(
    onnx_dir, temp_root, monkeypatch, caplog, read_only_under
) -> None:
    """Weights written beside the graph (``<name>.onnx.data``, big models): ONNX Runtime holds them once
    the session exists (it maps the file: removing it is safe on POSIX), so the folder goes with them."""
    from torch.onnx._internal.exporter import _onnx_program

    from stip_rt.runtime.onnxruntime_backend import OnnxRuntimeBackend

    if not hasattr(_onnx_program, "_LARGE_MODEL_THRESHOLD"):
        pytest.skip("this torch decides external data differently")
    monkeypatch.setattr(_onnx_program, "_LARGE_MODEL_THRESHOLD", 0)  # every initializer in external data
    read_only_under(onnx_dir.parent)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1)).eval()
    with caplog.at_level(logging.WARNING), onnx_for_session(model, ExportConfig(), input_size=(16, 12)) as path:
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.data"]
        backend = OnnxRuntimeBackend(path)
    assert list(temp_root.iterdir()) == [] and len(_warnings(caplog)) == 1
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        assert torch.allclose(backend.infer(x), model(x), atol=1e-5)


def test_cached_external_data_keeps_its_final_name_and_is_one_cache_entry(onnx_dir, monkeypatch) -> None:
    """An export over the external-data threshold: the cache holds ``<name>.onnx`` and ``<name>.onnx.data``
    (the name the ``.onnx`` records), ONNX Runtime loads the pair, and listing/pruning treat it as one."""
    import onnx
    from torch.onnx._internal.exporter import _onnx_program

    from stip_rt.runtime import engine_cache as ec
    from stip_rt.runtime.onnxruntime_backend import OnnxRuntimeBackend

    if not hasattr(_onnx_program, "_LARGE_MODEL_THRESHOLD"):
        pytest.skip("this torch decides external data differently")
    monkeypatch.setattr(_onnx_program, "_LARGE_MODEL_THRESHOLD", 0)  # every initializer in external data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1)).eval()
    path = cached_onnx(model, ExportConfig(), input_size=(16, 12))
    data = path.with_name(f"{path.name}.data")
    assert sorted(p.name for p in onnx_dir.iterdir()) == [path.name, data.name]  # no temp name left
    proto = onnx.load(str(path), load_external_data=False)
    locations = {e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {data.name}
    backend = OnnxRuntimeBackend(path)
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        assert torch.allclose(backend.infer(x), model(x), atol=1e-5)
    (entry,) = ec.cache_entries()
    assert entry.kind == "onnx" and entry.name == path.name and entry.paths == (path, data)
    assert entry.size == path.stat().st_size + data.stat().st_size > 64 * 3 * 9 * 4
    assert ec.prune_cache(10**12, keep=[path]) == [] and ec.prune_cache(0, keep=[path]) == []  # in use: kept
    assert [e.name for e in ec.prune_cache(0)] == [path.name] and list(onnx_dir.iterdir()) == []
