"""Batch throughput: our batch client → Triton ensemble vs. `rembg p` vs. the bare network.

    make bench     (or: .venv/bin/python -m bench.batch_throughput [--count 16] [--sizes small,large])

Everything runs in one process tree on this machine, on the same folders of photos made from the
shared fixture (cropped and resized: 0.3, 2, 12 and 48 MP, no datasets in git), with the same verified
weights. Rows per size and model (U²-Netp, U²-Net):
  1. network only — ONNX Runtime in-process at batch 1 on the served file, preprocessed inputs: the machine's limit;
  2. rembg p -m <model> — installed in its own venv, pointed at our pinned weights file;
  3. ours — client.batch -m <model> → embedded Triton ensemble, at concurrency 1, 2, 4, 8 and 16.
Columns: images/s, p50/p95 per-image latency, the serving tree's peak memory as RSS summed over its
processes and as PSS (each shared page counted once: see bench.measure), ours/rembg in speed and PSS, and
ours/limit; under each table, where the serving tree's memory went at concurrency 16 (each process's
peak, added up per role). At the end, how cost grows: images/s and p95 latency per size and concurrency.
A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.measure import PeakMemory, percentiles
from bench.rembg_baseline import ensure_rembg_venv, run_rembg_p
from client.batch import BatchSettings, run_batch
from launch.options import Ports
from launch.triton import EmbeddedTriton
from matting.codec import decode_image
from matting.networks import network_spec, prepare_input
from matting.paths import MODEL_REPOSITORY, REMBG_FIXTURES, STATE_DIR
from matting.options import OutputOptions

FIXTURE = REMBG_FIXTURES / "anime-girl-1.jpg"
SIZES = {"small": (640, 480), "medium": (1632, 1224), "large": (4000, 3000), "huge": (8000, 6000)}
CONCURRENCY = (1, 2, 4, 8, 16)


@dataclass
class Row:
    label: str
    images_per_s: float
    p50_ms: float
    p95_ms: float
    peak_rss_mb: float
    peak_pss_mb: float
    memory_by_role: dict[str, tuple[int, float]] | None = None


def make_photos(folder: Path, size: tuple[int, int], count: int) -> Path:
    """``count`` distinct JPEGs of ``size``: shifted crops of the fixture, every other one mirrored."""
    folder.mkdir(parents=True)
    photo = Image.open(FIXTURE).convert("RGB")
    for index in range(count):
        left, top = (index * 7) % 60, (index * 5) % 40
        crop = photo.crop((left, top, photo.width - 60 + left, photo.height - 40 + top))
        if index % 2:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.resize(size, Image.BICUBIC).save(folder / f"photo{index:02d}.jpg", quality=90)
    return folder


def network_only(folder: Path, model: str) -> Row:
    spec = network_spec(model)
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    inputs = [prepare_input(decode_image(path.read_bytes()), spec)[np.newaxis] for path in sorted(folder.iterdir())]
    session.run(None, {name: inputs[0]})
    latencies = []
    with PeakMemory(os.getpid()) as memory:
        started = time.perf_counter()
        for tensor in inputs:
            begun = time.perf_counter()
            session.run(None, {name: tensor})
            latencies.append((time.perf_counter() - begun) * 1000)
        elapsed = time.perf_counter() - started
    return Row("network only (ORT, batch 1)", len(inputs) / elapsed, *percentiles(latencies), memory.rss_mb, memory.pss_mb)


def rembg(folder: Path, workdir: Path, model: str) -> Row:
    executable = ensure_rembg_venv(STATE_DIR)
    result = run_rembg_p(executable, folder, workdir / f"rembg-{model}-out", STATE_DIR, model)
    return Row(f"rembg p -m {model}", result["images_per_s"], result["latency_p50_ms"], result["latency_p95_ms"], result["peak_rss_mb"],
               result["peak_pss_mb"])


def ours(folder: Path, workdir: Path, concurrency: int, server: EmbeddedTriton, model: str) -> Row:
    settings = BatchSettings(OutputOptions(model=model), concurrency=concurrency, overwrite=True)
    output = workdir / f"ours-{model}-{concurrency}"
    run_batch(folder, output, server.grpc_url, settings=settings, progress=False)  # warm-up pass
    with PeakMemory(server.process.pid) as memory:
        report = run_batch(folder, output, server.grpc_url, settings=settings, progress=False)
    latencies = [outcome.ms for outcome in report.outcomes if outcome.status == "ok"]
    if report.counts["failed"]:
        raise RuntimeError(f"{report.counts['failed']} files failed: {report.outcomes}")
    return Row(f"ours -m {model}, concurrency {concurrency}", len(latencies) / report.elapsed_s, *percentiles(latencies),
               memory.rss_mb, memory.pss_mb, memory.by_role)


def print_table(title: str, rows: list[Row], limit: Row, baseline: Row | None) -> None:
    print(f"\n{title}")
    header = (f"{'pipeline':<36}{'images/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'RSS sum MB':>12}{'PSS MB':>9}"
              f"{'vs rembg':>10}{'PSS vs rembg':>14}{'vs limit':>10}")
    print(header + "\n" + "-" * len(header))
    for row in rows:
        speed = f"{row.images_per_s / baseline.images_per_s:.2f}×" if baseline else "-"
        memory = f"{row.peak_pss_mb / baseline.peak_pss_mb:.2f}×" if baseline else "-"
        print(f"{row.label:<36}{row.images_per_s:>10.2f}{row.p50_ms:>9.0f}{row.p95_ms:>9.0f}{row.peak_rss_mb:>12.0f}"
              f"{row.peak_pss_mb:>9.0f}{speed:>10}{memory:>14}{row.images_per_s / limit.images_per_s:>9.0%} ")
    busiest = rows[-1]
    if busiest.memory_by_role:
        print(f"where the memory went ({busiest.label}; each process's peak PSS): "
              + ", ".join(f"{name} {mb:.0f} MB ({count} process{'es' if count > 1 else ''})"
                          for name, (count, mb) in busiest.memory_by_role.items()))


def print_growth(model: str, rows_by_size: dict[str, list[Row]]) -> None:
    """One line per photo size, one column per concurrency: how throughput and latency grow with load and size."""
    print(f"\nHow cost grows, ours -m {model}: images/s · p95 s, per photo size and requests in flight")
    print(f"{'photo size':<22}" + "".join(f"{f'concurrency {level}':>20}" for level in CONCURRENCY))
    for size_name, rows in rows_by_size.items():
        width, height = SIZES[size_name]
        cells = [f"{row.images_per_s:.2f} · {row.p95_ms / 1000:.1f}" for row in rows]
        print(f"{f'{width}×{height} ({width * height / 1e6:.1f} MP)':<22}" + "".join(f"{cell:>20}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16, help="photos per size")
    parser.add_argument("--sizes", default="small,medium,large,huge",
                        help="comma-separated: small (640×480), medium (1632×1224), large (4000×3000), huge (8000×6000)")
    parser.add_argument("--models", default="u2netp,u2net", help="comma-separated: u2netp, u2net")
    parser.add_argument("--skip-rembg", action="store_true")
    args = parser.parse_args()
    server = EmbeddedTriton(MODEL_REPOSITORY, ports=Ports.free()).start()
    growth: dict[str, dict[str, list[Row]]] = {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            for size_name in args.sizes.split(","):
                width, height = SIZES[size_name]
                folder = make_photos(workdir / size_name / "in", (width, height), args.count)
                for model in args.models.split(","):
                    limit = network_only(folder, model)
                    baseline = None if args.skip_rembg else rembg(folder, workdir / size_name, model)
                    rows = [limit] + ([baseline] if baseline else [])
                    served = [ours(folder, workdir / size_name, concurrency, server, model) for concurrency in CONCURRENCY]
                    growth.setdefault(model, {})[size_name] = served
                    rows += served
                    title = f"{model}: {args.count} photos of {width}×{height} ({width * height / 1e6:.1f} MP)"
                    print_table(title, rows, limit, baseline)
        for model, rows_by_size in growth.items():
            print_growth(model, rows_by_size)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
