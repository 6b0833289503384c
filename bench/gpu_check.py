"""The prepared GPU check (issue 14): what the networks cost on a CUDA device, in one command.

    python -m bench.gpu_check                                    # on a CUDA machine: the table, < 5 minutes
    python -m bench.gpu_check --device cpu --quick --out r.json  # the test suite's smoke test (CPU: --quick only)

PyTorch only, nothing downloaded. For U²-Netp and U²-Net at 320² and CV-UNet ``full`` at 1024²
(the project's PyTorch modules), at batch 1, 8 and 32, it times four variants:

* ``fp32`` — plain eager forward (cuDNN may run fp32 convolutions as TF32: PyTorch's default, printed);
* ``autocast`` — eager under ``torch.autocast`` in float16, on CPU too: CPU autocast takes float16,
  and bfloat16's shorter mantissa moved U²-Netp's 64² matte 3.9/255 on average (float16: 0.25/255),
  which would not check what the GPU runs;
* ``autocast+cuda-graph`` — one autocast forward captured with ``torch.cuda.CUDAGraph`` and replayed
  on a static input: the same kernels without Python or launch overhead;
* ``autocast+compile`` — ``torch.compile(mode="reduce-overhead", dynamic=False)`` under autocast:
  Inductor's fused kernels, replayed through CUDA graphs (cudagraph trees).

Each row is the median of timed calls after warm-up, each call ended by ``torch.cuda.synchronize``,
as ms per batch and images/s, and the speed-up over the same network's served ONNX export
(``model_repository/<network>/1/model.onnx``) on ONNX Runtime's CPU provider at batch 1, measured in
the same run when onnxruntime and the file are there. U²-Netp runs its real weights (the pinned port,
``.state/weights/u2netp.pt``, or ``--weights``) and its autocast matte is compared with fp32's; U²-Net
and CV-UNet run random weights, which time the same as trained ones.

A video row per U²-Net network times the path of a video frame: 8 frames of 1920×1080 as uint8 on the
host in, their mattes on the host out (upload, antialiased resize, normalisation, the network under autocast,
upsampling, download), as frames/s against the network alone on ONNX Runtime's CPU provider.

The run fits a time budget (default 270 s): the cheap rows of every network come first, compiling
last (about a minute per network and shape), first at batch 8 only, then the other batches while the
budget allows; a row that does not fit is listed as skipped, with why.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STARTED = time.monotonic()
"""The command's start, taken before torch's import so the printed wall time is the whole command's."""

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from cvunet.model import PRESETS, build_cvunet  # noqa: E402
from cvunet.u2net import INPUT_SIZE, U2Net, load_pretrained  # noqa: E402
from matting.networks import network_spec, normalise_pixels, prepare_input  # noqa: E402
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT, REMBG_FIXTURES  # noqa: E402
from serving.weights import WEIGHTS_DIR  # noqa: E402

NETWORKS = ("u2netp", "u2net", "cvunet")
SIZES = {"u2netp": INPUT_SIZE, "u2net": INPUT_SIZE, "cvunet": PRESETS["full"].input_size}
QUICK_SIZE = 64
BATCHES = (1, 8, 32)
QUICK_BATCHES = (1, 8)
VARIANTS = ("fp32", "autocast", "autocast+cuda-graph", "autocast+compile")
#: Compiling costs about a minute per shape, so every network is compiled at this batch before any other.
FIRST_COMPILE_BATCH = 8
#: What a first compile is assumed to take until one has been measured (U²-Net's is expected near a
#: minute); later ones are estimated from the compiles measured so far.
FIRST_COMPILE_ESTIMATE_S = 90.0
#: About what an eager row, the ONNX Runtime baseline or the matte comparison takes.
ROW_ESTIMATE_S = 5.0
DEFAULT_BUDGET_S = 270.0
AUTOCAST_DTYPE = torch.float16
#: The video rows: this many frames of this size at once (what the stream model hands a network), uint8 on the
#: host in and mattes on the host out; --quick uses small frames.
VIDEO_NETWORKS = ("u2netp", "u2net")
VIDEO_FRAME = (1920, 1080)
QUICK_VIDEO_FRAME = (160, 120)
VIDEO_BATCH = 8
DIFF_PHOTO = REMBG_FIXTURES / "anime-girl-1.jpg"


