"""Tiny model specs shared by the model tests (fast to build, every layer present)."""

TINY_STIP = {
    "name": "tiny-stip",
    "arch": "stip",
    "schema": "crowdpose14",
    "num_joints": 14,
    "input_size": [64, 64],
    "heatmap_size": [32, 32],
    "widths": [8, 16, 24, 32],
    "num_modules": [1, 1, 1],
    "num_blocks": 1,
    "stem_blocks": 1,
}
