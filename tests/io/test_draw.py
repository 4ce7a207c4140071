"""Drawing: stable id colours, thresholds, skeleton links, labels kept inside the image."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from io_fakes import make_tracks

from stip_rt.io.draw import Trails, draw_people, draw_tracks, draw_trails, id_color
from stip_rt.schemas import COCO17, CROWDPOSE14
from stip_rt.types import Tracks


def _canvas(h: int = 240, w: int = 320) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def test_id_colors_are_stable_and_distinct() -> None:
    assert id_color(7) == id_color(7)
    colors = np.array([id_color(i) for i in range(1, 21)], float)
    nearest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(colors, 2))
    assert nearest > 20  # no two of the first 20 ids look alike
    assert all(0 <= c <= 255 for c in colors.ravel())


def test_draws_in_place_inside_the_person() -> None:
    img = _canvas()
    boxes = np.array([[100, 60, 180, 200]], np.float32)
    out = draw_people(img, boxes, None, ids=np.array([3]), schema=None, show_ids=False, thickness=2)
    assert out is img
    ys, xs = np.nonzero(img.any(2))
    assert ys.min() >= 58 and ys.max() <= 202 and xs.min() >= 98 and xs.max() <= 182
    assert tuple(img[130, 100]) == id_color(3)  # the box's left edge, in the id's colour


def test_low_score_keypoints_are_not_drawn() -> None:
    img = _canvas()
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, :, :2] = np.random.default_rng(0).uniform(50, 150, (17, 2))
    kps[0, :, 2] = 0.29
    draw_people(img, np.array([[40, 40, 160, 160]], np.float32), kps, ids=np.array([1]), schema=COCO17,
                kpt_threshold=0.3, show_boxes=False, show_ids=False)  # fmt: skip
    assert not img.any()
    kps[0, :, 2] = 0.31
    draw_people(img, np.array([[40, 40, 160, 160]], np.float32), kps, ids=np.array([1]), schema=COCO17,
                kpt_threshold=0.3, show_boxes=False, show_ids=False)  # fmt: skip
    assert img.any()


def test_link_drawn_only_between_confident_joints() -> None:
    # two joints of the link (left_ankle 15 → left_knee 13); the midpoint is far from both joint dots
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 15] = (60, 200, 0.9)
    kps[0, 13] = (60, 60, 0.9)
    img = _canvas()
    draw_people(img, np.zeros((1, 4), np.float32), kps, ids=np.array([5]), schema=COCO17,
                show_boxes=False, show_ids=False, thickness=3)  # fmt: skip
    assert tuple(img[130, 60]) == id_color(5)
    kps[0, 13, 2] = 0.1
    img = _canvas()
    draw_people(img, np.zeros((1, 4), np.float32), kps, ids=np.array([5]), schema=COCO17,
                show_boxes=False, show_ids=False, thickness=3)  # fmt: skip
    assert not img[130, 60].any()


def test_without_ids_links_use_schema_colours() -> None:
    kps = np.zeros((1, 14, 3), np.float32)
    a, b = CROWDPOSE14.links[0]  # head → neck
    kps[0, a] = (100, 40, 1.0)
    kps[0, b] = (100, 160, 1.0)
    img = _canvas()
    draw_people(img, np.zeros((1, 4), np.float32), kps, schema=CROWDPOSE14, show_boxes=False, thickness=3)
    assert tuple(img[100, 100]) == CROWDPOSE14.link_colors[0]


def test_label_stays_inside_the_image() -> None:
    img = _canvas()
    draw_people(img, np.array([[300, 0, 330, 50]], np.float32), None, ids=np.array([1234]), show_boxes=False)
    ys, xs = np.nonzero(img.any(2))
    assert len(ys) > 0 and xs.max() < 320 and ys.min() >= 0


def test_draw_tracks_equals_draw_people() -> None:
    t = make_tracks(2, 3)
    a = draw_tracks(_canvas(), t, COCO17, kpt_threshold=0.5)
    b = draw_people(_canvas(), t.boxes, t.keypoints, ids=t.ids, schema=COCO17, kpt_threshold=0.5)
    assert np.array_equal(a, b) and a.any()


@pytest.mark.parametrize("keypoints", [True, False])
def test_empty_frame_draws_nothing(keypoints: bool) -> None:
    img = _canvas()
    draw_tracks(img, Tracks.empty(17 if keypoints else None), COCO17)
    assert not img.any()


def _box_tracks(ids: list[int], feet: list[tuple[float, float]]) -> Tracks:
    n = len(ids)
    boxes = np.array([[x - 10, y - 40, x + 10, y] for x, y in feet], np.float32).reshape(n, 4)
    ones = np.ones(n, np.float32)
    return Tracks(np.array(ids, np.int64), boxes, ones, None, ones, np.arange(n, dtype=np.int64))


def test_trails_keep_the_last_n_frames_per_track() -> None:
    trails = Trails(length=5)
    for f in range(8):
        ids, feet = [1], [(20.0 + 10 * f, 200.0)]
        if f < 3:  # track 2 is lost after frame 2: its trail shrinks, then is forgotten
            ids.append(2)
            feet.append((300.0, 50.0 + 10 * f))
        trails.update(f, _box_tracks(ids, feet))
        if f == 4:
            assert trails.points()[2].tolist() == [[300.0, 50.0], [300.0, 60.0], [300.0, 70.0]]
        if f == 6:
            assert trails.points()[2].tolist() == [[300.0, 70.0]]
    pts = trails.points()
    assert list(pts) == [1]
    assert pts[1][:, 0].tolist() == [50.0, 60.0, 70.0, 80.0, 90.0]  # frames 3..7, box bottom centres
    assert (pts[1][:, 1] == 200).all()
    with pytest.raises(ValueError, match="at least 1"):
        Trails(0)


def test_draw_trails_in_the_track_colour_along_the_path() -> None:
    trails = Trails(30)
    for f in range(10):
        trails.update(f, _box_tracks([4, 9], [(40.0 + 20 * f, 100.0), (60.0, 40.0 + 15 * f)]))
    img = _canvas()
    out = draw_trails(img, trails, thickness=3)
    assert out is img
    assert tuple(img[100, 150]) == id_color(4)  # on track 4's horizontal path
    assert tuple(img[120, 60]) == id_color(9)  # on track 9's vertical path
    ys, xs = np.nonzero(img.any(2))
    assert ys.min() >= 36 and ys.max() <= 186 and xs.min() >= 36 and xs.max() <= 224
    # the newest end is drawn thicker than the oldest
    assert np.count_nonzero(img[:, 215].any(1)) > np.count_nonzero(img[:, 45].any(1))
    blank = _canvas()
    draw_trails(blank, Trails(5))
    assert not blank.any()
