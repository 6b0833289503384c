"""Baseline: the real ``rembg p -m u2netp|u2net IN_DIR OUT_DIR`` on a folder, with our pinned weights.

    .venv/bin/python -m bench.rembg_baseline IN_DIR [--model u2net]     (prints the measurements as JSON)

rembg lives in its own virtualenv (it needs numpy 2; the project's .venv keeps numpy 1.26). It is
given a model home holding our verified weights file and an unreachable proxy, so it downloads
nothing: rembg only downloads when the file is missing, and if it ever tried, the attempt fails at
once instead of fetching other weights. rembg's folder command works through the files one after
another, so the gaps between consecutive output files' completion times are per-image latencies.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import PeakMemory
from matting.paths import STATE_DIR
from serving.weights import PINNED, WeightsError, fetch_weights, verify

REMBG_VERSION = "2.0.86"
# rembg with onnxruntime, plus the packages its CLI imports on start-up. The rest of its `cli` extra
# (gradio, python-multipart) is only used by `rembg s`, and gradio alone would double the install.
# numba/llvmlite are pinned with numpy because pymatting (imported by rembg.bg) compiles with them.
REMBG_REQUIREMENTS = [
    f"rembg[cpu]=={REMBG_VERSION}",
    "numpy==2.4.6",
    "onnxruntime==1.32.0",
    "pillow==13.0.0",
    "scipy==1.17.1",
    "scikit-image==0.26.0",
    "pymatting==1.1.16",
    "numba==0.68.1",
    "llvmlite==0.50.0",
    "pooch==1.9.0",
    "click==8.5.1",
    "filetype==1.2.0",
    "watchdog==6.0.0",
    "aiohttp==3.14.5",
    "asyncer==0.0.12",
    "fastapi==0.128.8",
    "uvicorn==0.40.0",
]
#: rembg's session class for each model it is benchmarked with.
SESSIONS = {"u2netp": "u2netp.U2netpSession", "u2net": "u2net.U2netSession"}
# Any HTTP(S) request rembg or pooch makes goes through this proxy: nothing listens there, so it is refused.
UNREACHABLE_PROXY = "http://127.0.0.1:9"

# Asks the installed rembg which file it would load for a model and which md5 its download checks.
RESOLVE_PROBE = """
import importlib, inspect, json, re, sys
module, name = sys.argv[1].rsplit(".", 1)
session = getattr(importlib.import_module(f"rembg.sessions.{module}"), name)
print(json.dumps({
    "resolved": session.resolve_existing(sys.argv[2]),
    "md5": re.findall(r"md5:([0-9a-f]{32})", inspect.getsource(session.download_models)),
}))
"""


class RembgBaselineError(RuntimeError):
    """rembg could not be installed, would not use our weights, or did not process every image."""


def ensure_rembg_venv(state_dir: Path) -> Path:
    """Create the pinned rembg virtualenv once (a stamp records what it holds); return its `rembg`."""
    venv = Path(state_dir) / "bench" / "rembg-venv"
    rembg = venv / "bin" / "rembg"
    stamp = venv / "bench-stamp.txt"
    wanted = "\n".join([sys.version, *REMBG_REQUIREMENTS])
    if rembg.exists() and stamp.exists() and stamp.read_text() == wanted:
        return rembg
    _run_or_raise([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the rembg virtualenv")
    _run_or_raise(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input",
         "--disable-pip-version-check", *REMBG_REQUIREMENTS],
        f"installing {REMBG_REQUIREMENTS[0]} (needs the package index)",
    )
    # The first import compiles pymatting's numba kernels (about a minute on 2 cores); do it here so
    # that no measured run pays for it.
    _run_or_raise([str(rembg), "--help"], "the first start of rembg")
    stamp.write_text(wanted)
    return rembg


def _run_or_raise(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                               cwd=tempfile.gettempdir(), check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()[-3000:]
        raise RembgBaselineError(f"{what} failed (exit {completed.returncode}):\n{output}")
    return completed.stdout


def offline_env(u2net_home: Path) -> dict[str, str]:
    """rembg's environment: models from `u2net_home`, and every download attempt refused."""
    env = {name: value for name, value in os.environ.items() if name.lower() != "no_proxy"}
    env["U2NET_HOME"] = str(u2net_home)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = UNREACHABLE_PROXY
    return env


