"""The work of each pipeline stage, one frame (or one pose batch) at a time, without threads or queues.

:mod:`stip_rt.pipeline` runs each step on its own thread and moves :class:`~stip_rt.stage_item.FrameItem`
objects between them; everything a stage *does* is here (the sink stage in :mod:`stip_rt.sink_step`), so it
can be tested with fakes and no thread::

    steps = make_steps(parts, config, sinks, needs_image, recorder)  # all of them, for one run
    read, detect, pose = steps.read, steps.detect, steps.pose         # (also steps.batcher,
    track, sink = steps.track, steps.sink                             #  pose_batching.FrameBatcher)

    item = read(timeout)            # FrameItem, None at the end; queue.Empty: nothing yet
    detect(item)                    # item.dets set on detection frames, else left None
    pose(batch, cancel)             # batch from pose_batching.FrameBatcher; False: cancelled
    released = track(item)          # items now complete (tracks set, back-filled), in order;
    ...                             # the undelayed tracks are published to `feedback` at once
    released = track.flush()        # the items still held, at the end of the stream
    result = sink(item)             # FrameResult written to every sink (sink_step.SinkStep)

The one feedback edge: a frame that is not a detection frame (detect-every-N) gets its boxes from
the previous frame's tracks (a guide snapshot predicted to that frame), so :class:`PoseStep` waits on
:class:`~stip_rt.track_feedback.TrackFeedback`, which :class:`TrackStep` publishes to (see
``docs/pipeline.md``, "Detect every N and pose batches").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .detect.interval import DetectEveryN, every_n
from .io.base import Sink
from .io.threaded_source import ThreadedSource, frame_feed
from .pipeline_config import PipelineParts
from .pose_batching import FrameBatcher, batch_limit
from .run_config import RunConfig
from .sink_step import SinkStep
from .stage_item import FrameItem, NullRecorder, Recorder, record_time
from .track.backfill import DelayedOutput
from .track.guide import GuideSnapshot
from .track_feedback import TrackFeedback
from .types import Detections, Poses, Tracks


class ReadStep:
    """Source stage: the next frame from the source's own buffer (no thread or queue of its own).

    Args:
        feed: the source's reader (:func:`stip_rt.io.threaded_source.frame_feed`).
        recorder: gets ``decode`` times and the source's dropped count.

    Attributes:
        last_index: frame index of the last frame read (errors name the frame after it).
    """

    def __init__(self, feed: ThreadedSource, recorder: Recorder | None = None) -> None:
        self.feed = feed
        self.recorder = recorder or NullRecorder()
        self.last_index: int | None = None
        self._seq = 0

    def __call__(self, timeout: float | None = None) -> FrameItem | None:
        """The next frame as a :class:`FrameItem`, or None at the end.

        Raises:
            queue.Empty: no frame within ``timeout``.
            StipError: the source's error, after every frame read before it.
        """
        got = self.feed.read(timeout)
        self.recorder.set_dropped(self.feed.dropped)
        if got is None:
            return None
        item = FrameItem(self._seq, got.frame, got.t_capture)
        record_time(self.recorder, item, "decode", got.decode_s)
        self._seq += 1
        self.last_index = got.frame.index
        return item


class DetectStep:
    """Detect stage: runs the detector on detection frames (step 1 of :class:`DetectEveryN`)."""

    def __init__(self, every: DetectEveryN, recorder: Recorder | None = None) -> None:
        self.every = every
        self.recorder = recorder or NullRecorder()

    def __call__(self, item: FrameItem) -> None:
        """Set ``item.dets`` when ``item`` is a detection frame; else leave it None for the pose step."""
        if not self.every.is_detection_frame(item.frame.index):
            return
        t0 = time.perf_counter()
        item.dets = self.every.run_detector([item.frame.image], [item.frame.index])[0]
        record_time(self.recorder, item, "detect", time.perf_counter() - t0)
        self.recorder.detector_ran()


def estimate_frames(estimator: Any, images: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Poses]:
    """Poses of several frames: one ``estimator.estimate_frames`` call (one network batch) when the
    estimator has it, else one ``estimator(image, detections)`` call per frame; box-only when None.

    Args:
        estimator: ``PoseEstimator``-like object, or None (box-only tracking).
        images: (H, W, 3) uint8 BGR frames.
        detections: their boxes, one :class:`Detections` per frame.
    """
    if estimator is None:
        return [Poses.from_detections(d) for d in detections]
    batched = getattr(estimator, "estimate_frames", None)
    if batched is not None:
        out = list(batched(list(images), list(detections)))
        if len(out) != len(images):
            raise ValueError(f"estimate_frames returned {len(out)} results for {len(images)} frames")
        return out
    return [estimator(img, d) for img, d in zip(images, detections)]


class PoseStep:
    """Pose stage: boxes of frames without detection (step 2 of :class:`DetectEveryN`), then one
    pose estimate for a whole batch of frames (:class:`stip_rt.pose_batching.FrameBatcher`).

    Args:
        estimator: ``PoseEstimator``-like (``estimate_frames`` or ``__call__``), or None (box-only).
        every: the detect-every-N object shared with the :class:`DetectStep`.
        feedback: where the track step publishes each frame's tracks.
        recorder: gets ``pose`` times (a batch's time shared equally by its frames) and fallback
            ``detect`` times.
    """

    def __init__(
        self, estimator: Any, every: DetectEveryN, feedback: TrackFeedback, recorder: Recorder | None = None
    ) -> None:
        self.estimator = estimator
        self.every = every
        self.feedback = feedback
        self.recorder = recorder or NullRecorder()
        self.last_seq = -1  # the last item this step passed on (live input may skip some)

    def __call__(self, batch: Sequence[FrameItem], cancel: threading.Event | None = None) -> bool:
        """Fill ``poses`` (and ``dets`` where missing) of every item of ``batch``.

        Only ``batch[0]`` may lack boxes (the batching policy); it then waits for the tracks of
        the item before it. Returns False when ``cancel`` was set during that wait (nothing done).
        """
        if not batch:
            return True
        if any(item.dets is None for item in batch[1:]):
            raise ValueError("a frame whose boxes come from tracks must start its pose batch")
        first = batch[0]
        if first.dets is None:
            previous = self.feedback.tracks_for(self.last_seq, first.frame, cancel)
            if previous is None:
                return False
            t0 = time.perf_counter()
            first.dets, ran = self.every.boxes_for(first.frame.image, first.frame.index, previous)
            first.guided = not ran
            if ran:  # nobody tracked: the detector ran on this frame
                record_time(self.recorder, first, "detect", time.perf_counter() - t0)
                self.recorder.detector_ran()
        t0 = time.perf_counter()
        images = [item.frame.image for item in batch]
        dets = [item.dets for item in batch if item.dets is not None]  # all set by now
        poses = estimate_frames(self.estimator, images, dets)
        share = (time.perf_counter() - t0) / len(batch)
        for item, p in zip(batch, poses):
            item.poses = p
            record_time(self.recorder, item, "pose", share)
        self.last_seq = batch[-1].seq
        return True


class TrackStep:
    """Track stage: the tracker on one frame, its undelayed tracks published for the pose step.

    With a tracker that back-fills (``backfill`` and ``backfill_frames``, as
    :class:`stip_rt.track.tracker.Tracker`), frames leave through a
    :class:`~stip_rt.track.backfill.DelayedOutput`: each is held until no track that was tentative
    in it can still be confirmed, so every track is output from its first matched frame. Frames
    still come out in order, each exactly once; :meth:`flush` releases the held ones at the end.

    Args:
        tracker: ``update(poses, frame_index) -> Tracks`` (a plain one passes frames straight on); one that
            back-fills also gets the frame's time, ``update(poses, frame_index, time)`` (variable frame rates).
        feedback: where the undelayed tracks are published (the pose step must not wait for the delay).
        recorder: gets ``track`` times.
        delay: frames to hold: None = the tracker's ``backfill_frames`` (files); 0 = none (live sources).
        guide: publish the tracker's :meth:`~stip_rt.track.tracker.Tracker.guide_snapshot` (detect every
            N: the pose step predicts it to the next frame it processes, see :class:`TrackFeedback`), when
            it has one, instead of its output.
        coast_every: box-only tracking with detection every ``coast_every`` frames (> 1): a frame whose
            boxes came from the tracks (``item.guided``) is not tracked on them, the tracker coasts through
            it (``coast(frame_index, time)``, when it has one: prediction only, nothing measured there),
            and ``delay=None`` holds ``backfill_frames × coast_every`` frames (a tentative track is
            confirmed on detection frames only). 0 or 1: every frame is tracked on its boxes.
    """

    def __init__(
        self,
        tracker: Any,
        feedback: TrackFeedback,
        recorder: Recorder | None = None,
        *,
        delay: int | None = None,
        guide: bool = False,
        coast_every: int = 0,
    ) -> None:
        self.tracker = tracker
        self.feedback = feedback
        self._guide = getattr(tracker, "guide_snapshot", None) if guide else None
        self._coasts = coast_every > 1 and hasattr(tracker, "coast")
        self.recorder = recorder or NullRecorder()
        backfills = hasattr(tracker, "backfill") and hasattr(tracker, "backfill_frames")
        if backfills and delay is None and self._coasts:
            delay = tracker.backfill_frames * coast_every
        self._out: DelayedOutput[FrameItem] | None = DelayedOutput(tracker, delay) if backfills else None

    def __call__(self, item: FrameItem) -> list[FrameItem]:
        """Track ``item`` (or coast through it, see ``coast_every``); return the items released now
        (``tracks`` set), oldest first.

        Raises:
            ValueError: ``item`` has no poses. The tracker's errors pass through; the items held
                before stay held (:meth:`flush` releases them).
        """
        if item.poses is None:
            raise ValueError(f"frame {item.frame.index}: no poses to track")
        t0 = time.perf_counter()
        coast = self._coasts and item.guided
        if self._out is None:
            if coast:
                tracks = self.tracker.coast(item.frame.index, item.frame.time)
            else:
                tracks = self.tracker.update(item.poses, item.frame.index)
            released = [(item, tracks)]
        else:
            if coast:
                released = self._out.coast(item.frame.index, payload=item, time=item.frame.time)
            else:
                released = self._out.update(item.poses, item.frame.index, payload=item, time=item.frame.time)
            tracks = self._out.latest
        published: Tracks | GuideSnapshot = tracks
        if self._guide is not None:  # predicted to the next frame the pose step gets (which may skip some)
            published = self._guide()
        record_time(self.recorder, item, "track", time.perf_counter() - t0)
        self.feedback.publish(item.seq, published)
        return _with_tracks(released)

    @property
    def delay(self) -> int:
        """Frames an item is held at most (0: items leave as soon as they are tracked)."""
        return 0 if self._out is None else self._out.delay

    def flush(self) -> list[FrameItem]:
        """Release every item still held (end of stream, error or stop), oldest first."""
        return [] if self._out is None else _with_tracks(self._out.flush())


def _with_tracks(released: Sequence[tuple[FrameItem, Tracks]]) -> list[FrameItem]:
    for item, tracks in released:
        item.tracks = tracks
    return [item for item, _ in released]


@dataclass(frozen=True)
class Steps:
    """The steps of one run (they share the detect-every-N object and the track feedback)."""

    read: ReadStep
    detect: DetectStep
    batcher: FrameBatcher[FrameItem]
    pose: PoseStep
    track: TrackStep
    sink: SinkStep


def make_steps(
    parts: PipelineParts, config: RunConfig, sinks: Sequence[Sink], needs_image: bool, recorder: Recorder
) -> Steps:
    """The steps of a run of ``parts``: the source read through its own reader thread and buffer
    (``config.source.buffer_size``), detect every ``config.detect.interval.every`` frames, pose
    batches of up to ``config.pose.batch_frames`` frames (files; live sources: 1), tracks
    back-filled to each track's first frame (files; live sources: no delay, no back-fill); box-only
    runs coast the tracks through the frames without detection (:meth:`Tracker.coast
    <stip_rt.track.tracker.Tracker.coast>`), pose runs track the poses found in the guide boxes."""
    every = every_n(parts.detector, config.detect.interval, to_boxes=parts.boxes_from_tracks)
    feedback = TrackFeedback()
    return Steps(
        ReadStep(frame_feed(parts.source, config.source.buffer_size), recorder),
        DetectStep(every, recorder),
        FrameBatcher(batch_limit(config.pose.batch_frames, parts.run.source.live), _needs_tracks),
        PoseStep(parts.estimator, every, feedback, recorder),
        TrackStep(
            parts.tracker,
            feedback,
            recorder,
            delay=0 if parts.run.source.live else None,
            guide=every.needs_tracks,
            coast_every=every.every if parts.estimator is None else 0,
        ),
        SinkStep(sinks, needs_image, recorder),
    )


def _needs_tracks(item: FrameItem) -> bool:
    return item.needs_tracks
