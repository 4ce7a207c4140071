"""The interfaces between the pipeline and its ends: sources yield frames, sinks take results."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from ..errors import CallbackError, ConfigError, SinkError, StipError
from ..types import Frame, FrameResult, RunInfo, SourceInfo


@runtime_checkable
class Source(Protocol):
    """Frames from a file, stream, camera or image folder.

    Attributes:
        info: the source's metadata (available once opened).
        dropped: frames dropped so far because downstream was slower (live sources only; files never drop);
            read-only, so a plain attribute or a property both conform.
    """

    info: SourceInfo

    @property
    def dropped(self) -> int: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Writes results as they come.

    Attributes:
        needs_image: True when the sink draws on frames (the pipeline then attaches ``FrameResult.image``).
    """

    needs_image: bool

    def open(self, run: RunInfo) -> None:
        """Create the output for ``run``. A sink whose output can be refused (another run writes
        it, the format needs keypoints) may also have ``claim(run)``: the same checks and locks,
        creating and changing nothing. The pipeline claims every sink before it opens any, so a
        refused run leaves every output as it was; ``open`` claims first when nobody did."""
        ...

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None:
        """Flush and finish; must be safe to call after a failure and more than once."""
        ...


#: What the pipeline uses of a :class:`Sink` (``claim`` is optional).
SINK_ATTRIBUTES = ("needs_image", "open", "write", "close")


def missing_sink_attributes(obj: object) -> list[str]:
    """The attributes of :data:`SINK_ATTRIBUTES` that ``obj`` lacks (or, for the methods, has but
    cannot call); empty when it can be used as a :class:`Sink`."""
    missing = [] if hasattr(obj, "needs_image") else ["needs_image"]
    return missing + [a for a in SINK_ATTRIBUTES[1:] if not callable(getattr(obj, a, None))]


def sink_items(sinks: object, origin: str) -> list[Sink | str]:
    """What a caller gave as a run's sinks, checked: a sink or an output path, or an iterable of
    them, as a list of sinks and paths (``str``).

    Raises:
        ConfigError: ``sinks`` or one of its items is neither, naming it (``<origin> sinks[1] = ...``)
            and the sink attributes it lacks.
    """
    if isinstance(sinks, str | os.PathLike) or not missing_sink_attributes(sinks):
        items: list[object] = [sinks]
    elif isinstance(sinks, Iterable):
        items = list(sinks)
    else:
        raise ConfigError(
            f"{origin} sinks = {sinks!r}: expected a sink, an output path or a list of them "
            f"(it lacks {', '.join(missing_sink_attributes(sinks))})"
        )
    out: list[Sink | str] = []
    for i, s in enumerate(items):
        if isinstance(s, str | os.PathLike):
            out.append(str(os.fspath(s)))
            continue
        missing = missing_sink_attributes(s)
        if missing:
            raise ConfigError(
                f"{origin} sinks[{i}] = {s!r}: not an output path or a sink: it lacks {', '.join(missing)} "
                "(a path such as 'tracks.csv', stip_rt.io.sinks.open_sink(path), or an object with "
                "needs_image, open(run), write(result) and close())"
            )
        out.append(s)  # type: ignore[arg-type]
    return out


def sink_label(sink: object) -> str:
    """How messages name a sink: its ``path`` (or ``folder``) when it has one, else its class name."""
    path = getattr(sink, "path", None) or getattr(sink, "folder", None)
    return str(path) if path else type(sink).__name__


def sink_failure(
    sink: object, verb: str, exc: Exception, io_error: type[StipError] = SinkError,
    code_error: type[StipError] = CallbackError,
) -> StipError:
    """The :class:`StipError` for a sink's ``verb`` (``open``, ``write``, ``close``) that raised
    ``exc`` (not a StipError): ``<sink>: cannot <verb>: <type>: <message>``, ``exc`` as its cause.

    An ``OSError``, or any error of a sink stip-rt provides, is an ``io_error`` (a
    :class:`SinkError`: the output failed); another error of a caller's own sink (a ``ValueError``
    in its ``write``) is a ``code_error`` (a :class:`CallbackError`: the caller's code failed, not a disk).
    """
    ours = type(sink).__module__.startswith("stip_rt.")
    cls = io_error if isinstance(exc, OSError) or ours else code_error
    err = cls(f"{sink_label(sink)}: cannot {verb}: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err
