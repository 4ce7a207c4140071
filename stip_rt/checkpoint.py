"""Reading checkpoints safely and loading them strictly.

:func:`read_state_dict` reads every format a user meets — a bare ``state_dict``
(official ``final_state.pth`` / ``model_best.pth``), ``{'state_dict': ...}`` with a
DataParallel ``module.`` prefix (official ``checkpoint.pth``), and OpenMMLab
(mmpose / mmdet) files ``{'meta', 'state_dict', ...}`` whose ``meta`` pickles
mmengine / mmcv / numpy objects. It ALWAYS uses ``torch.load(weights_only=True)``:
objects from an allow-list of module prefixes (:data:`STAND_IN_PREFIXES`) are
replaced by an inert :class:`OpaqueObject` that only records its arguments (no code
runs); anything else is refused with a :class:`~stip_rt.errors.WeightsError`.

:func:`load_weights` maps mmpose HRNet names to the official ones (an explicit,
logged key map) and loads with ``strict=True``; a mismatch raises one
``WeightsError`` naming the file and listing missing / unexpected / mis-shaped keys.
"""

from __future__ import annotations

import collections
import logging
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import WeightsError

log = logging.getLogger(__name__)

#: Globals under these prefixes are replaced by :class:`OpaqueObject` (OpenMMLab run metadata, numpy scalars).
STAND_IN_PREFIXES = ("mmengine.", "mmcv.", "mmdet.", "mmpose.", "mmpretrain.", "mmcls.", "numpy.", "argparse.Namespace")
#: Keys that hold the weights inside a training checkpoint, in order of preference.
STATE_DICT_KEYS = ("state_dict", "model", "best_state_dict", "model_state_dict")
#: mmpose top-down HRNet / SimpleBaseline names → official names (prefix rewrites, first match wins):
#: mmpose 0.x ``keypoint_head.final_layer``, mmpose 1.x ``head.final_layer``.
MMPOSE_KEY_MAP = (
    ("backbone.", ""),
    ("keypoint_head.final_layer.", "final_layer."),
    ("head.final_layer.", "final_layer."),
    ("keypoint_head.deconv_layers.", "deconv_layers."),  # SimpleBaseline
    ("head.deconv_layers.", "deconv_layers."),
)

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_SHOW = 5  # keys listed per category in error messages


