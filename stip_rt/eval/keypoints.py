"""OKS keypoint AP: COCO (pycocotools) and CrowdPose (faster-coco-eval ``keypoints_crowd``).

* COCO: pycocotools ``COCOeval(iouType='keypoints')``, the 17 standard sigmas, GT ``area``,
  maxDets 20; AP, AP50, AP75, AP(M), AP(L), AR, AR50, AR75, AR(M), AR(L).
* CrowdPose: the ``keypoints_crowd`` mode of xtcocotools / crowdposetools, computed with
  faster-coco-eval (``COCOeval_faster(..., 'keypoints_crowd', kpt_oks_sigmas, use_area=False)``):
  CrowdPose sigmas (head, neck .79), area = 0.53·GT box area, GT counted by ``num_keypoints``;
  AP, AP50, AP75, AR, AR50, AR75 and AP easy / medium / hard over the images with
  ``crowdIndex`` < 0.2, 0.2–0.8, ≥ 0.8 (each the plain mean of the precision array, rounded to
  4 decimals, as the reference). On the shared CrowdPose files and on 7.6k synthetic predictions
  over the full CrowdPose val set it gives the same numbers as xtcocotools 1.14.3, bit for bit.

Both score the ground truth's keypoint category only (:func:`~stip_rt.io.coco.keypoint_category`:
1 in COCO and CrowdPose, any id in a custom file), and every result must be of it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import DataError
from ..io.coco import keypoint_category, read_coco_gt, read_coco_results
from ..schemas import KeypointSchema, get_schema

log = logging.getLogger(__name__)

Dataset = Literal["coco", "crowdpose"]
COCO_NAMES = ("AP", "AP50", "AP75", "AP(M)", "AP(L)", "AR", "AR50", "AR75", "AR(M)", "AR(L)")
CROWDPOSE_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")
DATASET_SCHEMA = {"coco": "coco17", "crowdpose": "crowdpose14"}


@dataclass(frozen=True)
class KeypointMetrics:
    """The standard OKS metrics of one evaluation.

    Attributes:
        dataset: ``coco`` or ``crowdpose``.
        names: metric names in table order (:data:`COCO_NAMES` / :data:`CROWDPOSE_NAMES`).
        values: the metrics in [0, 1] (−1 where the reference reports "no ground truth").
        num_images: images evaluated; num_results: predictions evaluated.
    """

    dataset: str
    names: tuple[str, ...]
    values: tuple[float, ...]
    num_images: int
    num_results: int

    def as_dict(self) -> dict[str, float]:
        """``{name: value}`` in table order."""
        return dict(zip(self.names, self.values))

    def table(self) -> str:
        """The standard table, one metric per line (values ×100, one decimal, as papers print)."""
        head = f"{self.dataset} keypoints: {self.num_results} results on {self.num_images} images"
        rows = [f"  {n:<7}{v * 100:6.1f}" if v >= 0 else f"  {n:<7}{'n/a':>6}" for n, v in zip(self.names, self.values)]
        return "\n".join([head, *rows])


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASET_SCHEMA:
        raise DataError(f"unknown dataset '{dataset}' (use 'coco' or 'crowdpose')")


def check_dataset_keys(
    gt: Mapping[str, Any], dataset: Dataset, gt_name: str = "ground truth", hint: str | None = None
) -> None:
    """Check that a ground truth has what ``dataset``'s metric needs besides the common keys.

    COCO needs each annotation's ``area``; CrowdPose each image's ``crowdIndex``. The full
    protocol calls this before any inference, :func:`evaluate_keypoints` before scoring.

    Args:
        gt: the dataset dict (as :func:`~stip_rt.io.coco.read_coco_gt` returns it).
        dataset: ``coco`` or ``crowdpose``.
        gt_name: the file's name, for the message.
        hint: what the message says after the missing key's need (default: the other ``--dataset``).

    Raises:
        DataError: the first annotation without ``area`` / image without ``crowdIndex``, or an
            unknown dataset.
    """
    _check_dataset(dataset)
    if dataset == "coco":
        missing = next((i for i, a in enumerate(gt["annotations"]) if "area" not in a), None)
        if missing is not None:
            raise DataError(
                f"{gt_name}: annotations[{missing}] has no 'area' (COCO evaluation needs it; "
                f"{hint or 'CrowdPose files: use --dataset crowdpose'})"
            )
    else:
        missing = next((i for i, im in enumerate(gt["images"]) if "crowdIndex" not in im), None)
        if missing is not None:
            raise DataError(
                f"{gt_name}: images[{missing}] has no 'crowdIndex' (needed for CrowdPose AP easy/medium/"
                f"hard; {hint or 'COCO files: use --dataset coco'})"
            )


def evaluate_keypoints(
    gt: str | Path | Mapping[str, Any],
    results: str | Path | Sequence[Mapping[str, Any]],
    dataset: Dataset = "coco",
    schema: KeypointSchema | None = None,
) -> KeypointMetrics:
    """COCO or CrowdPose keypoint AP of a results list against a ground truth.

    Args:
        gt: ground-truth JSON path or dict (validated when a path).
        results: COCO keypoint results, JSON path or list (validated when a path).
        dataset: ``coco`` (pycocotools) or ``crowdpose`` (keypoints_crowd via faster-coco-eval).
        schema: a custom keypoint set (:mod:`stip_rt.schemas`), scored with the COCO protocol and
            its own OKS sigmas (``dataset`` must be ``coco``); None: the dataset's own schema.

    Returns:
        :class:`KeypointMetrics`. With no results at all, every metric is 0.

    Raises:
        DataError: invalid files, results of unknown images, wrong joint count, CrowdPose GT
            without ``crowdIndex``, COCO GT without ``area``, ambiguous GT categories, a result of
            another category than the GT's keypoint category (it would be ignored: AP 0).
    """
    _check_dataset(dataset)
    if schema is not None and dataset != "coco" and schema.name != DATASET_SCHEMA[dataset]:
        raise DataError(f"keypoint set '{schema.name}': custom keypoint sets are scored with dataset 'coco'")
    k = (schema or get_schema(DATASET_SCHEMA[dataset])).num_keypoints
    gt_name = str(gt) if isinstance(gt, str | Path) else "ground truth"
    gt_data = read_coco_gt(gt, k) if isinstance(gt, str | Path) else gt
    ids = {img["id"] for img in gt_data["images"]}
    res = read_coco_results(results, k, ids) if isinstance(results, str | Path) else list(results)
    person = keypoint_category(gt_data, f"ground truth {gt_name}")
    other = next((i for i, r in enumerate(res) if r.get("category_id") != person), None)
    if other is not None:
        where = f"results {results}" if isinstance(results, str | Path) else "results"
        raise DataError(f"{where}: entry [{other}] has category_id {res[other].get('category_id')!r}, but the "
                        f"people of ground truth {gt_name} are category {person}: write the results with it")
    names = COCO_NAMES if dataset == "coco" else CROWDPOSE_NAMES
    if not res:
        log.warning("no keypoint results to evaluate: every metric is 0")
        return KeypointMetrics(dataset, names, tuple(0.0 for _ in names), len(ids), 0)
    # The evaluators add keys to the entries. A result's `bbox` would become its `area` (the official
    # keypoint protocol takes it from the keypoints' extent): evaluated without it.
    entries = [{k: v for k, v in dict(r).items() if k != "bbox"} for r in copy.deepcopy(res)]
    check_dataset_keys(gt_data, dataset, gt_name)
    if dataset == "coco":
        stats = _coco_stats(gt_data, entries, person, schema.sigmas if schema is not None else None)
    else:
        stats = _crowdpose_stats(gt_data, entries, person)
    return KeypointMetrics(dataset, names, tuple(float(v) for v in stats), len(ids), len(res))


def _coco_stats(
    gt: Mapping[str, Any], res: list[dict[str, Any]], category_id: int, sigmas: Sequence[float] | None = None
) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(dict(gt))
        coco.createIndex()
        dt = coco.loadRes(res)
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.useSegm = None
        ev.params.catIds = [category_id]
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, np.float64)


def _crowdpose_stats(gt: Mapping[str, Any], res: list[dict[str, Any]], category_id: int) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    sigmas = list(get_schema("crowdpose14").sigmas)
    coco = COCO(copy.deepcopy(dict(gt)))
    dt = coco.loadRes(res)
    ev = COCOeval_faster(coco, dt, "keypoints_crowd", kpt_oks_sigmas=sigmas, use_area=False, print_function=log.debug)
    ev.params.catIds = [category_id]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats, np.float64)[: len(CROWDPOSE_NAMES)]
