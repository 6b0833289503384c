"""Temporal smoothing of a video's mattes: less flicker where nothing moves, no lag where something does.

A network mattes each frame on its own, so sensor noise and compression make a still subject's edges
shimmer from frame to frame. An exponential moving average of the network's low-resolution matte calms
that, but it would also drag a moving edge behind the subject. So the average is gated by motion: where
the frame itself changed (its blurred luminance, so that noise does not count as motion), or where the
matte changed by more than flicker does (an edge moved between two similar brightnesses), the new matte
is taken as it is. ``bench/video_flicker.py`` measures both effects with the served networks; these
values lowered flicker by ~60 % with both networks and kept the IoU of a moving subject within 0.001.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The previous matte's weight where nothing moved: 0.7 keeps 30 % of each new frame's matte.
STRENGTH = 0.7
#: A change of the blurred luminance this large (0..1) counts as full motion: the new matte is taken as it is.
FULL_MOTION = 0.08
#: A change of the matte (0..1) up to MATTE_FLICKER is flicker; from there to MATTE_MOVED it counts more and
#: more as motion (measured: 0.25–0.4 and 0.5–0.7 do about as well).
MATTE_FLICKER = 0.3
MATTE_MOVED = 0.6
#: Side of the box blur, in pixels of the network's resolution, that averages noise out of the motion measure.
BLUR = 5


def motion_guide(frame: np.ndarray, size: int) -> np.ndarray:
    """What motion is measured on: the RGB uint8 frame as blurred float32 luminance in [0, 1] at the
    network's ``size``², where the matte is smoothed."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cv2.blur(small, (BLUR, BLUR), borderType=cv2.BORDER_REFLECT)


def motion(guide: np.ndarray, previous_guide: np.ndarray, matte: np.ndarray, previous_matte: np.ndarray) -> np.ndarray:
    """Per pixel how much moved since the previous frame, 0 (still) to 1: the frame's change against FULL_MOTION
    or the matte's beyond flicker, whichever says more."""
    frame_motion = np.abs(guide - previous_guide) / FULL_MOTION
    matte_motion = (np.abs(matte - previous_matte) - MATTE_FLICKER) / (MATTE_MOVED - MATTE_FLICKER)
    return np.clip(np.maximum(frame_motion, matte_motion), 0.0, 1.0)


def smoothed_matte(matte: np.ndarray, previous_matte: np.ndarray, moved: np.ndarray,
                   strength: float = STRENGTH) -> np.ndarray:
    """The exponential moving average of the float mattes in [0, 1], with the previous (already smoothed)
    matte weighted ``strength`` where nothing moved and not at all where everything did."""
    weight = strength * (1.0 - moved)
    return (weight * previous_matte + (1.0 - weight) * matte).astype(np.float32)
