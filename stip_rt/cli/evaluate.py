"""``stip-rt eval``: OKS keypoint AP, from a results file or by running the full test protocol.

Metrics only::

    stip-rt eval --gt GT.json --results RES.json --dataset coco|crowdpose [--json]

Full protocol (detection boxes → batched inference with flip test → rescoring + OKS-NMS →
COCO results → metrics)::

    stip-rt eval --model NAME --weights PATH --gt GT.json --images DIR --detections DETS.json [--out RES.json] \
        --flip-test --precision fp32 --backend torch   # the official protocol's settings
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .run_options import MODEL_DESTS, add_config_options, add_model_options, config_from_args

if TYPE_CHECKING:
    from ..eval.keypoints import Dataset

_DATASET_OF_SCHEMA: dict[str, Dataset] = {"coco17": "coco", "crowdpose14": "crowdpose"}


def _progress(stream, total):  # the CLI owns progress bars (STYLE rule 9)
    from tqdm import tqdm

    return tqdm(stream, total=total, unit="img", disable=not sys.stderr.isatty())


def run(args: argparse.Namespace) -> int:
    from ..eval.keypoints import evaluate_keypoints
    from ..models import CHECKPOINT_SUFFIXES
    from ..run_load import config_yaml

    # a stip-rt train checkpoint records its model config: --weights CKPT or --model CKPT is enough
    if args.model is None and args.weights not in (None, "random") and args.results is None:
        args.model = args.weights
    elif args.weights is None and args.model is not None and Path(args.model).suffix.lower() in CHECKPOINT_SUFFIXES:
        args.weights = args.model
    protocol = [n for n in ("images", "detections", "model") if getattr(args, n) is not None]
    if args.results is not None and protocol:
        raise ConfigError(
            f"eval: give either --results or --images/--detections/--model, not both "
            f"(got --results and --{protocol[0]})"
        )
    if args.results is not None and args.dataset is None:
        raise ConfigError("eval: --dataset coco|crowdpose is required with --results")
    missing = [f"--{n}" for n in ("images", "detections", "model") if getattr(args, n) is None]
    if args.results is None and missing and not args.print_config:
        raise ConfigError(f"eval: give --results RES.json, or the full protocol inputs (missing {', '.join(missing)})")
    run_config = config_from_args(args, MODEL_DESTS)  # checked before any file is read
    if args.print_config:
        print(config_yaml(run_config), end="")
        return 0
    if args.results is not None:
        metrics = evaluate_keypoints(args.gt, args.results, args.dataset)
    else:
        from ..eval.protocol import ProtocolConfig, run_protocol
        from ..io.coco import write_coco_results
        from .predict import _estimator

        est = _estimator(run_config)
        dataset: Dataset = args.dataset or _DATASET_OF_SCHEMA.get(est.schema.name, "coco")  # custom sets: COCO-style
        config = ProtocolConfig(image_thre=args.image_thre, use_nms=not args.no_nms)
        metrics, results = run_protocol(est, args.gt, args.images, args.detections, dataset, config, _progress)
        if args.out is not None:
            write_coco_results(args.out, results)
    print(json.dumps(metrics.as_dict(), indent=2) if args.json else metrics.table())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="COCO / CrowdPose keypoint AP (from results, or the full test protocol)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", required=True, metavar="GT.json", help="ground-truth keypoint annotations")
    p.add_argument("--results", metavar="RES.json", help="COCO keypoint results to score (metrics-only mode)")
    p.add_argument(
        "--dataset",
        choices=("coco", "crowdpose"),
        help="metric: coco (pycocotools) or crowdpose (AP easy/medium/hard); protocol mode: from the model",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    g = p.add_argument_group("full protocol")
    g.add_argument("--images", metavar="DIR", help="folder with the ground truth's images")
    g.add_argument("--detections", metavar="DETS.json", help="person boxes, COCO results with 'bbox'")
    g.add_argument("--out", metavar="RES.json", help="also write the COCO keypoint results here")
    g.add_argument("--no-nms", action="store_true", help="turn OKS-NMS off")
    g.add_argument("--image-thre", type=float, default=0.0, help="minimum detection score (official: 0)")
    add_model_options(p, model_help="pose model: zoo name or model YAML (gives the full protocol mode)")
    add_config_options(p)
    p.set_defaults(func=run)
