"""Tiny model specs shared by the model tests (fast to build, every layer present), in the nested file format."""

TINY_BACKBONE = {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1}

TINY_STIP = {
    "name": "tiny-stip",
    "arch": "stip",
    "schema": "crowdpose14",
    "input_size": [64, 64],
    "net": {"hrnet": TINY_BACKBONE},
}

TINY_HRNET = {**TINY_STIP, "name": "tiny-hrnet", "arch": "hrnet", "net": TINY_BACKBONE}

#: The same tiny STIP model in the older flat format (still read).
TINY_STIP_FLAT = {
    "name": "tiny-stip",
    "arch": "stip",
    "schema": "crowdpose14",
    "num_joints": 14,
    "input_size": [64, 64],
    "heatmap_size": [32, 32],
    "decode": "stip",
    **TINY_BACKBONE,
}
