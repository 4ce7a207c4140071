"""The cross-frame batching policy of the pose stage, and how it meets detect-every-N."""

from __future__ import annotations

from collections import deque

import pytest

from stip_rt.pose_batching import FrameBatcher, batch_length, batch_limit


def test_limit_is_batch_frames_for_files_and_one_for_live():
    assert batch_limit(4, live=False) == 4
    assert batch_limit(4, live=True) == 1
    assert batch_limit(0, live=False) == 1


def test_batch_length_stops_before_a_frame_that_needs_tracks():
    assert batch_length([False] * 6, 4) == 4
    assert batch_length([False, False], 4) == 2  # never more than what waits
    assert batch_length([True, False, False, True, False], 8) == 3  # a tracks frame may start a batch
    assert batch_length([False, True, False], 8) == 1
    with pytest.raises(ValueError):
        batch_length([], 4)


def _cut(needs: list[bool], limit: int) -> list[list[int]]:
    """Batches of frame numbers when all ``needs`` frames are already waiting."""
    batcher: FrameBatcher[int] = FrameBatcher(limit, lambda i: needs[i])
    waiting = deque(range(len(needs)))
    out = []
    while waiting or batcher.pending:
        if not batcher.pending:
            batcher.add(waiting.popleft())
        batcher.fill(lambda: waiting.popleft() if waiting else None)
        out.append(batcher.take())
    return out


def test_every_frame_detected_fills_batches():
    assert _cut([False] * 10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_detect_every_3_batches_only_the_frame_before_a_detection_frame():
    every = 3
    needs = [i % every != 0 for i in range(10)]  # detection frames 0, 3, 6, 9
    assert _cut(needs, 4) == [[0], [1], [2, 3], [4], [5, 6], [7], [8, 9]]
    # the order of frames is kept and every frame is in exactly one batch
    assert [i for b in _cut(needs, 4) for i in b] == list(range(10))


def test_live_runs_one_frame_per_batch():
    assert _cut([False] * 3, batch_limit(8, live=True)) == [[0], [1], [2]]


def test_never_waits_for_more_frames():
    batcher: FrameBatcher[int] = FrameBatcher(4, lambda i: False)
    batcher.add(0)
    batcher.fill(lambda: None)  # nothing else is waiting: run frame 0 alone now
    assert batcher.take() == [0]


def test_fill_stops_pulling_once_the_batch_is_closed():
    pulled = []
    source = iter(range(1, 10))

    def get_waiting():
        i = next(source)
        pulled.append(i)
        return i

    batcher: FrameBatcher[int] = FrameBatcher(8, lambda i: i == 2)  # frame 2 needs frame 1's tracks
    batcher.add(0)
    batcher.fill(get_waiting)
    assert pulled == [1, 2]  # frame 3 stays in the queue
    assert batcher.take() == [0, 1] and list(batcher.pending) == [2]
