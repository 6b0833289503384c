"""Training data for CV-UNet and for fine-tuning U²-Net / U²-Netp: synthetic composites, matting
folders, and simulated coarse masks.

Every training dataset is indexed by *draw*: item ``i`` is a pure function of the dataset's seed and
``i`` (which file or synthetic seed, the crop, flip, colour jitter, background pairing and coarse
mask all come from a generator seeded with both). Any index is valid, so the datasets are infinite;
batch ``k`` of a run is draws ``k·B … k·B+B-1``, which makes a resumed run see exactly the batches an
uninterrupted one would, whatever the number of DataLoader workers.

An item is ``(inputs, alpha)``: ``inputs`` C x S x S float32 normalised as the serving preprocess
normalises for the network being trained (``spec``, matting.networks; CV-UNet's by default; in refiner
mode a fourth channel, the coarse mask in [0, 1]) and ``alpha`` 1 x S x S float32 in [0, 1].

Refiner coarse masks are simulated from the ground truth, or, for synthetic data, taken from a real
coarse network (:class:`CoarseNetwork`, U²-Netp) for a share of the draws: the served refiner is fed
that network's output, mistakes included.

Over ~350 lines on purpose: the datasets share the draw indexing and augmentations, which are easier to
keep identical in one file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cvunet.model import coarse_channel
from matting.contract import IMAGE_SUFFIXES
from matting.networks import NetworkSpec, network_spec, normalise_pixels, prepare_input
from matting.paths import MODEL_REPOSITORY
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample

TRAINING_SEEDS = range(0, HELD_OUT_SEEDS.start)
"""Synthetic seeds for training: every seed below the held-out benchmark's."""
#: Training files: the served image types less GIF (palette images make poor ground truth).
IMAGE_EXTENSIONS = frozenset(IMAGE_SUFFIXES) - {".gif"}
LAYOUTS = ("image-alpha", "fg-alpha-bg")
COARSE_RESOLUTION = 320
#: CV-UNet inputs are prepared exactly as the serving preprocess step prepares them.
CVUNET_INPUT = network_spec("cvunet")
"""The coarse network's working size (U²-Netp sees 320²): coarse masks lose detail below it."""
DRAW_STREAM, EPOCH_STREAM = 0, 1


