"""Does temporal smoothing of the streamed mattes lower flicker without dragging moving edges? Measured with
the served networks through ``matting_stream``, smoothing off and on.

    .venv/bin/python -m bench.video_flicker [--frames 12] [--noise 6] [--models u2netp,u2net]

Two kinds of generated clip, made from the shared fixture photo and rembg's U²-Net matte of it (the known alpha):
- still: the photo at 320×226, unchanged, with fresh Gaussian pixel noise in every frame (a camera's noise);
- moving: its subject cut out and sliding over a plain gradient at 4 and at 12 px per frame, with the same noise.
Printed per network, clip and smoothing: flicker, the mean absolute change of the matte between consecutive frames
(0–255; lower is calmer), and the mean and lowest IoU per frame of the matte (≥ 128) against the known alpha, which
falls when edges lag. Starts its own Triton on the default repository. A benchmark, not a test.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from client import MattingClient
from launch.options import Ports
from launch.triton import EmbeddedTriton
from matting.options import OutputOptions
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES

PHOTO = REMBG_FIXTURES / "anime-girl-1.jpg"
KNOWN_ALPHA = REMBG_FIXTURES / "anime-girl-1.u2net.png"
STILL_SIZE = (320, 226)
SUBJECT_HEIGHT = 160
CANVAS = (420, 180)
SPEEDS = (4, 12)

Clip = tuple[list[np.ndarray], list[np.ndarray]]


def _noisy(frames: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).astype(np.uint8) for frame in frames]


def _resized(path, size: tuple[int, int], mode: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert(mode).resize(size, Image.LANCZOS))


def still_clip(frames: int, sigma: float) -> Clip:
    photo, alpha = _resized(PHOTO, STILL_SIZE, "RGB"), _resized(KNOWN_ALPHA, STILL_SIZE, "RGBA")[..., 3]
    return _noisy([photo] * frames, sigma), [alpha] * frames


def moving_clip(frames: int, sigma: float, speed: int) -> Clip:
    """The subject moving right by ``speed`` px per frame over a horizontal grey gradient."""
    width = round(SUBJECT_HEIGHT * Image.open(PHOTO).width / Image.open(PHOTO).height)
    subject = _resized(PHOTO, (width, SUBJECT_HEIGHT), "RGB").astype(float)
    subject_alpha = _resized(KNOWN_ALPHA, (width, SUBJECT_HEIGHT), "RGBA")[..., 3]
    canvas_width, canvas_height = CANVAS
    background = np.broadcast_to(np.linspace(60, 190, canvas_width)[None, :, None], (canvas_height, canvas_width, 3))
    top = (canvas_height - SUBJECT_HEIGHT) // 2
    pictures, alphas = [], []
    for index in range(frames):
        left = 8 + speed * index
        alpha = np.zeros((canvas_height, canvas_width), np.uint8)
        alpha[top:top + SUBJECT_HEIGHT, left:left + width] = subject_alpha
        placed = np.zeros_like(background)
        placed[top:top + SUBJECT_HEIGHT, left:left + width] = subject
        weight = alpha[..., None] / 255.0
        pictures.append(weight * placed + (1 - weight) * background)
        alphas.append(alpha)
    return _noisy(pictures, sigma, seed=speed), alphas


def flicker(mattes: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(after.astype(float) - before).mean() for before, after in zip(mattes, mattes[1:])]))


def iou(matte: np.ndarray, truth: np.ndarray) -> float:
    ours, theirs = matte >= 128, truth >= 128
    return float((ours & theirs).sum() / max(1, (ours | theirs).sum()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="frames per clip")
    parser.add_argument("--noise", type=float, default=6.0, help="σ of the pixel noise (0–255)")
    parser.add_argument("--models", default="u2netp,u2net", help="comma-separated: u2netp, u2net")
    args = parser.parse_args(argv)
    clips = {f"still, noise σ={args.noise:g}": still_clip(args.frames, args.noise),
             **{f"moving {speed} px/frame": moving_clip(args.frames, args.noise, speed) for speed in SPEEDS}}
    print(f"{'network':<8} {'clip':<22} {'smoothing':<10} {'flicker':>8} {'IoU mean':>9} {'IoU min':>8}")
    with EmbeddedTriton(MODEL_REPOSITORY, ports=Ports.free()) as server, MattingClient(server.grpc_url) as matting:
        for network in args.models.split(","):
            options = OutputOptions(model=network, kind="alpha")
            for name, (frames, truths) in clips.items():
                for smooth in (False, True):
                    mattes = [result.alpha for result in matting.stream(frames, options, smooth=smooth)]
                    ious = [iou(matte, truth) for matte, truth in zip(mattes, truths)]
                    print(f"{network:<8} {name:<22} {'on' if smooth else 'off':<10} {flicker(mattes):>8.3f} "
                          f"{np.mean(ious):>9.4f} {min(ious):>8.4f}", flush=True)


if __name__ == "__main__":
    main()
