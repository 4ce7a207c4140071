"""The one reading of a ``--weights`` / ``pose.weights`` / ``detect.weights`` value."""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError

#: ``weights`` value that builds a network with random weights (demos, tests).
RANDOM = "random"


def checkpoint_arg(value: str | Path | None) -> tuple[bool, str | None]:
    """Read a weights argument.

    Args:
        value: a checkpoint path, ``random``, or None (the weights cache).

    Returns:
        (random weights?, checkpoint path or None).

    Raises:
        WeightsError: a path that is not a file.
    """
    if value is None:
        return False, None
    if str(value) == RANDOM:
        return True, None
    if not Path(value).is_file():
        raise WeightsError(f"weights {value}: file not found (give a checkpoint path, or '{RANDOM}')")
    return False, str(value)
