"""The weights manager: the model zoo manifest, the download cache and checksums.

Every model stip-rt can use is listed in ``models/zoo.yaml`` (one :class:`ZooEntry` each).
Weights are downloaded into ``<cache>/weights/`` where ``<cache>`` is ``$STIP_RT_HOME/cache`` or the
platformdirs user cache dir for ``stip-rt``; the base URL can be replaced by a mirror with
``$STIP_RT_WEIGHTS_URL`` (the file name is appended).

The manifest holds a full SHA-256 where one is known, else the 8-hex prefix the publisher put in the
file name (OpenMMLab's ``<name>-<sha256[:8]>.pth``), which is then checked as a prefix.

Modules: :mod:`.manifest` (the zoo manifest), :mod:`.cache` (cache folder, stamps, :func:`verify`),
:mod:`.download` (HTTP with resume, progress callbacks, :func:`weights_path`), :mod:`.importing`
(:func:`import_file`). Everything public is re-exported here.
"""

from __future__ import annotations

from ..paths import HOME_ENV as HOME_ENV  # re-exported: the variable that moves the cache
from .arguments import RANDOM, checkpoint_arg
from .cache import VerifyResult, check_cached, sha256_file, verify, weights_dir
from .download import DEFAULT_TIMEOUT_S, Progress, ProgressFactory, fetch, progress_reporter, weights_path
from .importing import import_file
from .manifest import (
    MIRROR_ENV,
    ZooEntry,
    entry_as_dict,
    get_entry,
    import_command,
    list_models,
    load_zoo,
    zoo_file,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HOME_ENV",
    "MIRROR_ENV",
    "RANDOM",
    "Progress",
    "ProgressFactory",
    "VerifyResult",
    "ZooEntry",
    "check_cached",
    "checkpoint_arg",
    "entry_as_dict",
    "fetch",
    "get_entry",
    "import_command",
    "import_file",
    "list_models",
    "load_zoo",
    "progress_reporter",
    "sha256_file",
    "verify",
    "weights_dir",
    "weights_path",
    "zoo_file",
]
