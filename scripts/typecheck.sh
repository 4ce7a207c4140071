#!/usr/bin/env bash
# Type-check the library and the viewer with mypy (what and how: [tool.mypy] in pyproject.toml, whose
# `files` are stip_rt and apps). Needs the dev extra (mypy, the stub packages, PyQt6's own stubs):
# pip install -e ".[dev]". The README's test command and CI (.ci/run) run the same plain `mypy`;
# extra mypy arguments pass through, e.g. scripts/typecheck.sh --no-incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m mypy "$@"