def simulate_coarse_mask(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible coarse network output for ``alpha`` (H x W in [0, 1]), for training the refiner.

    Mimics what a low-resolution segmenter gets wrong: edges shifted (erode or dilate), softened
    (Gaussian blur), detail lost in a round trip through ~320 px, and missed regions (holes). Scales
    with the image so 64² test crops and 1024² training crops are degraded alike. ``alpha`` is not
    modified; the result is H x W float32 in [0, 1].
    """
    height, width = alpha.shape
    side = max(height, width)
    mask = alpha.astype(np.float32, copy=True)
    if rng.random() < 0.7:
        radius = int(rng.integers(1, max(1, round(side / 64)) + 1))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    if rng.random() < 0.7:
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.3, rng.uniform(0.5, 4.0) * side / 512))
    low_side = min(rng.uniform(0.75, 1.25) * COARSE_RESOLUTION, side / 2)
    low_size = (max(1, round(width * low_side / side)), max(1, round(height * low_side / side)))
    mask = cv2.resize(cv2.resize(mask, low_size, interpolation=cv2.INTER_AREA), (width, height))
    foreground = np.argwhere(alpha > 0.5)
    for _ in range(int(rng.integers(0, 3)) if len(foreground) else 0):
        y, x = foreground[rng.integers(len(foreground))]
        axes = tuple(max(1, int(v)) for v in rng.uniform(0.02, 0.08, 2) * side)
        holes = np.zeros_like(mask, dtype=np.uint8)
        cv2.ellipse(holes, (int(x), int(y)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        mask[holes > 0] = 0.0
    return np.clip(mask, 0.0, 1.0)


def network_sample(
    image: np.ndarray,
    alpha: np.ndarray,
    refiner: bool,
    rng: np.random.Generator,
    coarse_mask: np.ndarray | None = None,
    spec: NetworkSpec = CVUNET_INPUT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """An (inputs, alpha) training pair from a uint8 RGB image and its float alpha (see module docstring).

    A refiner's mask is ``coarse_mask`` when given, else simulated from ``alpha``."""
    channels = [normalise_pixels(image, spec)]
    if refiner:
        channels.append((coarse_mask if coarse_mask is not None else simulate_coarse_mask(alpha, rng))[None])
    inputs = np.concatenate(channels, axis=0)
    return torch.from_numpy(inputs), torch.from_numpy(np.ascontiguousarray(alpha, np.float32)[None])


class CoarseNetwork:
    """A real coarse network (an ONNX file of a network in matting.networks) producing refiner masks
    exactly as served: its raw output through :func:`cvunet.model.coarse_channel`."""

    def __init__(self, name: str = "u2netp", onnx_path: str | os.PathLike | None = None) -> None:
        self.spec = network_spec(name)
        self.onnx_path = Path(onnx_path) if onnx_path else MODEL_REPOSITORY / name / "1" / "model.onnx"
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"coarse network {self.onnx_path} is missing; `make setup` fetches U²-Netp")
        self._session = None  # created on first use, so the dataset stays picklable for DataLoader workers

    def mask(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 RGB → H x W float32 mask in [0, 1]."""
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self.onnx_path), providers=["CPUExecutionProvider"])
        session = self._session
        network_input = prepare_input(Image.fromarray(image), self.spec)[np.newaxis]
        raw = session.run(None, {session.get_inputs()[0].name: network_input})[0]
        raw = torch.from_numpy(np.ascontiguousarray(raw, np.float32).reshape(1, 1, *raw.shape[-2:]))
        return coarse_channel(raw, image.shape[:2]).numpy()[0, 0]


class DrawIndexedDataset(Dataset):
    """Base of the training datasets: item ``index`` is reproducible from (seed, index) alone."""

    def __init__(self, size: int, refiner: bool, seed: int, spec: NetworkSpec = CVUNET_INPUT) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size
        self.refiner = refiner
        self.seed = seed
        self.spec = spec

    def draw_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, DRAW_STREAM, index])

    def image_and_alpha(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The S x S x 3 uint8 image and S x S float32 alpha of draw ``index``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0:
            raise IndexError(f"draw index must be non-negative, got {index}")
        rng = self.draw_rng(index)
        image, alpha = self.image_and_alpha(index, rng)
        return network_sample(image, alpha, self.refiner, rng, spec=self.spec)


class SyntheticMattingDataset(DrawIndexedDataset):
    """Synthetic composites (cvunet.synthetic), generated on the fly from seeds in ``seeds_from``.

    ``seeds_from`` must not contain any of the held-out benchmark seeds. With a ``coarse_network``
    (refiner mode) a share ``coarse_share`` of the draws takes its mask from that network, the rest are
    simulated; since running it costs as much as generating the sample, each seed's sample and
    network mask are generated once and kept in memory (narrow ``seeds_from`` to bound that: 1.8 MB
    per seed at 512²); draws then differ by the mask choice and a horizontal flip.
    """

    def __init__(
        self,
        seeds_from: Sequence[int] = TRAINING_SEEDS,
        size: int = 512,
        refiner: bool = False,
        seed: int = 0,
        coarse_network: CoarseNetwork | None = None,
        coarse_share: float = 0.75,
        spec: NetworkSpec = CVUNET_INPUT,
    ) -> None:
        super().__init__(size, refiner, seed, spec)
        if not 0.0 <= coarse_share <= 1.0:
            raise ValueError(f"coarse_share must be in [0, 1], got {coarse_share}")
        self.coarse_network = coarse_network if refiner else None
        self.coarse_share = coarse_share
        self._kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if len(seeds_from) == 0:
            raise ValueError("seeds_from is empty")
        leaked = [s for s in HELD_OUT_SEEDS if s in seeds_from]
        if leaked:
            raise ValueError(f"seeds_from contains held-out benchmark seeds {leaked[:4]}…; train on other seeds")
        self.seeds_from = seeds_from

    def image_and_alpha(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sample = synthetic_sample(int(self.seeds_from[rng.integers(len(self.seeds_from))]), self.size)
        return sample.image, sample.alpha

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.coarse_network is None:
            return super().__getitem__(index)
        if index < 0:
            raise IndexError(f"draw index must be non-negative, got {index}")
        rng = self.draw_rng(index)
        image, alpha, network_mask = self._sample_with_network_mask(int(self.seeds_from[rng.integers(len(self.seeds_from))]))
        alpha = alpha.astype(np.float32)
        mask = network_mask.astype(np.float32) if rng.random() < self.coarse_share else simulate_coarse_mask(alpha, rng)
        if rng.random() < 0.5:
            image, alpha, mask = (np.ascontiguousarray(a[:, ::-1]) for a in (image, alpha, mask))
        return network_sample(image, alpha, True, rng, coarse_mask=mask)

    def _sample_with_network_mask(self, sample_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if sample_seed not in self._kept:
            sample = synthetic_sample(sample_seed, self.size)
            mask = self.coarse_network.mask(sample.image)
            self._kept[sample_seed] = (sample.image, sample.alpha.astype(np.float16), mask.astype(np.float16))
        return self._kept[sample_seed]


class HeldOutSyntheticDataset(Dataset):
    """The held-out synthetic benchmark (cvunet.synthetic.HELD_OUT_SEEDS) for evaluation during training.

    In refiner mode each sample's coarse mask comes from ``coarse_network`` if given, else it is
    simulated from a generator seeded with its seed, so every evaluation sees the same inputs.
    """

    def __init__(
        self, size: int, refiner: bool, count: int = len(HELD_OUT_SEEDS), coarse_network: CoarseNetwork | None = None,
        spec: NetworkSpec = CVUNET_INPUT,
    ) -> None:
        self.seeds = HELD_OUT_SEEDS[:count]
        self.size = size
        self.refiner = refiner
        self.coarse_network = coarse_network
        self.spec = spec

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        seed = self.seeds[index]
        sample = synthetic_sample(seed, self.size)
        mask = self.coarse_network.mask(sample.image) if self.refiner and self.coarse_network else None
        return network_sample(sample.image, sample.alpha, self.refiner, np.random.default_rng(seed), mask, self.spec)


def list_images(folder: Path) -> dict[str, Path]:
    """Image files in ``folder`` by stem; a missing or empty folder, or a repeated stem, is an error."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in images:
            raise ValueError(f"{folder}: two images with the stem {path.stem!r}: {images[path.stem].name}, {path.name}")
        images[path.stem] = path
    if not images:
        raise ValueError(f"{folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return images


def matched_pairs(first: dict[str, Path], second: dict[str, Path], names: tuple[str, str]) -> list[tuple[Path, Path]]:
    """Pair two folders' images by stem; any stem present on one side only is an error."""
    only_first, only_second = sorted(first.keys() - second.keys()), sorted(second.keys() - first.keys())
    if only_first or only_second:
        problems = []
        if only_first:
            problems.append(f"{len(only_first)} in {names[0]}/ without {names[1]}: {only_first[:5]}")
        if only_second:
            problems.append(f"{len(only_second)} in {names[1]}/ without {names[0]}: {only_second[:5]}")
        raise ValueError(f"file stems of {names[0]}/ and {names[1]}/ do not match: " + "; ".join(problems))
    return [(first[stem], second[stem]) for stem in sorted(first)]


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_alpha(path: Path) -> np.ndarray:
    """A grayscale matte (8 or 16 bit; the alpha channel of an RGBA file) as float32 in [0, 1]."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.clip(np.asarray(image, np.float32) / 65535.0, 0.0, 1.0)
        if image.mode in ("RGBA", "LA", "PA"):
            return np.asarray(image.getchannel("A"), np.float32) / 255.0
        return np.asarray(image.convert("L"), np.float32) / 255.0


def random_square_window(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random square covering 50-100% of the shorter side."""
    side = max(1, round(rng.uniform(0.5, 1.0) * min(height, width)))
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side, side


def random_whole_window(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) covering 85-100% of each side: nearly the whole photo, which
    :func:`crop_resize` then squashes to a square as the serving preprocess squashes every photo."""
    crop_height, crop_width = (max(1, round(rng.uniform(0.85, 1.0) * side)) for side in (height, width))
    return int(rng.integers(0, height - crop_height + 1)), int(rng.integers(0, width - crop_width + 1)), crop_height, crop_width


def crop_resize(array: np.ndarray, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    top, left, height, width = window
    crop = np.ascontiguousarray(array[top : top + height, left : left + width])
    interpolation = cv2.INTER_AREA if max(height, width) > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation (each ×0.8-1.2) and hue (±0.05 turn) on uint8 RGB."""
    pixels = image.astype(np.float32) * rng.uniform(0.8, 1.2)
    pixels = (pixels - pixels.mean()) * rng.uniform(0.8, 1.2) + pixels.mean()
    gray = pixels @ np.asarray([0.299, 0.587, 0.114], np.float32)
    pixels = (pixels - gray[..., None]) * rng.uniform(0.8, 1.2) + gray[..., None]
    hsv = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + round(rng.uniform(-0.05, 0.05) * 180)) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


class FolderDataset(DrawIndexedDataset):
    """Common part of the folder layouts: a shuffled pass over the files per epoch of draws.

    Draws are random square crops, or with ``whole_image`` the (nearly) whole photo squashed to a
    square: what a pretrained U²-Net saw in training and sees when served, so fine-tuning keeps to it.
    """

    def __init__(
        self, root: str | os.PathLike, size: int, refiner: bool, seed: int, count: int,
        spec: NetworkSpec = CVUNET_INPUT, whole_image: bool = False,
    ) -> None:
        super().__init__(size, refiner, seed, spec)
        self.root = Path(root)
        self.count = count
        self.window = random_whole_window if whole_image else random_square_window

    def file_index(self, index: int) -> int:
        epoch, position = divmod(index, self.count)
        return int(np.random.default_rng([self.seed, EPOCH_STREAM, epoch]).permutation(self.count)[position])

    def crop_flip(
        self, image: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same random square crop, resize and horizontal flip applied to an image and its alpha."""
        if image.shape[:2] != alpha.shape:
            (image_height, image_width), (alpha_height, alpha_width) = image.shape[:2], alpha.shape
            raise ValueError(f"{name}: image is {image_width}x{image_height} but alpha is {alpha_width}x{alpha_height}")
        window = self.window(*alpha.shape, rng)
        image, alpha = crop_resize(image, window, self.size), crop_resize(alpha, window, self.size)
        if rng.random() < 0.5:
            image, alpha = image[:, ::-1], alpha[:, ::-1]
        return np.ascontiguousarray(image), np.clip(alpha, 0.0, 1.0)


class ImageAlphaFolderDataset(FolderDataset):
    """``root/image/`` photos with ``root/alpha/`` mattes of the same stem (P3M-10k, AM-2k style).

    Augmentation: random square crop resized to ``size``, horizontal flip, colour jitter.
    """

    def __init__(
        self, root: str | os.PathLike, size: int = 512, refiner: bool = False, seed: int = 0,
        spec: NetworkSpec = CVUNET_INPUT, whole_image: bool = False,
    ) -> None:
        root = Path(root)
        self.pairs = matched_pairs(list_images(root / "image"), list_images(root / "alpha"), ("image", "alpha"))
        super().__init__(root, size, refiner, seed, len(self.pairs), spec, whole_image)

    def image_and_alpha(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image_path, alpha_path = self.pairs[self.file_index(index)]
        image, alpha = self.crop_flip(load_rgb(image_path), load_alpha(alpha_path), rng, image_path.stem)
        return colour_jitter(image, rng), alpha


class ForegroundBackgroundFolderDataset(FolderDataset):
    """``root/fg/`` foregrounds with ``root/alpha/`` mattes of the same stem, composited on the fly over
    a random ``root/bg/`` image (Distinctions-646 / Deep Image Matting style).

    Augmentation: foreground and alpha share a random square crop, resize and flip; the background
    gets its own crop and flip; both are colour-jittered independently before compositing.
    """

    def __init__(
        self, root: str | os.PathLike, size: int = 512, refiner: bool = False, seed: int = 0,
        spec: NetworkSpec = CVUNET_INPUT, whole_image: bool = False,
    ) -> None:
        root = Path(root)
        self.pairs = matched_pairs(list_images(root / "fg"), list_images(root / "alpha"), ("fg", "alpha"))
        self.backgrounds = sorted(list_images(root / "bg").values())
        super().__init__(root, size, refiner, seed, len(self.pairs), spec, whole_image)

    def image_and_alpha(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        foreground_path, alpha_path = self.pairs[self.file_index(index)]
        foreground, alpha = self.crop_flip(load_rgb(foreground_path), load_alpha(alpha_path), rng, foreground_path.stem)
        background = load_rgb(self.backgrounds[rng.integers(len(self.backgrounds))])
        background = crop_resize(background, random_square_window(*background.shape[:2], rng), self.size)
        if rng.random() < 0.5:
            background = background[:, ::-1]
        foreground, background = colour_jitter(foreground, rng), colour_jitter(np.ascontiguousarray(background), rng)
        weight = alpha[..., None]
        composite = weight * foreground + (1 - weight) * background
        return np.clip(composite + 0.5, 0, 255).astype(np.uint8), alpha


def detect_layout(root: str | os.PathLike) -> str:
    """The folder layout ``root`` holds: ``image-alpha`` with an ``image/`` subfolder, ``fg-alpha-bg`` with ``fg/``."""
    root = Path(root)
    found = [layout for layout, folder in (("image-alpha", "image"), ("fg-alpha-bg", "fg")) if (root / folder).is_dir()]
    if len(found) != 1:
        raise ValueError(f"{root} must hold image/ + alpha/ (image-alpha) or fg/ + alpha/ + bg/ (fg-alpha-bg); "
                         "pass --layout to choose")
    return found[0]


def training_dataset(
    data_dir: str | os.PathLike | None,
    layout: str | None,
    size: int,
    refiner: bool,
    seed: int,
    synthetic_seeds: Sequence[int] = TRAINING_SEEDS,
    coarse_network: CoarseNetwork | None = None,
    coarse_share: float = 0.75,
    spec: NetworkSpec = CVUNET_INPUT,
    whole_image: bool = False,
) -> DrawIndexedDataset:
    """The dataset a training run asked for: synthetic without ``data_dir``, else the folder ``layout``."""
    if data_dir is None:
        return SyntheticMattingDataset(synthetic_seeds, size, refiner, seed, coarse_network, coarse_share, spec)
    if coarse_network is not None:
        raise ValueError("coarse masks from a network are only implemented for synthetic data")
    if layout == "image-alpha":
        return ImageAlphaFolderDataset(data_dir, size, refiner, seed, spec, whole_image)
    if layout == "fg-alpha-bg":
        return ForegroundBackgroundFolderDataset(data_dir, size, refiner, seed, spec, whole_image)
    raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
