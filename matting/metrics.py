"""Alpha-matte error metrics as defined by the alphamatting.com benchmark and Deep Image Matting.

All take ``predicted`` and ``truth`` as float arrays in [0, 1] of the same H×W shape and an
optional boolean ``region`` (e.g. a trimap's unknown band; default: the whole image):

- SAD: sum of absolute differences, ÷1000.
- MSE: mean squared error over the region.
- Grad: sum of squared differences of Gaussian-derivative gradient magnitudes (σ = 1.4), ÷1000.
- Conn: connectivity error (threshold step 0.1, θ = 0.15), ÷1000.
- MAE: mean absolute error over the region, and IoU: intersection over union of the mattes cut at 0.5 —
  how segmentation-style evaluations with crisp human-made masks score a matte.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
CONNECTIVITY_THETA = 0.15


def _check(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    if predicted.shape != truth.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, truth {truth.shape}")
    return np.ones(truth.shape, bool) if region is None else region.astype(bool)


def sad(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    region = _check(predicted, truth, region)
    return float(np.abs(predicted - truth)[region].sum() / 1000)


def mse(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    region = _check(predicted, truth, region)
    return float(((predicted - truth) ** 2)[region].mean()) if region.any() else 0.0


def gradient_error(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    region = _check(predicted, truth, region)
    predicted_gradient = ndimage.gaussian_gradient_magnitude(predicted.astype(np.float64), GRADIENT_SIGMA)
    truth_gradient = ndimage.gaussian_gradient_magnitude(truth.astype(np.float64), GRADIENT_SIGMA)
    return float(((predicted_gradient - truth_gradient) ** 2)[region].sum() / 1000)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def connectivity_error(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Penalises alpha that is disconnected from the main foreground, as a viewer would see it.

    For each pixel, ``level`` is the last threshold at which it still belonged to the largest
    component common to both mattes; the per-pixel degree of connectivity is
    φ = 1 − (α − level)·[α − level ≥ θ].
    """
    region = _check(predicted, truth, region)
    thresholds = np.arange(0.0, 1.0 + CONNECTIVITY_STEP / 2, CONNECTIVITY_STEP)
    level = np.full(truth.shape, -1.0)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:]):
        connected = _largest_component((predicted >= threshold) & (truth >= threshold))
        level[(level == -1) & ~connected] = previous
    level[level == -1] = 1.0

    def degree(alpha: np.ndarray) -> np.ndarray:
        distance = alpha - level
        return 1 - distance * (distance >= CONNECTIVITY_THETA)

    return float(np.abs(degree(predicted) - degree(truth))[region].sum() / 1000)


def mae(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    region = _check(predicted, truth, region)
    return float(np.abs(predicted - truth)[region].mean()) if region.any() else 0.0


def iou(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None, threshold: float = 0.5) -> float:
    """1.0 when neither matte has foreground in the region."""
    region = _check(predicted, truth, region)
    ours, theirs = (predicted > threshold) & region, (truth > threshold) & region
    union = (ours | theirs).sum()
    return float((ours & theirs).sum() / union) if union else 1.0


def all_metrics(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    return {
        "SAD": sad(predicted, truth, region),
        "MSE": mse(predicted, truth, region),
        "Grad": gradient_error(predicted, truth, region),
        "Conn": connectivity_error(predicted, truth, region),
        "MAE": mae(predicted, truth, region),
        "IoU": iou(predicted, truth, region),
    }
