"""What the serving machine has: PyTorch, CUDA, TensorRT, probed in a child process.

PyTorch and TensorRT are heavy to import and may initialise CUDA, which a long-running dashboard or
server process has no use for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

ACCELERATOR_PROBE = """
import importlib.util, json
report = {}
for module in ("torch", "tensorrt"):
    if importlib.util.find_spec(module) is None:
        continue
    try:
        imported = __import__(module)
        report[module] = imported.__version__
        if module == "torch":
            report["cuda"] = imported.cuda.get_device_name(0) if imported.cuda.is_available() else None
    except Exception as exc:
        report[module] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
"""


def accelerator_report() -> dict:
    """``{"torch": version, "cuda": device or None, "tensorrt": version, "nvidia_smi": its -L output}``, for what is there."""
    completed = subprocess.run([sys.executable, "-c", ACCELERATOR_PROBE], capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise RuntimeError(f"the PyTorch/TensorRT probe failed: {completed.stderr.strip()[-300:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi:
        try:
            listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=15)
            report["nvidia_smi"] = listed.stdout.strip() or listed.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            report["nvidia_smi"] = str(exc)
    return report
