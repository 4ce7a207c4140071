"""The explicit package list in pyproject.toml must cover every package in the tree."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("stip_rt", "apps")
        for p in (REPO / top).rglob("__init__.py")
    }
    missing = found - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_models_dir_found():
    from stip_rt.paths import models_dir

    assert models_dir().name in {"models", "zoo_files"}
