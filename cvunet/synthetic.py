"""Synthetic matting samples with exact ground truth, generated deterministically from a seed.

Public matting datasets cannot be downloaded here, so quality is measured (and a refiner can be
trained) on composites whose alpha we know exactly: a foreground shape with fine structure —
anti-aliased hair-like strands 0.5–3 px wide, holes, a semi-transparent region, motion blur —
textured with a crop of a real photo and composited over another real-photo crop. Strands are drawn
at 4× resolution and averaged down, so their coverage (alpha) is exact, not a hard mask.
Seeds in :data:`HELD_OUT_SEEDS` are the benchmark; training must draw from other seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from matting.paths import REMBG_FIXTURES

#: Real photos the textures and backgrounds are cropped from (the shared rembg fixture, MIT).
PHOTO_SOURCES = (REMBG_FIXTURES / "anime-girl-1.jpg",)
HELD_OUT_SEEDS = range(1_000_000, 1_000_016)
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SyntheticSample:
    image: np.ndarray  # H×W×3 uint8, the composite
    alpha: np.ndarray  # H×W float32 in [0, 1], exact
    foreground: np.ndarray  # H×W×3 uint8
    background: np.ndarray  # H×W×3 uint8


@lru_cache(maxsize=None)
def _photo(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _photo_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a real photo, rescaled, flipped and colour-shifted, as size×size RGB."""
    photo = _photo(PHOTO_SOURCES[rng.integers(len(PHOTO_SOURCES))])
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.3, 0.7) * min(height, width))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = cv2.resize(photo[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + rng.integers(0, 180)) % 180
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.6, 1.3), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _body(rng: np.random.Generator, big: int) -> np.ndarray:
    """The solid subject: a smooth random blob, drawn at SUPERSAMPLE× resolution."""
    canvas = np.zeros((big, big), np.uint8)
    center = rng.uniform(0.35, 0.65, 2) * big
    angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
    radii = rng.uniform(0.15, 0.32, 12) * big
    points = np.stack([center[0] + radii * np.cos(angles), center[1] + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(canvas, [points.astype(np.int32)], 255)
    return cv2.GaussianBlur(canvas, (0, 0), big / 60) > 127


def _strands(rng: np.random.Generator, big: int, body: np.ndarray, count: int) -> np.ndarray:
    """Hair-like curves leaving the body's edge, 0.5–3 px wide at output resolution."""
    canvas = np.zeros((big, big), np.uint8)
    edge = np.argwhere(body & ~cv2.erode(body.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))
    center = np.argwhere(body).mean(axis=0)
    for _ in range(count):
        y, x = edge[rng.integers(len(edge))]
        direction = np.array([y, x]) - center
        direction /= np.linalg.norm(direction) + 1e-6
        length = rng.uniform(0.08, 0.25) * big
        bend = rng.normal(0, 0.4)
        steps = np.linspace(0, 1, 24)[:, None]
        normal = np.array([-direction[1], direction[0]])
        path = np.array([y, x]) + steps * length * direction + (steps**2) * bend * length * normal
        thickness = max(1, int(round(rng.uniform(0.5, 3.0) * SUPERSAMPLE)))
        cv2.polylines(canvas, [path[:, ::-1].astype(np.int32)], False, 255, thickness, lineType=cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def synthetic_sample(seed: int, size: int = 512) -> SyntheticSample:
    rng = np.random.default_rng(seed)
    big = size * SUPERSAMPLE
    body = _body(rng, big)
    alpha_big = np.maximum(body.astype(np.float32), _strands(rng, big, body, int(rng.integers(20, 60))))
    for _ in range(int(rng.integers(1, 4))):  # holes through the subject
        hole = np.zeros((big, big), np.uint8)
        center = tuple(int(v) for v in np.argwhere(body)[rng.integers(body.sum())][::-1])
        axes = tuple(int(v) for v in rng.uniform(0.01, 0.04, 2) * big)
        cv2.ellipse(hole, center, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        alpha_big[hole > 0] = 0.0
    alpha = cv2.resize(alpha_big, (size, size), interpolation=cv2.INTER_AREA)
    translucent = np.zeros((size, size), np.uint8)  # a veil-like semi-transparent patch
    center = tuple(int(v) for v in rng.uniform(0.2, 0.8, 2) * size)
    cv2.ellipse(translucent, center, tuple(int(v) for v in rng.uniform(0.05, 0.15, 2) * size), 0, 0, 360, 255, -1)
    alpha = np.where(translucent > 0, np.maximum(alpha * rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5)), alpha)
    if rng.random() < 0.5:  # motion blur over the whole subject
        length = int(rng.integers(5, 15))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        alpha = cv2.filter2D(alpha, -1, kernel / kernel.sum())
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    foreground, background = _photo_crop(rng, size), _photo_crop(rng, size)
    composite = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    return SyntheticSample(np.clip(composite + 0.5, 0, 255).astype(np.uint8), alpha, foreground, background)
