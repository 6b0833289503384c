"""Video frames per second on this machine, and what the stream model's network batch costs in memory.

    make bench     (or: .venv/bin/python -m bench.video_throughput [--seconds 2] [--models u2netp,u2net])

First table: generated 480p and 1080p clips (the shared fixture photo panning 2 px per frame, H.264) through
each network: the network alone (ONNX Runtime in-process, one frame at a time), the stream alone (decoded
frames in, mattes out through ``matting_stream``) and end to end (``client.video``'s path: decode, stream,
compose, encode VP9 with alpha, write). Second table: the serving tree's memory (PSS) idle, at its peak during
a 480p U²-Net video and after it, for the largest network batch the stream model runs at once
(``RepositorySettings.stream_network_batch``), with the frames/s each gets. Every number is from this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
import psutil
from PIL import Image, ImageOps

from bench.measure import PeakMemory, tree_memory
from bench.serving_latency import FIXTURE, start, timed
from client import MattingClient
from client.video import server_matte
from matting.codec import decode_image
from matting.contract import DEFAULT_NETWORK
from matting.networks import network_spec, prepare_input
from matting.options import OutputOptions
from matting.paths import MODEL_REPOSITORY
from matting.video import matte_video, read_frames
from serving.repository import RepositorySettings, build_repository

SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}
FPS = 25
NETWORK_BATCHES = (1, 2, 8)


def make_clip(path: Path, size: tuple[int, int], frames: int) -> Path:
    """The fixture photo scaled to cover a frame a little wider than ``size``, panning 2 px per frame."""
    width, height = size
    photo = np.asarray(ImageOps.fit(Image.open(FIXTURE).convert("RGB"), (width + 2 * frames, height), Image.LANCZOS))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[:, 2 * index:2 * index + width]), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def network_fps(model: str, repeats: int) -> float:
    """Frames/s of the network alone on one frame at a time, with ONNX Runtime's default threads (all cores)."""
    spec = network_spec(model)
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: prepare_input(decode_image(FIXTURE.read_bytes()), spec)[np.newaxis]}
    return 1000 / float(np.median(timed(lambda: session.run(None, feed), repeats)))


def stream_fps(client: MattingClient, frames: list[np.ndarray], options: OutputOptions) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in client.stream(frames, options))
    return count / (time.perf_counter() - started)


def end_to_end_fps(client: MattingClient, clip: Path, output: Path, options: OutputOptions, frames: int) -> float:
    started = time.perf_counter()
    matte_video(clip, output, server_matte(client, options))
    return frames / (time.perf_counter() - started)


def throughput_table(models: list[str], frames: int, repeats: int, directory: Path) -> None:
    print(f"\nVideo frames/s ({frames} frames per clip, {FPS} fps; end to end writes WebM VP9 with alpha)")
    print(f"{'network':<9}{'clip':<7}{'network only':>14}{'stream':>9}{'end to end':>12}{'end to end ÷ network':>23}")
    clips = {label: make_clip(directory / f"{label}.mp4", size, frames) for label, size in SIZES.items()}
    alone = {model: network_fps(model, repeats) for model in models}
    server = start(MODEL_REPOSITORY)
    try:
        with MattingClient(server.grpc_url) as client:
            for model in models:
                options = OutputOptions(model=model, kind="alpha")
                for label, clip in clips.items():
                    decoded = list(read_frames(clip))
                    streamed = stream_fps(client, decoded, options)
                    del decoded
                    whole = end_to_end_fps(client, clip, directory / f"{model}-{label}.webm", options, frames)
                    print(f"{model:<9}{label:<7}{alone[model]:>14.2f}{streamed:>9.2f}{whole:>12.2f}{whole / alone[model]:>22.2f}×",
                          flush=True)
    finally:
        server.stop()


def _pss_mb(pid: int) -> float:
    return sum(pss for _, pss in tree_memory(psutil.Process(pid)).values()) / 2**20


def network_batch_table(frames: int, directory: Path, model: str = DEFAULT_NETWORK) -> None:
    print(f"\nThe stream's network batch: serving tree PSS (MB) idle after one image, at the peak of a 480p {model} "
          f"video of {frames} frames and after it, and its frames/s end to end")
    print(f"{'network batch':<15}{'idle MB':>9}{'peak MB':>9}{'after MB':>10}{'frames/s':>10}")
    clip = make_clip(directory / "batch.mp4", SIZES["480p"], frames)
    options = OutputOptions(model=model, kind="alpha")
    for batch in NETWORK_BATCHES:
        with tempfile.TemporaryDirectory() as repository:
            server = start(build_repository(Path(repository), settings=replace(RepositorySettings(), stream_network_batch=batch)))
            try:
                with MattingClient(server.grpc_url) as client:
                    client.remove_background(FIXTURE.read_bytes(), OutputOptions(model=model))
                    idle = _pss_mb(server.process.pid)
                    with PeakMemory(server.process.pid) as peak:
                        rate = end_to_end_fps(client, clip, directory / f"batch-{batch}.webm", options, frames)
                    time.sleep(1)
                    after = _pss_mb(server.process.pid)
            finally:
                server.stop()
        print(f"{batch:<15}{idle:>9.0f}{peak.pss_mb:>9.0f}{after:>10.0f}{rate:>10.2f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each generated clip")
    parser.add_argument("--models", default="u2netp,u2net", help="comma-separated: u2netp, u2net")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the network alone")
    parser.add_argument("--only-network-batch", action="store_true", help="print only the second table")
    args = parser.parse_args(argv)
    frames = max(2, round(args.seconds * FPS))
    with tempfile.TemporaryDirectory() as directory:
        if not args.only_network_batch:
            throughput_table(args.models.split(","), frames, args.repeats, Path(directory))
        network_batch_table(frames, Path(directory))


if __name__ == "__main__":
    main()