@dataclass(frozen=True)
class Repeats:
    """How long a row is timed: ``warmup`` untimed calls (the first pays for cuDNN's algorithm search,
    a graph capture or a compile), then at least ``minimum`` and at most ``maximum`` timed calls,
    stopping once ``target_s`` is spent."""

    warmup: int
    minimum: int
    maximum: int
    target_s: float


FULL_REPEATS = Repeats(warmup=3, minimum=5, maximum=50, target_s=1.0)
QUICK_REPEATS = Repeats(warmup=1, minimum=1, maximum=3, target_s=0.2)


@dataclass
class Budget:
    """The run's time limit, counted from the command's start."""

    seconds: float

    def elapsed(self) -> float:
        return time.monotonic() - STARTED

    def shortfall(self, needed_s: float) -> str | None:
        """Why something needing ``needed_s`` seconds cannot start now; None if it fits."""
        left = self.seconds - self.elapsed()
        if left >= needed_s:
            return None
        return f"time budget: {max(left, 0):.0f} s of {self.seconds:.0f} s left, this needs ~{needed_s:.0f} s"


@dataclass
class Setup:
    device: torch.device
    batches: tuple[int, ...]
    repeats: Repeats
    budget: Budget
    quick: bool


@dataclass
class Network:
    """One network under test, on the device, with what the report says about it."""

    name: str
    module: nn.Module
    size: int
    weights: str
    ort_cpu: dict = field(default_factory=dict)
    compiled: Callable | None = None
    first_compile_s: float | None = None


@dataclass
class Row:
    network: str
    size: int
    batch: int
    variant: str
    ms_per_batch: float | None = None
    images_per_s: float | None = None
    speedup_vs_ort_cpu: float | None = None
    #: The first call: cuDNN's algorithm search, the CUDA-graph capture or the compile, and one forward.
    first_call_s: float | None = None
    skipped: str | None = None
    failed: str | None = None


@dataclass
class Report:
    environment: dict
    networks: dict[str, dict]
    rows: list[Row]
    u2netp_autocast_vs_fp32: dict
    budget_s: float
    video: list[dict] = field(default_factory=list)
    wall_s: float = 0.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call_s(call: Callable[[], object], device: torch.device) -> float:
    start = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - start


def median_latency_ms(call: Callable[[], object], device: torch.device, repeats: Repeats) -> float:
    """Median ms of one synchronised call after the remaining warm-up calls (the caller made the first)."""
    for _ in range(repeats.warmup - 1):
        call()
    synchronize(device)
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < repeats.maximum and (
        len(samples) < repeats.minimum or time.perf_counter() - started < repeats.target_s
    ):
        samples.append(timed_call_s(call, device) * 1000)
    return statistics.median(samples)


def eager_call(module: nn.Module, x: torch.Tensor, autocast: bool) -> Callable[[], object]:
    def call() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(x.device.type, dtype=AUTOCAST_DTYPE, enabled=autocast):
            return module(x)

    return call


