"""The official flip test (``do_validate``: FLIP_TEST + SHIFT_HEATMAP), on torch tensors.

The network also sees each crop mirrored; its heatmaps are mirrored back, each left/right
channel pair is swapped, the result is shifted one column to the right (the official
``SHIFT_HEATMAP``; STIP_SPEC §7.12 explains why one column), and averaged with the
heatmaps of the unmirrored crop in float32.
"""

from __future__ import annotations

import numpy as np
import torch


def flip_back(flipped: torch.Tensor, flip_index: np.ndarray | torch.Tensor, shift: bool = True) -> torch.Tensor:
    """Undo the mirror on heatmaps of mirrored crops.

    Args:
        flipped: (N, K, H, W) heatmaps of the mirrored crops.
        flip_index: (K,) permutation mapping each joint to its mirror joint
            (:meth:`~stip_rt.schemas.KeypointSchema.flip_index`).
        shift: shift one column to the right (column 0 keeps its value), as SHIFT_HEATMAP.

    Returns:
        (N, K, H, W) heatmaps in the unmirrored frame (a new tensor).
    """
    if isinstance(flip_index, torch.Tensor):  # pass it on the heatmaps' device: no upload per call
        idx = flip_index.to(device=flipped.device, dtype=torch.long)
    else:
        idx = torch.as_tensor(np.asarray(flip_index), dtype=torch.long, device=flipped.device)
    out = flipped.flip(3).index_select(1, idx)
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=3)
    return out


def flip_average(
    output: torch.Tensor, output_flipped: torch.Tensor, flip_index: np.ndarray | torch.Tensor, shift: bool = True
) -> torch.Tensor:
    """Official flip-test average ``(output + flip_back(output_flipped)) * 0.5``.

    Args:
        output: (N, K, H, W) float32 heatmaps of the crops.
        output_flipped: (N, K, H, W) float32 raw heatmaps of the mirrored crops.
        flip_index: (K,) joint permutation of the schema.
        shift: apply the one-column shift.

    Returns:
        (N, K, H, W) float32 averaged heatmaps.
    """
    return (output + flip_back(output_flipped, flip_index, shift)) * 0.5
