#!/usr/bin/env bash
# Type-check the library with mypy (settings: [tool.mypy] in pyproject.toml).
# Needs the dev extra (mypy and the stub packages): pip install -e ".[dev]".
# CI runs it from .ci/run; pass extra mypy arguments through, e.g. scripts/typecheck.sh --no-incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m mypy stip_rt "$@"
