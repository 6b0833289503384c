"""``make run``: the embedded Triton, then the REST API and the dashboard; prints the URLs; Ctrl-C stops all.

Every service binds 127.0.0.1 unless ``--host``/``CVUNET_HOST`` says otherwise. If one of them dies,
the others are stopped too and the exit code is non-zero, so a supervisor notices.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from cvunet.embedded_triton import (
    EmbeddedTriton,
    Ports,
    TritonStartError,
    http_ok,
    ignore_interrupts,
    interrupt_on_sigterm,
    stop_with_parent,
)
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT, STATE_DIR
from ui.settings import MODEL_IMPORT_MAX_MB


class ServiceStartError(RuntimeError):
    """A service of the stack did not come up; the message says which and where its log is."""


def _wait_http_ok(url: str, process: subprocess.Popen, name: str, log: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(f"{name} exited with code {process.returncode} while starting; see {log}")
        if http_ok(url):
            return
        time.sleep(0.3)
    raise ServiceStartError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {log}")


def start_service(name: str, command: list[str], health_url: str, log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a child service (stopped with us, even on SIGKILL) and wait until ``health_url`` answers 200."""
    log_path = STATE_DIR / "logs" / log_name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, preexec_fn=stop_with_parent)
    _wait_http_ok(health_url, process, name, str(log_path))
    return process


def rest_api_command(host: str, port: int, triton_grpc_url: str) -> list[str]:
    return [sys.executable, "-m", "api", "--host", host, "--port", str(port), "--triton-url", triton_grpc_url]


def dashboard_command(host: str, port: int) -> list[str]:
    """Streamlit's global upload cap fits a model import; each image uploader sets its own smaller one."""
    return [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "ui" / "app.py"),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.maxUploadSize", str(MODEL_IMPORT_MAX_MB), "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


def dashboard_env(triton: EmbeddedTriton) -> dict[str, str]:
    return {"TRITON_GRPC_URL": triton.grpc_url, "TRITON_METRICS_URL": triton.metrics_url,
            "CVUNET_REPOSITORY": str(triton.repository)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Triton, the REST API and the dashboard on this machine.")
    parser.add_argument("--host", default=os.environ.get("CVUNET_HOST", "127.0.0.1"), help="bind address for every service")
    parser.add_argument("--rest-port", type=int, default=int(os.environ.get("REST_PORT", 8080)))
    parser.add_argument("--ui-port", type=int, default=int(os.environ.get("UI_PORT", 7860)))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("TRITON_HTTP_PORT", 8000)))
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("TRITON_GRPC_PORT", 8001)))
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRITON_METRICS_PORT", 8002)))
    args = parser.parse_args(argv)

    interrupt_on_sigterm()
    triton = EmbeddedTriton(MODEL_REPOSITORY, args.host, Ports(args.http_port, args.grpc_port, args.metrics_port))
    services: list[subprocess.Popen] = []
    print(f"starting Triton (log: {triton.log_path}), the REST API and the dashboard …", flush=True)
    try:
        triton.start()
        services.append(start_service("the REST API", rest_api_command(args.host, args.rest_port, triton.grpc_url),
                                      f"http://{args.host}:{args.rest_port}/healthz", f"rest-{args.rest_port}.log"))
        services.append(start_service("the dashboard", dashboard_command(args.host, args.ui_port),
                                      f"http://{args.host}:{args.ui_port}/_stcore/health", f"ui-{args.ui_port}.log",
                                      dashboard_env(triton)))
        print(
            "ready\n"
            f"  Dashboard       http://{args.host}:{args.ui_port}\n"
            f"  REST API        http://{args.host}:{args.rest_port}/api/matting   "
            f"(curl -F image=@photo.jpg http://{args.host}:{args.rest_port}/api/matting > result.png)\n"
            f"  Triton HTTP     {triton.http_url}   (KServe v2, model 'matting')\n"
            f"  Triton gRPC     {triton.grpc_url}\n"
            f"  Triton metrics  {triton.metrics_url}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while triton.process.poll() is None and all(service.poll() is None for service in services):
            time.sleep(0.5)
        print("error: a service stopped unexpectedly; stopping the rest (logs in .state/logs/)", file=sys.stderr)
        return 1
    except (TritonStartError, ServiceStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping …", flush=True)
        return 0
    finally:
        ignore_interrupts()
        for service in services:
            if service.poll() is None:
                service.terminate()
                service.wait(timeout=30)
        triton.stop()


if __name__ == "__main__":
    sys.exit(main())
