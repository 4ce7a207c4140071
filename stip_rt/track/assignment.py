"""Linear assignment with gating; the solver is chosen once, at import, and logged.

The solvers complete a rectangular assignment, so a pair outside the gate gets the cost of "no
match" (0), never a large penalty: with a penalty they would match as many pairs as the gate allows
before they maximise similarity, e.g. give a track a poor match to a false positive so that another
track can take its person (docs/tracking.md, "Assignment").

scipy's ``linear_sum_assignment`` is the default: it is a hard dependency and, measured on the
2-core CI machine, faster than ``lap.lapjv`` for tracking-sized problems (2.8 µs vs 18 µs for
20×22, 146 µs vs 124 µs for 100×102). Set ``STIP_RT_ASSIGNMENT=lap`` to use ``lap`` instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, did_you_mean

log = logging.getLogger(__name__)

def _scipy(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = linear_sum_assignment(cost)
    return rows, cols


def _lap(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import lap

    _, x, _ = lap.lapjv(cost, extend_cost=True)
    rows = np.flatnonzero(x >= 0)
    return rows, x[rows]


SOLVERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {"scipy": _scipy, "lap": _lap}


def _choose() -> str:
    name = os.environ.get("STIP_RT_ASSIGNMENT", "scipy")
    if name not in SOLVERS:
        raise ConfigError(f"STIP_RT_ASSIGNMENT: unknown solver '{name}'{did_you_mean(name, SOLVERS)}")
    if name == "lap":
        try:
            import lap  # noqa: F401
        except ImportError:
            raise ConfigError("STIP_RT_ASSIGNMENT=lap but the 'lap' package is not installed") from None
    return name


SOLVER_NAME = _choose()
_solve = SOLVERS[SOLVER_NAME]
log.debug("assignment solver: %s", SOLVER_NAME)


def assign(
    similarity: np.ndarray, min_similarity: float | np.ndarray, gate_on: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-similarity one-to-one matching with a gate.

    Pairs whose gate value is below ``min_similarity`` (or NaN) can never match. Among the rest the
    matching maximises the total ``similarity - floor`` of the matched pairs, where ``floor`` is
    ``min(0, min_similarity)`` (so every pair that passes the gate is worth at least nothing); it is
    not forced to match as many pairs as possible: leaving a row and a column unmatched is worth 0.
    Solved as a minimum-cost assignment (Hungarian / Jonker-Volgenant) on ``floor - similarity``
    with cost 0 outside the gate.

    Args:
        similarity: (N, M) similarity of rows (tracks) and columns (people).
        min_similarity: gate: one value, or (N, 1) one per row (broadcast over the columns).
        gate_on: (N, M) values the gate applies to (e.g. box IoU); None gates on ``similarity``.

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``: (P, 2) int64 row/column pairs, (N-P,) and (M-P,) int64.
    """
    n, m = similarity.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    ok = (similarity if gate_on is None else gate_on) >= min_similarity  # NaN compares False
    floor = min(0.0, float(np.min(min_similarity)))
    cost = np.where(ok, floor - similarity, 0.0)
    rows, cols = _solve(cost)
    keep = ok[rows, cols]
    matches = np.empty((int(keep.sum()), 2), np.int64)
    matches[:, 0] = rows[keep]
    matches[:, 1] = cols[keep]
    row_free = np.ones(n, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(m, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
