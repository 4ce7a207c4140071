"""``load_script(name)``: a file of ``scripts/`` imported as a module, for the tests of the scripts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module named ``name`` (also in ``sys.modules``: dataclasses look it up there).

    ``scripts/`` goes first on ``sys.path``, as ``python scripts/<name>.py`` puts it, so that a script finds
    the sibling modules it imports (``eval_tracking`` imports ``mot_detections``).
    """
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
