"""Settings of the person detectors and of detect-every-N (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

#: Detector names ``detect.model`` accepts (the sizes of :data:`stip_rt.nn.rtmdet.SIZES`).
DETECTORS = ("rtmdet-tiny", "rtmdet-s", "rtmdet-m", "rtmdet-l")


@dataclass(frozen=True)
class RTMDetDetectorConfig:
    """How the detector runs (defaults: 640 input, thresholds of a tracking pipeline).

    Attributes:
        input_size: side of the square network input in pixels, a multiple of 32 (e.g. 416, 640).
        score_threshold: minimum person score kept (mmdet evaluates at 0.001; 0.3 suits tracking).
        iou_threshold: NMS IoU threshold (official RTMDet ``test_cfg``: 0.65).
        nms_pre: at most this many best-scored points per frame enter NMS.
        max_per_image: at most this many people per frame after NMS.
        class_index: detector class kept (COCO ``person`` = 0).
    """

    input_size: int = 640
    score_threshold: float = 0.3
    iou_threshold: float = 0.65
    nms_pre: int = 1000
    max_per_image: int = 100
    class_index: int = 0  # COCO 'person' (stip_rt.nn.rtmdet.PERSON_CLASS)

    def __post_init__(self) -> None:
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"'input_size' must be a positive multiple of 32, got {self.input_size}")
        if not 0.0 <= self.score_threshold <= 1.0 or not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError("'score_threshold' and 'iou_threshold' must be in [0, 1]")
        if self.nms_pre < 1 or self.max_per_image < 1:
            raise ValueError("'nms_pre' and 'max_per_image' must be >= 1")


@dataclass(frozen=True)
class IntervalConfig:
    """Detection interval and how boxes are made from tracked poses.

    Attributes:
        every: run the detector on one frame in ``every`` (1: every frame).
        expansion: keypoint-extent box scale about its centre (rtmlib/RTMPose: 1.25).
        min_keypoint_score: a keypoint counts as visible from this score.
        min_visible: fewer visible keypoints than this → the tracked box is used.
    """

    every: int = 5
    expansion: float = 1.25
    min_keypoint_score: float = 0.3
    min_visible: int = 2

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"'every' must be >= 1, got {self.every}")
        if self.expansion <= 0:
            raise ValueError(f"'expansion' must be > 0, got {self.expansion}")
        if self.min_visible < 1:
            raise ValueError(f"'min_visible' must be >= 1, got {self.min_visible}")
