"""Constant-velocity box motion model on stacked arrays: one row of ``x`` and ``P`` per track.

State ``x = [cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels and pixels per frame), measurement
``z = [cx, cy, w, h]``. Noise std is a fraction of the box width (x, w) or height (y, h), as in
BoT-SORT, so near and far people behave alike.

The state is held once, as arrays in the tracker's :class:`~stip_rt.track.table.TrackTable`
((N, 8) ``x`` and (N, 8, 8) ``P``), and :func:`predict` / :func:`update` advance every track at once
with filterpy's equations (ByteTrack's ``multi_predict`` idea). filterpy's ``KalmanFilter`` is the
test reference: :func:`reference_filter`, :func:`reference_predict` and :func:`reference_update` run
its own per-filter ``predict``/``update`` from the same start (tests/track/test_kalman.py checks that
both paths agree; scripts/bench_tracking.py times both). filterpy is imported only by them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..geometry import cxcywh_to_xyxy, xyxy_to_cxcywh
from .config import KalmanConfig

if TYPE_CHECKING:
    from filterpy.kalman import KalmanFilter

DIM_X, DIM_Z = 8, 4
_WHWH = (2, 3, 2, 3)
_S_DIAG = np.arange(DIM_Z) * (DIM_X + 1)  # flat indices of P's first four diagonal entries
_MIN_SIZE = 1e-3


@lru_cache(maxsize=64)
def transition(dt: float) -> np.ndarray:
    """(8, 8) constant-velocity transition for a step of ``dt`` frames (read-only)."""
    f = np.eye(DIM_X)
    f[:DIM_Z, DIM_Z:] = dt * np.eye(DIM_Z)
    f.setflags(write=False)
    return f


def state_boxes(x: np.ndarray) -> np.ndarray:
    """(N, 8) states → (N, 4) xyxy boxes; sizes clamped to stay positive."""
    return cxcywh_to_xyxy(x, _MIN_SIZE)


def initiate(boxes: np.ndarray, cfg: KalmanConfig) -> tuple[np.ndarray, np.ndarray]:
    """States of new tracks started at ``boxes`` with zero velocity.

    The initial std is twice the measurement std for position/size and ten times the velocity std
    (ByteTrack's initiation).

    Args:
        boxes: (B, 4) xyxy pixels.
        cfg: noise settings.

    Returns:
        ``(x, p)``: (B, 8) states and (B, 8, 8) diagonal covariances, new arrays.
    """
    z = xyxy_to_cxcywh(boxes)
    x = np.concatenate([z, np.zeros_like(z)], axis=1)
    wh = z[:, 2:4]
    std = np.concatenate([2 * _size_std(wh, cfg.std_position), 10 * _size_std(wh, cfg.std_velocity)], axis=1)
    return x, _diag(std**2)


def _size_std(wh: np.ndarray, frac: float) -> np.ndarray:
    """(N, 2) w, h → (N, 4) std ``frac·[w, h, w, h]``."""
    wh = np.abs(wh)
    return frac * np.concatenate([wh, wh], axis=1)


def _noise_var(x: np.ndarray, cfg: KalmanConfig) -> np.ndarray:
    """(N, 8) states → (N, 8) process noise variances of a one-frame step."""
    wh = np.abs(x[:, _WHWH * 2])
    wh[:, :DIM_Z] *= cfg.std_position
    wh[:, DIM_Z:] *= cfg.std_velocity
    return wh * wh


def process_noise(x: np.ndarray, cfg: KalmanConfig, dt: float = 1) -> np.ndarray:
    """(N, 8) states → (N, 8, 8) diagonal process noise Q for a step of ``dt`` frames."""
    return _diag(_noise_var(x, cfg) * dt)


def measurement_noise(x: np.ndarray, cfg: KalmanConfig) -> np.ndarray:
    """(N, 8) states → (N, 4, 4) diagonal measurement noise R."""
    return _diag(_size_std(x[:, 2:4], cfg.std_position) ** 2)


def _diag(v: np.ndarray) -> np.ndarray:
    return v[:, :, None] * np.eye(v.shape[-1])


def predict(x: np.ndarray, p: np.ndarray, cfg: KalmanConfig, dt: float = 1) -> tuple[np.ndarray, np.ndarray]:
    """filterpy's predict equations on stacked states (pure; the inputs are not changed).

    Args:
        x: (N, 8) states.
        p: (N, 8, 8) covariances.
        cfg: noise settings.
        dt: frames since the previous step (> 0; fractional for variable-frame-rate video).

    Returns:
        ``(x, p)``: the predicted (N, 8) states and (N, 8, 8) covariances, new arrays.
    """
    f = transition(dt)
    var = _noise_var(x, cfg) * dt  # the diagonal of Q
    x = x @ f.T
    p = f @ p @ f.T
    p.reshape(-1, DIM_X * DIM_X)[:, :: DIM_X + 1] += var  # + Q (diagonal)
    return x, p


def update(x: np.ndarray, p: np.ndarray, boxes: np.ndarray, cfg: KalmanConfig) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman update on stacked states with one box each (pure; the inputs are not changed).

    ``S = H P Hᵀ + R`` is diagonal here: ``R`` is diagonal and the covariances never couple one
    coordinate with another (``F``, ``Q``, ``R`` and the initial ``P`` from :func:`initiate` only
    link each of cx, cy, w, h with its own velocity), so ``S⁻¹`` is ``1 / diag(S)``, which is
    what ``np.linalg.inv`` returns for a diagonal matrix, bit for bit.

    Args:
        x: (N, 8) states.
        p: (N, 8, 8) covariances with that block structure.
        boxes: (N, 4) xyxy pixels, row i for state i.
        cfg: noise settings.

    Returns:
        ``(x, p)``: the corrected (N, 8) states and (N, 8, 8) covariances, new arrays.
    """
    z = xyxy_to_cxcywh(boxes)
    r = cfg.std_position * np.abs(x[:, _WHWH])
    s = p.reshape(-1, DIM_X * DIM_X)[:, _S_DIAG] + r * r  # diag(H P Hᵀ + R) with H = [I 0]
    k = p[:, :, :DIM_Z] * (1.0 / s)[:, None, :]  # P Hᵀ S⁻¹
    x = x + np.einsum("nij,nj->ni", k, z - x[:, :DIM_Z])
    # (I - KH) P; equal to filterpy's Joseph form in exact arithmetic (the tests compare them).
    p = p - k @ p[:, :DIM_Z, :]
    p += p.transpose(0, 2, 1)
    p *= 0.5
    return x, p


def reference_filter(x: np.ndarray, p: np.ndarray) -> KalmanFilter:
    """A filterpy ``KalmanFilter`` holding one state (the test reference; imports filterpy).

    Args:
        x: (8,) state.
        p: (8, 8) covariance.
    """
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=DIM_X, dim_z=DIM_Z)
    kf.x = np.array(x, np.float64).reshape(DIM_X, 1)
    kf.P = np.array(p, np.float64)
    kf.F = transition(1).copy()
    kf.H = np.eye(DIM_Z, DIM_X)
    return kf


def reference_predict(kf: KalmanFilter, cfg: KalmanConfig, dt: int = 1) -> None:
    """filterpy's own predict for one filter, with the size-scaled Q (the reference for :func:`predict`)."""
    kf.predict(F=transition(dt), Q=process_noise(kf.x.reshape(1, DIM_X), cfg, dt)[0])


def reference_update(kf: KalmanFilter, box: np.ndarray, cfg: KalmanConfig) -> None:
    """filterpy's own update (Joseph form) for one filter with a box (xyxy pixels); the reference for :func:`update`."""
    kf.update(xyxy_to_cxcywh(box)[0].reshape(DIM_Z, 1), R=measurement_noise(kf.x.reshape(1, DIM_X), cfg)[0])
