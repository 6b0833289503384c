"""matting.temporal: the motion-gated moving average calms a still subject's matte and leaves a moving one alone."""

from __future__ import annotations

import numpy as np

from matting.temporal import MATTE_MOVED, STRENGTH, motion, motion_guide, smoothed_matte

SIZE = 64
STILL_MATTE = np.zeros((SIZE, SIZE), np.float32)


def square_frame(left: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A 128×128 RGB frame: a bright square at column ``left`` on a dark background, with Gaussian pixel noise."""
    frame = np.full((128, 128, 3), 30.0)
    frame[32:96, left:left + 48] = 220.0
    frame += np.random.default_rng(seed).normal(0.0, noise, frame.shape)
    return frame.clip(0, 255).astype(np.uint8)


def test_the_guide_is_blurred_luminance_at_the_networks_size():
    guide = motion_guide(square_frame(20), SIZE)
    assert guide.shape == (SIZE, SIZE) and guide.dtype == np.float32
    assert 0.0 <= guide.min() < 0.2 and 0.8 < guide.max() <= 1.0


def guides(*frames: np.ndarray) -> list[np.ndarray]:
    return [motion_guide(frame, SIZE) for frame in frames]


def test_pixel_noise_is_not_motion_but_a_moved_edge_is():
    still = motion(*guides(square_frame(20, noise=8, seed=1), square_frame(20, noise=8, seed=2)), STILL_MATTE, STILL_MATTE)
    assert still.max() < 0.5 and still.mean() < 0.1
    moved = motion(*guides(square_frame(28), square_frame(20)), STILL_MATTE, STILL_MATTE)
    assert moved.max() == 1.0
    assert moved[:, :5].max() == 0.0, "far from the edges nothing moved"


def test_a_matte_that_changes_more_than_flicker_counts_as_motion_in_a_still_frame():
    """An edge between two similar brightnesses barely changes the frame; the network still sees it move."""
    frame = guides(square_frame(20))[0]
    assert motion(frame, frame, STILL_MATTE + 0.1, STILL_MATTE).max() == 0.0, "flicker"
    assert motion(frame, frame, STILL_MATTE + MATTE_MOVED, STILL_MATTE).min() == 1.0


def test_still_pixels_are_averaged_and_moved_pixels_take_the_new_matte():
    previous, new = np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32)
    moved = np.zeros((4, 4), np.float32)
    moved[:, 2:] = 1.0
    smoothed = smoothed_matte(new, previous, moved)
    assert np.allclose(smoothed[:, :2], 1.0 - STRENGTH)
    assert (smoothed[:, 2:] == 1.0).all()
    assert (smoothed_matte(new, previous, moved, strength=0.0) == new).all()


def test_a_flickering_still_matte_settles():
    rng = np.random.default_rng(0)
    truth = np.zeros((SIZE, SIZE), np.float32)
    truth[16:48, 16:48] = 1.0
    raw = [np.clip(truth + rng.normal(0.0, 0.1, truth.shape), 0, 1).astype(np.float32) for _ in range(12)]
    still = np.zeros_like(truth)
    smoothed = [raw[0]]
    for matte in raw[1:]:
        smoothed.append(smoothed_matte(matte, smoothed[-1], still))

    def flicker(mattes):
        return float(np.mean([np.abs(after - before).mean() for before, after in zip(mattes, mattes[1:])]))

    assert flicker(smoothed) < 0.6 * flicker(raw)
