"""On-disk cache of built TensorRT engines (and exported ONNX files).

An engine is only valid for the exact ONNX graph, TensorRT version, GPU, precision and
optimisation profile it was built for, so those five things (plus whether the IaP
plugin was used) form the cache key. Each entry is two files in the cache folder:

* ``<digest>.engine`` — the serialized plan;
* ``<digest>.json`` — the key fields, the plan's size and SHA-256.

A plan whose sidecar is missing, unreadable, names another key, or whose bytes do not
match the recorded SHA-256 is *corrupt or stale*: it is deleted with one warning and
rebuilt. A plan that passes those checks but fails to deserialize is treated the same
way (:func:`load_or_build`).

The folder is ``$STIP_RT_HOME/cache/engines`` when ``STIP_RT_HOME`` is set, else
``<platformdirs user cache>/stip-rt/engines``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import BackendError
from ..paths import cache_root

log = logging.getLogger(__name__)

T = TypeVar("T")



def engine_cache_dir() -> Path:
    """Where built TensorRT engines are kept."""
    return cache_root() / "engines"


def onnx_cache_dir() -> Path:
    """Where ONNX files exported on the fly (for ONNX Runtime / TensorRT) are kept."""
    return cache_root() / "onnx"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT plan depends on.

    Attributes:
        onnx_sha256: SHA-256 of the ONNX file the engine is built from.
        trt_version: ``tensorrt.__version__``.
        gpu: GPU name and compute capability, e.g. ``NVIDIA H100 80GB HBM3 sm_90``.
        precision: ``fp16`` or ``fp32`` (the precision of the ONNX graph; strongly typed).
        profile: (min, opt, max) batch sizes of the optimisation profile.
        plugin: whether the IaP plugin (AOT Triton kernel) is in the engine.
    """

    onnx_sha256: str
    trt_version: str
    gpu: str
    precision: str
    profile: tuple[int, int, int]
    plugin: bool

    def digest(self) -> str:
        """A short stable hex id of this key (the cache file stem)."""
        text = json.dumps(_key_fields(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def _key_fields(key: EngineKey) -> dict:
    d = asdict(key)
    d["profile"] = list(key.profile)
    return d


class EngineCache:
    """Engine plans on disk, verified on every load.

    Args:
        root: cache folder; default :func:`engine_cache_dir`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else engine_cache_dir()

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        """(plan path, sidecar path) for ``key``."""
        stem = key.digest()
        return self.root / f"{stem}.engine", self.root / f"{stem}.json"

    def load(self, key: EngineKey) -> bytes | None:
        """The cached plan for ``key``, or None when absent, stale or corrupt (then it is removed)."""
        plan_path, meta_path = self.paths(key)
        if not plan_path.exists() and not meta_path.exists():
            return None
        problem = self._check(key, plan_path, meta_path)
        if problem is None:
            return plan_path.read_bytes()
        log.warning("cached TensorRT engine %s is %s; rebuilding it", plan_path, problem)
        self.remove(key)
        return None

    def _check(self, key: EngineKey, plan_path: Path, meta_path: Path) -> str | None:
        """Why the entry is unusable, or None when it is fine."""
        if not plan_path.exists():
            return "missing its plan file"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return "missing or has an unreadable sidecar"
        if not isinstance(meta, dict) or meta.get("key") != _key_fields(key):
            return "stale (built for another ONNX/TensorRT/GPU/precision/profile)"
        data = plan_path.read_bytes()
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return "corrupt (size or SHA-256 differs from its sidecar)"
        return None

    def store(self, key: EngineKey, plan: bytes) -> Path:
        """Write ``plan`` atomically (temp file + rename) and its sidecar; return the plan path.

        Raises:
            BackendError: the cache folder is not writable.
        """
        plan_path, meta_path = self.paths(key)
        meta = {"key": _key_fields(key), "size": len(plan), "sha256": hashlib.sha256(plan).hexdigest()}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(plan_path, plan)
            _atomic_write(meta_path, json.dumps(meta, indent=1).encode())
        except OSError as e:
            raise BackendError(f"engine cache {self.root}: cannot write ({e.strerror or e})") from e
        return plan_path

    def remove(self, key: EngineKey) -> None:
        """Delete the entry of ``key`` (missing files are fine)."""
        for p in self.paths(key):
            p.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_build(
    cache: EngineCache | None,
    key: EngineKey,
    build: Callable[[], bytes],
    deserialize: Callable[[bytes], T],
) -> T:
    """Deserialize the cached plan of ``key``, or build, cache and deserialize a new one.

    A cached plan that fails to deserialize is removed with a warning and rebuilt once.

    Args:
        cache: the cache, or None to always build (nothing stored).
        key: the engine's key.
        build: returns a freshly built serialized plan.
        deserialize: turns plan bytes into an engine; raises (any exception) or returns None on failure.

    Returns:
        The engine ``deserialize`` returned.

    Raises:
        BackendError: a freshly built plan cannot be deserialized.
    """
    if cache is not None:
        plan = cache.load(key)
        if plan is not None:
            engine = _try(deserialize, plan)
            if engine is not None:
                log.info("TensorRT engine loaded from cache %s", cache.paths(key)[0])
                return engine
            log.warning("cached TensorRT engine %s cannot be deserialized; rebuilding it", cache.paths(key)[0])
            cache.remove(key)
    plan = build()
    engine = _try(deserialize, plan)
    if engine is None:
        raise BackendError("TensorRT: the engine just built cannot be deserialized")
    if cache is not None:
        path = cache.store(key, plan)
        log.info("TensorRT engine cached at %s", path)
    return engine


def _try(deserialize: Callable[[bytes], T], plan: bytes) -> T | None:
    try:
        return deserialize(plan)
    except Exception as e:  # a corrupt plan may raise anything from the TensorRT bindings
        log.debug("deserialize failed: %s", e)
        return None
