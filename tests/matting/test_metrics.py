"""The matting metrics on hand-made mattes whose errors can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from matting.metrics import all_metrics, connectivity_error, gradient_error, iou, mae, mse, sad


def test_identical_mattes_score_zero():
    truth = np.random.default_rng(0).random((40, 50))
    assert all_metrics(truth, truth) == {"SAD": 0.0, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0, "MAE": 0.0, "IoU": 1.0}


def test_sad_and_mse_by_hand():
    truth = np.zeros((10, 10))
    predicted = truth.copy()
    predicted[:2, :5] = 0.5  # 10 pixels off by 0.5
    assert sad(predicted, truth) == pytest.approx(5 / 1000)
    assert mse(predicted, truth) == pytest.approx(10 * 0.25 / 100)
    region = np.zeros((10, 10), bool)
    region[0, :] = True  # 5 of the wrong pixels, 10 pixels in all
    assert sad(predicted, truth, region) == pytest.approx(2.5 / 1000)
    assert mse(predicted, truth, region) == pytest.approx(5 * 0.25 / 10)


def test_gradient_error_sees_blur_but_not_a_constant_offset_inside_flat_areas():
    truth = np.zeros((64, 64))
    truth[:, 32:] = 1.0
    blurred = truth.copy()
    blurred[:, 28:36] = np.linspace(0, 1, 8)
    assert gradient_error(blurred, truth) > 0.001
    flat_region = np.zeros_like(truth, bool)
    flat_region[:, :16] = True
    assert gradient_error(truth + 0.2, truth, flat_region) == pytest.approx(0.0, abs=1e-12)


def test_connectivity_by_hand():
    """A 4×4 subject predicted at half opacity: it stays connected up to threshold 0.5, so its
    level is 0.5; φ is 1 for the prediction (0.5 − 0.5 < θ) and 0.5 for the truth (1 − 0.5 ≥ θ)."""
    truth = np.zeros((12, 12))
    truth[4:8, 4:8] = 1.0
    predicted = truth * 0.5
    assert connectivity_error(predicted, truth) == pytest.approx(16 * 0.5 / 1000)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes differ"):
        sad(np.zeros((2, 2)), np.zeros((2, 3)))


def test_mae_and_iou_by_hand():
    truth = np.zeros((10, 10))
    truth[:, :5] = 1.0  # 50 foreground pixels
    predicted = truth.copy()
    predicted[:, 5] = 0.8  # 10 more pixels above the cut
    predicted[0, 0] = 0.3  # one foreground pixel lost
    assert mae(predicted, truth) == pytest.approx((10 * 0.8 + 0.7) / 100)
    assert iou(predicted, truth) == pytest.approx(49 / 60)
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
