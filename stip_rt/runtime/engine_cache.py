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

Both caches (engines and ONNX exports, never the weights) share one size limit,
``$STIP_RT_CACHE_MAX_GB`` (default :data:`DEFAULT_CACHE_MAX_GB`): after every new entry the
least recently used ones (every use touches an entry's modification time) are deleted until the
total fits, never the entry just used (:func:`enforce_cache_limit`; ``stip-rt cache list|prune``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import BackendError, ConfigError
from ..paths import cache_root

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable with the size limit of the engine + ONNX cache in GB (10⁹ bytes), or ``none``.
CACHE_MAX_ENV = "STIP_RT_CACHE_MAX_GB"
DEFAULT_CACHE_MAX_GB = 4.0
_STALE_TMP_S = 3600.0  # a temp file this old is the leftover of a killed export or build
# EngineCache files: ``<EngineKey.digest()>.engine|json``, and ``_atomic_write``'s ``<that name><random>.tmp``
_ENGINE_FILE = re.compile(r"[0-9a-f]{24}\.(engine|json)(\w+\.tmp)?")


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
        root: cache folder; default :func:`engine_cache_dir`, whose size limit (shared with the
            ONNX exports) is enforced after every store (another folder is the caller's to manage).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else engine_cache_dir()
        self._managed = root is None
        if self._managed:
            cache_limit_bytes()  # a malformed limit fails now, not after a build of minutes

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
            touch(plan_path, meta_path)
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
        if self._managed:
            enforce_cache_limit(keep=(plan_path, meta_path))
        return plan_path

    def remove(self, key: EngineKey) -> None:
        """Delete the entry of ``key`` (missing files are fine; a read-only cache keeps it, with a log line)."""
        for p in self.paths(key):
            try:
                p.unlink(missing_ok=True)
            except OSError as e:
                log.info("cannot remove %s from the engine cache (%s)", p, e.strerror or e)


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

    A cache that cannot be written (read-only, full) costs one warning, not the engine just built.

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
        try:
            path = cache.store(key, plan)
        except BackendError as e:  # a read-only or full cache: the engine just built still runs
            log.warning("%s; the engine is used without caching it (it is built again next time)", e)
        else:
            log.info("TensorRT engine cached at %s", path)
    return engine


def _try(deserialize: Callable[[bytes], T], plan: bytes) -> T | None:
    try:
        return deserialize(plan)
    except Exception as e:  # a corrupt plan may raise anything from the TensorRT bindings
        log.debug("deserialize failed: %s", e)
        return None


# ---------------------------------------------------------------- size limit, least recently used out


@dataclass(frozen=True)
class CacheEntry:
    """One cache entry: an exported ONNX file, or an engine plan with its sidecar.

    Attributes:
        kind: ``onnx``, ``engine`` or ``partial`` (a temp file left by an export or build).
        name: file name (engines: the plan's).
        paths: its files.
        size: bytes, all files together.
        last_used: seconds since the epoch of the last use (newest modification time of its files).
    """

    kind: str
    name: str
    paths: tuple[Path, ...]
    size: int
    last_used: float


def cache_limit_bytes() -> int | None:
    """The size limit of the engine + ONNX cache: ``$STIP_RT_CACHE_MAX_GB`` GB, default
    :data:`DEFAULT_CACHE_MAX_GB`; None when the variable is ``none`` (no limit).

    Raises:
        ConfigError: the variable is not a finite number ≥ 0 nor ``none`` (``inf`` too: no limit is
            spelt ``none``).
    """
    text = os.environ.get(CACHE_MAX_ENV, "").strip()
    if not text:
        return int(DEFAULT_CACHE_MAX_GB * 1e9)
    if text.lower() in ("none", "unlimited"):
        return None
    try:
        gb = float(text)
    except ValueError:
        gb = -1.0
    if not (gb >= 0 and math.isfinite(gb * 1e9)):  # also NaN, inf, and 1e300 (inf bytes)
        raise ConfigError(f"{CACHE_MAX_ENV}={text!r}: expected a size in GB (a finite number >= 0) or 'none'")
    return int(gb * 1e9)


def touch(*paths: Path) -> None:
    """Mark cache files as just used (their modification time; a read-only cache is left as it is)."""
    for p in paths:
        try:
            os.utime(p)
        except OSError:
            log.debug("cannot touch %s", p)


def _entry_key(kind: str, p: Path) -> tuple[str, str] | None:
    """(kind, group) of a file or folder the cache wrote, or None for anything else in its folders (left alone).

    An export is ``<x>.onnx`` with, for weights in external data, ``<x>.onnx.data``: one entry. An
    export in progress is the folder ``<x>.<pid>.<thread>.tmp`` (``<x>.<pid>.<thread>.tmp.onnx`` files
    are left by older versions).
    """
    if kind == "onnx":
        if p.name.endswith(".tmp.onnx") or (p.name.endswith(".tmp") and p.is_dir()):
            return ("partial", p.name)
        if p.suffix == ".onnx":
            return ("onnx", p.name)
        if p.name.endswith(".onnx.data"):
            return ("onnx", p.name.removesuffix(".data"))
        return None
    if kind == "engine" and _ENGINE_FILE.fullmatch(p.name):  # plans, sidecars and their _atomic_write temp files
        return ("partial", p.name) if p.name.endswith(".tmp") else ("engine", p.stem)
    return None


def _sizes_and_times(p: Path) -> list[tuple[int, float]]:
    """(bytes, modification time) of a file, or of a temp folder (0 bytes) and each file in it; [] once
    removed (another run pruning)."""
    try:
        st = p.stat()
        if not p.is_dir():
            return [(st.st_size, st.st_mtime)]
        inside = [q.stat() for q in p.rglob("*") if q.is_file()]
    except FileNotFoundError:
        return []
    return [(0, st.st_mtime)] + [(q.st_size, q.st_mtime) for q in inside]


def cache_entries() -> list[CacheEntry]:
    """Every entry of the ONNX and engine caches, least recently used first.

    Only files the cache writes count (``*.onnx`` with their ``*.onnx.data`` and export temp folders
    in ``onnx/``; ``<digest>.engine``, ``<digest>.json`` and their temp files in ``engines/``);
    anything else put there is neither listed nor pruned.
    """
    entries: list[CacheEntry] = []
    groups: dict[tuple[str, str], list[Path]] = {}
    for kind, folder in (("onnx", onnx_cache_dir()), ("engine", engine_cache_dir())):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            group = _entry_key(kind, p)
            if group is not None and (p.is_file() or group[0] == "partial"):
                groups.setdefault(group, []).append(p)
    for (kind, key), paths in groups.items():
        stats = [st for p in paths for st in _sizes_and_times(p)]
        if not stats:
            continue
        name = f"{key}.engine" if kind == "engine" else key
        size, used = sum(b for b, _ in stats), max(t for _, t in stats)
        entries.append(CacheEntry(kind, name, tuple(sorted(paths)), size, used))
    return sorted(entries, key=lambda e: (e.last_used, e.name))


def prune_cache(max_bytes: int | None, keep: Iterable[Path] = ()) -> list[CacheEntry]:
    """Delete least recently used entries until the cache holds at most ``max_bytes``.

    Temp files older than an hour (killed exports) go first, whatever the limit; entries holding a
    path of ``keep`` (in use now) are never deleted, even when they alone exceed the limit.

    Args:
        max_bytes: the limit; None: only the stale temp files; 0: everything but ``keep``.
        keep: files that must stay.

    Returns:
        The deleted entries.
    """
    kept = {Path(p).resolve() for p in keep}
    entries = cache_entries()
    now = time.time()
    stale = [e for e in entries if e.kind == "partial" and now - e.last_used > _STALE_TMP_S]
    whole = [e for e in entries if e.kind != "partial"]  # temp files of running exports do not count
    total = sum(e.size for e in whole)
    over: list[CacheEntry] = []
    for e in whole:  # least recently used first
        if max_bytes is None or total <= max_bytes:
            break
        if not any(p.resolve() in kept for p in e.paths):
            over.append(e)
            total -= e.size
    removed: list[CacheEntry] = []
    for e in stale + over:
        for p in e.paths:
            if p.is_dir():  # an export's temp folder
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        removed.append(e)
        why = "stale temp file" if e.kind == "partial" else "least recently used, over the limit"
        log.info("cache: removed %s (%.1f MB, %s)", e.name, e.size / 1e6, why)
    return removed


def enforce_cache_limit(keep: Iterable[Path] = ()) -> list[CacheEntry]:
    """:func:`prune_cache` to :func:`cache_limit_bytes`, keeping ``keep``. A cache that cannot be
    pruned (a disk error) is logged and the run goes on.

    Raises:
        ConfigError: ``$STIP_RT_CACHE_MAX_GB`` is malformed.
    """
    limit = cache_limit_bytes()
    try:
        return prune_cache(limit, keep)
    except OSError as e:
        log.warning("cannot prune the cache %s: %s", cache_root(), e)
        return []
