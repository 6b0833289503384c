"""Shared test helpers: encoded test images made on the fly (the awkward inputs a matting service meets
in the wild), real Triton servers on free ports, long-running commands, and repository wiring checks."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx

import numpy as np
from PIL import Image

from launch.options import Ports
from launch.processes import free_port, start_service
from launch.stack import dashboard_command, dashboard_env
from launch.triton import EmbeddedTriton
from matting import contract
from matting.paths import PROJECT_ROOT, REMBG_FIXTURES
from serving.repository import read_config

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
PHOTO = REMBG_FIXTURES / "anime-girl-1.jpg"


def photo(size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(PHOTO).convert("RGB")
    return image.resize(size, Image.LANCZOS) if size else image


def encode(image: Image.Image, format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims width×height: a decompression-bomb header."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def cmyk_jpeg() -> bytes:
    return encode(photo((160, 120)).convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    gray = np.asarray(photo((160, 120)).convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


def grayscale_jpeg() -> bytes:
    return encode(photo((160, 120)).convert("L"), "JPEG")


def palette_png_with_transparency() -> bytes:
    image = photo((160, 120)).convert("P", palette=Image.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)


def rgba_png() -> bytes:
    image = photo((160, 120)).convert("RGBA")
    image.putalpha(128)
    return encode(image, "PNG")


def exif_rotated_jpeg() -> tuple[bytes, tuple[int, int]]:
    """A 160×120 JPEG whose EXIF orientation 6 means 'display rotated 90°': upright it is 120×160."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo((160, 120)), "JPEG", exif=exif.tobytes()), (120, 160)


def animated_gif() -> bytes:
    first, second = photo((96, 64)), photo((96, 64)).transpose(Image.FLIP_LEFT_RIGHT)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    data = encode(photo((320, 240)), "JPEG", quality=95)
    return data[: len(data) // 2]


def animated_webp() -> bytes:
    first, second = photo((96, 64)), photo((96, 64)).transpose(Image.FLIP_LEFT_RIGHT)
    return encode(first, "WEBP", save_all=True, append_images=[second], duration=100, loop=0)


def one_pixel_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")


def wide_jpeg() -> bytes:
    """10000×200: an extreme aspect ratio (a panorama strip)."""
    return encode(photo().resize((10000, 200), Image.BILINEAR), "JPEG", quality=85)


def strip_jpeg(width: int = 65500, height: int = 1) -> bytes:
    """A JPEG as wide as JPEG allows and one pixel high: more than WebP can hold (16383 a side)."""
    return encode(Image.new("RGB", (width, height), (120, 80, 40)), "JPEG")


def ppm() -> bytes:
    """A valid image in a format Pillow reads but the service does not name (PPM)."""
    return encode(photo((64, 48)), "PPM")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_oversized_text() -> bytes:
    """A PNG whose compressed comment inflates to 2 MB: Pillow refuses it naming "MAX_TEXT_CHUNK"."""
    data = encode(photo((32, 24)), "PNG")
    comment = _png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"a" * 2_000_000))
    return data[:33] + comment + data[33:]


def png_cut_in_a_text_chunk() -> bytes:
    """A PNG that ends inside a text chunk before any pixel: Pillow says "Truncated File Read"."""
    return encode(photo((32, 24)), "PNG")[:33] + struct.pack(">I", 5000) + b"tEXt" + b"comment"


def twelve_megapixel_jpeg() -> bytes:
    return encode(photo().resize((4000, 3000), Image.BICUBIC), "JPEG", quality=90)


def start_triton(repository: Path, name: str) -> EmbeddedTriton:
    return EmbeddedTriton(repository, ports=Ports.free(), log_path=ARTIFACTS / f"triton-{name}.log").start()