def prepare_u2net_home(rembg: Path, weights: Path, state_dir: Path, model: str = "u2netp") -> Path:
    """Put our weights where rembg looks for ``model`` and prove rembg will load exactly that file.

    rembg loads any existing file without hashing it, so the check against the md5 its download
    would enforce is done here: a mismatch means these are not rembg's weights for that model.
    """
    verify(weights, PINNED[model])  # the project's pinned sha256
    home = Path(state_dir) / "bench" / "u2net-home"
    placed = home / "models" / model / f"{model}.onnx"
    placed.parent.mkdir(parents=True, exist_ok=True)
    if not (placed.exists() and placed.samefile(weights)):
        placed.unlink(missing_ok=True)
        try:
            os.link(weights, placed)
        except OSError:  # another filesystem, or links not allowed
            shutil.copyfile(weights, placed)
    probe = json.loads(_run_or_raise([str(rembg.parent / "python"), "-c", RESOLVE_PROBE, SESSIONS[model], placed.name],
                                     f"asking rembg where it finds {model}", env=offline_env(home)))
    if probe["resolved"] is None or not Path(probe["resolved"]).samefile(placed):
        raise RembgBaselineError(f"rembg {REMBG_VERSION} would load {probe['resolved']}, not {placed}")
    ours = hashlib.md5(placed.read_bytes()).hexdigest()
    if probe["md5"] != [ours]:
        placed.unlink()
        raise RembgBaselineError(
            f"{weights} has md5 {ours} but rembg {REMBG_VERSION} expects {probe['md5']} for {model}: "
            "not the same weights, refusing to benchmark")
    return home


def run_rembg_p(rembg: Path, input_dir: Path, output_dir: Path, state_dir: Path, model: str = "u2netp") -> dict:
    """Run `rembg p -m <model> input_dir output_dir` once, with our pinned weights, and measure it.

    `images_per_s` is the steady-state rate, (n-1) / (last - first output completion), which leaves
    out rembg's import and model load; `images_per_s_with_startup` is n / wall_s. Latencies are the
    n-1 gaps between consecutive output completions (file mtimes), so the first image, which shares
    its time with start-up, has none. input_dir must hold only images (rembg skips anything else).
    """
    inputs = [path for path in Path(input_dir).rglob("*") if path.is_file()]
    if len(inputs) < 2:
        raise RembgBaselineError(f"{input_dir} holds {len(inputs)} files; steady-state timing needs at least 2")
    if Path(output_dir).exists() and any(Path(output_dir).iterdir()):
        raise RembgBaselineError(f"{output_dir} is not empty; rembg would skip images whose output exists")
    env = offline_env(prepare_u2net_home(rembg, fetch_weights(model), state_dir, model))
    command = [str(rembg), "p", "-m", model, str(input_dir), str(output_dir)]  # no -w: exits when done
    with tempfile.TemporaryFile("w+") as log:
        started_ns = time.time_ns()
        started = time.perf_counter()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        with PeakMemory(child.pid) as memory:
            child.wait()
        wall_s = time.perf_counter() - started
        log.seek(0)
        output_tail = log.read()[-3000:]
    outputs = sorted(Path(output_dir).glob("*.png"), key=lambda path: path.stat().st_mtime_ns)
    if child.returncode != 0 or len(outputs) < len(inputs):
        raise RembgBaselineError(
            f"`{' '.join(command)}` exited {child.returncode} with {len(outputs)} of {len(inputs)} "
            f"outputs; its output:\n{output_tail}")
    done_ns = np.array([path.stat().st_mtime_ns for path in outputs], dtype=np.int64)
    latencies_ms = np.diff(done_ns) / 1e6
    steady_s = (done_ns[-1] - done_ns[0]) / 1e9
    return {
        "rembg_version": REMBG_VERSION,
        "model": model,
        "images": len(outputs),
        "wall_s": round(wall_s, 3),
        "first_output_s": round((done_ns[0] - started_ns) / 1e9, 3),
        "images_per_s": round((len(outputs) - 1) / steady_s, 3),
        "images_per_s_with_startup": round(len(outputs) / wall_s, 3),
        "latency_p50_ms": round(float(np.percentile(latencies_ms, 50)), 1),
        "latency_p95_ms": round(float(np.percentile(latencies_ms, 95)), 1),
        "peak_rss_mb": round(memory.rss_mb, 1),
        "peak_pss_mb": round(memory.pss_mb, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the real `rembg p -m MODEL` on a folder of images.")
    parser.add_argument("input_dir", type=Path, help="folder holding only images")
    parser.add_argument("--model", choices=sorted(SESSIONS), default="u2netp")
    args = parser.parse_args(argv)
    try:
        rembg = ensure_rembg_venv(STATE_DIR)
        with tempfile.TemporaryDirectory(prefix="rembg-baseline-") as scratch:
            result = run_rembg_p(rembg, args.input_dir, Path(scratch) / "out", STATE_DIR, args.model)
    except (RembgBaselineError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