class OpaqueObject:
    """Inert stand-in for an allow-listed foreign class or function found in checkpoint metadata.

    Calling, instantiating or restoring state only records the arguments; nothing is executed.
    Created without arguments (how pickle re-creates a plain instance, ``NEWOBJ``), it is an
    ``OrderedDict`` instead: the weights-only unpickler lets that take both dict items
    (``SETITEMS``, e.g. mmengine's ``ConfigDict``, a dict subclass) and attribute state (``BUILD``).
    """

    args: tuple[Any, ...]
    state: Any
    items: dict[Any, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            return collections.OrderedDict()
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        obj.items = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def __repr__(self) -> str:
        return f"OpaqueObject(args={len(self.args)})"


def _allowed(name: str) -> bool:
    return name.startswith(STAND_IN_PREFIXES) or name in STAND_IN_PREFIXES


def _stand_ins(names: set[str]) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    # One class per name: the unpickler looks objects up by value, so aliases are harmless.
    return [(type(name.rsplit(".", 1)[-1], (OpaqueObject,), {}), name) for name in sorted(names)]


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint {path}: file not found") from None
    except IsADirectoryError:
        raise WeightsError(f"checkpoint {path}: is a directory, expected a .pth/.pt file") from None
    except OSError as e:
        raise WeightsError(f"checkpoint {path}: cannot read ({e.strerror})") from None
    if not head:
        raise WeightsError(f"checkpoint {path}: empty file")
    if not (head.startswith(_ZIP_MAGIC) or head[0] == _PICKLE_PROTO):
        raise WeightsError(
            f"checkpoint {path}: not a PyTorch checkpoint (starts with {head!r}; expected a torch.save file)"
        )


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with inert stand-ins for allow-listed foreign globals."""
    names: set[str] = set()
    try:
        names = {n for n in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if _allowed(n)}
    except Exception:  # legacy (non-zip) format or corrupt (any exception type): handled while loading
        log.debug("could not pre-scan globals of %s", path, exc_info=True)
    for _ in range(64):
        try:
            with torch.serialization.safe_globals(_stand_ins(names)):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            msg = str(e)
            m = _GLOBAL_RE.search(msg)
            if m:
                name = m.group(1)
                if _allowed(name) and name not in names:
                    names.add(name)
                    continue
                raise WeightsError(
                    f"checkpoint {path}: refusing to load: it pickles the Python object '{name}', which is "
                    f"not on the allow-list of safe stand-ins (weights_only loading; re-save the weights with "
                    f"torch.save(model.state_dict(), ...))"
                ) from None
            unsafe = [ln for ln in msg.splitlines() if re.search(r"blocked|unrecognized function|Can only", ln)]
            if unsafe:
                raise WeightsError(
                    f"checkpoint {path}: refusing to load unsafe content ({_sentence(unsafe[0])})"
                ) from None
            detail = msg.split("WeightsUnpickler error:", 1)[-1]  # torch's reason sits inside paragraphs of advice
            raise WeightsError(
                f"checkpoint {path}: truncated or corrupt (cannot unpickle: {_sentence(detail)})"
            ) from None
        except Exception as e:  # a damaged file makes torch.load raise anything (EOFError, struct.error, ...)
            log.debug("torch.load(%s) failed", path, exc_info=True)
            raise WeightsError(f"checkpoint {path}: truncated or corrupt ({_reason(e)})") from None
    raise WeightsError(f"checkpoint {path}: too many foreign objects in its metadata")


def _reason(e: BaseException) -> str:
    """What went wrong, in the words of ``e``: :func:`_sentence` of its message, else its type."""
    return _sentence(str(e)) or type(e).__name__


def _sentence(text: str, limit: int = 160) -> str:
    """The first sentence of the first line of ``text``, in whole words of at most ``limit`` characters."""
    lines = text.strip().splitlines()
    first = lines[0].strip().split(". ", 1)[0].rstrip(".") if lines else ""  # torch appends paragraphs of advice
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0] + " ..."
    return first


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                log.debug("%s: weights under '%s'", source, key)
                obj = inner
                break
        else:
            top = ", ".join(repr(k) for k in list(obj)[:8])
            raise WeightsError(f"checkpoint {source}: no state_dict found (top-level keys: {top})")
    if not isinstance(obj, Mapping):
        raise WeightsError(f"checkpoint {source}: expected a state_dict (a mapping), got {type(obj).__name__}")
    if not obj:
        raise WeightsError(f"checkpoint {source}: the state_dict is empty")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        log.info("%s: stripping the DataParallel 'module.' prefix", source)
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the weights of a checkpoint file (safely: ``weights_only=True``).

    Args:
        path: a ``torch.save`` file: a bare state_dict, or a dict holding one under
            ``state_dict`` / ``model`` / ``best_state_dict`` (training checkpoints,
            OpenMMLab files with ``meta``); a ``module.`` prefix on every key is removed.

    Returns:
        name → tensor (on the CPU), in file order.

    Raises:
        WeightsError: missing, empty, truncated or non-checkpoint file, unsafe content,
            or no state_dict inside.
    """
    p = Path(path)
    _check_header(p)
    return _unwrap(_torch_load(p), str(p))


def map_mmpose_keys(state: Mapping[str, torch.Tensor], source: str = "state_dict") -> dict[str, torch.Tensor]:
    """Rename mmpose top-down HRNet / SimpleBaseline keys to the official names (:data:`MMPOSE_KEY_MAP`).

    ``backbone.*`` → ``*``; ``keypoint_head.final_layer.*`` (mmpose 0.x) or ``head.final_layer.*``
    (mmpose 1.x) → ``final_layer.*``; the same for ``deconv_layers``. Other keys are kept (and then
    reported as unexpected). A state without ``backbone.`` / ``keypoint_head.`` keys is returned unchanged.
    """
    if not any(k.startswith(("backbone.", "keypoint_head.")) for k in state):
        return dict(state)
    out: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys((old for old, _ in MMPOSE_KEY_MAP), 0)
    for key, value in state.items():
        new = key
        for old, repl in MMPOSE_KEY_MAP:
            if key.startswith(old):
                new = repl + key[len(old) :]
                counts[old] += 1
                break
        out[new] = value
    log.info(
        "%s: mmpose checkpoint, renamed %s",
        source,
        ", ".join(f"{n} keys {old}* -> {repl}*" for (old, repl), n in zip(MMPOSE_KEY_MAP, counts.values()) if n),
    )
    return out


def _listing(label: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW]) + (", ..." if len(keys) > _SHOW else "")
    return f"{len(keys)} {label} ({shown})"


