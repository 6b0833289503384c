"""Latency of one image through the Triton ensemble vs. the same work in-process, and which
CPU scheduling of the network step gives the most throughput.

    make bench            (or: .venv/bin/python -m bench.serving_latency [--repeats N])

Prints three tables: the ensemble against the same work in-process, the ensemble's latency per
``refine`` mode (the time budget behind the default, see README "Matte quality"), and throughput per
scheduling. Every number is measured in this run on this machine; ratios compare rows of the same run.
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

from bench.measure import percentiles
from client import MattingClient
from launch.options import Ports
from launch.triton import EmbeddedTriton
from matting.codec import decode_image, encode_image
from matting.compose import compose
from matting.contract import DEFAULT_NETWORK
from matting.options import MODELS, REFINE_MODES, OutputOptions
from matting.networks import alpha_from_output, network_spec, prepare_input
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES
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


def throughput_table(requests: int, concurrency: int) -> None:
    candidates = {
        "default: 2 network instances": RepositorySettings(),
        "1 network instance, all cores": replace(RepositorySettings(), network_instances=1),
        "1 network instance, dynamic batching": replace(RepositorySettings(), network_instances=1, dynamic_batching=True),
        "2 network instances × all cores each": replace(RepositorySettings(), intra_op_threads=os.cpu_count() or 1),
    }
    data = FIXTURE.read_bytes()
    print(f"\nThroughput of u2netp, {requests} fixture requests with {concurrency} in flight (images/s; higher is better)")
    baseline = None
    for label, settings in candidates.items():
        with tempfile.TemporaryDirectory() as directory:
            repository = build_repository(Path(directory), "u2netp", settings=settings, alongside=())
            server = start(repository)
            try:
                with MattingClient(server.grpc_url) as client:
                    client.remove_background(data)
                    started = time.perf_counter()
                    with ThreadPoolExecutor(concurrency) as pool:
                        list(pool.map(lambda _: client.remove_background(data), range(requests)))
                    rate = requests / (time.perf_counter() - started)
            finally:
                server.stop()
        baseline = baseline or rate
        print(f"{label:<40}{rate:>8.2f} img/s{rate / baseline:>8.2f}× of the first row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    for model in MODELS:
        latency_table(args.repeats, model)
    throughput_table(args.requests, args.concurrency)


if __name__ == "__main__":
    main()
