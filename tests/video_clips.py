"""Generated video clips for the video tests: a moving textured disc with a known alpha over a textured
background, with a sine audio track; and how an output is read back (its alphas, its audio's length)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FPS = 25
FRAMES = 38  # 1.52 s
SIZE = (160, 120)
#: A matte decoded from VP9 or ProRes against the alpha that went in, per frame: both codecs are lossy
#: (measured: 1.0 for this binary matte).
MIN_IOU = 0.9


def disc_alpha(index: int, size: tuple[int, int] = SIZE, radius: int = 30) -> np.ndarray:
    """The disc of frame ``index`` as a uint8 matte: it moves 2 px right per frame."""
    width, height = size
    rows, columns = np.mgrid[0:height, 0:width]
    inside = (columns - (40 + 2 * index)) ** 2 + (rows - height // 2) ** 2 <= radius**2
    return np.where(inside, 255, 0).astype(np.uint8)


def textured_frame(alpha: np.ndarray) -> np.ndarray:
    """A textured disc (warm, fine checks) where ``alpha`` is set, over a textured background (cool stripes
    with noise)."""
    height, width = alpha.shape
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 40, (height, width, 1))
    background = np.stack([40 + 0 * rows, 80 + 60 * ((columns // 8) % 2), 160 + 0 * rows], axis=-1) + noise
    disc = np.stack([230 + 0 * rows, 140 + 60 * (((rows // 4) + (columns // 4)) % 2), 40 + 0 * rows], axis=-1)
    return np.where(alpha[..., None] > 0, disc, background).clip(0, 255).astype(np.uint8)


def plain_frame(alpha: np.ndarray) -> np.ndarray:
    """A bright disc on a dark plain background: what photo-trained networks segment."""
    return np.where(alpha[..., None] > 0, np.uint8(235), np.uint8(20)).repeat(3, axis=-1)


def write_clip(path: Path, frames: int = FRAMES, size: tuple[int, int] = SIZE, paint=textured_frame,
               audio: bool = True) -> list[np.ndarray]:
    """An H.264 MP4 of the moving disc (near-lossless), with a 440 Hz AAC track when ``audio``; returns the
    alpha of every frame."""
    alphas = [disc_alpha(index, size) for index in range(frames)]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        sound = container.add_stream("aac", rate=44100) if audio else None
        for index, alpha in enumerate(alphas):
            frame = av.VideoFrame.from_ndarray(paint(alpha), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound:
            samples = 44100 * frames // FPS
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 44100, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return alphas


def decoded_alphas(path: Path) -> list[np.ndarray]:
    """The alpha plane of every frame. FFmpeg's native VP9 decoder drops the alpha stream: WebM is decoded
    with libvpx."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r") if stream.codec_context.name == "vp9" else stream.codec_context
        frames = [frame for packet in container.demux(stream) for frame in decoder.decode(packet)]
    return [frame.to_ndarray(format="rgba")[..., 3] for frame in frames]


def iou(matte: np.ndarray, truth: np.ndarray) -> float:
    ours, theirs = matte >= 128, truth >= 128
    return float((ours & theirs).sum() / max(1, (ours | theirs).sum()))


def audio_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        last = max(packet.pts + packet.duration for packet in container.demux(stream) if packet.size)
        return float(last * stream.time_base)
