"""Latency of one image through the Triton ensemble vs. the same work in-process, and which CPU
scheduling of the network step gives a lone request the whole machine without losing throughput.

    make bench            (or: .venv/bin/python -m bench.serving_latency [--repeats N])

Prints three tables: the ensemble against the same work in-process, the ensemble's latency per
``refine`` mode (the time budget behind the default, see README "Matte quality"), and per scheduling
of the network step a lone request's latency and the throughput with several in flight. Every number is measured in this run on this machine; ratios compare rows of the same run.
Images are made from the shared fixture photo: its own size (0.5 MP) and 4000×3000.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.batch_throughput import SIZES, make_photos
from bench.measure import PeakMemory, percentiles
from bench.rembg_baseline import ensure_rembg_venv, run_rembg_p
from client import MattingClient
from launch.options import Ports
from launch.triton import EmbeddedTriton
from matting.codec import decode_image, encode_image
from matting.compose import compose
from matting.contract import DEFAULT_NETWORK
from matting.options import MODELS, REFINE_MODES, OutputOptions
from matting.networks import alpha_from_output, network_spec, prepare_input
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES, STATE_DIR
from serving.repository import RepositorySettings, build_repository

FIXTURE = REMBG_FIXTURES / "anime-girl-1.jpg"


def timed(function, repeats: int) -> list[float]:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def test_images() -> dict[str, bytes]:
    photo = Image.open(FIXTURE).convert("RGB")
    large = io.BytesIO()
    photo.resize((4000, 3000), Image.LANCZOS).save(large, "JPEG", quality=90)
    return {f"fixture {photo.width}×{photo.height}": FIXTURE.read_bytes(), "12 MP 4000×3000": large.getvalue()}


def start(repository: Path) -> EmbeddedTriton:
    return EmbeddedTriton(repository, ports=Ports.free()).start()


def latency_table(repeats: int, model: str) -> None:
    spec = network_spec(model)
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    options = OutputOptions(model=model)

    def in_process(data: bytes) -> bytes:
        image = decode_image(data)
        output = session.run(None, {name: prepare_input(image, spec)[np.newaxis]})[0][0]
        return encode_image(compose(image, alpha_from_output(output, spec, image.size), options), options.format)

    server = start(MODEL_REPOSITORY)
    print(f"\nLatency of {model}, one request at a time ({repeats} runs each; ms, median / p95)")
    print(f"{'image':<22}{'network only (ORT)':>20}{'in-process pipeline':>22}{'Triton ensemble gRPC':>23}{'ensemble / in-process':>24}")
    try:
        with MattingClient(server.grpc_url) as client:
            for label, data in test_images().items():
                network_input = prepare_input(decode_image(data), spec)[np.newaxis]
                network = percentiles(timed(lambda: session.run(None, {name: network_input}), repeats))
                local = percentiles(timed(lambda: in_process(data), repeats))
                served = percentiles(timed(lambda: client.remove_background(data, options), repeats))
                print(f"{label:<22}{network[0]:>11.0f} / {network[1]:<6.0f}{local[0]:>13.0f} / {local[1]:<6.0f}"
                      f"{served[0]:>14.0f} / {served[1]:<6.0f}{served[0] / local[0]:>19.2f}×")
            if model == DEFAULT_NETWORK:
                refine_table(client, repeats)
    finally:
        server.stop()


def refine_table(client: MattingClient, repeats: int) -> None:
    print(f"\nLatency per refine mode through the ensemble, gRPC ({repeats} runs each; ms, median / p95; × refine=none)")
    print(f"{'image':<22}" + "".join(f"{mode:>24}" for mode in REFINE_MODES))
    for label, data in test_images().items():
        cells, baseline = [], None
        for mode in REFINE_MODES:
            median, p95 = percentiles(timed(lambda: client.remove_background(data, OutputOptions(refine=mode)), repeats))
            baseline = baseline or median
            cells.append(f"{median:.0f} / {p95:.0f} ({median / baseline:.2f}×)")
        print(f"{label:<22}" + "".join(f"{cell:>24}" for cell in cells))


#: The scheduling of the network step being compared: instances × ONNX Runtime threads each, batching.
CONFIGURATIONS = {
    "2 instances × 1 thread (until this version)": replace(RepositorySettings(), network_instances=2, intra_op_threads=1),
    "2 instances × all cores each": replace(RepositorySettings(), network_instances=2, intra_op_threads=os.cpu_count() or 1),
    "1 instance × all cores (the default)": RepositorySettings(),
    "1 instance × all cores, dynamic batching": replace(RepositorySettings(), dynamic_batching=True),
}
BURST = 16


def configuration_table(repeats: int, requests: int, concurrency: int, model: str = DEFAULT_NETWORK) -> None:
    """For each scheduling of the network step, the whole default repository (both networks) served:
    a lone request's latency against the same work in-process, the throughput with ``concurrency``
    requests in flight (the batch client's default), and the serving tree's peak memory under a burst of
    16 requests for 12 MP photos at once, against `rembg p` working through the same 16 photos."""
    data, options = FIXTURE.read_bytes(), OutputOptions(model=model)
    spec = network_spec(model)
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def in_process() -> bytes:
        image = decode_image(data)
        output = session.run(None, {name: prepare_input(image, spec)[np.newaxis]})[0][0]
        return encode_image(compose(image, alpha_from_output(output, spec, image.size), options), options.format)

    local = percentiles(timed(in_process, repeats))[0]
    with tempfile.TemporaryDirectory() as directory:
        photos = make_photos(Path(directory) / "burst", SIZES["large"], BURST)
        rembg = run_rembg_p(ensure_rembg_venv(STATE_DIR), photos, Path(directory) / "rembg-out", STATE_DIR, model)
        burst = [path.read_bytes() for path in sorted(photos.iterdir())]
    print(f"\nScheduling of the {model} step: the fixture alone ({repeats} runs, median ms; in-process {local:.0f} ms), "
          f"{requests} fixtures with {concurrency} in flight (images/s), and the serving tree's peak memory while "
          f"{BURST} requests for 12 MP photos arrive at once (PSS; `rembg p -m {model}` on the same photos: "
          f"{rembg['peak_pss_mb']:.0f} MB)")
    print(f"{'configuration':<46}{'lone ms':>9}{'× in-process':>14}{'images/s':>10}{'× first row':>13}{'burst MB':>10}{'× rembg':>9}")
    baseline = None
    for label, settings in CONFIGURATIONS.items():
        with tempfile.TemporaryDirectory() as directory:
            server = start(build_repository(Path(directory), model, settings=settings))
            try:
                with MattingClient(server.grpc_url) as client:
                    lone = percentiles(timed(lambda: client.remove_background(data, options), repeats))[0]
                    started = time.perf_counter()
                    with ThreadPoolExecutor(concurrency) as pool:
                        list(pool.map(lambda _: client.remove_background(data, options), range(requests)))
                    rate = requests / (time.perf_counter() - started)
                    with PeakMemory(server.process.pid) as memory, ThreadPoolExecutor(BURST) as pool:
                        list(pool.map(lambda photo: client.remove_background(photo, options), burst))
            finally:
                server.stop()
        baseline = baseline or rate
        print(f"{label:<46}{lone:>9.0f}{lone / local:>13.2f}×{rate:>10.2f}{rate / baseline:>12.2f}×"
              f"{memory.pss_mb:>10.0f}{memory.pss_mb / rembg['peak_pss_mb']:>8.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only-configurations", action="store_true", help="print only the scheduling table")
    args = parser.parse_args()
    for model in () if args.only_configurations else MODELS:
        latency_table(args.repeats, model)
    configuration_table(args.repeats, args.requests, args.concurrency)


if __name__ == "__main__":
    main()
