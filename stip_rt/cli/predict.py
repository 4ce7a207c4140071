"""``stip-rt predict``: keypoints for the people in images, given their boxes.

    stip-rt predict IMAGE_OR_DIR --detections DETS.json --out results.json [--draw DIR] [--flip-test]

Each image's id is its file name's stem as a number (``000000000785.jpg`` → 785), or the stem
itself when it is not a number; ``DETS.json`` (COCO results with ``bbox``) gives the boxes per id.
People are rescored and OKS-NMS'ed as in the official protocol (``--no-nms`` to keep all).
An image that cannot be read is left out with an error naming it; the others are predicted and
written, and the command then fails (exit 2) naming the images left out.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .run_options import MODEL_DESTS, add_config_options, add_model_options, config_from_args

log = logging.getLogger(__name__)


def _image_id(path: Path) -> int | str:
    return int(path.stem) if path.stem.isdigit() else path.stem


def _check_outputs(images: Sequence[Path], out: Path, draw_dir: Path | None) -> None:
    """Refuse, before any work, an --out or a drawing that would replace one of the input images."""
    inputs = {p.resolve(): p for p in images}
    if out.resolve() in inputs:
        raise ConfigError(f"predict: --out {out} is one of the input images; give another file")
    if draw_dir is None:
        return
    for path in images:
        drawn = draw_dir / path.name
        if drawn.resolve() in inputs:
            raise ConfigError(
                f"predict: --draw {draw_dir}: drawing {path.name} would write over the input image "
                f"{inputs[drawn.resolve()]}; give another folder"
            )


def _warn_unused(detections: Mapping[Any, Any], images: Sequence[tuple[Any, Path]], path: str) -> None:
    """One warning for the boxes of image ids that are not among the inputs (they are not used)."""
    ids = {i for i, _ in images}
    unused = [i for i in detections if i not in ids]  # in file order
    if unused:
        boxes = sum(len(detections[i]) for i in unused)
        shown = ", ".join(str(i) for i in unused[:5]) + (", ..." if len(unused) > 5 else "")
        log.warning(
            "detections %s: %d box(es) of %d image id(s) not among the input images are not used (%s)",
            path,
            boxes,
            len(unused),
            shown,
        )


def run(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from ..errors import SinkError, SourceError
    from ..eval.protocol import ProtocolConfig, predict_images
    from ..io.coco import poses_to_coco, read_coco_detections, write_coco_results
    from ..io.draw import draw_people
    from ..io.image_source import find_images
    from ..run_load import config_yaml

    config = config_from_args(args, MODEL_DESTS)
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    images = [(_image_id(p), p) for p in find_images(args.input)]
    draw_dir = Path(args.draw) if args.draw else None
    _check_outputs([p for _, p in images], Path(args.out), draw_dir)
    dets = read_coco_detections(args.detections, score_threshold=args.image_thre)
    _warn_unused(dets, images, args.detections)
    est = _estimator(config)
    if draw_dir is not None:
        draw_dir.mkdir(parents=True, exist_ok=True)
    protocol = ProtocolConfig(image_thre=args.image_thre, use_nms=not args.no_nms)
    results: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for image_id, path in tqdm(images, unit="img", disable=not sys.stderr.isatty()):
        try:  # one image at a time: an unreadable one is left out, the others are still predicted and written
            ((_, _, image, poses),) = predict_images(est, [(image_id, path)], dets, protocol)
        except SourceError as e:
            log.error("%s: left out", e)
            unreadable.append(str(path))
            continue
        results.extend(poses_to_coco(image_id, poses))
        if draw_dir is not None:
            drawn = draw_people(image, poses.boxes, poses.keypoints, schema=est.schema, scores=poses.scores)
            out = draw_dir / path.name
            if not cv2.imwrite(str(out), drawn):
                raise SinkError(f"drawing {out}: cannot write this image")
    write_coco_results(args.out, results)
    done = len(images) - len(unreadable)
    print(f"{len(results)} people on {done} image(s) → {args.out}")
    if unreadable:
        shown = ", ".join(unreadable[:3]) + (", ..." if len(unreadable) > 3 else "")
        raise SourceError(
            f"{len(unreadable)} of {len(images)} image(s) could not be read and were left out ({shown}); "
            f"the results of the other {done} are in {args.out}"
        )
    return 0


def _estimator(config):  # -> PoseEstimator
    from ..errors import ConfigError
    from ..pipeline_build import build_estimator

    est = build_estimator(config)[0]
    if est is None:
        raise ConfigError("pose.model is 'none': there is no pose model to run")
    return est


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="keypoints for given person boxes in images → COCO results (+ drawings)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IMAGE_OR_DIR", help="an image, a folder of images or a glob")
    p.add_argument("--detections", required=True, metavar="DETS.json", help="person boxes, COCO results with 'bbox'")
    p.add_argument("--out", required=True, metavar="results.json", help="COCO keypoint results to write")
    p.add_argument("--draw", metavar="DIR", help="also write the images with skeletons drawn into DIR")
    p.add_argument("--no-nms", action="store_true", help="keep every person (no OKS-NMS)")
    p.add_argument("--image-thre", type=float, default=0.0, help="minimum detection score (default: %(default)s)")
    add_model_options(p, model_help="pose model: zoo name or model YAML (default: auto)")
    add_config_options(p)
    p.set_defaults(func=run)