def cuda_graph_call(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """The replay of one autocast forward captured into a CUDA graph.

    Warm-up runs on a side stream before the capture, as PyTorch's CUDA-graph notes ask (cuDNN picks
    its algorithms there); autocast's weight-cast cache must be off inside a capture, so each replay
    casts the weights again (two bytes per parameter: microseconds).
    """
    def forward() -> torch.Tensor:
        with torch.autocast("cuda", dtype=AUTOCAST_DTYPE, cache_enabled=False):
            return module(x)  # x stays put: the replays read whatever it holds

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad():
        with torch.cuda.stream(side):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            forward()
    return graph.replay


def compiled_call(network: Network, x: torch.Tensor) -> Callable[[], object]:
    """A call of the network's one compiled module (made on first use); each new batch recompiles."""
    if network.compiled is None:
        network.compiled = torch.compile(network.module, mode="reduce-overhead", dynamic=False)
    compiled = network.compiled

    def call() -> None:
        # Each call is a new inference step for cudagraph trees, so it may reuse the last one's memory.
        torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad(), torch.autocast("cuda", dtype=AUTOCAST_DTYPE):
            compiled(x)

    return call


def variant_call(network: Network, x: torch.Tensor, variant: str) -> Callable[[], object]:
    if variant == "fp32":
        return eager_call(network.module, x, autocast=False)
    if variant == "autocast":
        return eager_call(network.module, x, autocast=True)
    if variant == "autocast+cuda-graph":
        return cuda_graph_call(network.module, x)
    return compiled_call(network, x)


def cpu_has_native_float16() -> bool:
    """oneDNN runs float16 convolutions natively only on CPUs with AVX512-FP16 or AMX-FP16; elsewhere
    it emulates them at seconds per small image, too slow to time here."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):  # a PyTorch build without oneDNN
        return False


def device_skip_reason(device: torch.device, variant: str) -> str | None:
    """Why ``variant`` is not timed on ``device`` (the GPU rows are what this check is for)."""
    if device.type == "cuda":
        return None
    if variant == "autocast" and not cpu_has_native_float16():
        return "this CPU has no native float16: autocast would take seconds per image"
    if variant == "autocast+cuda-graph":
        return "CUDA graphs need a CUDA device"
    if variant == "autocast+compile":
        return "torch.compile is timed on CUDA only (compiling these networks for CPU takes minutes)"
    return None


def measure_row(setup: Setup, network: Network, batch: int, variant: str, needed_s: float = ROW_ESTIMATE_S) -> Row:
    """One table row: timed, or skipped (by design: device, budget, GPU memory) or failed, with why."""
    row = Row(network.name, network.size, batch, variant)
    row.skipped = device_skip_reason(setup.device, variant) or setup.budget.shortfall(needed_s)
    if row.skipped:
        return row
    x = torch.randn(batch, 3, network.size, network.size, device=setup.device)
    try:
        started = time.perf_counter()
        call = variant_call(network, x, variant)
        call()
        synchronize(setup.device)
        row.first_call_s = time.perf_counter() - started
        if variant == "autocast+compile" and network.first_compile_s is None:
            network.first_compile_s = row.first_call_s
        row.ms_per_batch = median_latency_ms(call, setup.device, setup.repeats)
        row.images_per_s = batch * 1000 / row.ms_per_batch
    except torch.cuda.OutOfMemoryError:
        row.skipped = f"out of GPU memory at batch {batch}"
    except Exception as exc:  # noqa: BLE001 - a broken variant is reported and the rest still runs
        row.failed = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
    return row


def video_call(network: Network, frames: torch.Tensor, device: torch.device) -> Callable[[], torch.Tensor]:
    """The served video path in PyTorch for a batch of frames (N×H×W×3 uint8 on the host): upload, resize to
    the network's size (bilinear, antialiased), scale and normalise as matting.networks does, the network
    (under autocast on CUDA), min–max per frame, bilinear upsampling to the frame, uint8 mattes back on the host."""
    spec = network_spec(network.name, network.size)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    height, width = frames.shape[1:3]

    def call() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device.type, dtype=AUTOCAST_DTYPE, enabled=device.type == "cuda"):
            pixels = frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            small = torch.nn.functional.interpolate(pixels, size=(network.size, network.size), mode="bilinear",
                                                    antialias=True, align_corners=False)
            scaled = small / small.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1)
            matte = network.module((scaled - mean) / std).float()
            low = matte.amin(dim=(1, 2, 3), keepdim=True)
            matte = (matte - low) / (matte.amax(dim=(1, 2, 3), keepdim=True) - low).clamp(min=1e-6)
            alpha = torch.nn.functional.interpolate(matte, size=(height, width), mode="bilinear", align_corners=False)
            return (alpha * 255).round().to(torch.uint8).cpu()

    return call


def video_row(setup: Setup, network: Network) -> dict:
    """Frames/s of the video path (video_call) at VIDEO_BATCH frames, or why it was skipped."""
    width, height = QUICK_VIDEO_FRAME if setup.quick else VIDEO_FRAME
    row = {"network": network.name, "frame": f"{width}×{height}", "batch": VIDEO_BATCH,
           "variant": "autocast" if setup.device.type == "cuda" else "fp32"}
    if reason := setup.budget.shortfall(ROW_ESTIMATE_S):
        return row | {"skipped": reason}
    frames = torch.randint(0, 256, (VIDEO_BATCH, height, width, 3), dtype=torch.uint8)
    if setup.device.type == "cuda":
        frames = frames.pin_memory()  # host-to-device copies at full speed, as a serving process would set up
    try:
        call = video_call(network, frames, setup.device)
        call()
        ms = median_latency_ms(call, setup.device, setup.repeats)
    except torch.cuda.OutOfMemoryError:
        return row | {"skipped": f"out of GPU memory at {VIDEO_BATCH} frames"}
    finally:
        release_memory(setup.device)
    ort = network.ort_cpu
    return row | {"ms_per_batch": ms, "frames_per_s": VIDEO_BATCH * 1000 / ms,
                  "speedup_vs_ort_cpu_network": VIDEO_BATCH * ort["ms_per_image"] / ms if "ms_per_image" in ort else None}


def release_memory(device: torch.device) -> None:
    """Return the last row's cached blocks, so a heavy row never starts short of memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def onnx_export_path(network: str) -> Path:
    return MODEL_REPOSITORY / network / "1" / "model.onnx"


def ort_cpu_baseline(network: str, size: int, repeats: Repeats) -> dict:
    """ms per image of the network's served ONNX export on ONNX Runtime's CPU provider at batch 1
    (default threads), or ``{"skipped": why}``. onnxruntime is imported here: a GPU machine may lack it."""
    path = onnx_export_path(network)
    shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    try:
        import onnxruntime
    except ImportError:
        return {"skipped": "onnxruntime is not installed"}
    if not path.is_file():
        return {"skipped": f"no {shown} (make setup exports it)"}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0]
    if list(declared.shape[1:]) != [3, size, size]:
        return {"skipped": f"{shown} takes {declared.shape[2]}² inputs, this run uses {size}²"}
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)

    def call() -> None:
        session.run(None, {declared.name: x})

    call()
    return {"ms_per_image": median_latency_ms(call, torch.device("cpu"), repeats),
            "threads": "ONNX Runtime's default (one per physical core)", "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__}


def diff_pixels(size: int, photo: Path | None) -> tuple[np.ndarray, str]:
    """The U²-Netp input the autocast matte is compared on, and what it is: ``photo``, else the rembg
    fixture photo when this checkout has it, else a drawn picture (a lit disc on a gradient)."""
    spec = network_spec("u2netp", size)
    photo = photo or (DIFF_PHOTO if DIFF_PHOTO.is_file() else None)
    if photo:
        return prepare_input(Image.open(photo), spec), f"{photo.name} at {size}²"
    ys, xs = np.mgrid[0:size, 0:size] / size
    background = np.stack([60 + 80 * xs, 70 + 60 * ys, 110 - 40 * xs], axis=-1)
    disc = ((xs - 0.5) ** 2 + (ys - 0.55) ** 2 < 0.08)[..., None]
    subject = np.stack([200 + 40 * np.sin(30 * ys), 170 + 30 * xs, 120 + 50 * ys], axis=-1)
    pixels = np.where(disc, subject, background).astype(np.uint8)
    return normalise_pixels(pixels, spec), f"a drawn {size}² picture (no fixture photo here)"


def autocast_matte_difference(network: Network, setup: Setup, photo: Path | None) -> dict:
    """Mean and max |autocast − fp32| of U²-Netp's fused matte at batch 1, in 1/255 units."""
    pixels, described = diff_pixels(network.size, photo)
    x = torch.from_numpy(pixels)[None].to(setup.device)
    with torch.no_grad():
        reference = network.module(x).float()
        with torch.autocast(setup.device.type, dtype=AUTOCAST_DTYPE):
            reduced = network.module(x).float()
    difference = (reduced - reference).abs() * 255
    return {"mean_255": difference.mean().item(), "max_255": difference.max().item(),
            "input": described, "weights": network.weights}


def load_network(name: str, weights: Path | None) -> tuple[nn.Module, str]:
    """The network in eval mode and a line saying which weights it has (ValueError: a bad --weights)."""
    if name == "cvunet":
        return build_cvunet("full").eval(), "random (timing only; CV-UNet full)"
    if name == "u2net":
        return U2Net("u2net").eval(), "random (timing only)"
    path = weights or WEIGHTS_DIR / "u2netp.pt"
    if not path.is_file():
        return U2Net("u2netp").eval(), f"RANDOM: no {path} (make setup ports it; or pass --weights)"
    module = load_pretrained(path)
    if module.name != "u2netp":
        raise ValueError(f"{path} holds {module.name}, not u2netp")
    return module, f"pretrained ({path.name}{', fine-tuned: ' + module.fine_tuned if module.fine_tuned else ''})"


def environment(setup: Setup) -> dict:
    described = {"torch": torch.__version__, "device": str(setup.device), "quick": setup.quick,
                 "autocast_dtype": str(AUTOCAST_DTYPE).removeprefix("torch."),
                 "repeats": asdict(setup.repeats), "cpus": os.cpu_count()}
    if setup.device.type == "cuda":
        described.update(name=torch.cuda.get_device_name(setup.device), cuda=torch.version.cuda,
                         cudnn=torch.backends.cudnn.version(), cudnn_benchmark=torch.backends.cudnn.benchmark,
                         tf32_convolutions=torch.backends.cudnn.allow_tf32)
    else:
        described.update(name="CPU", threads=torch.get_num_threads())
    return described


def load_networks(setup: Setup, names: list[str], weights: Path | None) -> dict[str, Network]:
    networks = {}
    for name in sorted(set(names), key=NETWORKS.index):
        module, described = load_network(name, weights)
        size = QUICK_SIZE if setup.quick else SIZES[name]
        networks[name] = Network(name, module.to(setup.device), size, described)
    return networks


def speedup_vs_ort_cpu(row: Row, ort_cpu: dict) -> float | None:
    """The row's images/s over ONNX Runtime CPU's at batch 1; None when either was not measured."""
    if not row.images_per_s or "ms_per_image" not in ort_cpu:
        return None
    return row.images_per_s * ort_cpu["ms_per_image"] / 1000


def eager_rows(setup: Setup, network: Network) -> list[Row]:
    rows = []
    for batch in setup.batches:
        for variant in VARIANTS[:-1]:
            rows.append(measure_row(setup, network, batch, variant))
            release_memory(setup.device)
    return rows


def compile_estimate_s(network: Network, networks: dict[str, Network]) -> float:
    """Time a compile row needs: a network's first compile ~1.5 min, or more if an earlier network's
    took longer; a further shape (a recompile), 1.5× the network's own first compile."""
    if network.first_compile_s is not None:
        return 1.5 * network.first_compile_s + ROW_ESTIMATE_S
    return max([FIRST_COMPILE_ESTIMATE_S] + [1.2 * other.first_compile_s for other in networks.values()
                                             if other.first_compile_s is not None])


def compile_rows(setup: Setup, networks: dict[str, Network]) -> list[Row]:
    """Batch 8 of every network first, then the other batches while the budget allows."""
    rows: list[Row] = []
    for batch in sorted(setup.batches, key=lambda batch: batch != FIRST_COMPILE_BATCH):
        for network in networks.values():
            failed = next((row for row in rows if row.network == network.name and row.failed), None)
            if failed:
                rows.append(Row(network.name, network.size, batch, VARIANTS[-1],
                                skipped=f"the compile failed at batch {failed.batch}"))
                continue
            rows.append(measure_row(setup, network, batch, VARIANTS[-1], compile_estimate_s(network, networks)))
            release_memory(setup.device)
    return rows


def run_check(setup: Setup, networks: dict[str, Network], photo: Path | None) -> Report:
    """Every row: the cheap ones of every network first, then the compiles, which a short budget drops."""
    if setup.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # static shapes: let cuDNN pick the fastest algorithms
    report = Report(environment(setup), {}, [], {}, setup.budget.seconds)
    for network in networks.values():
        network.ort_cpu = ({"skipped": reason} if (reason := setup.budget.shortfall(ROW_ESTIMATE_S))
                           else ort_cpu_baseline(network.name, network.size, setup.repeats))
        if network.name == "u2netp":
            reason = setup.budget.shortfall(ROW_ESTIMATE_S)
            report.u2netp_autocast_vs_fp32 = ({"skipped": reason} if reason
                                              else autocast_matte_difference(network, setup, photo))
        report.rows += eager_rows(setup, network)
    report.video = [video_row(setup, network) for network in networks.values() if network.name in VIDEO_NETWORKS]
    report.rows += compile_rows(setup, networks)
    for row in report.rows:
        row.speedup_vs_ort_cpu = speedup_vs_ort_cpu(row, networks[row.network].ort_cpu)
    report.rows.sort(key=lambda row: (NETWORKS.index(row.network), row.batch, VARIANTS.index(row.variant)))
    report.networks = {name: {"size": network.size, "weights": network.weights, "ort_cpu_batch_1": network.ort_cpu}
                       for name, network in networks.items()}
    report.wall_s = setup.budget.elapsed()
    return report


def format_cell(row: Row) -> str:
    if row.skipped or row.failed:
        return f"{'skipped' if row.skipped else 'FAILED'}: {row.skipped or row.failed}"
    speedup = f"{row.speedup_vs_ort_cpu:.1f}×" if row.speedup_vs_ort_cpu else "n/a"
    cell = f"{row.ms_per_batch:>10.2f} {row.images_per_s:>10.1f} {speedup:>10}"
    return cell + (f"   (first call {row.first_call_s:.0f} s)" if row.variant == "autocast+compile" else "")


def render(report: Report) -> str:
    env = report.environment
    device = env["name"] + (f", CUDA {env['cuda']}, cuDNN {env['cudnn']}" if env["device"].startswith("cuda")
                            else f", {env['threads']} threads")
    lines = [f"GPU check on {device}; torch {env['torch']}{' (--quick)' if env['quick'] else ''}"]
    if env["device"].startswith("cuda"):
        lines.append(f"cuDNN benchmark on; fp32 convolutions may use TF32: {env['tf32_convolutions']}")
    repeats = env["repeats"]
    lines += [
        f"autocast = {env['autocast_dtype']}; cuda-graph = torch.cuda.CUDAGraph replay; compile = torch.compile "
        "reduce-overhead (Inductor + CUDA graphs)",
        f"latency = median of {repeats['minimum']}–{repeats['maximum']} synchronised calls after {repeats['warmup']} "
        "warm-up; × ORT CPU = images/s over ONNX Runtime CPU's at batch 1 (same run)",
        "",
        f"{'network':<8} {'size':>6}  {'weights':<48} ONNX Runtime CPU, batch 1",
    ]
    for name, network in report.networks.items():
        ort = network["ort_cpu_batch_1"]
        baseline = f"{ort['ms_per_image']:.1f} ms/image ({ort['cpus']} CPUs)" if "ms_per_image" in ort \
            else f"n/a: {ort['skipped']}"
        lines.append(f"{name:<8} {network['size']:>5}²  {network['weights']:<48} {baseline}")
    lines += ["", f"{'network':<8} {'batch':>5}  {'variant':<20} {'ms/batch':>10} {'images/s':>10} {'× ORT CPU':>10}"]
    lines += [f"{row.network:<8} {row.batch:>5}  {row.variant:<20} {format_cell(row)}" for row in report.rows]
    if report.video:
        lines += ["", f"Video: {VIDEO_BATCH} frames at once, uint8 on the host → mattes on the host (upload, resize, "
                      "normalise, network, upsample, download); × ORT CPU = frames/s over the network alone on ONNX Runtime CPU"]
        lines.append(f"{'network':<8} {'frame':>10}  {'variant':<9} {'ms/batch':>10} {'frames/s':>10} {'× ORT CPU':>10}")
        for video in report.video:
            speedup = f"{video['speedup_vs_ort_cpu_network']:.1f}×" if video.get("speedup_vs_ort_cpu_network") else "n/a"
            cell = (f"skipped: {video['skipped']}" if "skipped" in video
                    else f"{video['ms_per_batch']:>10.2f} {video['frames_per_s']:>10.1f} {speedup:>10}")
            lines.append(f"{video['network']:<8} {video['frame']:>10}  {video['variant']:<9} {cell}")
    diff = report.u2netp_autocast_vs_fp32
    if "mean_255" in diff:
        lines.append(f"\nU²-Netp float16 autocast vs fp32, fused matte on {diff['input']}, weights "
                     f"{diff['weights']}: mean |diff| {diff['mean_255']:.3f}/255, max {diff['max_255']:.2f}/255")
    elif diff:
        lines.append(f"\nU²-Netp autocast vs fp32: skipped: {diff['skipped']}")
    lines.append(f"Total wall time: {report.wall_s:.0f} s (budget {report.budget_s:.0f} s)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: batches {QUICK_BATCHES}, {QUICK_SIZE}² inputs, few repeats")
    parser.add_argument("--models", nargs="+", choices=NETWORKS, default=list(NETWORKS), metavar="NETWORK",
                        help=f"networks to time (default: {' '.join(NETWORKS)})")
    parser.add_argument("--weights", type=Path, help="U²-Netp checkpoint (default: .state/weights/u2netp.pt)")
    parser.add_argument("--image", type=Path, help="photo for the autocast-vs-fp32 matte (default: the rembg fixture)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"rows that would end past this many seconds are skipped (default {DEFAULT_BUDGET_S:.0f})")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA device on this machine (use --device cpu --quick)")
    if args.device == "cpu" and not args.quick:
        parser.error("--device cpu is this check's smoke test: add --quick (at full size a CPU takes minutes per "
                     "row, and float16 is emulated on most CPUs)")
    for option, path in (("--weights", args.weights), ("--image", args.image)):
        if path and not path.is_file():
            parser.error(f"{option} {path}: no such file")
    return args


def main(argv: list[str] | None = None) -> int:
    """Print the table (and write the JSON); 1 if a row failed, 2 if the weights cannot be read."""
    args = parse_args(argv)
    setup = Setup(torch.device(args.device), QUICK_BATCHES if args.quick else BATCHES,
                  QUICK_REPEATS if args.quick else FULL_REPEATS, Budget(args.budget_s), args.quick)
    try:
        networks = load_networks(setup, args.models, args.weights)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = run_check(setup, networks, args.image)
    print(render(report))
    if args.out:
        args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 1 if any(row.failed for row in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
