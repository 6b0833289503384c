"""The request library and the Triton steps stay torch-free: they run in every process, Triton's included."""

from __future__ import annotations

import subprocess
import sys

from matting.paths import PROJECT_ROOT

CHECK = """
import pkgutil, sys, types
import matting
for module in pkgutil.iter_modules(matting.__path__):
    __import__(f"matting.{module.name}")
sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")  # only Triton has it
import serving.steps
import client, client.batch, api.app
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "cvunet"))
print(",".join(loaded) or "none")
"""


def test_matting_the_steps_the_clients_and_the_rest_app_never_import_torch():
    completed = subprocess.run([sys.executable, "-c", CHECK], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "none"