def start_printing(command: list[str], until: str) -> tuple[subprocess.Popen, str]:
    """Start a long-running command and return it with what it printed up to the line holding ``until``
    (or up to its exit: the caller's assertions then show what went wrong)."""
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    while not any(until in line for line in lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    return process, "".join(lines)


def check_ensemble_wiring(repository: Path, ensemble_name: str = contract.ENSEMBLE) -> list[str]:
    """Every step tensor exists on both sides with the same dtype and dims; returns the step names."""
    ensemble = read_config(repository / ensemble_name / "config.pbtxt")
    assert ensemble.platform == "ensemble"
    available = {tensor.name: (tensor.data_type, list(tensor.dims)) for tensor in ensemble.input}
    names = []
    for step in ensemble.ensemble_scheduling.step:
        config = read_config(repository / step.model_name / "config.pbtxt")
        assert config.name == step.model_name
        assert config.max_batch_size >= ensemble.max_batch_size
        inputs = {tensor.name: (tensor.data_type, list(tensor.dims)) for tensor in config.input}
        outputs = {tensor.name: (tensor.data_type, list(tensor.dims)) for tensor in config.output}
        for model_input, ensemble_tensor in step.input_map.items():
            assert model_input in inputs, f"{step.model_name} has no input {model_input}"
            assert available[ensemble_tensor] == inputs[model_input], f"{step.model_name}.{model_input} mismatch"
        required = {tensor.name for tensor in config.input if not tensor.optional}
        assert required <= set(step.input_map), f"{step.model_name} misses required inputs"
        for model_output, ensemble_tensor in step.output_map.items():
            assert model_output in outputs, f"{step.model_name} has no output {model_output}"
            available[ensemble_tensor] = outputs[model_output]
        names.append(step.model_name)
    for tensor in ensemble.output:
        assert available[tensor.name] == (tensor.data_type, list(tensor.dims))
    return names


def tiny_cvunet_config():
    """A CV-UNet small enough to export and serve in a test (imports torch)."""
    from cvunet.model import CVUNetConfig

    return CVUNetConfig(widths=(8, 8, 16, 16, 16), rdb_layers=2, rdb_growth=8, aspp_channels=16, input_size=64)


def repository_snapshot(repository: Path) -> dict[str, bytes]:
    return {str(path.relative_to(repository)): path.read_bytes() for path in sorted(repository.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


@contextmanager
def rest_process(name: str, triton_url: str, jobs_dir: Path, **environment: str) -> Iterator[SimpleNamespace]:
    """``python -m api`` on a free port, its video jobs in ``jobs_dir``, until the block ends (unless the test
    killed it first); yields its ``url`` and ``process`` once it answers. Its output goes to test-artifacts/."""
    url = f"http://127.0.0.1:{free_port()}"
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"rest-{name}.log"
    environment = {**os.environ, "CVUNET_VIDEO_JOBS_DIR": str(jobs_dir), **environment}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "api", "--port", url.rsplit(":", 1)[1], "--triton-url", triton_url],
                                   cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"python -m api exited with {process.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"python -m api did not answer within 60 s:\n{log_path.read_text()}"
            try:
                httpx.get(f"{url}/healthz", timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield SimpleNamespace(url=url, process=process, log_path=log_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def dashboard_process(triton: EmbeddedTriton, state: Path, name: str) -> Iterator[str]:
    """The dashboard on a free port for ``triton``, with its folders, history, results and video jobs under
    ``state``; yields its URL once it answers. Its output goes to test-artifacts/ui-<name>-<port>.log."""
    for folder in ("data", "outputs"):
        (state / folder).mkdir(exist_ok=True)
    port = free_port()
    env = {**dashboard_env(triton), "CVUNET_HISTORY_DB": str(state / "history.sqlite3"),
           "CVUNET_OUTPUTS_DIR": str(state / "outputs"), "CVUNET_RESULTS_DIR": str(state / "results"),
           "CVUNET_UI_VIDEO_JOBS_DIR": str(state / "video-jobs"),
           "CVUNET_UI_ROOTS": os.pathsep.join([str(state / "data"), str(state / "outputs")])}
    process = start_service("the dashboard", dashboard_command("127.0.0.1", port), f"http://127.0.0.1:{port}/_stcore/health",
                            ARTIFACTS / f"ui-{name}-{port}.log", PROJECT_ROOT, env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
