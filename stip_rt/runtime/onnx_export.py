"""Export any ``nn.Module`` to ONNX with a dynamic batch axis (pose models and the detector).

The graph exported is the served one, :func:`stip_rt.nn.fold.prepare_inference` (BatchNorm folded
into the convolutions), unless ``ExportConfig.fold`` is off. Uses the dynamo exporter of
``torch.onnx.export`` (``dynamo=True``). STIP's IaP op (``torch.ops.stip_rt.iap``) is
translated by :mod:`stip_rt.runtime.iap_onnx` in one of two flavours: ``standard`` (decomposed
into standard ops) or ``plugin`` (one ``stip_rt::IaP`` node for the TensorRT plugin). Models
without the op (HRNet, the detector) export the same way in both flavours.

``fp16=True`` writes a float16 graph with float32 inputs and outputs (a Cast at each end),
which is what TensorRT's strongly typed networks need: the precision lives in the graph.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BackendError
from ..nn.fold import prepare_inference
from ..paths import HOME_ENV
from .engine_cache import cache_limit_bytes, enforce_cache_limit, onnx_cache_dir, touch

log = logging.getLogger(__name__)

FLAVOURS = ("standard", "plugin")
#: Lowest opset :func:`export_onnx` writes: the dynamo exporter builds opset-18 graphs and converts them
#: to the opset asked for; converting down fails on these networks (and used to leave opset 18 silently).
MIN_OPSET = 18
_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


def _not_torchvision_notice(record: logging.LogRecord) -> bool:
    """False for the exporter's "torchvision is not installed. Skipping torchvision::..." warnings
    (four per export; stip-rt's graphs use no torchvision op)."""
    return not record.getMessage().startswith("torchvision is not installed")


@dataclass(frozen=True)
class ExportConfig:
    """How to export.

    Attributes:
        flavour: ``standard`` (IaP in standard ops) or ``plugin`` (IaP as one ``stip_rt::IaP`` node).
        fp16: float16 graph with float32 inputs/outputs (for TensorRT strongly typed builds).
        opset: ONNX opset of the default domain.
        max_batch: upper bound of the dynamic batch axis (declared to the exporter only).
        input_name: name of the graph input.
        output_names: names of the graph outputs (one per network output).
        fold: export the prepared graph with BatchNorm folded (False: the eval-mode graph as it is).
    """

    flavour: str = "standard"
    fp16: bool = False
    opset: int = 20
    max_batch: int = 1024
    input_name: str = "input"
    output_names: tuple[str, ...] = ("heatmaps",)
    fold: bool = True


class _HalfIO(nn.Module):
    """float32 in → float16 network → float32 out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.model(x.half())
        if isinstance(out, torch.Tensor):
            return out.float()
        return tuple(o.float() for o in out)


def supported_opsets() -> range:
    """The opsets :func:`export_onnx` writes: :data:`MIN_OPSET` to the newest one the installed onnx knows."""
    import onnx

    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def iap_op() -> torch._ops.OpOverload | None:
    """``torch.ops.stip_rt.iap.default`` when the fused IaP op is registered, else None."""
    import stip_rt.nn.iap  # noqa: F401  (registers the op where it exists)

    try:
        return torch.ops.stip_rt.iap.default
    except (AttributeError, RuntimeError):
        return None


def model_input_shape(model: nn.Module, input_size: Sequence[int] | None = None) -> tuple[int, int, int]:
    """(3, H, W) of one input image: ``input_size`` (H, W) or ``model.spec.input_size``.

    Raises:
        BackendError: neither is given.
    """
    if input_size is None:
        spec = getattr(model, "spec", None)
        input_size = getattr(spec, "input_size", None)
    if input_size is None:
        raise BackendError(
            f"ONNX export of {type(model).__name__}: input size unknown "
            "(pass input_size=(H, W) or give the model a spec)"
        )
    h, w = (int(v) for v in input_size)
    return 3, h, w


def export_onnx(
    model: nn.Module,
    path: str | Path,
    config: ExportConfig = ExportConfig(),
    input_size: Sequence[int] | None = None,
) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` and check the file with ``onnx.checker``.

    Args:
        model: the network; its ``forward(x)`` maps (N, 3, H, W) float32 to a tensor or tuple of tensors.
            It is not modified (a copy is converted for fp16).
        path: output ``.onnx`` file (parent folders are created).
        config: flavour, fp16, opset, names.
        input_size: (H, W) of the input; default ``model.spec.input_size``.

    Returns:
        ``path`` as a Path.

    Raises:
        BackendError: unknown flavour, an opset outside :func:`supported_opsets`, input size unknown,
            the exporter or the checker failed, or ``path`` cannot be written.
    """
    import onnx

    from .iap_onnx import TRANSLATIONS

    if config.flavour not in FLAVOURS:
        raise BackendError(f"ONNX export: unknown flavour '{config.flavour}' (use {' or '.join(FLAVOURS)})")
    opsets = supported_opsets()
    if config.opset not in opsets:
        raise BackendError(f"ONNX export: opset {config.opset} is not supported (use {opsets[0]} to {opsets[-1]})")
    path = Path(path)
    shape = model_input_shape(model, input_size)
    net: nn.Module = prepare_inference(model, fold=config.fold).float().cpu()
    if config.fp16:
        net = _HalfIO(net.half())
    example = torch.zeros(2, *shape)  # batch 2: a batch of 1 would be specialised
    table: dict[Callable[..., Any], Callable[..., Any]] = {}
    op = iap_op()
    if op is not None:
        table[op] = TRANSLATIONS[config.flavour]
    batch = torch.export.Dim("batch", min=1, max=config.max_batch)
    registration = logging.getLogger(_REGISTRATION_LOGGER)
    registration.addFilter(_not_torchvision_notice)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                verbose=False,
                opset_version=config.opset,
                input_names=[config.input_name],
                output_names=list(config.output_names),
                dynamic_shapes=({0: batch},),
                custom_translation_table=table,
                optimize=True,
            )
        if program is None:  # only the legacy (dynamo=False) exporter returns None
            raise BackendError("the exporter returned no program")
        program.save(str(path))
    except OSError as e:
        raise BackendError(f"ONNX export: cannot write {path} ({e.strerror or e})") from e
    except Exception as e:  # the exporter raises many types; one clear message
        raise BackendError(f"ONNX export of {type(model).__name__} failed: {_first_line(e)}") from e
    finally:
        registration.removeFilter(_not_torchvision_notice)
    proto = onnx.load(str(path), load_external_data=False)
    # weights written as external data (``<name>.onnx.data``, over ~1.5 GB) are only found from the file's folder
    external = any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    try:
        onnx.checker.check_model(str(path) if external else proto)
    except onnx.checker.ValidationError as e:
        raise BackendError(f"ONNX export: {path} fails onnx.checker: {_first_line(e)}") from e
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != config.opset:  # the exporter falls back to its own opset with only a logged warning
        path.unlink(missing_ok=True)
        raise BackendError(f"ONNX export: opset {config.opset} was asked for, the exporter wrote {written}")
    n_iap = sum(1 for node in proto.graph.node if node.op_type == "IaP")
    log.info(
        "exported %s to %s (%s flavour%s, opset %d, %d IaP plugin node%s)",
        type(model).__name__,
        path,
        config.flavour,
        ", fp16" if config.fp16 else "",
        config.opset,
        n_iap,
        "" if n_iap == 1 else "s",
    )
    return path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def model_fingerprint(model: nn.Module, *extra: object) -> str:
    """SHA-256 (hex, 24 chars) over the model's class, state dict bytes, spec and ``extra``."""
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    h.update(repr(getattr(model, "spec", None)).encode())
    h.update(torch.__version__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for x in extra:
        h.update(repr(x).encode())
    return h.hexdigest()[:24]


class CacheWriteError(BackendError):
    """The ONNX cache folder cannot be written (read-only, no permission, full disk).

    Attributes:
        folder: the cache folder.
        reason: the OS's words (``Read-only file system``, ``No space left on device``...).
    """

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(f"ONNX cache {folder}: cannot write ({reason})")
        self.folder = folder
        self.reason = reason


def _cache_path(model: nn.Module, config: ExportConfig, shape: tuple[int, int, int], folder: Path) -> Path:
    return folder / f"{type(model).__name__.lower()}-{model_fingerprint(model, config, shape)}.onnx"


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the folder cannot even be read."""
    try:
        return path.is_file()
    except OSError:
        return False


def _os_error(e: BaseException) -> OSError | None:
    """The OSError ``e`` is or was raised from (``export_onnx`` wraps a failed write in a BackendError)."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__
    return None


def _use_cached(path: Path) -> bool:
    """Whether ``path`` is cached; marks it as used when it is."""
    if not _is_file(path):
        return False
    log.info("using cached ONNX export %s", path)
    touch(path)
    return True


def _export_into_cache(
    model: nn.Module, config: ExportConfig, shape: tuple[int, int, int], folder: Path, path: Path
) -> None:
    """Export into a temporary folder inside ``folder`` under the final name, then move the files into place.

    The exporter names external data after the file it writes (``<name>.onnx.data``) and records that
    name, relative to the ``.onnx``'s folder, inside the ``.onnx``: exporting under the final name and
    moving every file the export wrote keeps the reference right. The data files move first, the
    ``.onnx`` last, so a concurrent run never finds the ``.onnx`` without its weights.

    Raises:
        CacheWriteError: ``folder`` cannot be written (before exporting) or a write failed.
        BackendError: the export failed.
    """
    work = folder / f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp"  # concurrent runs: one each
    try:
        try:  # a read-only or unreachable folder fails here, before an export of seconds
            folder.mkdir(parents=True, exist_ok=True)
            if work.exists():  # the leftover of a killed run with the same pid and thread
                shutil.rmtree(work)
            work.mkdir()
        except OSError as e:
            raise CacheWriteError(folder, e.strerror or str(e)) from e
        try:
            exported = export_onnx(model, work / path.name, config, input_size=shape[1:])
            for written in sorted(work.iterdir()):  # the external data (the work folder holds this export only)
                if written != exported:
                    os.replace(written, folder / written.name)
            os.replace(exported, path)
        except Exception as e:
            err = _os_error(e)
            if err is None:
                raise
            raise CacheWriteError(folder, err.strerror or str(err)) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cached_onnx(
    model: nn.Module,
    config: ExportConfig = ExportConfig(),
    input_size: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The ONNX file of ``model`` for ``config`` from the cache folder, exporting it on first use.

    The file name is a fingerprint of the weights, spec, torch version and export settings,
    so changed weights give a new export (random-weight models are seeded,
    :data:`stip_rt.models.RANDOM_SEED`, so they give the same one). Weights written as external
    data (models over ~1.5 GB) lie beside it as ``<name>.onnx.data``, which the ``.onnx`` names.
    Each use marks the file as used (not in a read-only folder, which is fine for a file already
    there); in the default folder, a new export then evicts the least recently used entries over
    the cache's size limit (:func:`~stip_rt.runtime.engine_cache.enforce_cache_limit`).
    :func:`onnx_for_session` and :class:`SessionExports` are the same with a fall-back for a cache
    that cannot be written.

    Raises:
        CacheWriteError: the file is not cached and the folder cannot be written (checked before
            exporting) or the write failed (a full disk); a :class:`BackendError`.
        BackendError: the export failed.
        ConfigError: ``$STIP_RT_CACHE_MAX_GB`` is malformed (checked before exporting).
    """
    shape = model_input_shape(model, input_size)
    managed = cache_dir is None  # the shared cache with its size limit (an explicit folder is the caller's)
    if managed:
        cache_limit_bytes()
    folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    path = _cache_path(model, config, shape, folder)
    if _use_cached(path):
        return path
    _export_into_cache(model, config, shape, folder, path)
    if managed:
        enforce_cache_limit(keep=(path,))
    return path


class SessionExports:
    """ONNX files for building sessions or engines inside one ``with`` block, whatever the cache allows.

    :meth:`get` gives :func:`cached_onnx`'s file when it is cached (a read-only folder is fine) or
    can be cached. When the cache folder cannot be written (a read-only home or mount, no
    permission, a full disk), models are exported into one temporary folder instead, with ONE
    warning for the block however many files it needs; from then on the cache is only looked up
    (files already there are used), never written. The temporary folder (each ``.onnx`` and any
    external-data file next to it) is deleted when the block ends, so build the sessions or
    engines (ONNX Runtime and TensorRT read the whole model at creation) inside it and keep no use
    of the paths after it.

    Args:
        cache_dir: the cache folder; default :func:`~stip_rt.runtime.engine_cache.onnx_cache_dir`.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self._cache_dir = cache_dir
        self._stack = ExitStack()
        self._failure: CacheWriteError | None = None
        self._temporary: dict[str, Path] = {}  # cache file name -> temporary export
        self._tmp: Path | None = None

    def __enter__(self) -> SessionExports:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def get(
        self, model: nn.Module, config: ExportConfig = ExportConfig(), input_size: Sequence[int] | None = None
    ) -> Path:
        """The ONNX file of ``model`` for ``config``: cached, or exported into the temporary folder.

        Raises:
            BackendError: the export failed.
            ConfigError: ``$STIP_RT_CACHE_MAX_GB`` is malformed (checked before exporting).
        """
        shape = model_input_shape(model, input_size)
        if self._failure is None:
            try:
                return cached_onnx(model, config, shape[1:], self._cache_dir)
            except CacheWriteError as e:
                self._failure = e
                log.warning(
                    "%s; exporting the model to a temporary file instead, which every run does again "
                    "(set %s to a writable folder to keep the export)",
                    e,
                    HOME_ENV,
                )
        cached = _cache_path(model, config, shape, self._failure.folder)
        if cached.name in self._temporary:
            return self._temporary[cached.name]
        if _use_cached(cached):  # another flavour or model, already in the unwritable cache
            return cached
        if self._tmp is None:  # external data, if any, lands here too
            self._tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="stip-rt-onnx-")))
        path = export_onnx(model, self._tmp / cached.name, config, input_size=shape[1:])
        self._temporary[cached.name] = path
        return path


@contextmanager
def onnx_for_session(
    model: nn.Module,
    config: ExportConfig = ExportConfig(),
    input_size: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[Path]:
    """The ONNX file of ``model`` for building a session inside the ``with`` block.

    :class:`SessionExports` for one file: :func:`cached_onnx`'s file when it is cached (a read-only
    folder is fine) or can be cached; when the cache folder cannot be written, a temporary export
    with one warning, deleted (with any external-data file) when the block ends.

    Raises:
        BackendError: the export failed.
        ConfigError: ``$STIP_RT_CACHE_MAX_GB`` is malformed (checked before exporting).
    """
    with SessionExports(cache_dir) as exports:
        yield exports.get(model, config, input_size)
