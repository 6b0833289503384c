"""Full-resolution refinement of a low-resolution matte: guided-filter upsampling, closed-form band.

U²-Netp predicts at 320×320; resizing that to a 12-megapixel photo gives soft, blobby edges. The
guided filter (He et al., "Guided Image Filtering"; the fast variant of He & Sun, 2015) fits a local
linear model alpha ≈ a·I + b in every window of the photo's luminance I, so the upsampled matte
follows the photo's edges. Coefficients are computed at a working resolution and upsampled, which
keeps the cost almost independent of the photo's size. OpenCV box filters do the heavy lifting.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from matting.networks import resized_matte


@dataclass(frozen=True)
class GuidedFilter:
    #: Window radius in working-resolution pixels.
    radius: int = 8
    #: Regularisation: larger keeps the network's matte, smaller follows the photo's edges more.
    eps: float = 1e-3
    #: Long side of the working resolution (the photo is never upsampled).
    working_size: int = 1024

    #: Guide on the RGB photo (He et al.'s colour filter: edges between colours of equal brightness
    #: count) or on its luminance only (cheaper).
    color: bool = True

    def upsample(self, image: Image.Image, matte: np.ndarray) -> np.ndarray:
        """``matte``: float (any size) in [0, 1] → uint8 matte at the photo's full size."""
        width, height = image.size
        scale = min(1.0, self.working_size / max(width, height))
        work = (max(1, round(width * scale)), max(1, round(height * scale)))
        full = np.asarray(image.convert("RGB") if self.color else image.convert("L"), dtype=np.float32) / 255.0
        guide = cv2.resize(full, work, interpolation=cv2.INTER_AREA) if scale < 1 else full
        alpha = cv2.resize(matte.astype(np.float32), work, interpolation=cv2.INTER_LINEAR)
        slope, offset = (self._color_coefficients if self.color else self._gray_coefficients)(guide, alpha)
        if scale < 1:
            slope = cv2.resize(slope, (width, height), interpolation=cv2.INTER_LINEAR)
            offset = cv2.resize(offset, (width, height), interpolation=cv2.INTER_LINEAR)
        refined = (slope * full).sum(axis=2) + offset if self.color else slope * full + offset
        return np.clip(refined * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _box(self, values: np.ndarray) -> np.ndarray:
        side = 2 * self.radius + 1
        return cv2.boxFilter(values, -1, (side, side), borderType=cv2.BORDER_REFLECT)

    def _gray_coefficients(self, guide: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        box = self._box
        mean_guide, mean_alpha = box(guide), box(alpha)
        slope = (box(guide * alpha) - mean_guide * mean_alpha) / (box(guide * guide) - mean_guide**2 + self.eps)
        return box(slope), box(mean_alpha - slope * mean_guide)

    def _color_coefficients(self, guide: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window a 3-vector a = (Σ + eps·I)⁻¹ cov(I, α) and b = mean(α) − a·mean(I)."""
        box = self._box
        mean = box(guide)  # H×W×3
        mean_alpha = box(alpha)
        covariance_alpha = box(guide * alpha[..., None]) - mean * mean_alpha[..., None]
        sigma = np.empty(guide.shape[:2] + (3, 3), np.float32)
        for row in range(3):
            for column in range(row, 3):
                value = box(guide[..., row] * guide[..., column]) - mean[..., row] * mean[..., column]
                sigma[..., row, column] = sigma[..., column, row] = value
        sigma += self.eps * np.eye(3, dtype=np.float32)
        slope = np.linalg.solve(sigma, covariance_alpha[..., None])[..., 0]
        offset = mean_alpha - (slope * mean).sum(axis=2)
        return box(slope), box(offset)


@dataclass(frozen=True)
class ClosedFormBand:
    """Closed-form matting (Levin et al., via pymatting) in the uncertain band of a coarse matte,
    as rembg's ``-a`` does, but solved at a bounded working resolution so a 12-megapixel photo
    costs about what an 800-pixel one does."""

    foreground_threshold: int = 240
    background_threshold: int = 10
    erode_size: int = 10
    working_size: int = 800

    def refine(self, image: Image.Image, matte: np.ndarray) -> np.ndarray:
        """``matte``: uint8 at the photo's size → uint8 refined matte at the photo's size."""
        from pymatting import estimate_alpha_cf  # numba-compiled: imported only when used

        width, height = image.size
        scale = min(1.0, self.working_size / max(width, height))
        work = (max(1, round(width * scale)), max(1, round(height * scale)))
        small_image = np.asarray(image.convert("RGB").resize(work, Image.LANCZOS), dtype=np.float64) / 255.0
        small_matte = np.asarray(Image.fromarray(matte).resize(work, Image.LANCZOS))
        kernel = np.ones((self.erode_size, self.erode_size), np.uint8)
        foreground = cv2.erode((small_matte > self.foreground_threshold).astype(np.uint8), kernel) > 0
        background = cv2.erode((small_matte < self.background_threshold).astype(np.uint8), kernel, borderValue=1) > 0
        trimap = np.full(small_matte.shape, 0.5)
        trimap[foreground], trimap[background] = 1.0, 0.0
        if foreground.all() or background.all() or not (foreground.any() and background.any()):
            return matte
        with contextlib.redirect_stdout(io.StringIO()):  # pymatting prints solver diagnostics
            solved = np.clip(estimate_alpha_cf(small_image, trimap), 0.0, 1.0)
        band = Image.fromarray((solved * 255 + 0.5).astype(np.uint8)).resize((width, height), Image.LANCZOS)
        refined = np.asarray(band)
        # Keep the network's full-resolution matte where the trimap was certain.
        certain = np.asarray(Image.fromarray((trimap != 0.5).astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 0
        return np.where(certain, matte, refined)


#: The variants served per request (``refine`` option); parameters are those ``make quality`` measured best.
GUIDED_UPSAMPLING = GuidedFilter(radius=8, eps=1e-3)
CLOSED_FORM_BAND = ClosedFormBand()


#: matting.options.REFINE_MODES → the network's low-resolution float matte in [0, 1] → uint8 matte at the
#: photo's size.
FULL_RESOLUTION = {
    "none": lambda image, matte: resized_matte(matte, image.size),
    "guided": GUIDED_UPSAMPLING.upsample,
    "closed-form": lambda image, matte: CLOSED_FORM_BAND.refine(image, resized_matte(matte, image.size)),
}


def full_resolution_matte(image: Image.Image, matte: np.ndarray, refine: str) -> np.ndarray:
    """The matte at the photo's size, upsampled as the (already validated) ``refine`` mode asks."""
    return FULL_RESOLUTION[refine](image, matte)