_STIP_HEADS = (
    "ASPP_stage4.", "context_head.", "context_predictor.", "kernel_head.", "kernel_generator.", "projector.",
    "spatial_encoder_head.", "refine_head.", "kpt_layer.", "parts_predictor.", "mask_predictor.",
)  # fmt: skip


def _hints(model: nn.Module, missing: list[str], unexpected: list[str], shapes: dict[str, tuple]) -> list[str]:
    """Plain-words guesses at what is wrong (joint count, width, HRNet vs STIPNet)."""
    hints = []
    for key in ("final_layer.weight", "kpt_layer.weight", "context_predictor.0.weight"):
        if key in shapes:
            got, want = shapes[key]
            if got[1:] == want[1:] and got[0] != want[0]:
                hints.append(f"the checkpoint has {got[0]} joints, the model {want[0]}")
                break
    if any(k.startswith(("transition1.", "stage2.", "stage3.", "stage4.")) for k in shapes):
        hints.append("different HRNet width")
    if missing and all(k.startswith(_STIP_HEADS) for k in missing):
        hints.append("the checkpoint has no STIP heads (an HRNet baseline? use an hrnet-* model)")
    if unexpected and all(k.startswith(_STIP_HEADS) for k in unexpected):
        hints.append("the checkpoint is a STIPNet (use a stip-* model)")
    name = getattr(getattr(model, "spec", None), "name", None)
    if name and hints:
        hints.append(f"model: {name}")
    return hints


def load_weights(
    model: nn.Module, path_or_state: str | Path | Mapping[str, torch.Tensor], source_name: str | None = None
) -> None:
    """Load weights into ``model`` strictly (after the mmpose key map).

    Args:
        model: the network (e.g. from :func:`stip_rt.models.build_model`).
        path_or_state: a checkpoint path (read with :func:`read_state_dict`) or a state_dict.
        source_name: how to name the weights in messages (default: the path, or ``'state_dict'``).

    Raises:
        WeightsError: unreadable file, or missing / unexpected / mis-shaped keys (first few listed, with counts).
    """
    if isinstance(path_or_state, str | Path):
        source = source_name or str(path_or_state)
        state = read_state_dict(path_or_state)
    else:
        source = source_name or "state_dict"
        state = _unwrap(path_or_state, source)
    state = map_mmpose_keys(state, source)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = {
        k: (tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    }
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(_listing("missing", missing))
        if unexpected:
            parts.append(_listing("unexpected", unexpected))
        if shapes:
            items = [f"{k} {list(g)} vs model {list(w)}" for k, (g, w) in shapes.items()]
            parts.append(_listing("mis-shaped", items))
        hints = _hints(model, missing, unexpected, shapes)
        hint = f" [{'; '.join(hints)}]" if hints else ""
        raise WeightsError(f"checkpoint {source} does not match the model: {'; '.join(parts)}{hint}")
    model.load_state_dict(state, strict=True)
    log.info("loaded %d tensors from %s", len(state), source)
