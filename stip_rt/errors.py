"""One error family for everything a user can get wrong.

Every message names the input (path, key, URL, frame index) and says what was
expected. The CLI prints a :class:`StipError` as one line and exits with 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class StipError(Exception):
    """Base of all errors stip-rt raises on purpose."""


class ConfigError(StipError, ValueError):
    """A config file, dict or CLI override is invalid."""


class WeightsError(StipError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the model."""


class SourceError(StipError, OSError):
    """A video, stream, camera or image folder cannot be read."""


class BackendError(StipError, RuntimeError):
    """An inference backend is unavailable or failed."""


class DataError(StipError, ValueError):
    """An annotation, detection or results file is malformed."""


class SinkError(StipError, OSError):
    """An output file cannot be written."""


class CallbackError(StipError):
    """A caller's callback (a pipeline's ``on_result`` or ``on_end``) raised; its exception is the
    ``__cause__``. Not an ``OSError``: the caller's own code failed, not a disk."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest option, or an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
