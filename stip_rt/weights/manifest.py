"""The zoo manifest (``models/zoo.yaml``): one :class:`ZooEntry` per model stip-rt can fetch or import."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, read_yaml
from ..errors import ConfigError, WeightsError, did_you_mean
from ..paths import models_dir

MIRROR_ENV = "STIP_RT_WEIGHTS_URL"
#: URL schemes the mirror may use (``file://`` for a local folder).
MIRROR_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo manifest (``models/zoo.yaml``).

    Attributes:
        name: zoo name (the manifest key), e.g. ``rtmdet-tiny``.
        kind: ``detector`` or ``pose``.
        arch: architecture built for an import check: ``rtmdet-<size>`` or a pose config name
            (``models/<arch>.yaml``).
        file: file name in the cache.
        url: download URL (manual entries: the page to get the file from by hand).
        sha256: full lowercase hex SHA-256 (64 digits) or a published prefix (8+ digits); None when
            unknown (manual entries: the import check proves the file loads instead).
        size_mb: approximate size in MB (the progress total when the server sends no length, and listings).
        license: licence of the weights.
        source: the page that publishes them.
        manual: not directly downloadable; use ``stip-rt weights import FILE --name NAME``.
        note: one line for listings and error messages.
    """

    name: str = ""
    kind: Literal["detector", "pose"] = "pose"
    arch: str = ""
    file: str = ""
    url: str = ""
    sha256: str | None = None
    size_mb: float | None = None
    license: str = "unknown"
    source: str = ""
    manual: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if not self.file or "/" in self.file or "\\" in self.file:
            raise ValueError(f"'file' must be a plain file name, got {self.file!r}")
        if self.sha256 is not None:
            h = self.sha256.lower()
            if len(h) < 8 or len(h) > 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError(f"'sha256' must be 8 to 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", h)
        if not self.manual and not self.url:
            raise ValueError("'url' is required unless 'manual' is true")

    @property
    def sha256_is_prefix(self) -> bool:
        """True when only a prefix of the SHA-256 is known."""
        return self.sha256 is not None and len(self.sha256) < 64

    def download_url(self) -> str:
        """The URL to fetch: the manifest URL, or ``$STIP_RT_WEIGHTS_URL/<file>`` when set.

        Raises:
            WeightsError: the mirror is not an ``http://``, ``https://`` or ``file://`` URL.
        """
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        if not mirror:
            return self.url
        if urllib.parse.urlsplit(mirror).scheme.lower() not in MIRROR_SCHEMES:
            folder = f" (a local folder: {Path(mirror).absolute().as_uri()})" if Path(mirror).is_absolute() else ""
            raise WeightsError(
                f"{MIRROR_ENV}={mirror!r}: expected a URL starting with http://, https:// or file://{folder}"
            )
        return f"{mirror.rstrip('/')}/{self.file}"

    def matches(self, digest: str) -> bool:
        """Whether a full hex SHA-256 fits this entry (a published prefix is checked as a prefix)."""
        return self.sha256 is None or digest.startswith(self.sha256)

    def expected(self) -> str:
        """The expected checksum as shown in messages."""
        if self.sha256 is None:
            return "(no published checksum)"
        return f"{self.sha256}… (published prefix)" if self.sha256_is_prefix else self.sha256


def zoo_file() -> Path:
    """Path of the zoo manifest."""
    return models_dir() / "zoo.yaml"


def load_zoo(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """Read the zoo manifest.

    Args:
        path: manifest file; default :func:`zoo_file`.

    Returns:
        zoo name → entry, in manifest order.

    Raises:
        ConfigError: unreadable manifest, unknown field or bad value (names the entry).
    """
    p = Path(path) if path is not None else zoo_file()
    data = read_yaml(p)
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigError(f"zoo {p}: expected a 'models' mapping")
    out: dict[str, ZooEntry] = {}
    for name, fields in models.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"zoo {p}: '{name}' must be a mapping")
        out[str(name)] = from_dict(ZooEntry, {**fields, "name": str(name)}, f"zoo {p}: '{name}'")
    return out


def list_models() -> list[ZooEntry]:
    """Every model of the zoo manifest, in manifest order."""
    return list(load_zoo().values())


def get_entry(name: str) -> ZooEntry:
    """The manifest entry of ``name``.

    Raises:
        WeightsError: unknown name (with the closest known name).
    """
    zoo = load_zoo()
    if name not in zoo:
        raise WeightsError(f"unknown model '{name}'{did_you_mean(name, zoo)}; `stip-rt weights list` shows them all")
    return zoo[name]


def import_command(name: str) -> str:
    """The command that imports a hand-downloaded file for ``name``."""
    return f"stip-rt weights import FILE --name {name}"


def entry_as_dict(entry: ZooEntry) -> dict[str, Any]:
    """A manifest entry as a plain dict (for ``weights list --json``)."""
    return dataclasses.asdict(entry)
