"""Helpers of the training tests: tiny models (32×32 crops, widths 8–32) and fast CPU run configs."""

from __future__ import annotations

from pathlib import Path

from stip_rt.train.trainer import TrainConfig

TINY_BACKBONE = {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1}


def tiny_spec(schema: str = "coco17", arch: str = "stip") -> dict:
    net = {"hrnet": TINY_BACKBONE} if arch == "stip" else TINY_BACKBONE
    return {"name": f"tiny-{arch}-{Path(schema).stem}", "arch": arch, "schema": schema, "input_size": [32, 32],
            "net": net}


def make_config(model: Path, coco: tuple[Path, Path], out: Path, **kw) -> TrainConfig:
    """A fast CPU run: batch 2 (3 steps per epoch on the 7 COCO people), no workers, no TensorBoard."""
    ann, images = coco
    fields = {"model": str(model), "train_ann": str(ann), "train_images": str(images), "out_dir": str(out),
              "epochs": 1, "batch_size": 2, "workers": 0, "device": "cpu", "tensorboard": False, **kw}
    return TrainConfig(**fields)
